import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Vif } from '../driver';
import { HostNetwork } from './host-network';

const UUID = '0b7a3c1e-6f1d-4a8e-9d6c-1f2e3d4c5b6a';
const NETWORK = '5e1d2c3b-aaaa-bbbb-cccc-000000000001';
const vif = (id: string, overrides: Partial<Vif> = {}): Vif => ({
  id,
  macAddress: 'fa:16:3e:12:34:56',
  networkId: NETWORK,
  mtu: 1450,
  fixedIps: [
    {
      address: '10.0.0.5',
      version: 4,
      subnetId: 's4',
      cidr: '10.0.0.0/24',
      gateway: '10.0.0.1',
      dnsNameservers: ['10.0.0.2'],
    },
    {
      address: 'fd00::5',
      version: 6,
      subnetId: 's6',
      cidr: 'fd00::/64',
      gateway: 'fd00::1',
      dnsNameservers: ['10.0.0.2', 'fd00::2'],
    },
  ],
  ...overrides,
});
const PORT = 'abcdef01-2345-6789-abcd-ef0123456789';

/**
 * A host as far as `ip` and friends show it: the links and namespaces that exist, and every command run
 * (each line of an `ip -batch` as a command of its own, host sysctls as `sysctl -qw`).
 */
function fakeHost(options: { iptablesDrop?: boolean } = {}) {
  const links = new Set<string>();
  const namespaces = new Set<string>();
  const commands: string[] = [];
  const ok = (stdout = '') => ({ code: 0, stdout, stderr: '' });
  const fail = (stderr: string) => ({ code: 1, stdout: '', stderr });
  const run = async (
    command: string,
    args: readonly string[],
    input?: string,
  ): Promise<{ code: number; stdout: string; stderr: string }> => {
    if (command === 'ip' && args.includes('-batch')) {
      const prefix = args[0] === '-n' ? args.slice(0, 2) : [];
      for (const line of (input ?? '').split('\n').filter(Boolean)) {
        const result = await run('ip', [...prefix, ...line.split(' ')]);
        if (result.code !== 0) return result;
      }
      return ok();
    }
    const line = `${command} ${args.join(' ')}`;
    commands.push(line);
    if (command === 'iptables') {
      if (options.iptablesDrop === undefined) return { code: 127, stdout: '', stderr: 'not found' };
      if (args[0] === '-S') return ok(options.iptablesDrop ? '-P FORWARD DROP\n' : '-P FORWARD ACCEPT\n');
      if (args[0] === '-C')
        return commands.some((c) => c.startsWith(`iptables -I FORWARD 1 -i ${args[3]}`)) &&
          !commands.some((c) => c.startsWith(`iptables -D FORWARD -i ${args[3]}`))
          ? ok()
          : fail('no rule');
      return ok();
    }
    if (command === 'sysctl' && args[0] === '-n') return ok('1\n');
    if (command === 'ip' && args[0] === '-o' && args[1] === 'addr') {
      return ok(
        args[4] === '10.9.0.11' ? '2: eth0@if7    inet 10.9.0.11/24 brd 10.9.0.255 scope global eth0\n' : '',
      );
    }
    if (command !== 'ip') return ok();
    if (args[0] === 'netns' && args[1] === 'add') namespaces.add(args[2]);
    if (args[0] === 'netns' && args[1] === 'delete') namespaces.delete(args[2]);
    if (args[0] === 'link' && args[1] === 'show')
      return links.has(args[3]) ? ok() : fail('Device does not exist');
    if (args[0] === 'link' && args[1] === 'add') {
      const named = args.indexOf('name');
      links.add(named > 1 && named < 5 ? args[named + 1] : args[2]);
      return ok();
    }
    if (args[0] === 'tuntap') {
      links.add(args[3]);
      return ok();
    }
    if (args[0] === 'link' && args[1] === 'delete') {
      return links.delete(args[3]) ? ok() : fail('Cannot find device');
    }
    return ok();
  };
  const hooks = {
    run,
    linkExists: async (name: string) => links.has(name),
    netnsExists: async (name: string) => namespaces.has(name),
    sysctl: async (key: string, value: string) => void commands.push(`sysctl -qw ${key}=${value}`),
  };
  return { run, hooks, commands, links };
}

