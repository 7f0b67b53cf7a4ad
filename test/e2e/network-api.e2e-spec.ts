import { CloudHandle, startCloud } from './support/cloud';
import { api, issueToken } from './support/keystone';

/** The Neutron v2.0 API spoken directly: errors, validation, isolation, IPAM under concurrency, lists. */
describe('network API', () => {
  let cloud: CloudHandle;
  let url: string;
  let admin: string;
  let demo: string;
  let alt: string;
  let adminProject: string;
  let demoProject: string;

  const call = (token: string | undefined, method: string, path: string, body?: unknown, raw?: string) =>
    api(url, method, path, { token, body, raw });
  const ok = async (token: string, method: string, path: string, body?: unknown) => {
    const response = await call(token, method, path, body);
    if (response.status >= 300)
      throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body;
  };
  const neutronError = (status: number, type?: string) =>
    expect.objectContaining({
      status,
      body: {
        NeutronError: { type: type ?? expect.any(String), message: expect.any(String), detail: '' },
      },
    });

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 23110 });
    url = cloud.services.network;
    const a = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    const d = await issueToken(cloud.identityUrl, {
      user: 'demo',
      password: cloud.demoPassword,
      project: 'demo',
    });
    const x = await issueToken(cloud.identityUrl, {
      user: 'alt_demo',
      password: cloud.demoPassword,
      project: 'alt_demo',
    });
    [admin, demo, alt] = [a.token, d.token, x.token];
    adminProject = a.body.token.project.id;
    demoProject = d.body.token.project.id;
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('answers version discovery, resources and extensions', async () => {
    const root = await call(undefined, 'GET', '');
    expect(root.status).toBe(200);
    expect(root.body.versions).toEqual([
      { id: 'v2.0', status: 'CURRENT', links: [{ rel: 'self', href: `${url}/v2.0/` }] },
    ]);
    const extensions = await ok(demo, 'GET', '/v2.0/extensions');
    const aliases = extensions.extensions.map((e: any) => e.alias);
    for (const alias of [
      'external-net',
      'router',
      'security-group',
      'quotas',
      'binding',
      'provider',
      'port-security',
    ]) {
      expect(aliases).toContain(alias);
    }
    expect((await ok(demo, 'GET', '/v2.0/extensions/router')).extension.alias).toBe('router');
    expect(await call(demo, 'GET', '/v2.0/extensions/nope')).toEqual(neutronError(404));
    expect((await ok(demo, 'GET', '/v2.0')).resources.map((r: any) => r.collection)).toContain('ports');
  }, 30_000);

  it("answers every failure in Neutron's fault format", async () => {
    expect(await call(undefined, 'GET', '/v2.0/networks')).toEqual(neutronError(401));
    expect(await call(demo, 'GET', '/v2.0/nothing-here')).toEqual(neutronError(404));
    expect(await call(demo, 'POST', '/v2.0/networks', undefined, '{"network": ')).toEqual(neutronError(400));
    expect(await call(demo, 'POST', '/v2.0/networks', [1])).toEqual(neutronError(400));
    expect(await call(demo, 'POST', '/v2.0/networks', { network: { name: 5 } })).toEqual(neutronError(400));
    const unknown = await call(demo, 'POST', '/v2.0/networks', { network: { name: 'x', colour: 'red' } });
    expect(unknown).toEqual(neutronError(400));
    expect(unknown.body.NeutronError.message).toContain("Unrecognized attribute(s) 'colour'");
    const missing = await call(demo, 'GET', '/v2.0/networks/4f2b6a6e-0000-4000-8000-000000000000');
    expect(missing).toEqual(neutronError(404, 'NetworkNotFound'));
    expect(await call(demo, 'GET', '/v2.0/networks?bogus=1')).toEqual(neutronError(400));
    expect(await call(demo, 'GET', '/v2.0/networks?limit=-1')).toEqual(neutronError(400));
    expect(await call(demo, 'GET', '/v2.0/networks?sort_key=nope')).toEqual(neutronError(400));
  }, 30_000);

  it('validates subnets: CIDRs, overlaps, gateways, pools, nameservers', async () => {
    const net = (await ok(demo, 'POST', '/v2.0/networks', { network: { name: 'validate' } })).network;
    const subnet = (body: object) =>
      call(demo, 'POST', '/v2.0/subnets', { subnet: { network_id: net.id, ip_version: 4, ...body } });
    expect((await subnet({ cidr: '10.9.0.0/16' })).status).toBe(201);
    const overlap = await subnet({ cidr: '10.9.3.0/24' });
    expect(overlap).toEqual(neutronError(400, 'InvalidInput'));
    expect(overlap.body.NeutronError.message).toContain('overlaps with another subnet');
    const notRecommended = await subnet({ cidr: '10.10.0.1/24' });
    expect(notRecommended).toEqual(neutronError(400, 'InvalidInput'));
    expect(notRecommended.body.NeutronError.message).toContain("'10.10.0.0/24' is recommended");
    expect(await subnet({ cidr: 'not-a-cidr' })).toEqual(neutronError(400, 'InvalidInput'));
    expect(await subnet({ cidr: '10.11.0.0/24', ip_version: 6 })).toEqual(neutronError(400, 'InvalidInput'));
    expect(await subnet({ cidr: '10.11.0.0/24', gateway_ip: '10.11.0.300' })).toEqual(
      neutronError(400, 'InvalidInput'),
    );
    expect(
      await subnet({ cidr: '10.11.0.0/24', allocation_pools: [{ start: '10.11.1.2', end: '10.11.1.9' }] }),
    ).toEqual(neutronError(400, 'OutOfBoundsAllocationPool'));
    expect(
      await subnet({ cidr: '10.11.0.0/24', allocation_pools: [{ start: '10.11.0.1', end: '10.11.0.9' }] }),
    ).toEqual(neutronError(409, 'GatewayConflictWithAllocationPools'));
    expect(await subnet({ cidr: '10.11.0.0/24', dns_nameservers: ['1.1.1.1', 'x'] })).toEqual(
      neutronError(400, 'InvalidInput'),
    );
    const v6 = await call(demo, 'POST', '/v2.0/subnets', {
      subnet: {
        network_id: net.id,
        ip_version: 6,
        cidr: 'FD00:0:0:1::/64',
        ipv6_address_mode: 'slaac',
        ipv6_ra_mode: 'slaac',
      },
    });
    expect(v6.status).toBe(201);
    expect(v6.body.subnet).toMatchObject({
      cidr: 'fd00:0:0:1::/64',
      gateway_ip: 'fd00:0:0:1::1',
      allocation_pools: [{ start: 'fd00:0:0:1::2', end: 'fd00::1:ffff:ffff:ffff:ffff' }],
    });
    // A port on a network with both families gets one address of each.
    const port = (await ok(demo, 'POST', '/v2.0/ports', { port: { network_id: net.id } })).port;
    expect(port.fixed_ips.map((f: any) => f.ip_address.includes(':'))).toEqual([false, true]);
    const badIp = await call(demo, 'POST', '/v2.0/ports', {
      port: { network_id: net.id, fixed_ips: [{ ip_address: '10.9.300.1' }] },
    });
    expect(badIp).toEqual(neutronError(400, 'InvalidInput'));
    const outside = await call(demo, 'POST', '/v2.0/ports', {
      port: { network_id: net.id, fixed_ips: [{ subnet_id: v6.body.subnet.id, ip_address: '10.9.0.7' }] },
    });
    expect(outside).toEqual(neutronError(400, 'InvalidIpForSubnet'));
    // A subnet with addresses in use cannot go; nor can a network with ports.
    expect(await call(demo, 'DELETE', `/v2.0/subnets/${v6.body.subnet.id}`)).toEqual(
      neutronError(409, 'SubnetInUse'),
    );
    expect(await call(demo, 'DELETE', `/v2.0/networks/${net.id}`)).toEqual(neutronError(409, 'NetworkInUse'));
    expect((await call(demo, 'DELETE', `/v2.0/ports/${port.id}`)).status).toBe(204);
    expect((await call(demo, 'DELETE', `/v2.0/networks/${net.id}`)).status).toBe(204);
  }, 60_000);

  it("keeps projects apart: other projects' resources are 404, shared networks are usable", async () => {
    const net = (await ok(demo, 'POST', '/v2.0/networks', { network: { name: 'demo-only' } })).network;
    const sub = (
      await ok(demo, 'POST', '/v2.0/subnets', {
        subnet: { network_id: net.id, cidr: '10.30.0.0/24', ip_version: 4 },
      })
    ).subnet;
    const port = (await ok(demo, 'POST', '/v2.0/ports', { port: { network_id: net.id } })).port;
    const paired = (
      await ok(demo, 'POST', '/v2.0/ports', {
        port: { network_id: net.id, allowed_address_pairs: [{ ip_address: '10.30.0.0/28' }] },
      })
    ).port;
    expect(paired.allowed_address_pairs).toEqual([
      { ip_address: '10.30.0.0/28', mac_address: paired.mac_address },
    ]);
    const group = (await ok(demo, 'POST', '/v2.0/security-groups', { security_group: { name: 'g' } }))
      .security_group;
    const router = (await ok(demo, 'POST', '/v2.0/routers', { router: { name: 'r' } })).router;

    expect(await call(alt, 'GET', `/v2.0/networks/${net.id}`)).toEqual(neutronError(404, 'NetworkNotFound'));
    expect(await call(alt, 'GET', `/v2.0/subnets/${sub.id}`)).toEqual(neutronError(404, 'SubnetNotFound'));
    expect(await call(alt, 'GET', `/v2.0/ports/${port.id}`)).toEqual(neutronError(404, 'PortNotFound'));
    expect(await call(alt, 'GET', `/v2.0/security-groups/${group.id}`)).toEqual(
      neutronError(404, 'SecurityGroupNotFound'),
    );
    expect(await call(alt, 'GET', `/v2.0/routers/${router.id}`)).toEqual(neutronError(404, 'RouterNotFound'));
    expect(await call(alt, 'PUT', `/v2.0/networks/${net.id}`, { network: { name: 'x' } })).toEqual(
      neutronError(404),
    );
    expect(await call(alt, 'DELETE', `/v2.0/ports/${port.id}`)).toEqual(neutronError(404));
    // A port on another project's network.
    expect(await call(alt, 'POST', '/v2.0/ports', { port: { network_id: net.id } })).toEqual(
      neutronError(404, 'NetworkNotFound'),
    );
    expect((await ok(alt, 'GET', '/v2.0/networks')).networks.map((n: any) => n.id)).not.toContain(net.id);
    expect((await ok(alt, 'GET', '/v2.0/ports')).ports.map((p: any) => p.id)).not.toContain(port.id);

    // Creating for another project, sharing and external networks are for admins.
    expect(await call(demo, 'POST', '/v2.0/networks', { network: { project_id: adminProject } })).toEqual(
      neutronError(403),
    );
    expect(await call(demo, 'POST', '/v2.0/networks', { network: { 'router:external': true } })).toEqual(
      neutronError(403),
    );
    expect(
      await call(demo, 'POST', '/v2.0/networks', { network: { 'provider:network_type': 'vlan' } }),
    ).toEqual(neutronError(403));
    expect(
      await call(demo, 'POST', '/v2.0/ports', { port: { network_id: net.id, 'binding:host_id': 'h' } }),
    ).toEqual(neutronError(403));

    // The shared `private` network: any project makes ports on it, and sees only its own.
    const shared = (await ok(alt, 'GET', '/v2.0/networks?name=private')).networks[0];
    expect(shared).toMatchObject({ shared: true, project_id: adminProject });
    expect(shared['provider:network_type']).toBeUndefined();
    const altPort = (await ok(alt, 'POST', '/v2.0/ports', { port: { network_id: shared.id } })).port;
    expect(await call(demo, 'GET', `/v2.0/ports/${altPort.id}`)).toEqual(neutronError(404));
    // ... but may not add subnets to it, nor change it.
    expect(
      await call(alt, 'POST', '/v2.0/subnets', {
        subnet: { network_id: shared.id, cidr: '10.99.0.0/24', ip_version: 4 },
      }),
    ).toEqual(neutronError(403));
    expect(await call(alt, 'PUT', `/v2.0/networks/${shared.id}`, { network: { name: 'mine' } })).toEqual(
      neutronError(403),
    );
    // Admins see everything, including where ports are bound.
    const adminView = (await ok(admin, 'GET', `/v2.0/ports/${port.id}`)).port;
    expect(adminView['binding:host_id']).toBe('');
    expect((await ok(demo, 'GET', `/v2.0/ports/${port.id}`)).port['binding:host_id']).toBeUndefined();
  }, 60_000);

  it('allocates provider segments and keeps them unique', async () => {
    const vxlan = (await ok(admin, 'POST', '/v2.0/networks', { network: { name: 'seg-a' } })).network;
    expect(vxlan['provider:network_type']).toBe('vxlan');
    expect(vxlan['provider:segmentation_id']).toEqual(expect.any(Number));
    expect(vxlan['provider:physical_network']).toBeNull();
    const vlan = {
      'provider:network_type': 'vlan',
      'provider:physical_network': 'physnet1',
      'provider:segmentation_id': 100,
    };
    expect((await call(admin, 'POST', '/v2.0/networks', { network: { name: 'v1', ...vlan } })).status).toBe(
      201,
    );
    expect(await call(admin, 'POST', '/v2.0/networks', { network: { name: 'v2', ...vlan } })).toEqual(
      neutronError(409, 'VlanIdInUse'),
    );
    const tunnel = {
      'provider:network_type': 'vxlan',
      'provider:segmentation_id': vxlan['provider:segmentation_id'],
    };
    expect(await call(admin, 'POST', '/v2.0/networks', { network: tunnel })).toEqual(
      neutronError(409, 'TunnelIdInUse'),
    );
    // The bootstrap `public` network is flat on physnet1: one flat network per physical network.
    const flat = { 'provider:network_type': 'flat', 'provider:physical_network': 'physnet1' };
    expect(await call(admin, 'POST', '/v2.0/networks', { network: flat })).toEqual(
      neutronError(409, 'FlatNetworkInUse'),
    );
    expect(
      await call(admin, 'POST', '/v2.0/networks', { network: { 'provider:network_type': 'flat' } }),
    ).toEqual(neutronError(400, 'InvalidInput'));
    expect(
      await call(admin, 'POST', '/v2.0/networks', { network: { ...vlan, 'provider:segmentation_id': 4095 } }),
    ).toEqual(neutronError(400, 'InvalidInput'));
    const ids = await Promise.all(
      Array.from({ length: 20 }, () =>
        ok(admin, 'POST', '/v2.0/networks', { network: { 'provider:network_type': 'vlan' } }),
      ),
    );
    expect(new Set(ids.map((r) => r.network['provider:segmentation_id'])).size).toBe(20);
  }, 60_000);

  it('gives parallel ports distinct addresses and answers 409 when the subnet is full', async () => {
    const net = (await ok(demo, 'POST', '/v2.0/networks', { network: { name: 'small' } })).network;
    const sub = (
      await ok(demo, 'POST', '/v2.0/subnets', {
        subnet: { network_id: net.id, cidr: '10.40.0.0/28', ip_version: 4 },
      })
    ).subnet;
    expect(sub.allocation_pools).toEqual([{ start: '10.40.0.2', end: '10.40.0.14' }]);
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        call(demo, 'POST', '/v2.0/ports', { port: { network_id: net.id, name: `p${i}` } }),
      ),
    );
    const created = results.filter((r) => r.status === 201).map((r) => r.body.port);
    const refused = results.filter((r) => r.status !== 201);
    expect(created).toHaveLength(13);
    for (const r of refused) expect(r).toEqual(neutronError(409, 'IpAddressGenerationFailure'));
    const addresses = created.map((p) => p.fixed_ips[0].ip_address);
    expect(new Set(addresses).size).toBe(13);
    expect(new Set(created.map((p) => p.mac_address)).size).toBe(13);
    // No port was left behind by a refused request.
    expect((await ok(demo, 'GET', `/v2.0/ports?network_id=${net.id}`)).ports).toHaveLength(13);

    // Deleted ports give their addresses back, and only those.
    const freed = created.slice(0, 3);
    await Promise.all(freed.map((p) => ok(demo, 'DELETE', `/v2.0/ports/${p.id}`)));
    const again = await Promise.all(
      Array.from({ length: 5 }, () => call(demo, 'POST', '/v2.0/ports', { port: { network_id: net.id } })),
    );
    const reused = again.filter((r) => r.status === 201).map((r) => r.body.port.fixed_ips[0].ip_address);
    expect(reused.sort()).toEqual(freed.map((p) => p.fixed_ips[0].ip_address).sort());
    expect(again.filter((r) => r.status === 409)).toHaveLength(2);

    // A requested address that is taken.
    const taken = await call(demo, 'POST', '/v2.0/ports', {
      port: { network_id: net.id, fixed_ips: [{ ip_address: addresses[5] }] },
    });
    expect(taken).toEqual(neutronError(409, 'IpAddressAlreadyAllocated'));
  }, 60_000);

  it('filters, picks fields, sorts and pages every list', async () => {
    for (const name of ['page-a', 'page-b', 'page-c', 'page-d', 'page-e']) {
      await ok(demo, 'POST', '/v2.0/networks', { network: { name, description: 'paging' } });
    }
    const filtered = await ok(
      demo,
      'GET',
      '/v2.0/networks?description=paging&sort_key=name&sort_dir=desc&fields=name&fields=id',
    );
    expect(filtered.networks.map((n: any) => n.name)).toEqual([
      'page-e',
      'page-d',
      'page-c',
      'page-b',
      'page-a',
    ]);
    expect(Object.keys(filtered.networks[0]).sort()).toEqual(['id', 'name']);
    const either = await ok(demo, 'GET', '/v2.0/networks?name=page-a&name=page-c');
    expect(either.networks.map((n: any) => n.name).sort()).toEqual(['page-a', 'page-c']);

    const first = await ok(demo, 'GET', '/v2.0/networks?description=paging&sort_key=name&limit=2');
    expect(first.networks.map((n: any) => n.name)).toEqual(['page-a', 'page-b']);
    const next = first.networks_links.find((l: any) => l.rel === 'next');
    expect(next.href).toContain(`marker=${first.networks[1].id}`);
    const second = await ok(demo, 'GET', next.href.slice(url.length));
    expect(second.networks.map((n: any) => n.name)).toEqual(['page-c', 'page-d']);
    const third = await ok(
      demo,
      'GET',
      second.networks_links.find((l: any) => l.rel === 'next').href.slice(url.length),
    );
    expect(third.networks.map((n: any) => n.name)).toEqual(['page-e']);
    expect(third.networks_links.find((l: any) => l.rel === 'next')).toBeUndefined();
    const previous = await ok(
      demo,
      'GET',
      third.networks_links.find((l: any) => l.rel === 'previous').href.slice(url.length),
    );
    expect(previous.networks.map((n: any) => n.name)).toEqual(['page-c', 'page-d']);
    expect(await call(demo, 'GET', '/v2.0/networks?marker=4f2b6a6e-0000-4000-8000-000000000000')).toEqual(
      neutronError(404, 'NetworkNotFound'),
    );

    for (const path of [
      'subnets',
      'ports',
      'security-groups',
      'security-group-rules',
      'routers',
      'floatingips',
    ]) {
      const listed = await ok(demo, 'GET', `/v2.0/${path}?fields=id&limit=1`);
      const collection = Object.keys(listed).find((k) => !k.endsWith('_links'))!;
      for (const item of listed[collection]) expect(Object.keys(item)).toEqual(['id']);
      expect(await call(demo, 'GET', `/v2.0/${path}?no_such_attribute=1`)).toEqual(neutronError(400));
    }
    const byIp = await ok(admin, 'GET', '/v2.0/ports?fixed_ips=ip_address%3D172.24.4.1');
    expect(byIp.ports).toEqual([]);
  }, 60_000);

  it('filters ports by id, network, device, owner and security group, within what the caller may see', async () => {
    const net = (await ok(demo, 'POST', '/v2.0/networks', { network: { name: 'filtered' } })).network;
    await ok(demo, 'POST', '/v2.0/subnets', {
      subnet: { network_id: net.id, cidr: '10.41.0.0/24', ip_version: 4 },
    });
    const group = (await ok(demo, 'POST', '/v2.0/security-groups', { security_group: { name: 'f' } }))
      .security_group;
    const port = async (extra: Record<string, unknown>) =>
      (await ok(demo, 'POST', '/v2.0/ports', { port: { network_id: net.id, ...extra } })).port;
    const a = await port({ device_id: 'dev-a', device_owner: 'compute:nova', security_groups: [group.id] });
    const b = await port({ device_id: 'dev-b', device_owner: 'compute:nova' });
    const c = await port({ device_id: 'dev-a', device_owner: 'network:dhcp' });
    const ids = async (token: string, query: string) =>
      ((await ok(token, 'GET', `/v2.0/ports?${query}`)).ports as { id: string }[]).map((p) => p.id).sort();
    expect(await ids(demo, `id=${a.id}&id=${c.id}`)).toEqual([a.id, c.id].sort());
    expect(await ids(demo, `network_id=${net.id}`)).toEqual([a.id, b.id, c.id].sort());
    expect(await ids(demo, 'device_id=dev-a')).toEqual([a.id, c.id].sort());
    expect(await ids(demo, 'device_id=dev-a&device_owner=compute:nova')).toEqual([a.id]);
    expect(await ids(demo, `security_groups=${group.id}`)).toEqual([a.id]);
    expect(await ids(demo, `security_groups=${group.id}&device_id=dev-b`)).toEqual([]);
    expect(await ids(demo, `network_id=${net.id}&device_id=`)).toEqual([]);
    // Another project sees none of them, by any filter; the admin sees them all.
    expect(await ids(alt, `id=${a.id}&id=${b.id}`)).toEqual([]);
    expect(await ids(alt, `network_id=${net.id}`)).toEqual([]);
    expect(await ids(alt, `security_groups=${group.id}`)).toEqual([]);
    expect(await ids(admin, `network_id=${net.id}&device_id=dev-a&device_id=dev-b`)).toEqual(
      [a.id, b.id, c.id].sort(),
    );
  });

  it("gives each project a default security group with Neutron's rules, and validates rules", async () => {
    const groups = (await ok(alt, 'GET', '/v2.0/security-groups')).security_groups;
    const defaultGroup = groups.find((g: any) => g.name === 'default');
    expect(
      defaultGroup.security_group_rules
        .map(
          (r: any) =>
            `${r.direction} ${r.ethertype} ${r.remote_group_id === defaultGroup.id ? 'self' : r.remote_group_id}`,
        )
        .sort(),
    ).toEqual(['egress IPv4 null', 'egress IPv6 null', 'ingress IPv4 self', 'ingress IPv6 self']);
    expect(await call(alt, 'DELETE', `/v2.0/security-groups/${defaultGroup.id}`)).toEqual(
      neutronError(409, 'SecurityGroupCannotRemoveDefault'),
    );
    expect(await call(alt, 'POST', '/v2.0/security-groups', { security_group: { name: 'default' } })).toEqual(
      neutronError(409),
    );
    const rule = (body: object) =>
      call(alt, 'POST', '/v2.0/security-group-rules', {
        security_group_rule: { security_group_id: defaultGroup.id, direction: 'ingress', ...body },
      });
    expect(await rule({ direction: 'sideways' })).toEqual(neutronError(400));
    expect(await rule({ protocol: 'tcp', port_range_min: 90, port_range_max: 80 })).toEqual(
      neutronError(400, 'SecurityGroupInvalidPortRange'),
    );
    expect(await rule({ port_range_min: 80, port_range_max: 80 })).toEqual(
      neutronError(400, 'SecurityGroupProtocolRequiredWithPorts'),
    );
    expect(await rule({ protocol: 'bogus' })).toEqual(neutronError(400, 'SecurityGroupRuleInvalidProtocol'));
    // A name of Object.prototype is no protocol either.
    expect(await rule({ protocol: 'constructor' })).toEqual(
      neutronError(400, 'SecurityGroupRuleInvalidProtocol'),
    );
    expect(await rule({ remote_ip_prefix: '::/0' })).toEqual(
      neutronError(400, 'SecurityGroupRuleParameterConflict'),
    );
    const created = await rule({
      protocol: 'tcp',
      port_range_min: 22,
      port_range_max: 22,
      remote_ip_prefix: '10.0.0.7/8',
    });
    expect(created.status).toBe(201);
    // As Neutron: the prefix is kept as given, its network is `normalized_cidr`, and duplicates compare networks.
    expect(created.body.security_group_rule).toMatchObject({
      remote_ip_prefix: '10.0.0.7/8',
      normalized_cidr: '10.0.0.0/8',
    });
    expect(
      await rule({ protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '10.0.0.0/8' }),
    ).toEqual(neutronError(409, 'SecurityGroupRuleExists'));
    expect(
      await call(demo, 'DELETE', `/v2.0/security-group-rules/${created.body.security_group_rule.id}`),
    ).toEqual(neutronError(404));
  }, 60_000);

  it('floating IPs need an external network and a router that reaches the port', async () => {
    const publicNet = (await ok(demo, 'GET', '/v2.0/networks?name=public')).networks[0];
    const privateNet = (await ok(demo, 'GET', '/v2.0/networks?name=private')).networks[0];
    expect(
      await call(demo, 'POST', '/v2.0/floatingips', { floatingip: { floating_network_id: privateNet.id } }),
    ).toEqual(neutronError(400));
    const port = (await ok(demo, 'POST', '/v2.0/ports', { port: { network_id: privateNet.id } })).port;
    const unreachable = await call(demo, 'POST', '/v2.0/floatingips', {
      floatingip: { floating_network_id: publicNet.id, port_id: port.id },
    });
    expect(unreachable).toEqual(neutronError(404, 'ExternalGatewayForFloatingIPNotFound'));
    expect(
      await call(demo, 'POST', '/v2.0/floatingips', {
        floatingip: { floating_network_id: publicNet.id, floating_ip_address: '172.24.4.99' },
      }),
    ).toEqual(neutronError(403));
    const fip = (
      await ok(admin, 'POST', '/v2.0/floatingips', {
        floatingip: { floating_network_id: publicNet.id, floating_ip_address: '172.24.4.99' },
      })
    ).floatingip;
    expect(fip).toMatchObject({
      floating_ip_address: '172.24.4.99',
      status: 'DOWN',
      port_id: null,
      project_id: adminProject,
    });
    expect(
      await call(admin, 'POST', '/v2.0/floatingips', {
        floatingip: { floating_network_id: publicNet.id, floating_ip_address: '172.24.4.99' },
      }),
    ).toEqual(neutronError(409, 'IpAddressAlreadyAllocated'));
    expect((await call(admin, 'DELETE', `/v2.0/floatingips/${fip.id}`)).status).toBe(204);
    expect(demoProject).toEqual(expect.any(String));
  }, 60_000);

  it('keeps tags on every taggable resource', async () => {
    const router = (
      await ok(demo, 'POST', '/v2.0/routers', { router: { name: 'tagged', tags: ['a', 'a', 'b'] } })
    ).router;
    expect(router.tags).toEqual(['a', 'b']);
    const path = `/v2.0/routers/${router.id}/tags`;
    expect(await ok(demo, 'PUT', path, { tags: ['x', 'y'] })).toEqual({ tags: ['x', 'y'] });
    expect((await call(demo, 'PUT', `${path}/z`)).status).toBe(201);
    expect((await call(demo, 'GET', `${path}/z`)).status).toBe(204);
    expect(await call(demo, 'GET', `${path}/nope`)).toEqual(neutronError(404, 'TagNotFound'));
    expect((await call(demo, 'DELETE', `${path}/x`)).status).toBe(204);
    expect(await ok(demo, 'GET', path)).toEqual({ tags: ['y', 'z'] });
    expect((await ok(demo, 'GET', '/v2.0/routers?tags=y,z')).routers.map((r: any) => r.id)).toEqual([
      router.id,
    ]);
    expect(
      (await ok(demo, 'GET', '/v2.0/routers?not-tags-any=z')).routers.map((r: any) => r.id),
    ).not.toContain(router.id);
    expect(await call(demo, 'PUT', path, { tags: ['ok', 'x'.repeat(256)] })).toEqual(neutronError(400));
    expect(await call(demo, 'PUT', path, { tags: Array.from({ length: 51 }, (_, i) => `t${i}`) })).toEqual(
      neutronError(400),
    );
    expect(await call(alt, 'PUT', path, { tags: [] })).toEqual(neutronError(404, 'RouterNotFound'));
    expect(await call(demo, 'GET', `/v2.0/extensions/${router.id}/tags`)).toEqual(neutronError(404));
    expect(await call(demo, 'PUT', `/v2.0/routers/${router.id}`, { router: { tags: ['no'] } })).toEqual(
      neutronError(400),
    );
    expect((await call(demo, 'DELETE', path)).status).toBe(204);
    expect((await ok(demo, 'GET', `/v2.0/routers/${router.id}`)).router.tags).toEqual([]);
  }, 60_000);

  it('enforces quotas with 409 OverQuota', async () => {
    const used = (await ok(admin, 'GET', `/v2.0/quotas/${demoProject}/details`)).quota.router.used;
    expect(
      (await ok(admin, 'PUT', `/v2.0/quotas/${demoProject}`, { quota: { router: used + 1 } })).quota.router,
    ).toBe(used + 1);
    expect(await call(demo, 'PUT', `/v2.0/quotas/${demoProject}`, { quota: { router: 100 } })).toEqual(
      neutronError(403),
    );
    expect((await ok(demo, 'GET', `/v2.0/quotas/${demoProject}`)).quota.router).toBe(used + 1);
    expect(await call(demo, 'GET', `/v2.0/quotas/${adminProject}`)).toEqual(neutronError(403));
    expect((await call(demo, 'POST', '/v2.0/routers', { router: { name: 'q1' } })).status).toBe(201);
    expect(await call(demo, 'POST', '/v2.0/routers', { router: { name: 'q2' } })).toEqual(
      neutronError(409, 'OverQuota'),
    );
    expect((await ok(admin, 'GET', '/v2.0/quotas')).quotas.map((q: any) => q.project_id)).toContain(
      demoProject,
    );
    expect(await call(admin, 'PUT', `/v2.0/quotas/${demoProject}`, { quota: { router: 'many' } })).toEqual(
      neutronError(400),
    );
    expect((await call(admin, 'DELETE', `/v2.0/quotas/${demoProject}`)).status).toBe(204);
    expect((await ok(demo, 'GET', `/v2.0/quotas/${demoProject}`)).quota.router).toBe(10);
  }, 60_000);

  it('keeps everything across a restart, where the bootstrap adds nothing twice', async () => {
    const before = (await ok(admin, 'GET', '/v2.0/ports?fields=id&fields=fixed_ips')).ports;
    expect(await cloud.stop('SIGTERM')).toBe(0);
    await cloud.start();
    const token = (
      await issueToken(cloud.identityUrl, { user: 'admin', password: cloud.adminPassword, project: 'admin' })
    ).token;
    for (const name of ['private', 'public']) {
      const networks = (await ok(token, 'GET', `/v2.0/networks?name=${name}`)).networks;
      expect(networks).toHaveLength(1);
      expect(networks[0].subnets).toHaveLength(1);
    }
    expect((await ok(token, 'GET', '/v2.0/ports?fields=id&fields=fixed_ips')).ports).toEqual(before);
  }, 120_000);
});
