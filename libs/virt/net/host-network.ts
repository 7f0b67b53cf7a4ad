import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DriverError, Vif } from '../driver';
import { CommandResult, runCommand } from '../container/host-commands';
import { FirewallPort, PortFilter, renderRuleset } from './firewall';
import { bridgeName, NETNS_DIR, netnsName, tapName, vethName, vethPeerName } from './names';

export type CommandRunner = (command: string, args: readonly string[]) => Promise<CommandResult>;

export interface HostNetworkOptions {
  /** Where the plugged ports are recorded (`<NOVUM_DATA_DIR>/network`), so that a restarted agent knows them. */
  stateDir: string;
  /** The nft tables' name; by default `novum_` + a digest of stateDir, so two clouds on one host never meet. */
  tableName?: string;
  run?: CommandRunner;
}

/** A guest port plugged on this host. */
export interface PluggedPort {
  portId: string;
  instanceUuid: string;
  kind: 'veth' | 'tap';
  devname: string;
  bridge: string;
  networkId: string;
  macAddress: string;
  ips: string[];
  filter?: PortFilter;
}

interface State {
  ports: PluggedPort[];
}

const DEFAULT_MTU = 1500;

/**
 * The host side of guest networking, for every driver: one Linux bridge per Neutron network (no address:
 * the host is not a router), veth pairs into containers' persistent network namespaces, tap devices for
 * VMs, and the security groups as nftables rules over all of them. Every change runs one at a time, and
 * a device joins its bridge only once the firewall knows it, so a port is never unfiltered.
 */
