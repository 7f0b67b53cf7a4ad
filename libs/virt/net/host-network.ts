import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DriverError, Vif } from '../driver';
import { linkTarget, pathExists, readSmallFile, replaceSmallFile } from '../local-files';
import {
  CommandResult,
  CommandRunner,
  runCommand,
  runSteps,
  runStepsWith,
  Step,
  stepName,
  StepsResult,
} from '../container/host-commands';
import {
  FirewallPort,
  MetadataDevice,
  PortFilter,
  buildRuleset,
  groupMembers,
  renderChange,
  renderFull,
  RouterDevice,
  Ruleset,
  TunnelDevice,
} from './firewall';
import { renderRouterNat, RouterPortSpec, RouterSpec } from './router-nat';
import {
  bridgeName,
  METADATA_ADDRESS,
  metadataNetnsName,
  metadataVethName,
  metadataVethPeerName,
  NETNS_DIR,
  netnsName,
  routerNetnsName,
  routerPortName,
  routerVethName,
  tapName,
  tunnelName,
  vethName,
  vlanName,
  vethPeerName,
} from './names';

export type { CommandRunner };

export interface HostNetworkOptions {
  /** Where the plugged ports are recorded (`<NOVUM_DATA_DIR>/network`), so that a restarted agent knows them. */
  stateDir: string;
  /** The nft tables' name; by default `novum_` + a digest of stateDir, so two clouds on one host never meet. */
  tableName?: string;
  run?: CommandRunner;
  /**
   * Runs commands one after another (host-commands' runSteps, by default: one request to the host spawner);
   * with `run` given and this not, they go through `run` one at a time.
   */
  runSteps?: (steps: readonly Step[]) => Promise<StepsResult>;
  /** Whether a network device of this name exists on the host (by default: /sys/class/net). */
  linkExists?: (name: string) => Promise<boolean>;
  /** Whether a named network namespace exists (by default: its file under /run/netns). */
  netnsExists?: (name: string) => Promise<boolean>;
  /** The bridge a link is attached to (by default: its /sys/class/net/<name>/master). */
  masterOf?: (name: string) => Promise<string | undefined>;
  /** Sets a host sysctl (by default: written to /proc/sys). */
  sysctl?: (key: string, value: string) => Promise<void>;
  /** The metadata service: absent, networks get no metadata namespace and guests no route to it. */
  metadata?: MetadataListeners;
  /** This host's end of the overlay: absent, a VXLAN network stays on this host (one-host clouds). */
  tunnel?: TunnelOptions;
  /**
   * The host interface of each physical network (Neutron linuxbridge's `physical_interface_mappings`): a flat
   * network's bridge takes the interface itself, a VLAN network's a `novumu<network>` subinterface of it.
   */
  physicalInterfaces?: Record<string, string>;
  /** Where a recoverable fault goes (a firewall change that had to be loaded whole); none by default. */
  warn?: (message: string) => void;
}

/**
 * How this host joins the VXLAN overlay (Neutron's linuxbridge agent `[vxlan] local_ip` and `vxlan_group`):
 * each VXLAN network's bridge gets a VXLAN device with the network's segmentation id as VNI, sending from
 * `localIp`; frames for unknown destinations go to the multicast group, the others to the host their source
 * was learnt from.
 */
export interface TunnelOptions {
  /** This host's address on the network between hosts. */
  localIp: string;
  /** The device holding localIp (looked up when absent). */
  device?: string;
  /** Default 224.0.0.1, as Neutron's. */
  group?: string;
  /** UDP port; default 4789 (IANA's VXLAN port; Linux's own default is 8472). */
  port?: number;
}

export const DEFAULT_VXLAN_GROUP = '224.0.0.1';
export const DEFAULT_VXLAN_PORT = 4789;

/** The agent's metadata service, as the host network opens and closes its per-network listeners. */
export interface MetadataListeners {
  /** Serves the network's guests on METADATA_ADDRESS port 80 inside `netns`; idempotent. */
  open(networkId: string, netns: string): Promise<void>;
  /** Stops serving the network (before its namespace goes); idempotent. */
  close(networkId: string): Promise<void>;
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
  /** The VXLAN network id of the port's network, if it is a VXLAN network. */
  vni?: number;
  /** The physical network and VLAN id (0: flat) of the port's network, if it is a flat or VLAN network. */
  physical?: { network: string; vlan: number };
}

/** A router port plugged on this host: a veth from its network's bridge into the router's namespace. */
interface PluggedRouterPort {
  portId: string;
  kind: 'interface' | 'gateway';
  devname: string;
  bridge: string;
  networkId: string;
  vni?: number;
  physical?: { network: string; vlan: number };
}

interface State {
  ports: PluggedPort[];
  /** The routers this host serves (absent in states written before routers). */
  routers?: { id: string; ports: PluggedRouterPort[] }[];
}

/**
 * ports.json: the remote groups' members once for the host (`groupMembers`), and each port's filter naming its
 * groups (`remoteGroups`), rather than every port's own copy of every member: with n ports in a group, n²
 * addresses to read and write at each change. The firewall takes the union of the ports' members per group
 * anyway (one set per group). A port stored with `remoteGroupMembers` (written before) is read as it is.
 */