describe('HostNetwork', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'novum-net-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const rulesetFile = () => readFileSync(join(dir, 'ruleset.nft'), 'utf8');

  it('plugs a container port: bridge, the firewall, then the namespace, the veth joining the bridge, then eth0 with MAC/IPs/route', async () => {
    const host = fakeHost();
    const network = new HostNetwork({ stateDir: dir, ...host.hooks, tableName: 'novum_t' });
    const path = await network.plugContainer(UUID, [vif(PORT)]);
    expect(path).toBe(`/run/netns/novum-${UUID}`);
    const ns = `novum-${UUID}`;
    expect(host.commands).toEqual([
      'ip link add name novumbr5e1d2c3b mtu 1450 type bridge',
      'sysctl -qw net.ipv6.conf.novumbr5e1d2c3b.disable_ipv6=1',
      'sysctl -qw net.ipv4.conf.novumbr5e1d2c3b.forwarding=0',
      'iptables -S FORWARD',
      `nft -f ${join(dir, 'ruleset.nft')}`,
      `ip netns add ${ns}`,
      'ip link set dev novumbr5e1d2c3b mtu 1450 up',
      `ip link add novumvabcdef012 mtu 1450 type veth peer name novumpabcdef012 mtu 1450 netns ${ns}`,
      'ip link set dev novumvabcdef012 addrgenmode none',
      'ip link set dev novumvabcdef012 master novumbr5e1d2c3b up',
      `nsenter --net=/run/netns/${ns} sysctl -qw net.ipv4.ping_group_range=0 2147483647 net.ipv4.ip_unprivileged_port_start=0`,
      `ip -n ${ns} link set dev lo up`,
      `ip -n ${ns} link set dev novumpabcdef012 name eth0 address fa:16:3e:12:34:56`,
      `ip -n ${ns} addr add 10.0.0.5/24 dev eth0`,
      `ip -n ${ns} addr add fd00::5/64 dev eth0 nodad`,
      `ip -n ${ns} link set dev eth0 up`,
      `ip -n ${ns} route replace 0.0.0.0/0 via 10.0.0.1 dev eth0`,
      `ip -n ${ns} route replace ::/0 via fd00::1 dev eth0`,
    ]);
    expect(rulesetFile()).toContain('"novumvabcdef012" : goto from_1');
    expect(await network.plugged()).toEqual([
      expect.objectContaining({ portId: PORT, instanceUuid: UUID, kind: 'veth', bridge: 'novumbr5e1d2c3b' }),
    ]);

    // Again (a start after a stop): the namespace and the port are there; nothing is made twice.
    host.commands.length = 0;
    await network.plugContainer(UUID, [vif(PORT)]);
    expect(host.commands.filter((c) => c.includes(' add '))).toEqual([]);
    expect(await network.plugged()).toHaveLength(1);
  });

  it("names the container init's namespace in the host's batch when given its pid", async () => {
    const host = fakeHost();
    const network = new HostNetwork({ stateDir: dir, ...host.hooks, tableName: 'novum_t' });
    await network.plugContainer(UUID, [vif(PORT)], { attachPid: 4242 });
    const ns = `novum-${UUID}`;
    expect(host.commands).not.toContain(`ip netns add ${ns}`);
    const attach = host.commands.indexOf(`ip netns attach ${ns} 4242`);
    const veth = host.commands.findIndex((c) => c.startsWith('ip link add novumvabcdef012'));
    expect(attach).toBeGreaterThanOrEqual(0);
    expect(attach).toBeLessThan(veth);
  });

  it("applies a container's firewall ahead of its devices, once: the plug after it runs no nft", async () => {
    const host = fakeHost();
    const network = new HostNetwork({ stateDir: dir, ...host.hooks, tableName: 'novum_t' });
    await network.prepareContainer(UUID, [vif(PORT)]);
    expect(host.commands).toEqual([`nft -f ${join(dir, 'ruleset.nft')}`]);
    expect(rulesetFile()).toContain('"novumvabcdef012" : goto from_1');
    await network.plugContainer(UUID, [vif(PORT)], { attachPid: 4242 });
    expect(host.commands.filter((c) => c.startsWith('nft'))).toHaveLength(1);
    expect(host.commands).toContain('ip link set dev novumvabcdef012 master novumbr5e1d2c3b up');
  });

  it("plugs containers side by side: one's devices still being made do not hold up another's", async () => {
    const host = fakeHost();
    const other = '11111111-2222-3333-4444-555555555555';
    const otherPort = '99999999-0000-0000-0000-000000000000';
    // The first container's veth is made only once the second's is being made (or fails after 2 s).
    let secondStarted: () => void = () => undefined;
    const second = new Promise<boolean>((resolve) => (secondStarted = () => resolve(true)));
    const run: typeof host.run = async (command, args, input) => {
      if (command === 'ip' && input?.includes('link add novumv999999990')) secondStarted();
      if (command === 'ip' && input?.includes('link add novumvabcdef012')) {
        const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000).unref());
        if (!(await Promise.race([second, timeout]))) {
          return { code: 1, stdout: '', stderr: 'the other container waited for this one' };
        }
      }
      return host.run(command, args, input);
    };
    const network = new HostNetwork({ stateDir: dir, ...host.hooks, run, tableName: 'novum_t' });
    await Promise.all([
      network.plugContainer(UUID, [vif(PORT)], { attachPid: 4242 }),
      network.plugContainer(other, [vif(otherPort)], { attachPid: 4343 }),
    ]);
    expect(host.links).toEqual(new Set(['novumbr5e1d2c3b', 'novumvabcdef012', 'novumv999999990']));
    expect((await network.plugged()).map((port) => port.instanceUuid).sort()).toEqual([other, UUID].sort());
  });

  it('records a prepared container’s ports again in place at its plug: ports.json and the ruleset stay as they are', async () => {
    const host = fakeHost();
    const network = new HostNetwork({ stateDir: dir, ...host.hooks, tableName: 'novum_t' });
    const other = '11111111-2222-3333-4444-555555555555';
    await network.prepareContainer(UUID, [vif(PORT)]);
    await network.prepareContainer(other, [vif('99999999-0000-0000-0000-000000000000')]);
    const written = statSync(join(dir, 'ports.json'));
    await network.plugContainer(UUID, [vif(PORT)], { attachPid: 4242 });
    // Not written again (a new file would have a new inode), and the ports in the order they came.
    expect(statSync(join(dir, 'ports.json')).ino).toBe(written.ino);
    expect((await network.plugged()).map((port) => port.instanceUuid)).toEqual([UUID, other]);
    expect(host.commands.filter((c) => c.startsWith('nft'))).toHaveLength(2);
    // A port that changes is written and loaded.
    await network.plugContainer(
      other,
      [vif('99999999-0000-0000-0000-000000000000', { macAddress: 'fa:16:3e:00:00:09' })],
      {
        attachPid: 4343,
      },
    );
    expect(statSync(join(dir, 'ports.json')).ino).not.toBe(written.ino);
    expect((await network.plugged()).find((port) => port.instanceUuid === other)?.macAddress).toBe(
      'fa:16:3e:00:00:09',
    );
  });

  it('applies the firewall of containers that ask while the queue is busy in one nft run', async () => {
    const host = fakeHost();
    const network = new HostNetwork({ stateDir: dir, ...host.hooks, tableName: 'novum_t' });
    const other = '11111111-2222-3333-4444-555555555555';
    const busy = network.plugged();
    const prepared = [
      network.prepareContainer(UUID, [vif(PORT)]),
      network.prepareContainer(other, [vif('99999999-0000-0000-0000-000000000000')]),
    ];
    await Promise.all([busy, ...prepared]);
    expect(host.commands).toEqual([`nft -f ${join(dir, 'ruleset.nft')}`]);
    expect(rulesetFile()).toContain('novumvabcdef012');
    expect(rulesetFile()).toContain('novumv999999990');
    expect((await network.plugged()).map((port) => port.instanceUuid).sort()).toEqual([other, UUID].sort());
    // One asking after that run started gets a run of its own.
    await network.prepareContainer(UUID, [vif(PORT), vif('88888888-0000-0000-0000-000000000000')]);
    expect(host.commands.filter((c) => c.startsWith('nft'))).toHaveLength(2);
    expect(rulesetFile()).toContain('novumv888888880');
  });

  it('loads the whole ruleset when a change cannot be loaded (tables changed behind its back)', async () => {
    const host = fakeHost();
    const warnings: string[] = [];
    let refuse = true;
    const run: typeof host.run = async (command, args, input) => {
      if (command === 'nft' && args[1]?.endsWith('ruleset-change.nft') && refuse) {
        host.commands.push(`${command} ${args.join(' ')}`);
        refuse = false;
        return { code: 1, stdout: '', stderr: 'Error: No such file or directory; did you mean table' };
      }
      return host.run(command, args, input);
    };
    const network = new HostNetwork({
      stateDir: dir,
      ...host.hooks,
      run,
      tableName: 'novum_t',
      warn: (message) => warnings.push(message),
    });
    await network.plugContainer(UUID, [vif(PORT)]);
    host.commands.length = 0;
    await network.prepareContainer(UUID, [vif(PORT), vif('88888888-0000-0000-0000-000000000000')]);
    expect(host.commands).toEqual([
      `nft -f ${join(dir, 'ruleset-change.nft')}`,
      `nft -f ${join(dir, 'ruleset.nft')}`,
    ]);
    expect(warnings).toEqual([expect.stringContaining('loading the whole ruleset: Error: No such file')]);
    expect(rulesetFile()).toContain('novumv888888880');
    // The next change is a difference again.
    host.commands.length = 0;
    await network.prepareContainer('11111111-2222-3333-4444-555555555555', [
      vif('99999999-0000-0000-0000-000000000000'),
    ]);
    expect(host.commands).toEqual([`nft -f ${join(dir, 'ruleset-change.nft')}`]);
  });

  it('unplugs an instance: its devices, the bridge with its last port, the namespace, and the rules', async () => {
    const host = fakeHost();
    const network = new HostNetwork({ stateDir: dir, ...host.hooks, tableName: 'novum_t' });
    const other = '11111111-2222-3333-4444-555555555555';
    await network.plugContainer(UUID, [vif(PORT)]);
    await network.plugContainer(other, [vif('99999999-0000-0000-0000-000000000000')]);

    host.commands.length = 0;
    await network.unplugInstance(UUID);
    // Only the difference is loaded while another port stays; the whole ruleset is still written out.
    expect(host.commands).toEqual([
      'ip link delete dev novumvabcdef012',
      `nft -f ${join(dir, 'ruleset-change.nft')}`,
      `ip netns delete novum-${UUID}`,
    ]);
    expect(rulesetFile()).not.toContain('novumvabcdef012');
    expect(rulesetFile()).toContain('novumv999999990');
    const change = readFileSync(join(dir, 'ruleset-change.nft'), 'utf8');
    expect(change).not.toContain('delete table');
    expect(change).toContain('delete element bridge novum_t from_devices { "novumvabcdef012" }');

    host.commands.length = 0;
    await network.unplugInstance(other);
    expect(host.commands).toEqual([
      'ip link delete dev novumv999999990',
      `nft -f ${join(dir, 'ruleset.nft')}`,
      'iptables -S FORWARD',
      'ip link delete dev novumbr5e1d2c3b',
      `ip netns delete novum-${other}`,
    ]);
    expect(rulesetFile()).toBe(
      'table bridge novum_t\ndelete table bridge novum_t\ntable inet novum_t\ndelete table inet novum_t\n',
    );
    expect(host.links.size).toBe(0);
    expect(await network.plugged()).toEqual([]);
  });

  it('gives each network a metadata namespace with the listener, routes guests to it, and removes it last', async () => {
    const host = fakeHost();
    const calls: string[] = [];
    const metadata = {
      open: async (networkId: string, netns: string) => void calls.push(`open ${networkId} ${netns}`),
      close: async (networkId: string) => void calls.push(`close ${networkId}`),
    };
    const network = new HostNetwork({ stateDir: dir, ...host.hooks, tableName: 'novum_t', metadata });
    expect(network.servesMetadata).toBe(true);
    const routed = vif(PORT);
    routed.fixedIps[0].hostRoutes = [{ destination: '169.254.169.254/32', nexthop: '0.0.0.0' }];
    await network.plugContainer(UUID, [routed]);
    const md = `novum-md-${NETWORK}`;
    const commands = host.commands;
    expect(commands).toContain(`ip -n novum-${UUID} route replace 169.254.169.254/32 dev eth0`);
    const nft = commands.indexOf(`nft -f ${join(dir, 'ruleset.nft')}`);
    const made = commands.indexOf(`ip netns add ${md}`);
    expect(commands.slice(made, made + 10)).toEqual([
      `ip netns add ${md}`,
      `ip netns exec ${md} sysctl -qw net.ipv6.conf.all.disable_ipv6=1`,
      `ip netns exec ${md} sysctl -qw net.ipv6.conf.default.disable_ipv6=1`,
      `ip link add novumm5e1d2c3ba mtu 1450 type veth peer name novumq5e1d2c3ba mtu 1450 netns ${md}`,
      `ip -n ${md} link set dev lo up`,
      `ip -n ${md} addr add 169.254.169.254/32 dev novumq5e1d2c3ba`,
      `ip -n ${md} link set dev novumq5e1d2c3ba up`,
      `ip -n ${md} route replace default dev novumq5e1d2c3ba`,
      'sysctl -qw net.ipv6.conf.novumm5e1d2c3ba.disable_ipv6=1',
      'ip link set dev novumm5e1d2c3ba master novumbr5e1d2c3b up',
    ]);
    // The firewall knew the namespace's link before it joined the bridge.
    expect(nft).toBeLessThan(commands.indexOf(`ip netns add ${md}`));
    expect(rulesetFile()).toContain('"novumm5e1d2c3ba" : goto from_metadata');
    expect(calls).toEqual([`close ${NETWORK}`, `open ${NETWORK} ${md}`]);

    // A restarted agent opens its listener again in the namespace that is still there.
    calls.length = 0;
    host.commands.length = 0;
    const restarted = new HostNetwork({ stateDir: dir, ...host.hooks, tableName: 'novum_t', metadata });
    await restarted.init();
    expect(calls).toEqual([`open ${NETWORK} ${md}`]);
    expect(host.commands.filter((c) => c.includes(' add '))).toEqual([]);

    calls.length = 0;
    host.commands.length = 0;
    await restarted.unplugInstance(UUID);
    expect(calls).toEqual([`close ${NETWORK}`]);
    expect(host.commands).toEqual([
      'ip link delete dev novumvabcdef012',
      `nft -f ${join(dir, 'ruleset.nft')}`,
      'ip link delete dev novumm5e1d2c3ba',
      `ip netns delete ${md}`,
      'iptables -S FORWARD',
      'ip link delete dev novumbr5e1d2c3b',
      `ip netns delete novum-${UUID}`,
    ]);
    expect(host.links.size).toBe(0);
  });

  it("joins a VXLAN network's bridge to the other hosts through a VXLAN device, once, and removes it with the bridge", async () => {
    const host = fakeHost();
    const network = new HostNetwork({
      stateDir: dir,
      ...host.hooks,
      tableName: 'novum_t',
      tunnel: { localIp: '10.9.0.11' },
    });
    const segment = { networkType: 'vxlan', segmentationId: 4242 };
    await network.plugContainer(UUID, [vif(PORT, { segment })]);
    const vxlan =
      'ip link add name novumx5e1d2c3ba mtu 1450 type vxlan id 4242 group 224.0.0.1 dev eth0 local 10.9.0.11 dstport 4789';
    expect(host.commands).toContain(vxlan);
    const joined = host.commands.indexOf('ip link set dev novumx5e1d2c3ba master novumbr5e1d2c3b up');
    // The firewall knew the device before it joined the bridge.
    expect(joined).toBeGreaterThan(host.commands.indexOf(`nft -f ${join(dir, 'ruleset.nft')}`));
    expect(rulesetFile()).toContain('"novumx5e1d2c3ba" : goto from_tunnel');

    // A second guest on the network uses the same device; a VM's tap too.
    host.commands.length = 0;
    const other = '11111111-2222-3333-4444-555555555555';
    await network.plugContainer(other, [vif('bbbbbbbb-0000-0000-0000-000000000000', { segment })]);
    await network.plugTap(other, vif('cccccccc-0000-0000-0000-000000000000', { segment }));
    expect(host.commands.filter((c) => c.includes('type vxlan'))).toEqual([]);

    await network.unplugInstance(other);
    expect(host.links.has('novumx5e1d2c3ba')).toBe(true);
    host.commands.length = 0;
    await network.unplugInstance(UUID);
    expect(host.commands).toContain('ip link delete dev novumx5e1d2c3ba');
    expect(host.commands.indexOf('ip link delete dev novumx5e1d2c3ba')).toBeLessThan(
      host.commands.indexOf('ip link delete dev novumbr5e1d2c3b'),
    );
    expect(host.links.size).toBe(0);
    expect(rulesetFile()).not.toContain('novumx');
  });

  it('keeps a network on its host without a tunnel address, or when the network is not a VXLAN one', async () => {
    const host = fakeHost();
    const alone = new HostNetwork({ stateDir: dir, ...host.hooks, tableName: 'novum_t' });
    await alone.plugContainer(UUID, [vif(PORT, { segment: { networkType: 'vxlan', segmentationId: 7 } })]);
    mkdirSync(join(dir, 'flat'));
    const flat = new HostNetwork({
      stateDir: join(dir, 'flat'),
      ...host.hooks,
      tableName: 'novum_f',
      tunnel: { localIp: '10.9.0.11', device: 'mgmt0' },
    });
    await flat.plugContainer('22222222-2222-3333-4444-555555555555', [
      vif('dddddddd-0000-0000-0000-000000000000', {
        networkId: '99999999-0000-0000-0000-000000000000',
        segment: { networkType: 'flat', segmentationId: 0 },
      }),
    ]);
    expect(host.commands.filter((c) => c.includes('vxlan') || c.includes('novumx'))).toEqual([]);
    expect(rulesetFile()).not.toContain('tunnel');
    expect(readFileSync(join(dir, 'flat', 'ruleset.nft'), 'utf8')).not.toContain('tunnel');
  });

  it("puts a flat network's physical interface on its bridge, and a VLAN network's subinterface of it", async () => {
    const host = fakeHost();
    const network = new HostNetwork({
      stateDir: dir,
      ...host.hooks,
      tableName: 'novum_t',
      physicalInterfaces: { physnet1: 'eth1' },
    });
    const VLAN_NET = '77777777-0000-0000-0000-000000000000';
    await network.plugContainer(UUID, [
      vif(PORT, { segment: { networkType: 'flat', segmentationId: 0, physicalNetwork: 'physnet1' } }),
      vif('bbbbbbbb-0000-0000-0000-000000000000', {
        networkId: VLAN_NET,
        segment: { networkType: 'vlan', segmentationId: 42, physicalNetwork: 'physnet1' },
      }),
      vif('cccccccc-0000-0000-0000-000000000000', {
        networkId: '88888888-0000-0000-0000-000000000000',
        segment: { networkType: 'flat', segmentationId: 0, physicalNetwork: 'physnet9' },
      }),
    ]);
    expect(host.commands).toContain('ip link set dev eth1 master novumbr5e1d2c3b up');
    expect(host.commands).toContain('ip link add link eth1 name novumu777777770 type vlan id 42');
    expect(host.commands).toContain('ip link set dev novumu777777770 master novumbr77777777 up');
    // An unmapped physical network stays on the host.
    expect(host.commands.filter((c) => c.includes('novumbr88888888') && c.includes(' master '))).toEqual([
      'ip link set dev novumvcccccccc0 master novumbr88888888 up',
    ]);
    // What comes in from them passes the destination port's ingress rules, as from a tunnel.
    expect(rulesetFile()).toContain('"eth1" : goto from_tunnel');
    expect(rulesetFile()).toContain('"novumu777777770" : goto from_tunnel');
    await network.unplugInstance(UUID);
    expect(host.commands).toContain('ip link delete dev novumu777777770');
    expect(host.commands).not.toContain('ip link delete dev eth1');
  });

  it('refuses a tunnel address no device of the host has', async () => {
    const host = fakeHost();
    const network = new HostNetwork({
      stateDir: dir,
      ...host.hooks,
      tableName: 'novum_t',
      tunnel: { localIp: '10.9.0.99' },
    });
    await expect(
      network.plugContainer(UUID, [vif(PORT, { segment: { networkType: 'vxlan', segmentationId: 5 } })]),
    ).rejects.toThrow('No network device of this host has the tunnel address 10.9.0.99.');
  });

  it('serves a router: its namespace, a veth per port on its network’s bridge with MAC and addresses, routes and NAT', async () => {
    const host = fakeHost();
    const network = new HostNetwork({ stateDir: dir, ...host.hooks, tableName: 'novum_t' });
    const ROUTER = 'rrrrrrrr-0000-0000-0000-000000000001';
    const EXT = 'eeeeeeee-0000-0000-0000-000000000001';
    const spec = {
      id: ROUTER,
      interfaces: [
        {
          portId: 'i1234567-89ab-cdef-0000-000000000001',
          networkId: NETWORK,
          macAddress: 'fa:16:3e:00:00:01',
          addresses: ['10.0.0.1/24'],
          mtu: 1450,
        },
      ],
      gateway: {
        portId: 'g1234567-89ab-cdef-0000-000000000001',
        networkId: EXT,
        macAddress: 'fa:16:3e:00:00:02',
        addresses: ['172.24.4.3/24'],
        nexthop: '172.24.4.1',
      },
      snat: true,
      floatingIps: [{ floating: '172.24.4.10', fixed: '10.0.0.5' }],
      routes: [],
    };
    await network.syncRouters([spec]);
    const ns = `novum-r-${ROUTER}`;
    const c = host.commands;
    expect(c).toContain(`ip netns add ${ns}`);
    expect(c).toContain(`ip netns exec ${ns} sysctl -qw net.ipv4.ip_forward=1`);
    expect(c).toContain(
      `ip link add novumri12345678 mtu 1450 type veth peer name qr-i1234567-89 mtu 1450 netns ${ns}`,
    );
    expect(c).toContain(`ip -n ${ns} link set dev qr-i1234567-89 address fa:16:3e:00:00:01`);
    expect(c).toContain(`ip -n ${ns} addr add 10.0.0.1/24 dev qr-i1234567-89`);
    expect(c).toContain(
      `ip link add novumrg12345678 mtu 1500 type veth peer name qg-g1234567-89 mtu 1500 netns ${ns}`,
    );
    // The gateway holds the floating IP too; the default route goes to the external subnet's gateway.
    expect(c).toContain(`ip -n ${ns} addr add 172.24.4.3/24 dev qg-g1234567-89`);
    expect(c).toContain(`ip -n ${ns} addr add 172.24.4.10/32 dev qg-g1234567-89`);
    expect(c).toContain(`ip -n ${ns} route replace default via 172.24.4.1 dev qg-g1234567-89`);
    expect(c).toContain(`ip netns exec ${ns} nft -f ${join(dir, `router-${ROUTER}.nft`)}`);
    expect(readFileSync(join(dir, `router-${ROUTER}.nft`), 'utf8')).toContain(
      'ip daddr 172.24.4.10 dnat to 10.0.0.5',
    );
    // Both ends join their bridges once the firewall knows them (a router forwards; ingress rules decide).
    const nft = c.indexOf(`nft -f ${join(dir, 'ruleset.nft')}`);
    expect(nft).toBeGreaterThan(-1);
    expect(c.indexOf('ip link set dev novumri12345678 master novumbr5e1d2c3b up')).toBeGreaterThan(nft);
    expect(c).toContain('ip link set dev novumrg12345678 master novumbreeeeeeee up');

    // Again: nothing is made twice.
    host.commands.length = 0;
    await network.syncRouters([spec]);
    expect(host.commands.filter((command) => / add /.test(command) && !command.includes('addr'))).toEqual([]);

    // The router goes: its devices, its namespace, and the bridges only it used.
    host.commands.length = 0;
    await network.syncRouters([]);
    expect(host.commands).toEqual(
      expect.arrayContaining([
        'ip link delete dev novumri12345678',
        'ip link delete dev novumrg12345678',
        `ip netns delete ${ns}`,
        'ip link delete dev novumbr5e1d2c3b',
        'ip link delete dev novumbreeeeeeee',
      ]),
    );
    expect(host.links.size).toBe(0);
  });

  it('removes the external network’s bridge when the gateway goes, with the physical interface on it', async () => {
    const host = fakeHost();
    const network = new HostNetwork({
      stateDir: dir,
      ...host.hooks,
      tableName: 'novum_t',
      physicalInterfaces: { physnet1: 'eth1' },
    });
    await network.plugContainer(UUID, [vif(PORT)]);
    const gateway = {
      portId: 'g2',
      networkId: 'eeeeeeee-0000-0000-0000-000000000002',
      macAddress: 'fa:16:3e:00:00:08',
      addresses: ['172.24.4.3/24'],
      nexthop: '172.24.4.1',
      segment: { networkType: 'flat', segmentationId: null, physicalNetwork: 'physnet1' },
    };
    const base = {
      id: 'r3',
      interfaces: [
        { portId: 'i3', networkId: NETWORK, macAddress: 'fa:16:3e:00:00:09', addresses: ['10.0.0.1/24'] },
      ],
      snat: true,
      routes: [],
    };
    await network.syncRouters([
      { ...base, gateway, floatingIps: [{ floating: '172.24.4.10', fixed: '10.0.0.5' }] },
    ]);
    expect(host.commands).toContain('ip link set dev eth1 master novumbreeeeeeee up');
    await network.syncRouters([{ ...base, gateway, floatingIps: [] }]);
    await network.syncRouters([{ ...base, floatingIps: [] }]);
    expect(host.links.has('novumbreeeeeeee')).toBe(false);
  });

  it('keeps a bridge a guest still uses when a router leaves it, and the other way round', async () => {
    const host = fakeHost();
    const network = new HostNetwork({ stateDir: dir, ...host.hooks, tableName: 'novum_t' });
    await network.plugContainer(UUID, [vif(PORT)]);
    const spec = {
      id: 'r2',
      interfaces: [
        { portId: 'i2', networkId: NETWORK, macAddress: 'fa:16:3e:00:00:09', addresses: ['10.0.0.1/24'] },
      ],
      snat: true,
      floatingIps: [],
      routes: [],
    };
    await network.syncRouters([spec]);
    expect(rulesetFile()).toContain('"novumri2" : goto from_router');
    await network.syncRouters([]);
    expect(host.links.has('novumbr5e1d2c3b')).toBe(true);
    await network.syncRouters([spec]);
    await network.unplugInstance(UUID);
    expect(host.links.has('novumbr5e1d2c3b')).toBe(true);
    await network.syncRouters([]);
    expect(host.links.has('novumbr5e1d2c3b')).toBe(false);
  });

  it('plugs and unplugs a VM tap on the bridge', async () => {
    const host = fakeHost();
    const network = new HostNetwork({ stateDir: dir, ...host.hooks });
    expect(network.tableName).toMatch(/^novum_[0-9a-f]{8}$/);
    expect(await network.plugTap(UUID, vif(PORT, { bridge: 'novumbrcustom01' }))).toEqual({
      ifname: 'novumtabcdef012',
    });
    expect(host.commands).toContain('ip tuntap add dev novumtabcdef012 mode tap vnet_hdr');
    expect(host.commands.at(-1)).toBe('ip link set dev novumtabcdef012 master novumbrcustom01 up');
    await network.unplugTap({ id: PORT });
    expect(host.links.size).toBe(0);
  });

  it('lets guest traffic through a host FORWARD chain that drops by default, only while the bridge exists', async () => {
    const host = fakeHost({ iptablesDrop: true });
    const network = new HostNetwork({ stateDir: dir, ...host.hooks, tableName: 'novum_t' });
    await network.plugContainer(UUID, [vif(PORT)]);
    expect(host.commands).toContain('iptables -I FORWARD 1 -i novumbr5e1d2c3b -o novumbr5e1d2c3b -j ACCEPT');
    // The next port on that bridge: iptables is not asked again.
    const asked = host.commands.filter((c) => c.startsWith('iptables')).length;
    const other = '11111111-2222-3333-4444-555555555555';
    await network.plugContainer(other, [vif('99999999-0000-0000-0000-000000000000')]);
    expect(host.commands.filter((c) => c.startsWith('iptables'))).toHaveLength(asked);
    await network.unplugInstance(other);
    await network.unplugInstance(UUID);
    expect(host.commands).toContain('iptables -D FORWARD -i novumbr5e1d2c3b -o novumbr5e1d2c3b -j ACCEPT');
    // A bridge made again is seen to again.
    await network.plugContainer(UUID, [vif(PORT)]);
    expect(
      host.commands.filter(
        (c) => c === 'iptables -I FORWARD 1 -i novumbr5e1d2c3b -o novumbr5e1d2c3b -j ACCEPT',
      ),
    ).toHaveLength(2);
  });

  it('re-renders the rules with new security facts, keeping them for the next plug', async () => {
    const host = fakeHost();
    const network = new HostNetwork({ stateDir: dir, ...host.hooks, tableName: 'novum_t' });
    await network.plugContainer(UUID, [vif(PORT)]);
    expect(rulesetFile()).not.toContain('th dport 22');
    await network.updateFilters(
      new Map([
        [
          PORT,
          {
            portSecurityEnabled: true,
            allowedAddressPairs: [],
            rules: [
              {
                direction: 'ingress',
                ethertype: 'IPv4',
                protocol: 'tcp',
                portRangeMin: 22,
                portRangeMax: 22,
                remoteIpPrefix: null,
                remoteGroupId: null,
              },
            ],
            remoteGroupMembers: {},
          },
        ],
      ]),
    );
    expect(rulesetFile()).toContain('meta l4proto 6 th dport 22 accept');
    await network.plugContainer(UUID, [vif(PORT)]);
    expect(rulesetFile()).toContain('meta l4proto 6 th dport 22 accept');
  });

  it("keeps a remote group's members once in ports.json, and reads the earlier layout", async () => {
    const GROUP = 'aaaaaaaa-1111-2222-3333-444444444444';
    const filter = (members: string[]) => ({
      portSecurityEnabled: true,
      allowedAddressPairs: [],
      rules: [
        {
          direction: 'ingress' as const,
          ethertype: 'IPv4' as const,
          protocol: null,
          portRangeMin: null,
          portRangeMax: null,
          remoteIpPrefix: null,
          remoteGroupId: GROUP,
        },
      ],
      remoteGroupMembers: { [GROUP]: members },
    });
    const host = fakeHost();
    const network = new HostNetwork({ stateDir: dir, ...host.hooks, tableName: 'novum_t' });
    const other = '99999999-0000-0000-0000-000000000000';
    await network.plugContainer(UUID, [vif(PORT, { filter: filter(['10.0.0.5']) })]);
    await network.plugContainer(UUID, [
      vif(PORT, { filter: filter(['10.0.0.5']) }),
      vif(other, { filter: filter(['10.0.0.5', '10.0.0.6']) }),
    ]);
    const stored = JSON.parse(readFileSync(join(dir, 'ports.json'), 'utf8'));
    expect(stored.groupMembers).toEqual({ [GROUP]: ['10.0.0.5', '10.0.0.6'] });
    expect(stored.ports.map((port: { filter: object }) => port.filter)).toEqual([
      expect.objectContaining({ remoteGroups: [GROUP] }),
      expect.objectContaining({ remoteGroups: [GROUP] }),
    ]);
    expect(JSON.stringify(stored.ports)).not.toContain('10.0.0.6');
    // Each port reads the group's members (their union: the firewall's one set for the group).
    const plugged = await network.plugged();
    expect(plugged.map((port) => port.filter?.remoteGroupMembers)).toEqual([
      { [GROUP]: ['10.0.0.5', '10.0.0.6'] },
      { [GROUP]: ['10.0.0.5', '10.0.0.6'] },
    ]);
    expect(rulesetFile()).toContain('elements = { 10.0.0.5, 10.0.0.6 }');

    // A file written before (members in each port's filter), read by a restarted agent.
    const earlier = {
      ports: stored.ports.map((port: { filter: object }, i: number) => ({
        ...port,
        filter: { ...filter(i ? ['10.0.0.7'] : ['10.0.0.8']) },
      })),
    };
    const restarted = join(dir, 'restarted');
    mkdirSync(restarted);
    writeFileSync(join(restarted, 'ports.json'), JSON.stringify(earlier));
    const again = new HostNetwork({ stateDir: restarted, ...fakeHost().hooks, tableName: 'novum_t' });
    expect((await again.plugged()).map((port) => port.filter?.remoteGroupMembers)).toEqual([
      { [GROUP]: ['10.0.0.8'] },
      { [GROUP]: ['10.0.0.7'] },
    ]);
  });

  it('writes /etc/hosts and resolv.conf from the ports', () => {
    expect(HostNetwork.hostsFile('ctr1', [vif(PORT)])).toBe(
      '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.5\tctr1\nfd00::5\tctr1\n',
    );
    expect(HostNetwork.hostsFile('ctr1', [])).toContain('127.0.1.1\tctr1');
    expect(HostNetwork.resolvConf([vif(PORT)])).toBe('nameserver 10.0.0.2\nnameserver fd00::2\n');
    expect(HostNetwork.resolvConf([])).toMatch(/^#/);
  });
});
