import { execFileSync } from 'node:child_process';
import { CloudHandle, testMode } from './support/cloud';
import {
  hostTestSkip,
  missingHostTools,
  nftTableOf,
  removeContainerLeftovers,
  RUNTIME,
  runtimeRoot as runtimeRootOf,
  startContainerCloud,
} from './support/host';
import { openstack, openstackJson, openstackOk } from './support/openstack';

jest.setTimeout(180_000);

const skip = hostTestSkip(
  'container network',
  missingHostTools(
    [RUNTIME, 'busybox', 'setfattr', 'ip', 'nft', 'nsenter'],
    'runc busybox-static attr iproute2 nftables util-linux',
  ),
);

const sh = (command: string, ...args: string[]) =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * Container servers on Neutron networks: each port a veth in the container's namespace on its network's
 * bridge, security groups as nftables rules on the host (NOVUM_COMPUTE_DRIVERS=container,fake).
 */
(skip ? describe.skip : describe)(
  `container networking with /usr/bin/openstack (${testMode()}${skip ? `; skipped: ${skip}` : ''})`,
  () => {
    let cloud: CloudHandle;
    let admin: Record<string, string>;
    let demo: Record<string, string>;
    const servers: Record<string, { id: string; ip: string; mac: string; portId: string }> = {};
    const networks: Record<string, string> = {};

    const runtimeRoot = () => runtimeRootOf(cloud);
    // Into the container's mount, uts, ipc, net and pid namespaces as the host's root (`runc exec` would join
    // its user namespace first, and from there may not enter a network namespace the host made).
    const inside = (name: string, ...args: string[]) => {
      const { pid } = JSON.parse(sh(RUNTIME, '--root', runtimeRoot(), 'state', `novum-${servers[name].id}`));
      return sh(
        'nsenter',
        '-t',
        String(pid),
        '-m',
        '-u',
        '-i',
        '-n',
        '-p',
        '-r',
        '-w',
        '/bin/busybox',
        ...args,
      );
    };
    const pings = (from: string, to: string, source?: string) => {
      try {
        inside(from, 'ping', '-c', '1', '-W', '1', ...(source ? ['-I', source] : []), servers[to].ip);
        return true;
      } catch {
        return false;
      }
    };
    const eventually = async (check: () => boolean, seconds = 15) => {
      const deadline = Date.now() + seconds * 1000;
      while (!check()) {
        if (Date.now() > deadline) return false;
        await new Promise((r) => setTimeout(r, 200));
      }
      return true;
    };
    const tableName = () => nftTableOf(cloud);
    const bridgeOf = (network: string) => `novumbr${networks[network].replace(/-/g, '').slice(0, 8)}`;
    const links = () =>
      sh('ip', '-br', 'link')
        .split('\n')
        .map((line) => line.split(/[\s@]/)[0]);
    const namespaces = () =>
      sh('ip', 'netns', 'list')
        .split('\n')
        .map((line) => line.split(' ')[0]);
    const nftTables = () => sh('nft', 'list', 'tables');

    beforeAll(async () => {
      ({ cloud, admin, demo } = await startContainerCloud(24600));
      // Two networks with the same addresses: only the bridge keeps them apart.
      for (const name of ['net-a', 'net-b']) {
        networks[name] = (await openstackJson(demo, 'network', 'create', name)).id;
        await openstackOk(
          demo,
          ...['subnet', 'create', '--network', name, '--subnet-range', '10.77.1.0/24'],
          ...['--dns-nameserver', '10.77.1.53', `${name}-subnet`],
        );
      }
      await openstackOk(demo, 'security', 'group', 'create', 'other');
      const create = (name: string, ...nic: string[]) =>
        openstackJson(
          demo,
          'server',
          'create',
          '--flavor',
          'c1.tiny',
          '--image',
          'busybox',
          ...nic,
          '--wait',
          name,
        );
      // Fixed addresses: a remote group's members are matched by address (as in Neutron), so a net-a server
      // holding b1's address would count as a member of b1's group.
      const nic = (network: string, ip: string) => ['--nic', `net-id=${networks[network]},v4-fixed-ip=${ip}`];
      const created = await Promise.all([
        create('a1', ...nic('net-a', '10.77.1.11')),
        create('a2', ...nic('net-a', '10.77.1.12')),
        create('o1', ...nic('net-a', '10.77.1.13'), '--security-group', 'other'),
        create('b1', ...nic('net-b', '10.77.1.200')),
      ]);
      for (const server of created) {
        expect(server.status).toBe('ACTIVE');
        const [port] = await openstackJson(demo, 'port', 'list', '--server', server.id);
        servers[server.name] = {
          id: server.id,
          ip: port['Fixed IP Addresses'][0].ip_address,
          mac: port['MAC Address'],
          portId: port.ID,
        };
      }
    }, 180_000);

    afterAll(async () => {
      if (!cloud) return;
      // A failed test must not leave containers, mounts, namespaces, devices or rules behind.
      // The cloud first, so that its agents plug nothing again (a router) while its leftovers go.
      await cloud.stop();
      removeContainerLeftovers(cloud);
      const quietly = (command: string, ...args: string[]) => {
        try {
          execFileSync(command, args, { stdio: 'ignore' });
        } catch {
          /* already gone */
        }
      };
      for (const server of Object.values(servers)) {
        quietly('ip', 'link', 'delete', `novumv${server.portId.replace(/-/g, '').slice(0, 9)}`);
      }
      for (const network of Object.keys(networks)) quietly('ip', 'link', 'delete', bridgeOf(network));
      await cloud.destroy();
    }, 60_000);

    it('gives each container its port: MAC, address, route, /etc/hosts, resolv.conf; the port is bound and ACTIVE', async () => {
      const a1 = servers.a1;
      expect(inside('a1', 'ip', 'link', 'show', 'eth0')).toContain(`link/ether ${a1.mac}`);
      expect(inside('a1', 'ip', '-4', 'addr', 'show', 'eth0')).toContain(`inet ${a1.ip}/24`);
      expect(inside('a1', 'ip', 'route')).toContain('default via 10.77.1.1 dev eth0');
      expect(inside('a1', 'cat', '/etc/hosts')).toContain(`${a1.ip}\ta1`);
      expect(inside('a1', 'cat', '/etc/resolv.conf')).toBe('nameserver 10.77.1.53\n');

      const port = await openstackJson(admin, 'port', 'show', a1.portId);
      expect(port.status).toBe('ACTIVE');
      expect(port.binding_vif_type).toBe('bridge');
      expect(port.binding_vif_details).toMatchObject({ bridge_name: bridgeOf('net-a') });

      // On the host: one bridge per network, without any address (the host is not a router).
      const bridge = bridgeOf('net-a');
      expect(links()).toEqual(expect.arrayContaining([bridge, bridgeOf('net-b')]));
      expect(sh('ip', '-o', 'addr', 'show', 'dev', bridge).trim()).toBe('');
      // Three servers' veths, and the network's metadata namespace's.
      const members = sh('ip', '-br', 'link', 'show', 'master', bridge).split('\n').filter(Boolean);
      expect(members.filter((line) => line.startsWith('novumv'))).toHaveLength(3);
      expect(members.filter((line) => line.startsWith('novumm'))).toHaveLength(1);
      expect(namespaces()).toContain(`novum-${a1.id}`);
    });

    it('lets two servers of one network reach each other, and no server of another network reach them', async () => {
      expect(pings('a1', 'a2')).toBe(true);
      expect(pings('a2', 'a1')).toBe(true);
      // b1 has an address of the same subnet, but its own network's bridge.
      expect(pings('b1', 'a1')).toBe(false);
      expect(pings('a1', 'b1')).toBe(false);
    });

    it('drops what a guest sends from an address that is not its port’s', async () => {
      // The host's root gives a1 a second address (the container's root may not: no CAP_NET_ADMIN).
      sh(
        'ip',
        'netns',
        'exec',
        `novum-${servers.a1.id}`,
        'ip',
        'addr',
        'add',
        '10.77.1.250/24',
        'dev',
        'eth0',
      );
      try {
        expect(pings('a1', 'a2', '10.77.1.250')).toBe(false);
        expect(pings('a1', 'a2', servers.a1.ip)).toBe(true);
      } finally {
        sh(
          'ip',
          'netns',
          'exec',
          `novum-${servers.a1.id}`,
          'ip',
          'addr',
          'del',
          '10.77.1.250/24',
          'dev',
          'eth0',
        );
      }
    });

    it('filters by security group: ingress only from the same group, until a rule opens it; replies pass', async () => {
      expect(pings('o1', 'a1')).toBe(false);
      expect(pings('a1', 'o1')).toBe(false);
      const rule = await openstackJson(
        demo,
        ...['security', 'group', 'rule', 'create', '--ingress', '--protocol', 'icmp'],
        ...['--remote-group', 'other', 'default'],
      );
      const added = Date.now();
      // o1's group has no ingress rule: its echo replies come back as part of its own connection.
      expect(await eventually(() => pings('o1', 'a1'))).toBe(true);
      process.stdout.write(`security group rule created → first ping through: ${Date.now() - added} ms\n`);
      expect(pings('a1', 'o1')).toBe(false);

      await openstackOk(demo, 'security', 'group', 'rule', 'delete', rule.id);
      expect(await eventually(() => !pings('o1', 'a1'))).toBe(true);
      expect(pings('a1', 'a2')).toBe(true);
    });

    it('keeps every port and its filtering while the cloud is down and after it starts again', async () => {
      await cloud.stop();
      expect(pings('a1', 'a2')).toBe(true);
      expect(pings('o1', 'a1')).toBe(false);
      await cloud.start();
      expect(pings('a1', 'a2')).toBe(true);
      expect(pings('o1', 'a1')).toBe(false);
      expect(pings('b1', 'a1')).toBe(false);
    });

    it('leaves no bridge, veth, namespace or nft rule of the test once every server is deleted', async () => {
      expect(nftTables()).toContain(`table inet ${tableName()}`);
      expect(nftTables()).toContain(`table bridge ${tableName()}`);
      await Promise.all(
        Object.values(servers).map((server) => openstackOk(demo, 'server', 'delete', '--wait', server.id)),
      );
      const left = links();
      expect(left).not.toContain(bridgeOf('net-a'));
      expect(left).not.toContain(bridgeOf('net-b'));
      for (const server of Object.values(servers)) {
        expect(left).not.toContain(`novumv${server.portId.replace(/-/g, '').slice(0, 9)}`);
        expect(namespaces()).not.toContain(`novum-${server.id}`);
        const ports = await openstack(admin, 'port', 'show', server.portId);
        expect(ports.code).not.toBe(0);
      }
      expect(nftTables()).not.toContain(tableName());
    });
  },
);