interface StoredState extends Omit<State, 'ports'> {
  ports: (Omit<PluggedPort, 'filter'> & { filter?: StoredFilter })[];
  groupMembers?: Record<string, string[]>;
}

type StoredFilter = Omit<PortFilter, 'remoteGroupMembers'> & {
  remoteGroupMembers?: Record<string, string[]>;
  remoteGroups?: string[];
};

function toStored(state: State): StoredState {
  const members = groupMembers(state.ports);
  return {
    ...state,
    ports: state.ports.map((port) => {
      if (!port.filter) return port;
      const { remoteGroupMembers, ...filter } = port.filter;
      return { ...port, filter: { ...filter, remoteGroups: Object.keys(remoteGroupMembers) } };
    }),
    groupMembers: Object.fromEntries([...members].map(([group, known]) => [group, [...known]])),
  };
}

function fromStored(stored: StoredState): State {
  const { groupMembers = {}, ports, ...rest } = stored;
  return {
    ...rest,
    ports: ports.map((port) => {
      if (!port.filter) return port as PluggedPort;
      const { remoteGroups, remoteGroupMembers, ...filter } = port.filter;
      return {
        ...port,
        filter: {
          ...filter,
          remoteGroupMembers:
            remoteGroupMembers ??
            Object.fromEntries((remoteGroups ?? []).map((group) => [group, groupMembers[group] ?? []])),
        },
      };
    }),
  };
}

const DEFAULT_MTU = 1500;

/**
 * The ports with `port` in place of the one of its id (where that one was, so that a port recorded again as it
 * was leaves ports.json and the firewall as they were), or added last.
 */
function withPort(ports: readonly PluggedPort[], port: PluggedPort): PluggedPort[] {
  const index = ports.findIndex((known) => known.portId === port.portId);
  if (index < 0) return [...ports, port];
  return ports.map((known, at) => (at === index ? port : known));
}

/** What the host keeps of a container's port. */
function vethPort(instanceUuid: string, vif: Vif, known?: PluggedPort): PluggedPort {
  return {
    portId: vif.id,
    instanceUuid,
    kind: 'veth',
    devname: vethName(vif.id),
    bridge: vif.bridge ?? bridgeName(vif.networkId),
    networkId: vif.networkId,
    macAddress: vif.macAddress,
    ips: vif.fixedIps.map((ip) => ip.address),
    filter: vif.filter ?? known?.filter,
    vni: vniOf(vif),
    physical: physicalOf(vif),
  };
}

function routerPort(kind: PluggedRouterPort['kind'], port: RouterPortSpec): PluggedRouterPort {
  return {
    portId: port.portId,
    kind,
    devname: routerVethName(port.portId),
    bridge: bridgeName(port.networkId),
    networkId: port.networkId,
    vni: vniOf({ segment: port.segment }),
    physical: physicalOf({ segment: port.segment }),
  };
}

function physicalOf(vif: Pick<Vif, 'segment'>): PluggedPort['physical'] {
  const segment = vif.segment;
  if (!segment?.physicalNetwork) return undefined;
  if (segment.networkType === 'flat') return { network: segment.physicalNetwork, vlan: 0 };
  if (segment.networkType === 'vlan' && segment.segmentationId)
    return { network: segment.physicalNetwork, vlan: segment.segmentationId };
  return undefined;
}

function vniOf(vif: Pick<Vif, 'segment'>): number | undefined {
  const segment = vif.segment;
  return segment?.networkType === 'vxlan' && segment.segmentationId ? segment.segmentationId : undefined;
}

interface PrepareBatch {
  containers: { instanceUuid: string; vifs: readonly Vif[] }[];
  done: Promise<void>;
}

/**
 * The host side of guest networking, for every driver: one Linux bridge per Neutron network (no address:
 * the host is not a router), veth pairs into containers' persistent network namespaces, tap devices for
 * VMs, and the security groups as nftables rules over all of them. Every change runs one at a time, and
 * a device joins its bridge only once the firewall knows it, so a port is never unfiltered.
 */
export class HostNetwork {
  readonly tableName: string;
  private readonly run: CommandRunner;
  private readonly runSteps: (steps: readonly Step[]) => Promise<StepsResult>;
  private readonly linkExists: (name: string) => Promise<boolean>;
  private readonly stateFile: string;
  private queue: Promise<unknown> = Promise.resolve();
  private tunnelDevice?: string;
  /** The ruleset nft last loaded from this process (none yet after a start: init loads it whole). */
  private applied?: Ruleset;
  /** ports.json as this process last read or wrote it. */
  private stateText?: string;
  /** The ports.json text `applied` was built from: the same state again needs no ruleset built. */
  private appliedText?: string;
  /** The bridges whose way through the host's iptables FORWARD chain this process has seen to. */
  private readonly openedBridges = new Set<string>();
  /** prepareContainer's queued task, which later callers join until it starts. */
  private preparing?: PrepareBatch;