export class HostNetwork {
  readonly tableName: string;
  private readonly run: CommandRunner;
  private readonly stateFile: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: HostNetworkOptions) {
    this.run = options.run ?? runCommand;
    this.stateFile = join(options.stateDir, 'ports.json');
    this.tableName =
      options.tableName ?? `novum_${createHash('sha256').update(options.stateDir).digest('hex').slice(0, 8)}`;
  }

  /** The path a container runtime joins (OCI `linux.namespaces[].path`). */
  static netnsPath(instanceUuid: string): string {
    return `${NETNS_DIR}/${netnsName(instanceUuid)}`;
  }

  /** Checks the tools and the kernel setting it relies on, then restores the firewall of the recorded ports. */
  async init(): Promise<void> {
    await mkdir(this.options.stateDir, { recursive: true });
    for (const tool of ['ip', 'nft']) {
      const probe = await this.run(tool, ['-V']);
      if (probe.code !== 0)
        throw new DriverError(`Guest networking needs ${tool} (apt-get install iproute2 nftables).`);
    }
    // Bridged IP traffic reaches the inet family (where conntrack is) only through br_netfilter.
    for (const key of ['net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables']) {
      const current = await this.run('sysctl', ['-n', key]);
      if (current.stdout.trim() !== '1') await this.mustRun('sysctl', ['-qw', `${key}=1`]);
    }
    await this.serial(() => this.applyFirewall());
  }

  plugged(): Promise<PluggedPort[]> {
    return this.serial(async () => (await this.load()).ports);
  }

  /**
   * Puts the container's ports into its persistent namespace `novum-<uuid>` (created when missing) as
   * eth0, eth1, ... with each port's MAC, addresses and MTU, the default route via the first gateway, and
   * their host ends on the networks' bridges. Idempotent: a port already there is left as it is.
   * Resolves with the namespace's path.
   */
  plugContainer(instanceUuid: string, vifs: readonly Vif[]): Promise<string> {
    return this.serial(async () => {
      const netns = netnsName(instanceUuid);
      const created = await this.run('ip', ['netns', 'add', netns]);
      if (created.code !== 0 && !/exists/i.test(created.stderr)) this.fail('ip netns add', created);
      await this.mustRun('ip', ['-n', netns, 'link', 'set', 'dev', 'lo', 'up']);
      // As Docker does: ICMP echo sockets and low ports for any user, so that ping works without raw sockets
      // (which a user-namespaced root cannot open in a namespace the host made).
      for (const setting of [
        'net.ipv4.ping_group_range=0 2147483647',
        'net.ipv4.ip_unprivileged_port_start=0',
      ]) {
        await this.mustRun('ip', ['netns', 'exec', netns, 'sysctl', '-qw', setting]);
      }
      const state = await this.load();
      const fresh: PluggedPort[] = [];
      let routed4 = false;
      let routed6 = false;
      for (const [index, vif] of vifs.entries()) {
        const devname = vethName(vif.id);
        const mtu = vif.mtu ?? DEFAULT_MTU;
        const bridge = vif.bridge ?? bridgeName(vif.networkId);
        const known = state.ports.find((port) => port.portId === vif.id);
        const present = (await this.run('ip', ['link', 'show', 'dev', devname])).code === 0;
        if (!present) {
          const peer = vethPeerName(vif.id);
          const ifname = `eth${index}`;
          await this.mustRun('ip', [
            'link',
            'add',
            devname,
            'mtu',
            String(mtu),
            'type',
            'veth',
            'peer',
            'name',
            peer,
            'mtu',
            String(mtu),
            'netns',
            netns,
          ]);
          await this.mustRun('ip', [
            '-n',
            netns,
            'link',
            'set',
            'dev',
            peer,
            'name',
            ifname,
            'address',
            vif.macAddress,
          ]);
          for (const ip of vif.fixedIps) {
            const prefix = ip.cidr.split('/')[1] ?? (ip.version === 4 ? '32' : '128');
            const args = ['-n', netns, ...(ip.version === 6 ? ['-6'] : []), 'addr', 'add'];
            args.push(`${ip.address}/${prefix}`, 'dev', ifname, ...(ip.version === 6 ? ['nodad'] : []));
            await this.mustRun('ip', args);
          }
          await this.mustRun('ip', ['-n', netns, 'link', 'set', 'dev', ifname, 'up']);
          for (const ip of vif.fixedIps) {
            if (!ip.gateway || (ip.version === 4 ? routed4 : routed6)) continue;
            await this.mustRun('ip', [
              '-n',
              netns,
              ...(ip.version === 6 ? ['-6'] : []),
              'route',
              'replace',
              'default',
              'via',
              ip.gateway,
              'dev',
              ifname,
            ]);
            if (ip.version === 4) routed4 = true;
            else routed6 = true;
          }
        }
        const port: PluggedPort = {
          portId: vif.id,
          instanceUuid,
          kind: 'veth',
          devname,
          bridge,
          networkId: vif.networkId,
          macAddress: vif.macAddress,
          ips: vif.fixedIps.map((ip) => ip.address),
          filter: vif.filter ?? known?.filter,
        };
        state.ports = [...state.ports.filter((p) => p.portId !== vif.id), port];
        fresh.push(port);
        await this.ensureBridge(bridge, mtu);
      }
      await this.save(state);
      await this.applyFirewall(state);
      for (const port of fresh) await this.attach(port);
      return HostNetwork.netnsPath(instanceUuid);
    });
  }

  /** A VM's port: a tap device on its network's bridge, for QEMU to open by name. Idempotent. */
  plugTap(instanceUuid: string, vif: Vif): Promise<{ ifname: string }> {
    return this.serial(async () => {
      const devname = tapName(vif.id);
      const mtu = vif.mtu ?? DEFAULT_MTU;
      const bridge = vif.bridge ?? bridgeName(vif.networkId);
      if ((await this.run('ip', ['link', 'show', 'dev', devname])).code !== 0) {
        await this.mustRun('ip', ['tuntap', 'add', 'dev', devname, 'mode', 'tap', 'vnet_hdr']);
        await this.mustRun('ip', ['link', 'set', 'dev', devname, 'mtu', String(mtu)]);
      }
      const state = await this.load();
      const known = state.ports.find((port) => port.portId === vif.id);
      const port: PluggedPort = {
        portId: vif.id,
        instanceUuid,
        kind: 'tap',
        devname,
        bridge,
        networkId: vif.networkId,
        macAddress: vif.macAddress,
        ips: vif.fixedIps.map((ip) => ip.address),
        filter: vif.filter ?? known?.filter,
      };
      state.ports = [...state.ports.filter((p) => p.portId !== vif.id), port];
      await this.ensureBridge(bridge, mtu);
      await this.save(state);
      await this.applyFirewall(state);
      await this.attach(port);
      return { ifname: devname };
    });
  }

  unplugTap(vif: Pick<Vif, 'id'>): Promise<void> {
    return this.serial(async () => {
      const state = await this.load();
      await this.remove(
        state,
        state.ports.filter((port) => port.portId === vif.id),
      );
    });
  }

  /** Everything of an instance goes: its devices, its namespace, and bridges no port uses any more. */
  unplugInstance(instanceUuid: string): Promise<void> {
    return this.serial(async () => {
      const state = await this.load();
      await this.remove(
        state,
        state.ports.filter((port) => port.instanceUuid === instanceUuid),
      );
      const deleted = await this.run('ip', ['netns', 'delete', netnsName(instanceUuid)]);
      if (deleted.code !== 0 && !/no such file/i.test(deleted.stderr)) this.fail('ip netns delete', deleted);
    });
  }

  /** New security facts for plugged ports (groups or rules changed); the ruleset is rendered again. */
  updateFilters(filters: ReadonlyMap<string, PortFilter>): Promise<void> {
    return this.serial(async () => {
      const state = await this.load();
      for (const port of state.ports) {
        const filter = filters.get(port.portId);
        if (filter) port.filter = filter;
      }
      await this.save(state);
      await this.applyFirewall(state);
    });
  }

  /** The container's /etc/hosts: localhost, and its hostname on each of its addresses. */
  static hostsFile(hostname: string, vifs: readonly Vif[]): string {
    const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
    for (const ip of vifs.flatMap((vif) => vif.fixedIps)) lines.push(`${ip.address}\t${hostname}`);
    if (!vifs.some((vif) => vif.fixedIps.length)) lines.push(`127.0.1.1\t${hostname}`);
    return `${lines.join('\n')}\n`;
  }

  /** The container's /etc/resolv.conf: the DNS servers of its ports' subnets. */
  static resolvConf(vifs: readonly Vif[]): string {
    const servers = [...new Set(vifs.flatMap((vif) => vif.fixedIps.flatMap((ip) => ip.dnsNameservers)))];
    if (!servers.length) return '# No DNS servers: the subnets of this server have no dns_nameservers.\n';
    return `${servers.map((server) => `nameserver ${server}`).join('\n')}\n`;
  }

  private async remove(state: State, ports: readonly PluggedPort[]): Promise<void> {
    if (!ports.length) return;
    for (const port of ports) {
      const deleted = await this.run('ip', ['link', 'delete', 'dev', port.devname]);
      if (deleted.code !== 0 && !/cannot find device|does not exist/i.test(deleted.stderr)) {
        this.fail('ip link delete', deleted);
      }
    }
    const gone = new Set(ports.map((port) => port.portId));
    state.ports = state.ports.filter((port) => !gone.has(port.portId));
    await this.save(state);
    await this.applyFirewall(state);
    for (const bridge of new Set(ports.map((port) => port.bridge))) {
      if (state.ports.some((port) => port.bridge === bridge)) continue;
      await this.allowThroughHostFirewall(bridge, false);
      const deleted = await this.run('ip', ['link', 'delete', 'dev', bridge]);
      if (deleted.code !== 0 && !/cannot find device|does not exist/i.test(deleted.stderr)) {
        this.fail('ip link delete', deleted);
      }
    }
  }

  /** The network's bridge, up, with its MTU, with no IPv6 (no address at all) and no routing from it. */
  private async ensureBridge(bridge: string, mtu: number): Promise<void> {
    if ((await this.run('ip', ['link', 'show', 'dev', bridge])).code !== 0) {
      const added = await this.run('ip', [
        'link',
        'add',
        'name',
        bridge,
        'mtu',
        String(mtu),
        'type',
        'bridge',
      ]);
      if (added.code !== 0 && !/exists/i.test(added.stderr)) this.fail('ip link add', added);
      await this.mustRun('sysctl', ['-qw', `net.ipv6.conf.${bridge}.disable_ipv6=1`]);
      await this.mustRun('sysctl', ['-qw', `net.ipv4.conf.${bridge}.forwarding=0`]);
    }
    await this.mustRun('ip', ['link', 'set', 'dev', bridge, 'mtu', String(mtu), 'up']);
    await this.allowThroughHostFirewall(bridge, true);
  }

  /** The host end joins the bridge (once the firewall knows it), without an IPv6 address of its own. */
  private async attach(port: PluggedPort): Promise<void> {
    await this.mustRun('sysctl', ['-qw', `net.ipv6.conf.${port.devname}.disable_ipv6=1`]);
    await this.mustRun('ip', ['link', 'set', 'dev', port.devname, 'master', port.bridge, 'up']);
  }

  /**
   * br_netfilter hands bridged IP traffic to the host's iptables FORWARD chain too; where that chain drops
   * by default (Docker sets `-P FORWARD DROP`), guest traffic would die there after passing Novum's own
   * rules. Such hosts get an ACCEPT for traffic within each Novum bridge, removed with the bridge.
   */
  private async allowThroughHostFirewall(bridge: string, allow: boolean): Promise<void> {
    const forward = await this.run('iptables', ['-S', 'FORWARD']);
    if (forward.code !== 0) return;
    const rule = ['FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT'];
    const present = (await this.run('iptables', ['-C', ...rule])).code === 0;
    if (allow && !present && /^-P FORWARD DROP/m.test(forward.stdout)) {
      await this.mustRun('iptables', ['-I', ...rule.slice(0, 1), '1', ...rule.slice(1)]);
    } else if (!allow && present) {
      await this.mustRun('iptables', ['-D', ...rule]);
    }
  }

  private async applyFirewall(state?: State): Promise<void> {
    const ports: FirewallPort[] = (state ?? (await this.load())).ports;
    const script = join(this.options.stateDir, 'ruleset.nft');
    await writeFile(script, renderRuleset(this.tableName, ports));
    await this.mustRun('nft', ['-f', script]);
  }

  private async load(): Promise<State> {
    const text = await readFile(this.stateFile, 'utf8').catch(() => undefined);
    return text ? (JSON.parse(text) as State) : { ports: [] };
  }

  private async save(state: State): Promise<void> {
    await writeFile(`${this.stateFile}.tmp`, JSON.stringify(state));
    await rename(`${this.stateFile}.tmp`, this.stateFile);
  }

  private async mustRun(command: string, args: readonly string[]): Promise<void> {
    const result = await this.run(command, args);
    if (result.code !== 0) this.fail(`${command} ${args.slice(0, 4).join(' ')}`, result);
  }

  private fail(what: string, result: CommandResult): never {
    throw new DriverError(`${what} failed (${result.code}): ${result.stderr.trim().slice(0, 300)}`);
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
