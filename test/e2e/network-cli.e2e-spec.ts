import { CloudHandle, startCloud } from './support/cloud';
import { openstack, openstackJson, openstackOk } from './support/openstack';

/** Acceptance of the network service (Neutron v2.0) with the real client, /usr/bin/openstack. */
describe('network with /usr/bin/openstack', () => {
  let cloud: CloudHandle;
  let admin: Record<string, string>;
  let demo: Record<string, string>;

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 23100 });
    admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
    demo = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-demo' };
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('is in the catalog as neutron, type network', async () => {
    const catalog = await openstackJson<any[]>(admin, 'catalog', 'list');
    const network = catalog.find((entry) => entry.Type === 'network');
    expect(network?.Name).toBe('neutron');
    expect(network.Endpoints.map((e: any) => e.url)).toContain(cloud.services.network);
  }, 60_000);

  it('offers the bootstrap networks: a shared private one and an external public one', async () => {
    const networks = await openstackJson<any[]>(demo, 'network', 'list', '--long');
    const privateNet = networks.find((n) => n.Name === 'private');
    const publicNet = networks.find((n) => n.Name === 'public');
    expect(privateNet).toMatchObject({ Shared: true, 'Router Type': false });
    expect(publicNet).toMatchObject({ 'Router Type': true });
    const subnet = await openstackJson(demo, 'subnet', 'show', privateNet.Subnets[0]);
    expect(subnet).toMatchObject({ cidr: '10.0.0.0/24', gateway_ip: '10.0.0.1', ip_version: 4 });
  }, 60_000);

  it('creates, lists, shows and deletes a network', async () => {
    const created = await openstackJson(demo, 'network', 'create', 'cli-net', '--description', 'e2e');
    expect(created).toMatchObject({
      name: 'cli-net',
      description: 'e2e',
      shared: false,
      status: 'ACTIVE',
      mtu: 1450,
    });
    expect((await openstackJson<any[]>(demo, 'network', 'list')).map((n) => n.Name)).toContain('cli-net');
    const shown = await openstackJson(demo, 'network', 'show', 'cli-net');
    expect(shown.id).toBe(created.id);
    // Provider attributes are admin-only.
    expect(shown['provider:network_type']).toBeNull();
    expect((await openstackJson(admin, 'network', 'show', created.id))['provider:network_type']).toBe(
      'vxlan',
    );
    // Another project's network does not exist for demo.
    await openstackJson(admin, 'network', 'create', 'admin-net');
    const hidden = await openstack(demo, 'network', 'show', 'admin-net');
    expect(hidden.code).not.toBe(0);
    expect(hidden.stderr).toContain('No Network found for admin-net');
    await openstackOk(demo, 'network', 'delete', 'cli-net');
    expect((await openstackJson<any[]>(demo, 'network', 'list')).map((n) => n.Name)).not.toContain('cli-net');
  }, 60_000);

  it('creates a subnet and a port with a requested fixed IP', async () => {
    await openstackJson(demo, 'network', 'create', 'app-net');
    const subnet = await openstackJson(
      demo,
      'subnet',
      'create',
      '--network',
      'app-net',
      '--subnet-range',
      '192.168.50.0/24',
      '--dns-nameserver',
      '192.168.50.2',
      'app-subnet',
    );
    expect(subnet).toMatchObject({
      cidr: '192.168.50.0/24',
      gateway_ip: '192.168.50.1',
      allocation_pools: [{ start: '192.168.50.2', end: '192.168.50.254' }],
      dns_nameservers: ['192.168.50.2'],
      enable_dhcp: true,
    });
    const port = await openstackJson(
      demo,
      'port',
      'create',
      '--network',
      'app-net',
      '--fixed-ip',
      'subnet=app-subnet,ip-address=192.168.50.10',
      'app-port',
    );
    expect(port.fixed_ips).toEqual([{ subnet_id: subnet.id, ip_address: '192.168.50.10' }]);
    expect(port.mac_address).toMatch(/^fa:16:3e(:[0-9a-f]{2}){3}$/);
    // The project's default security group was made on first use and applied to the port.
    const groups = await openstackJson<any[]>(demo, 'security', 'group', 'list');
    const defaultGroup = groups.find((g) => g.Name === 'default');
    expect(port.security_group_ids).toEqual([defaultGroup.ID]);
    const rules = await openstackJson<any[]>(demo, 'security', 'group', 'rule', 'list', 'default');
    expect(rules).toHaveLength(4);

    const taken = await openstack(
      demo,
      'port',
      'create',
      '--network',
      'app-net',
      '--fixed-ip',
      'ip-address=192.168.50.10',
      'dup-port',
    );
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toContain('192.168.50.10 already allocated');

    const listed = await openstackJson<any[]>(demo, 'port', 'list', '--network', 'app-net');
    expect(listed.map((p) => p.Name)).toEqual(['app-port']);
    await openstackOk(demo, 'port', 'delete', 'app-port');
    // The address went back to the pool.
    const again = await openstackJson(
      demo,
      'port',
      'create',
      '--network',
      'app-net',
      '--fixed-ip',
      'ip-address=192.168.50.10',
      'again',
    );
    expect(again.fixed_ips[0].ip_address).toBe('192.168.50.10');
  }, 90_000);

  it('a port on the shared private network works for any project', async () => {
    const port = await openstackJson(demo, 'port', 'create', '--network', 'private', 'shared-port');
    expect(port.fixed_ips[0].ip_address).toMatch(/^10\.0\.0\.\d+$/);
  }, 60_000);

  it('creates a security group and rules', async () => {
    const group = await openstackJson(
      demo,
      'security',
      'group',
      'create',
      'web',
      '--description',
      'web servers',
    );
    expect(group.name).toBe('web');
    expect(group.rules.map((r: any) => `${r.direction}/${r.ethertype}`).sort()).toEqual([
      'egress/IPv4',
      'egress/IPv6',
    ]);
    const rule = await openstackJson(
      demo,
      'security',
      'group',
      'rule',
      'create',
      '--protocol',
      'tcp',
      '--dst-port',
      '80:81',
      '--remote-ip',
      '10.1.0.0/16',
      'web',
    );
    expect(rule).toMatchObject({
      direction: 'ingress',
      protocol: 'tcp',
      port_range_min: 80,
      port_range_max: 81,
      remote_ip_prefix: '10.1.0.0/16',
      security_group_id: group.id,
    });
    const duplicate = await openstack(
      demo,
      'security',
      'group',
      'rule',
      'create',
      '--protocol',
      'tcp',
      '--dst-port',
      '80:81',
      '--remote-ip',
      '10.1.0.0/16',
      'web',
    );
    expect(duplicate.code).not.toBe(0);
    expect(duplicate.stderr).toContain('Security group rule already exists');
    const icmp = await openstackJson(
      demo,
      'security',
      'group',
      'rule',
      'create',
      '--protocol',
      'icmp',
      'web',
    );
    expect(icmp.protocol).toBe('icmp');
    await openstackOk(demo, 'security', 'group', 'rule', 'delete', icmp.id);
    await openstackOk(demo, 'security', 'group', 'delete', 'web');
  }, 60_000);

  it('creates a router, plugs a subnet, sets the gateway and attaches a floating IP', async () => {
    const router = await openstackJson(demo, 'router', 'create', 'edge');
    expect(router).toMatchObject({ name: 'edge', status: 'ACTIVE', external_gateway_info: null });
    await openstackJson(demo, 'network', 'create', 'inner');
    await openstackJson(
      demo,
      'subnet',
      'create',
      '--network',
      'inner',
      '--subnet-range',
      '10.20.0.0/24',
      'inner-subnet',
    );
    await openstackOk(demo, 'router', 'add', 'subnet', 'edge', 'inner-subnet');
    await openstackOk(demo, 'router', 'set', '--external-gateway', 'public', 'edge');
    const shown = await openstackJson(demo, 'router', 'show', 'edge');
    expect(shown.external_gateway_info.external_fixed_ips[0].ip_address).toMatch(/^172\.24\.4\.\d+$/);
    const inner = await openstackJson(demo, 'port', 'create', '--network', 'inner', 'vm-port');

    const fip = await openstackJson(demo, 'floating', 'ip', 'create', 'public');
    expect(fip.floating_ip_address).toMatch(/^172\.24\.4\.\d+$/);
    expect(fip).toMatchObject({ port_id: null, status: 'DOWN' });
    await openstackOk(demo, 'floating', 'ip', 'set', '--port', 'vm-port', fip.id);
    const attached = await openstackJson(demo, 'floating', 'ip', 'show', fip.id);
    expect(attached).toMatchObject({
      port_id: inner.id,
      fixed_ip_address: inner.fixed_ips[0].ip_address,
      router_id: router.id,
    });

    // The router cannot go while it has an interface.
    const busy = await openstack(demo, 'router', 'delete', 'edge');
    expect(busy.code).not.toBe(0);
    await openstackOk(demo, 'floating', 'ip', 'delete', fip.id);
    await openstackOk(demo, 'router', 'remove', 'subnet', 'edge', 'inner-subnet');
    await openstackOk(demo, 'router', 'delete', 'edge');
    expect((await openstackJson<any[]>(demo, 'router', 'list')).map((r) => r.Name)).not.toContain('edge');
  }, 120_000);

  it('tags networks and ports, and filters by tag', async () => {
    const network = await openstackJson(
      demo,
      'network',
      'create',
      '--tag',
      'blue',
      '--tag',
      'red',
      'tagged-net',
    );
    expect(network.tags.sort()).toEqual(['blue', 'red']);
    await openstackOk(demo, 'network', 'set', '--tag', 'green', 'tagged-net');
    await openstackOk(demo, 'network', 'unset', '--tag', 'blue', 'tagged-net');
    expect((await openstackJson(demo, 'network', 'show', 'tagged-net')).tags.sort()).toEqual([
      'green',
      'red',
    ]);
    expect(
      (await openstackJson<any[]>(demo, 'network', 'list', '--tags', 'green,red')).map((n) => n.Name),
    ).toEqual(['tagged-net']);
    expect(
      (await openstackJson<any[]>(demo, 'network', 'list', '--not-tags', 'green')).map((n) => n.Name),
    ).not.toContain('tagged-net');
    const port = await openstackJson(
      demo,
      'port',
      'create',
      '--network',
      'tagged-net',
      '--tag',
      'web',
      'tagged-port',
    );
    expect(port.tags).toEqual(['web']);
    expect(
      (await openstackJson<any[]>(demo, 'port', 'list', '--any-tags', 'web,db')).map((p) => p.Name),
    ).toEqual(['tagged-port']);
  }, 60_000);

  it('admin creates a shared external network with provider attributes; demo may not', async () => {
    const network = await openstackJson(
      admin,
      'network',
      'create',
      '--external',
      '--share',
      '--provider-network-type',
      'flat',
      '--provider-physical-network',
      'physnet2',
      'ext2',
    );
    expect(network).toMatchObject({
      'router:external': true,
      shared: true,
      'provider:network_type': 'flat',
      'provider:physical_network': 'physnet2',
    });
    const refused = await openstack(demo, 'network', 'create', '--share', 'mine-shared');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/403|not authorized/i);
    await openstackOk(admin, 'network', 'delete', 'ext2');
  }, 60_000);
});