  constructor(private readonly options: HostNetworkOptions) {
    this.run = options.run ?? runCommand;
    const run = options.run;
    this.runSteps = options.runSteps ?? (run ? (steps) => runStepsWith(run, steps) : runSteps);
    // Asked before every change, so read from sysfs rather than by starting `ip link show`.
    this.linkExists = options.linkExists ?? (async (name) => pathExists(`/sys/class/net/${name}`));
    this.stateFile = join(options.stateDir, 'ports.json');
    this.tableName =
      options.tableName ?? `novum_${createHash('sha256').update(options.stateDir).digest('hex').slice(0, 8)}`;
  }

  /** The path a container runtime joins (OCI `linux.namespaces[].path`). */
  static netnsPath(instanceUuid: string): string {
    return `${NETNS_DIR}/${netnsName(instanceUuid)}`;
  }

  /** Whether guests get a metadata service on their networks (and a route to it). */
  get servesMetadata(): boolean {
    return this.options.metadata !== undefined;
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
    await this.serial(async () => {
      const state = await this.load();
      await this.applyFirewall(state);
      // The namespaces outlive the agent, its listeners do not: each network's is opened again.
      for (const [networkId, bridge] of this.networksOf(state.ports)) {
        const mtu = await readFile(`/sys/class/net/${bridge}/mtu`, 'utf8').catch(() => `${DEFAULT_MTU}`);
        await this.ensureMetadata(networkId, bridge, Number(mtu.trim()) || DEFAULT_MTU);
      }
    });
  }

  plugged(): Promise<PluggedPort[]> {
    return this.serial(async () => (await this.load()).ports);
  }

  /**
   * Puts the container's ports into its persistent namespace `novum-<uuid>` (created when missing) as
   * eth0, eth1, ... with each port's MAC, addresses and MTU, the default route via the first gateway, and
   * their host ends on the networks' bridges. Idempotent: a port already there is left as it is.
   * `attachPid`: the namespace is that process's (a container's init made by the runtime), named here.
   * Resolves with the namespace's path.
   *
   * What the container shares with others (ports.json, the firewall, its networks' bridges, tunnel and
   * metadata devices) is seen to on the queue; its own devices are made after, off the queue, so that a host
   * building many containers plugs them side by side rather than one after another (the queue was the
   * slowest part of a burst of builds). The ports recorded first keep their bridges from being pruned
   * meanwhile, and no two calls for one instance overlap (the agent runs one operation per instance).
   */
  async plugContainer(
    instanceUuid: string,
    vifs: readonly Vif[],
    options: { attachPid?: number } = {},
  ): Promise<string> {
    const netns = netnsName(instanceUuid);
    // The bridges' own lines (mtu, up), run with the container's host batch.
    const bridgeLines: string[][] = [];
    const ports = await this.serial(async () => {
      const state = await this.load();
      const recorded = vifs.map((vif) =>
        vethPort(
          instanceUuid,
          vif,
          state.ports.find((port) => port.portId === vif.id),
        ),
      );
      for (const [index, port] of recorded.entries()) {
        state.ports = withPort(state.ports, port);
        await this.ensureBridge(port.bridge, vifs[index].mtu ?? DEFAULT_MTU, bridgeLines);
      }
      // The firewall first: its rules match the devices by name, so they hold before the devices exist, and
      // the host ends join their bridges (last in the host's batch) only once they do.
      await this.save(state);
      await this.applyFirewall(state);
      for (const [index, port] of recorded.entries()) {
        await this.ensureTunnel(port, vifs[index].mtu ?? DEFAULT_MTU);
        await this.ensureMetadata(port.networkId, port.bridge, vifs[index].mtu ?? DEFAULT_MTU);
      }
      return recorded;
    });
    // Every command of the host in one `ip -batch`, and every command of the namespace in another, made
    // after the host's has moved the veth peers into it: one request to the host spawner for them all.
    const hostBatch: string[][] = [...new Map(bridgeLines.map((line) => [line.join(' '), line])).values()];
    if (options.attachPid !== undefined) {
      hostBatch.push(['netns', 'attach', netns, String(options.attachPid)]);
    } else if (!(await this.netnsExists(netns))) {
      const created = await this.run('ip', ['netns', 'add', netns]);
      if (created.code !== 0 && !/exists/i.test(created.stderr)) this.fail('ip netns add', created);
    }
    const joins: string[][] = [];
    const nsBatch: string[][] = [['link', 'set', 'dev', 'lo', 'up']];
    let routed4 = false;
    let routed6 = false;
    for (const [index, vif] of vifs.entries()) {
      const devname = vethName(vif.id);
      const mtu = vif.mtu ?? DEFAULT_MTU;
      if (!(await this.linkExists(devname))) {
        const peer = vethPeerName(vif.id);
        const ifname = `eth${index}`;
        hostBatch.push([
          ...['link', 'add', devname, 'mtu', String(mtu), 'type', 'veth'],
          ...['peer', 'name', peer, 'mtu', String(mtu), 'netns', netns],
        ]);
        // The host end gets no IPv6 address of its own (no link-local when it comes up): a bridge port.
        joins.push(['link', 'set', 'dev', devname, 'addrgenmode', 'none']);
        nsBatch.push(['link', 'set', 'dev', peer, 'name', ifname, 'address', vif.macAddress]);
        for (const ip of vif.fixedIps) {
          const prefix = ip.cidr.split('/')[1] ?? (ip.version === 4 ? '32' : '128');
          // No `-6` in a batch line (global options are not): the address tells the family.
          nsBatch.push([
            ...['addr', 'add', `${ip.address}/${prefix}`, 'dev', ifname],
            ...(ip.version === 6 ? ['nodad'] : []),
          ]);
        }
        nsBatch.push(['link', 'set', 'dev', ifname, 'up']);
        for (const ip of vif.fixedIps) {
          if (!ip.gateway || (ip.version === 4 ? routed4 : routed6)) continue;
          const any = ip.version === 6 ? '::/0' : '0.0.0.0/0';
          nsBatch.push(['route', 'replace', any, 'via', ip.gateway, 'dev', ifname]);
          if (ip.version === 4) routed4 = true;
          else routed6 = true;
        }
        for (const ip of vif.fixedIps) {
          for (const route of ip.hostRoutes ?? []) {
            const onLink = /^(0\.0\.0\.0|::)$/.test(route.nexthop);
            nsBatch.push([
              ...['route', 'replace', route.destination],
              ...(onLink ? [] : ['via', route.nexthop]),
              ...['dev', ifname],
            ]);
          }
        }
      }
      joins.push(['link', 'set', 'dev', devname, 'master', ports[index].bridge, 'up']);
    }
    await this.steps([
      ipBatch(undefined, [...hostBatch, ...joins]),
      // As Docker does: ICMP echo sockets and low ports for any user, so that ping works without raw
      // sockets (which a user-namespaced root cannot open in a namespace the host made).
      {
        netnsPath: HostNetwork.netnsPath(instanceUuid),
        sysctls: {
          'net.ipv4.ping_group_range': '0 2147483647',
          'net.ipv4.ip_unprivileged_port_start': '0',
        },
      },
      ipBatch(netns, nsBatch),
    ]);
    return HostNetwork.netnsPath(instanceUuid);
  }

