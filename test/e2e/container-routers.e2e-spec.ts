import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CloudHandle, testMode } from './support/cloud';
import {
  eventually,
  hostTestSkip,
  missingHostTools,
  pingsFrom,
  pingsFromNetns,
  removeContainerLeftovers,
  RUNTIME,
  runtimeRoot,
  startContainerCloud,
} from './support/host';
import { openstackJson, openstackOk } from './support/openstack';

jest.setTimeout(180_000);

const skip = hostTestSkip(
  'routers',
  missingHostTools(
    [RUNTIME, 'busybox', 'setfattr', 'ip', 'nft', 'nsenter'],
    'runc busybox-static attr iproute2 nftables util-linux',
  ),
);

const sh = (command: string, ...args: string[]) =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const quietly = (command: string, ...args: string[]) => {
  try {
    sh(command, ...args);
  } catch {
    /* already gone */
  }
};

/**
 * Routers and floating IPs carrying traffic (the L3 agent of the all-in-one's compute host, NOVUM_L3_AGENT):
 * container servers on two project networks joined by a router, the router's gateway on the external
 * network `public`, where a namespace the test makes stands for the outside world (172.24.4.1, the external
 * subnet's gateway).
 */
(skip ? describe.skip : describe)(
  `routers and floating IPs with /usr/bin/openstack (${testMode()}${skip ? `; skipped: ${skip}` : ''})`,
  () => {
    let cloud: CloudHandle;
    let admin: Record<string, string>;
    let demo: Record<string, string>;
    const outside = `novum-out-${randomBytes(3).toString('hex')}`;
    const outsideLink = `novumo${randomBytes(3).toString('hex')}`;
    const servers: Record<string, { id: string; ip: string }> = {};
    let routerId: string;
    let publicId: string;
    let fip: string;

    const pings = (from: string, address: string) =>
      from === 'outside'
        ? pingsFromNetns(outside, address)
        : pingsFrom(runtimeRoot(cloud), servers[from].id, address);
    const routerNs = () => `novum-r-${routerId}`;
    const namespaces = () => sh('ip', 'netns', 'list');

    beforeAll(async () => {
      // The outside world, made first: the host's interface of physnet1 (where `public` is) leads to it.
      sh('ip', 'netns', 'add', outside);
      sh('ip', 'link', 'add', outsideLink, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside);
      sh('ip', 'link', 'set', outsideLink, 'up');
      sh('ip', '-n', outside, 'addr', 'add', '172.24.4.1/24', 'dev', 'eth0');
      sh('ip', '-n', outside, 'link', 'set', 'eth0', 'up');
      sh('ip', '-n', outside, 'link', 'set', 'lo', 'up');
      ({ cloud, admin, demo } = await startContainerCloud(27200, {
        NOVUM_PHYSICAL_INTERFACE_MAPPINGS: `physnet1:${outsideLink}`,
      }));
      publicId = (await openstackJson<{ id: string }>(admin, 'network', 'show', 'public')).id;
      for (const [name, cidr] of [
        ['net-r1', '10.80.1.0/24'],
        ['net-r2', '10.80.2.0/24'],
      ]) {
        await openstackOk(demo, 'network', 'create', name);
        await openstackOk(
          demo,
          'subnet',
          'create',
          '--network',
          name,
          '--subnet-range',
          cidr,
          `${name}-subnet`,
        );
      }
      for (const [name, network, ip] of [
        ['c1', 'net-r1', '10.80.1.11'],
        ['c2', 'net-r2', '10.80.2.12'],
      ]) {
        const { id: netId } = await openstackJson<{ id: string }>(demo, 'network', 'show', network);
        const { id } = await openstackJson<{ id: string }>(
          demo,
          ...['server', 'create', '--flavor', 'c1.tiny', '--image', 'busybox'],
          ...['--nic', `net-id=${netId},v4-fixed-ip=${ip}`, '--wait', name],
        );
        servers[name] = { id, ip };
      }
    }, 240_000);

    afterAll(async () => {
      quietly('ip', 'netns', 'delete', outside);
      quietly('ip', 'link', 'delete', outsideLink);
      if (!cloud) return;
      // The cloud first, so that its agents plug nothing again (a router) while its leftovers go.
      await cloud.stop();
      removeContainerLeftovers(cloud);
      if (routerId) quietly('ip', 'netns', 'delete', routerNs());
      await cloud.destroy();
    }, 60_000);

    it('routes between two project networks through a router’s interfaces', async () => {
      expect(pings('c1', servers.c2.ip)).toBe(false);
      routerId = (await openstackJson<{ id: string }>(demo, 'router', 'create', 'r')).id;
      await openstackOk(demo, 'router', 'add', 'subnet', 'r', 'net-r1-subnet');
      await openstackOk(demo, 'router', 'add', 'subnet', 'r', 'net-r2-subnet');
      // The L3 agent makes the router's namespace with an interface on each network, the subnets' gateways.
      const addresses = () =>
        namespaces().includes(routerNs()) ? sh('ip', '-n', routerNs(), '-o', 'addr', 'show') : '';
      expect(
        await eventually(
          () => addresses().includes('inet 10.80.1.1/24') && addresses().includes('inet 10.80.2.1/24'),
        ),
      ).toBe(true);
      expect(await eventually(() => pings('c1', servers.c2.ip))).toBe(true);
      expect(pings('c2', servers.c1.ip)).toBe(true);
    });

    it('takes the guests out through the gateway with source NAT, and a floating IP in', async () => {
      await openstackOk(admin, 'router', 'set', '--external-gateway', 'public', routerId);
      const shown = await openstackJson<{
        external_gateway_info: { external_fixed_ips: { ip_address: string }[] };
      }>(admin, 'router', 'show', routerId);
      const gatewayIp = shown.external_gateway_info.external_fixed_ips[0].ip_address;
      // The agent put the host's physnet1 interface on the external network's bridge, with the gateway.
      const bridge = `novumbr${publicId.replace(/-/g, '').slice(0, 8)}`;
      expect(
        await eventually(() => sh('ip', '-o', 'link', 'show', outsideLink).includes(`master ${bridge}`)),
      ).toBe(true);
      expect(await eventually(() => pings('outside', gatewayIp))).toBe(true);
      // As with Neutron's L3 agent, the router's ports are bound to the host serving it and ACTIVE there.
      const routerPorts = () =>
        openstackJson<{ ID: string; Status: string }[]>(
          admin,
          'port',
          'list',
          '--router',
          routerId,
          '--long',
        );
      for (let tries = 0; tries < 40; tries++) {
        if ((await routerPorts()).every((port) => port.Status === 'ACTIVE')) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      const listed = await routerPorts();
      expect(listed.map((port) => port.Status)).toEqual(['ACTIVE', 'ACTIVE', 'ACTIVE']);
      const bound = await openstackJson<{ binding_host_id: string }>(admin, 'port', 'show', listed[0].ID);
      expect(bound.binding_host_id).toBeTruthy();
      // Out: the guest reaches the outside, which sees the router's address (it has no route to 10.80/16).
      expect(await eventually(() => pings('c1', '172.24.4.1'))).toBe(true);
      expect(pings('outside', servers.c1.ip)).toBe(false);

      // In: a floating IP, once the guest's security group lets ICMP in from anywhere.
      fip = (await openstackJson<{ floating_ip_address: string }>(demo, 'floating', 'ip', 'create', 'public'))
        .floating_ip_address;
      await openstackOk(demo, 'server', 'add', 'floating', 'ip', 'c1', fip);
      await openstackOk(
        demo,
        'security',
        'group',
        'rule',
        'create',
        '--protocol',
        'icmp',
        '--ingress',
        'default',
      );
      expect(await eventually(() => pings('outside', fip))).toBe(true);
      expect(pings('outside', servers.c2.ip)).toBe(false);
      await openstackOk(demo, 'server', 'remove', 'floating', 'ip', 'c1', fip);
      expect(await eventually(() => !pings('outside', fip))).toBe(true);
    });

    it('removes the router’s namespace and devices with it', async () => {
      const ports = await openstackJson<{ ID: string }[]>(admin, 'port', 'list', '--router', routerId);
      const devices = ports.map((port) => `novumr${port.ID.replace(/-/g, '').slice(0, 9)}`);
      expect(devices).toHaveLength(3);
      const links = () => sh('ip', '-br', 'link');
      for (const device of devices) expect(links()).toContain(device);
      await openstackOk(admin, 'router', 'unset', '--external-gateway', routerId);
      await openstackOk(demo, 'router', 'remove', 'subnet', 'r', 'net-r1-subnet');
      await openstackOk(demo, 'router', 'remove', 'subnet', 'r', 'net-r2-subnet');
      await openstackOk(demo, 'router', 'delete', 'r');
      expect(await eventually(() => !namespaces().includes(routerNs()))).toBe(true);
      // The external network's bridge went with its last port; the host's interface stays, off it.
      expect(await eventually(() => !sh('ip', '-o', 'link', 'show', outsideLink).includes('master'))).toBe(
        true,
      );
      for (const device of devices) expect(links()).not.toContain(device);
      expect(pings('c1', servers.c2.ip)).toBe(false);
    });

    it('leaves no bridge of the networks once their servers are gone too', async () => {
      const bridges = ['net-r1', 'net-r2'].map(async (name) => {
        const { id } = await openstackJson<{ id: string }>(demo, 'network', 'show', name);
        return `novumbr${id.replace(/-/g, '').slice(0, 8)}`;
      });
      const names = await Promise.all(bridges);
      for (const bridge of names) expect(sh('ip', '-br', 'link')).toContain(bridge);
      await openstackOk(demo, 'server', 'delete', '--wait', servers.c1.id, servers.c2.id);
      for (const bridge of names) expect(sh('ip', '-br', 'link')).not.toContain(bridge);
    });
  },
);