  /**
   * The firewall of a container's ports, ahead of their devices (the rules match devices by name): run beside
   * the runtime's create, it takes the `nft` run off plugContainer's way, which then finds the rules as they
   * must be. Nothing joins a bridge here.
   */
  prepareContainer(instanceUuid: string, vifs: readonly Vif[]): Promise<void> {
    // The containers that ask while their turn has not come share one task and one `nft` run: a host building
    // many at once loads the ruleset once per batch rather than once per container. Each caller's promise
    // settles once a ruleset with its ports is loaded.
    if (!this.preparing) {
      const batch: PrepareBatch = { containers: [], done: Promise.resolve() };
      batch.done = this.serial(async () => {
        if (this.preparing === batch) this.preparing = undefined;
        const state = await this.load();
        for (const container of batch.containers) {
          for (const vif of container.vifs) {
            const known = state.ports.find((port) => port.portId === vif.id);
            state.ports = withPort(state.ports, vethPort(container.instanceUuid, vif, known));
          }
        }
        await this.save(state);
        await this.applyFirewall(state);
      });
      this.preparing = batch;
    }
    this.preparing.containers.push({ instanceUuid, vifs });
    return this.preparing.done;
  }

  /** A VM's port: a tap device on its network's bridge, for QEMU to open by name. Idempotent. */
  plugTap(instanceUuid: string, vif: Vif): Promise<{ ifname: string }> {
    return this.serial(async () => {
      const devname = tapName(vif.id);
      const mtu = vif.mtu ?? DEFAULT_MTU;
      const bridge = vif.bridge ?? bridgeName(vif.networkId);
      if (!(await this.linkExists(devname))) {
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
        vni: vniOf(vif),
        physical: physicalOf(vif),
      };
      state.ports = withPort(state.ports, port);
      await this.ensureBridge(bridge, mtu);
      await this.save(state);
      await this.applyFirewall(state);
      await this.attach(port);
      await this.ensureTunnel(port, mtu);
      await this.ensureMetadata(port.networkId, bridge, mtu);
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
    await this.pruneBridges(state, this.networksOf(ports));
  }

  /** The bridges of these networks that neither a guest port nor a router port uses any more go, with theirs. */
  private async pruneBridges(state: State, networks: Map<string, string>): Promise<void> {
    const routerBridges = new Set(
      (state.routers ?? []).flatMap((router) => router.ports.map((p) => p.bridge)),
    );
    for (const [networkId, bridge] of networks) {
      if (state.ports.some((port) => port.bridge === bridge) || routerBridges.has(bridge)) continue;
      await this.removeMetadata(networkId);
      await this.removeTunnel(networkId);
      await this.allowThroughHostFirewall(bridge, false);
      const deleted = await this.run('ip', ['link', 'delete', 'dev', bridge]);
      if (deleted.code !== 0 && !/cannot find device|does not exist/i.test(deleted.stderr)) {
        this.fail('ip link delete', deleted);
      }
    }
  }

  /**
   * Makes this host serve exactly these routers (Neutron's legacy L3 agent): each in a namespace
   * `novum-r-<id>` with IP forwarding, a veth per port from the network's bridge (`qr-...` for interfaces,
   * `qg-...` for the gateway, with the port's MAC and addresses, the floating IPs on the gateway too), the
   * default route via the external subnet's gateway, the router's extra routes, and its NAT as nftables
   * rules inside the namespace. Routers and ports no longer given are removed, with the bridges only they used.
   */
  syncRouters(routers: readonly RouterSpec[]): Promise<void> {
    return this.serial(async () => {
      const state = await this.load();
      const before = state.routers ?? [];
      const wanted = routers.map((spec) => ({
        id: spec.id,
        ports: [
          ...spec.interfaces.map((port) => routerPort('interface', port)),
          ...(spec.gateway ? [routerPort('gateway', spec.gateway)] : []),
        ],
      }));
      const keep = new Set(wanted.flatMap((router) => router.ports.map((port) => port.devname)));
      const stale = before.flatMap((router) => router.ports).filter((port) => !keep.has(port.devname));
      const gone = before.filter((router) => !wanted.some((w) => w.id === router.id));
      // The firewall knows every router device before one joins a bridge, and none that is going.
      state.routers = wanted;
      await this.save(state);
      await this.applyFirewall(state);
      for (const port of stale) {
        const deleted = await this.run('ip', ['link', 'delete', 'dev', port.devname]);
        if (deleted.code !== 0 && !/cannot find device|does not exist/i.test(deleted.stderr)) {
          this.fail('ip link delete', deleted);
        }
      }
      for (const router of gone) {
        const deleted = await this.run('ip', ['netns', 'delete', routerNetnsName(router.id)]);
        if (deleted.code !== 0 && !/no such file/i.test(deleted.stderr))
          this.fail('ip netns delete', deleted);
      }
      await this.pruneBridges(state, new Map(stale.map((port) => [port.networkId, port.bridge])));
      for (const spec of routers) await this.plugRouter(spec);
    });
  }

  private async plugRouter(spec: RouterSpec): Promise<void> {
    const netns = routerNetnsName(spec.id);
    if (!(await this.netnsExists(netns))) {
      const created = await this.run('ip', ['netns', 'add', netns]);
      if (created.code !== 0 && !/exists/i.test(created.stderr)) this.fail('ip netns add', created);
      await this.batch(undefined, [
        ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'],
        ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1'],
      ]);
      await this.batch(netns, [['link', 'set', 'dev', 'lo', 'up']]);
    }
    const ports: [PluggedRouterPort['kind'], RouterPortSpec][] = [
      ...spec.interfaces.map((port) => ['interface', port] as [PluggedRouterPort['kind'], RouterPortSpec]),
      ...(spec.gateway ? [['gateway', spec.gateway] as [PluggedRouterPort['kind'], RouterPortSpec]] : []),
    ];
    for (const [kind, port] of ports) {
      const plugged = routerPort(kind, port);
      const inner = routerPortName(kind, port.portId);
      const mtu = port.mtu ?? DEFAULT_MTU;
      await this.ensureBridge(plugged.bridge, mtu);
      if (!(await this.linkExists(plugged.devname))) {
        await this.batch(undefined, [
          [
            ...['link', 'add', plugged.devname, 'mtu', String(mtu), 'type', 'veth'],
            ...['peer', 'name', inner, 'mtu', String(mtu), 'netns', netns],
          ],
        ]);
        await this.batch(netns, [
          ['link', 'set', 'dev', inner, 'address', port.macAddress],
          ['link', 'set', 'dev', inner, 'up'],
        ]);
      }
      if ((await this.masterOf(plugged.devname)) !== plugged.bridge) await this.attach(plugged);
      await this.ensureTunnel(plugged, mtu);
      // The gateway also holds the floating IPs, so that the external network's ARP finds them here.
      const wanted = [
        ...port.addresses,
        ...(kind === 'gateway' ? spec.floatingIps.map((fip) => `${fip.floating}/32`) : []),
      ];
      await this.reconcileAddresses(netns, inner, wanted);
    }
    const routes: string[][] = [];
    const gatewayDevice = spec.gateway ? routerPortName('gateway', spec.gateway.portId) : '';
    if (spec.gateway?.nexthop) {
      routes.push(['route', 'replace', 'default', 'via', spec.gateway.nexthop, 'dev', gatewayDevice]);
    }
    for (const route of spec.routes)
      routes.push(['route', 'replace', route.destination, 'via', route.nexthop]);
    if (routes.length) await this.batch(netns, routes);
    const script = join(this.options.stateDir, `router-${spec.id}.nft`);
    await writeFile(script, renderRouterNat(spec, gatewayDevice || 'none'));
    await this.mustRun('ip', ['netns', 'exec', netns, 'nft', '-f', script]);
  }

  /** The device's addresses become exactly these (CIDR notation), adding before removing. */
  private async reconcileAddresses(netns: string, device: string, wanted: readonly string[]): Promise<void> {
    const shown = await this.run('ip', ['-n', netns, '-o', 'addr', 'show', 'dev', device, 'scope', 'global']);
    const current = [...shown.stdout.matchAll(/\binet6? (\S+)/g)].map((match) => match[1]);
    const lines: string[][] = [];
    for (const address of wanted) {
      if (!current.includes(address)) lines.push(['addr', 'add', address, 'dev', device]);
    }
    for (const address of current) {
      if (!wanted.includes(address)) lines.push(['addr', 'del', address, 'dev', device]);
    }
    if (lines.length) await this.batch(netns, lines);
  }

  /**
   * The network's bridge, up, with its MTU, with no IPv6 (no address at all) and no routing from it. The
   * `link set` goes into `batch` when the caller runs one.
   */
  private async ensureBridge(bridge: string, mtu: number, batch?: string[][]): Promise<void> {
    if (!(await this.linkExists(bridge))) {
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
      await this.sysctl(`net.ipv6.conf.${bridge}.disable_ipv6`, '1');
      await this.sysctl(`net.ipv4.conf.${bridge}.forwarding`, '0');
    }
    const up = ['link', 'set', 'dev', bridge, 'mtu', String(mtu), 'up'];
    if (batch) batch.unshift(up);
    else await this.mustRun('ip', up);
    await this.allowThroughHostFirewall(bridge, true);
  }

  /**
   * The network's VXLAN device on its bridge (when this host has a tunnel address and the port's network is
   * a VXLAN one), so that its guests reach the network's guests on other hosts. Idempotent.
   */
  private async ensureTunnel(
    port: Pick<PluggedPort, 'networkId' | 'bridge' | 'vni' | 'physical'>,
    mtu: number,
  ): Promise<void> {
    await this.ensureUplink(port);
    const tunnel = this.options.tunnel;
    if (!tunnel || port.vni === undefined) return;
    const devname = tunnelName(port.networkId);
    if (!(await this.linkExists(devname))) {
      const device = await this.deviceOf(tunnel);
      const added = await this.run('ip', [
        ...['link', 'add', 'name', devname, 'mtu', String(mtu), 'type', 'vxlan', 'id', String(port.vni)],
        ...['group', tunnel.group ?? DEFAULT_VXLAN_GROUP, 'dev', device, 'local', tunnel.localIp],
        ...['dstport', String(tunnel.port ?? DEFAULT_VXLAN_PORT)],
      ]);
      if (added.code !== 0 && !/exists/i.test(added.stderr)) this.fail('ip link add (vxlan)', added);
    }
    if ((await this.masterOf(devname)) !== port.bridge) await this.attach({ devname, bridge: port.bridge });
  }

  /**
   * A flat or VLAN network's way off this host: its physical network's interface on the bridge (flat), or a
   * VLAN subinterface of it (`novumu<network>`, VLAN id = the segmentation id). Idempotent; nothing for a
   * physical network this host has no interface for.
   */
  private async ensureUplink(port: Pick<PluggedPort, 'networkId' | 'bridge' | 'physical'>): Promise<void> {
    const devname = this.uplinkOf(port);
    if (!devname || !port.physical) return;
    if (port.physical.vlan && !(await this.linkExists(devname))) {
      const parent = this.options.physicalInterfaces![port.physical.network];
      const added = await this.run('ip', [
        ...['link', 'add', 'link', parent, 'name', devname, 'type', 'vlan', 'id', String(port.physical.vlan)],
      ]);
      if (added.code !== 0 && !/exists/i.test(added.stderr)) this.fail('ip link add (vlan)', added);
    }
    if ((await this.masterOf(devname)) !== port.bridge) {
      await this.mustRun('ip', ['link', 'set', 'dev', devname, 'master', port.bridge, 'up']);
    }
  }

  /** The device that carries the network off this host (the interface, or its VLAN subinterface), if any. */
  private uplinkOf(port: Pick<PluggedPort, 'networkId' | 'physical'>): string | undefined {
    const parent = port.physical && this.options.physicalInterfaces?.[port.physical.network];
    if (!parent || !port.physical) return undefined;
    return port.physical.vlan ? vlanName(port.networkId) : parent;
  }

  private async removeTunnel(networkId: string): Promise<void> {
    // A VLAN subinterface is Novum's and goes; a flat network's interface leaves the bridge with it.
    if (await this.linkExists(vlanName(networkId))) {
      const gone = await this.run('ip', ['link', 'delete', 'dev', vlanName(networkId)]);
      if (gone.code !== 0 && !/cannot find device|does not exist/i.test(gone.stderr)) {
        this.fail('ip link delete', gone);
      }
    }
    const devname = tunnelName(networkId);
    if (!(await this.linkExists(devname))) return;
    const deleted = await this.run('ip', ['link', 'delete', 'dev', devname]);
    if (deleted.code !== 0 && !/cannot find device|does not exist/i.test(deleted.stderr)) {
      this.fail('ip link delete', deleted);
    }
  }

  /** The device that holds the tunnel address (`ip -o addr show to <address>`), found once. */
  private async deviceOf(tunnel: TunnelOptions): Promise<string> {
    if (tunnel.device) return tunnel.device;
    if (this.tunnelDevice) return this.tunnelDevice;
    const shown = await this.run('ip', ['-o', 'addr', 'show', 'to', tunnel.localIp]);
    const device = shown.stdout.split('\n')[0]?.split(/\s+/)[1]?.split('@')[0];
    if (shown.code !== 0 || !device) {
      throw new DriverError(`No network device of this host has the tunnel address ${tunnel.localIp}.`);
    }
    this.tunnelDevice = device;
    return device;
  }

  /** Each network of these ports with its bridge. */
  private networksOf(ports: readonly PluggedPort[]): Map<string, string> {
    return new Map(ports.map((port) => [port.networkId, port.bridge]));
  }

  /**
   * The network's metadata namespace (as Neutron's metadata proxy has one per network): a veth from the
   * bridge whose other end holds METADATA_ADDRESS, with the agent's listener inside. Guests of networks
   * with the same addresses reach each their own, and none reaches the host itself. Idempotent.
   */
  private async ensureMetadata(networkId: string, bridge: string, mtu: number): Promise<void> {
    const metadata = this.options.metadata;
    if (!metadata) return;
    const netns = metadataNetnsName(networkId);
    const devname = metadataVethName(networkId);
    if (!(await this.linkExists(devname))) {
      // A listener left in a namespace that lost its link would serve nobody: it goes with it.
      await metadata.close(networkId);
      const peer = metadataVethPeerName(networkId);
      if (await this.netnsExists(netns)) {
        await this.run('ip', ['-n', netns, 'link', 'delete', 'dev', peer]);
      } else {
        const created = await this.run('ip', ['netns', 'add', netns]);
        if (created.code !== 0 && !/exists/i.test(created.stderr)) this.fail('ip netns add', created);
      }
      await this.batch(undefined, [
        ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1'],
        ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1'],
        [
          ...['link', 'add', devname, 'mtu', String(mtu), 'type', 'veth'],
          ...['peer', 'name', peer, 'mtu', String(mtu), 'netns', netns],
        ],
      ]);
      await this.batch(netns, [
        ['link', 'set', 'dev', 'lo', 'up'],
        ['addr', 'add', `${METADATA_ADDRESS}/32`, 'dev', peer],
        ['link', 'set', 'dev', peer, 'up'],
        // Guests are on the link: replies go straight to them, whatever their subnet.
        ['route', 'replace', 'default', 'dev', peer],
      ]);
    }
    // Every plug of the network comes here: the link is attached again only if it is not on its bridge.
    if ((await this.masterOf(devname)) !== bridge) await this.attach({ devname, bridge });
    await metadata.open(networkId, netns);
  }

  private async removeMetadata(networkId: string): Promise<void> {
    const metadata = this.options.metadata;
    if (!metadata) return;
    await metadata.close(networkId);
    const deleted = await this.run('ip', ['link', 'delete', 'dev', metadataVethName(networkId)]);
    if (deleted.code !== 0 && !/cannot find device|does not exist/i.test(deleted.stderr)) {
      this.fail('ip link delete', deleted);
    }
    const gone = await this.run('ip', ['netns', 'delete', metadataNetnsName(networkId)]);
    if (gone.code !== 0 && !/no such file/i.test(gone.stderr)) this.fail('ip netns delete', gone);
  }

  /** The host end joins the bridge (once the firewall knows it), without an IPv6 address of its own. */
  private async attach(port: Pick<PluggedPort, 'devname' | 'bridge'>): Promise<void> {
    await this.sysctl(`net.ipv6.conf.${port.devname}.disable_ipv6`, '1');
    await this.mustRun('ip', ['link', 'set', 'dev', port.devname, 'master', port.bridge, 'up']);
  }

  /**
   * br_netfilter hands bridged IP traffic to the host's iptables FORWARD chain too; where that chain drops
   * by default (Docker sets `-P FORWARD DROP`), guest traffic would die there after passing Novum's own
   * rules. Such hosts get an ACCEPT for traffic within each Novum bridge, removed with the bridge.
   */
  private async allowThroughHostFirewall(bridge: string, allow: boolean): Promise<void> {
    // Asked once per bridge while this process runs (and again after a restart), not at every plug: two
    // process starts each on a host that builds many guests.
    if (allow && this.openedBridges.has(bridge)) return;
    this.openedBridges.delete(bridge);
    const forward = await this.run('iptables', ['-S', 'FORWARD']);
    if (forward.code !== 0) {
      if (allow) this.openedBridges.add(bridge);
      return;
    }
    const rule = ['FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT'];
    const present = (await this.run('iptables', ['-C', ...rule])).code === 0;
    if (allow && !present && /^-P FORWARD DROP/m.test(forward.stdout)) {
      await this.mustRun('iptables', ['-I', ...rule.slice(0, 1), '1', ...rule.slice(1)]);
    } else if (!allow && present) {
      await this.mustRun('iptables', ['-D', ...rule]);
    }
    if (allow) this.openedBridges.add(bridge);
  }

  private async applyFirewall(given?: State): Promise<void> {
    const state = given ?? (await this.load());
    // Every state that reaches here was saved (or loaded) just before: the text says what it holds.
    const text = this.stateText;
    if (this.applied && text !== undefined && text === this.appliedText) return;
    this.appliedText = undefined;
    const plugged = state.ports;
    const ports: FirewallPort[] = plugged;
    const metadata: MetadataDevice[] = this.options.metadata
      ? [...this.networksOf(plugged)].map(([networkId, bridge]) => ({
          devname: metadataVethName(networkId),
          bridge,
        }))
      : [];
    const routerPorts = (state.routers ?? []).flatMap((router) => router.ports);
    const tunnels: TunnelDevice[] = this.options.tunnel
      ? [
          ...new Map(
            [...plugged, ...routerPorts]
              .filter((port) => port.vni !== undefined)
              .map((port) => [port.networkId, port.bridge]),
          ),
        ].map(([networkId, bridge]) => ({ devname: tunnelName(networkId), bridge }))
      : [];
    // A physical network's interface is trusted as a tunnel is: the destination port's ingress rules decide.
    for (const [devname, bridge] of new Map(
      [...plugged, ...routerPorts].flatMap((port) => {
        const uplink = this.uplinkOf(port);
        return uplink ? [[uplink, port.bridge] as [string, string]] : [];
      }),
    )) {
      tunnels.push({ devname, bridge });
    }
    const routers: RouterDevice[] = routerPorts.map((port) => ({
      devname: port.devname,
      bridge: port.bridge,
    }));
    const ruleset = buildRuleset(this.tableName, ports, metadata, tunnels, routers, this.applied);
    // Only the difference is loaded (a port's chains and map entries, a group's members): a host building
    // many guests at once would otherwise load a ruleset that grows with each of them, once per build.
    // A change that changes no rule (a port's status, a group's description) costs no `nft` run.
    const change = renderChange(this.applied, ruleset);
    if (!change) {
      this.appliedText = text;
      return;
    }
    const previous = this.applied;
    this.applied = undefined;
    // ruleset.nft is always the whole of what is loaded (for the operator, and what a start loads).
    const whole = join(this.options.stateDir, 'ruleset.nft');
    const full = renderFull(ruleset);
    await writeFile(whole, full);
    if (previous && change !== full) {
      const script = join(this.options.stateDir, 'ruleset-change.nft');
      await writeFile(script, change);
      const result = await this.run('nft', ['-f', script]);
      if (result.code === 0) {
        this.applied = ruleset;
        this.appliedText = text;
        return;
      }
      // The tables were changed behind this process's back (or a bug): they are loaded whole instead.
      this.options.warn?.(
        `nft change failed, loading the whole ruleset: ${result.stderr.trim().slice(0, 300)}`,
      );
    }
    await this.mustRun('nft', ['-f', whole]);
    this.applied = ruleset;
    this.appliedText = text;
  }

  private async load(): Promise<State> {
    // Read once: from then on this process is the file's only writer (every change runs on its queue).
    const text = this.stateText ?? readSmallFile(this.stateFile);
    this.stateText = text;
    return text ? fromStored(JSON.parse(text) as StoredState) : { ports: [] };
  }

  private async save(state: State): Promise<void> {
    const text = JSON.stringify(toStored(state));
    // Nothing changed (a container's ports recorded again as its firewall had them): nothing to write.
    if (text === this.stateText) return;
    this.stateText = undefined;
    replaceSmallFile(this.stateFile, text);
    this.stateText = text;
  }

  /** `ip [-n netns] -batch -`: many commands for one process start; the first that fails fails them all. */
  private async batch(netns: string | undefined, lines: readonly string[][]): Promise<void> {
    await this.steps([ipBatch(netns, lines)]);
  }

  /**
   * `ip [-n netns] -batch -` one after another: one request to the host spawner for them all; the first that
   * fails stops them.
   */
  private async batches(
    steps: readonly (readonly [string | undefined, readonly string[][]])[],
  ): Promise<void> {
    await this.steps(steps.map(([netns, lines]) => ipBatch(netns, lines)));
  }

  private async steps(steps: readonly Step[]): Promise<void> {
    const result = await this.runSteps(steps);
    if (result.failed === undefined) return;
    this.fail(stepName(steps[result.failed]), result);
  }

  /** A host (not namespace) sysctl, written to /proc/sys without starting `sysctl`. */
  private async sysctl(key: string, value: string): Promise<void> {
    if (this.options.sysctl) return this.options.sysctl(key, value);
    await writeFile(`/proc/sys/${key.replace(/\./g, '/')}`, value).catch((error: Error) => {
      throw new DriverError(`sysctl ${key}=${value} failed: ${error.message}`);
    });
  }

  /** The bridge a link is a port of (its sysfs `master`), if any. */
  private async masterOf(devname: string): Promise<string | undefined> {
    if (this.options.masterOf) return this.options.masterOf(devname);
    return linkTarget(`/sys/class/net/${devname}/master`)?.split('/').pop();
  }

  private async netnsExists(netns: string): Promise<boolean> {
    return this.options.netnsExists ? this.options.netnsExists(netns) : pathExists(`${NETNS_DIR}/${netns}`);
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

/** `ip [-n netns] -batch -` with these lines on its stdin, as a step of runSteps. */
function ipBatch(netns: string | undefined, lines: readonly string[][]): Step {
  return { ipBatch: { ...(netns !== undefined ? { netns } : {}), lines } };
}
