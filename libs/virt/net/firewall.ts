import { IP_PROTOCOL_NUMBERS, normalizeCidr, parseCidr, parseIp } from '@novum/common';
import { linkLocalAddress, METADATA_ADDRESS } from './names';

/** One Neutron security group rule, as the network API shows it. */
export interface SecurityRule {
  direction: 'ingress' | 'egress';
  ethertype: 'IPv4' | 'IPv6';
  /** A protocol name or number as Neutron keeps it; null: any. */
  protocol: string | null;
  portRangeMin: number | null;
  portRangeMax: number | null;
  remoteIpPrefix: string | null;
  remoteGroupId: string | null;
}

/** What the firewall needs to know of a port beyond its addresses (Neutron's port security attributes). */
export interface PortFilter {
  portSecurityEnabled: boolean;
  allowedAddressPairs: { ipAddress: string; macAddress?: string }[];
  /** The rules of all the port's security groups. */
  rules: SecurityRule[];
  /** The fixed IPs (and allowed address pairs) of the ports in each group a rule names as remote group. */
  remoteGroupMembers: Record<string, string[]>;
}

/** A guest port on this host as the firewall sees it. */
export interface FirewallPort {
  /** The host-side device (veth or tap) on the bridge. */
  devname: string;
  bridge: string;
  macAddress: string;
  ips: string[];
  /** Absent: nothing is known of the port's groups yet, so nothing but its own traffic passes (fail closed). */
  filter?: PortFilter;
}

/** The host end of a network's metadata namespace (the veth on the network's bridge). */
export interface MetadataDevice {
  devname: string;
  bridge: string;
}

/** A network's overlay tunnel on this host (its VXLAN device on the network's bridge), to its other hosts. */
export interface TunnelDevice {
  devname: string;
  bridge: string;
}

/** A router's port on this host (the host end of its veth into the router's namespace, on the network's bridge). */
export interface RouterDevice {
  devname: string;
  bridge: string;
}

/**
 * Packet marks carry port identity from the bridge family (which knows the ports but has no conntrack on
 * this kernel) to the inet family (which br_netfilter feeds with bridged IP traffic, with conntrack, but
 * which only sees the bridge): TAG in the top byte, the source port's index in bits 12-23, the
 * destination port's in bits 0-11.
 */
export const MARK_TAG = 0xa5000000;
const MARK_TAG_MASK = 0xff000000;
const SOURCE_MASK = 0x00fff000;
const DESTINATION_MASK = 0x00000fff;
export const MAX_PORTS = 4092;
/** The port index all metadata devices share in the marks (no guest port has it). */
const METADATA_INDEX = 0xfff;
/** The port index all tunnel devices share: the guest ports of other hosts, whose own hosts filter them. */
const TUNNEL_INDEX = 0xffe;
/** The port index all router devices share: what a router forwards passes the destination port's ingress rules. */
const ROUTER_INDEX = 0xffd;

const hex = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/** Protocols whose rules carry a port range (matched on the transport header's destination port). */
const PORT_PROTOCOLS = new Set([6, 17, 33, 132, 136]);

/** ICMPv6 that IPv6 cannot work without (neighbour discovery, MLD), allowed as Neutron's firewalls do. */
const ICMPV6_ALWAYS = [
  'nd-neighbor-solicit',
  'nd-neighbor-advert',
  'nd-router-solicit',
  'mld-listener-query',
  'mld-listener-report',
  'mld-listener-done',
  'mld2-listener-report',
];

function protocolNumber(protocol: string): number | undefined {
  if (/^\d+$/.test(protocol)) return Number(protocol);
  const name = protocol.toLowerCase();
  return Object.hasOwn(IP_PROTOCOL_NUMBERS, name) ? IP_PROTOCOL_NUMBERS[name] : undefined;
}

const quote = (name: string) => `"${name.replace(/[^A-Za-z0-9_.-]/g, '')}"`;

function versionOf(address: string): 4 | 6 | undefined {
  const bare = address.split('/')[0];
  return parseIp(bare)?.version;
}

/** An address or a prefix with its host bits cleared, as nft wants it (`10.0.0.7/24` → `10.0.0.0/24`). */
function nftAddress(address: string): string | undefined {
  if (!address.includes('/')) return parseIp(address) ? address : undefined;
  if (!parseCidr(address, false)) return undefined;
  const normalized = normalizeCidr(address)!;
  const [network, prefix] = normalized.split('/');
  return prefix === (versionOf(network) === 4 ? '32' : '128') ? network : normalized;
}

function elements(addresses: readonly string[], version: 4 | 6): string[] {
  return [
    ...new Set(
      addresses
        .filter((address) => versionOf(address) === version)
        .map(nftAddress)
        .filter((a): a is string => !!a),
    ),
  ].sort();
}

function remoteSetName(groupId: string, version: 4 | 6): string {
  return `rg_${groupId.replace(/-/g, '').slice(0, 16)}_${version}`;
}

/** The nft match of one rule on the port's side (`ingress`: the remote end is the source), or undefined. */
export function ruleMatch(rule: SecurityRule): string | undefined {
  const version = rule.ethertype === 'IPv6' ? 6 : 4;
  const ipKeyword = version === 4 ? 'ip' : 'ip6';
  const remoteField = rule.direction === 'ingress' ? 'saddr' : 'daddr';
  const parts = [`meta nfproto ${version === 4 ? 'ipv4' : 'ipv6'}`];
  if (rule.remoteIpPrefix) {
    const prefix = nftAddress(rule.remoteIpPrefix);
    if (!prefix || versionOf(prefix) !== version) return undefined;
    if (!prefix.endsWith('/0')) parts.push(`${ipKeyword} ${remoteField} ${prefix}`);
  } else if (rule.remoteGroupId) {
    parts.push(`${ipKeyword} ${remoteField} @${remoteSetName(rule.remoteGroupId, version)}`);
  }
  if (rule.protocol !== null) {
    let number = protocolNumber(rule.protocol);
    if (number === undefined) return undefined;
    // Neutron lets an IPv6 rule say `icmp` for ICMPv6.
    if (version === 6 && number === 1) number = 58;
    if ((number === 1 && version === 4) || (number === 58 && version === 6)) {
      const keyword = version === 4 ? 'icmp' : 'icmpv6';
      parts.push(`meta l4proto ${version === 4 ? 'icmp' : 'ipv6-icmp'}`);
      if (rule.portRangeMin !== null) parts.push(`${keyword} type ${rule.portRangeMin}`);
      if (rule.portRangeMin !== null && rule.portRangeMax !== null)
        parts.push(`${keyword} code ${rule.portRangeMax}`);
    } else {
      if (number === 58 && version === 4) return undefined;
      parts.push(`meta l4proto ${number}`);
      if (PORT_PROTOCOLS.has(number) && rule.portRangeMin !== null) {
        const max = rule.portRangeMax ?? rule.portRangeMin;
        parts.push(
          `th dport ${rule.portRangeMin === max ? rule.portRangeMin : `${rule.portRangeMin}-${max}`}`,
        );
      }
    }
  }
  return parts.join(' ');
}

const anonymousSet = (items: readonly string[]) => `{ ${items.join(', ')} }`;

/** The port's anti-spoofing chain in the bridge family: only its own MAC and addresses (and pairs) leave it. */
function fromChain(port: FirewallPort, index: number): string[] {
  const lines = [`meta mark set ${hex(MARK_TAG | (index << 12))}`];
  const filter = port.filter;
  if (filter && !filter.portSecurityEnabled) return [...lines, 'accept'];
  const pairs = filter?.allowedAddressPairs ?? [];
  const macs = [
    ...new Set([port.macAddress, ...pairs.map((pair) => pair.macAddress || port.macAddress)]),
  ].map((mac) => mac.toLowerCase());
  const addresses = [...port.ips, ...pairs.map((pair) => pair.ipAddress)];
  const v4 = elements(addresses, 4);
  const v6 = elements([...addresses, linkLocalAddress(port.macAddress)], 6);
  lines.push(`ether saddr != ${anonymousSet(macs)} drop`);
  lines.push('ether type vlan drop');
  // DHCP from a guest that has no address yet; a guest is never a DHCP server or an IPv6 router.
  lines.push('ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept');
  lines.push('udp sport 67 udp dport 68 drop');
  lines.push('icmpv6 type { nd-router-advert, nd-redirect } drop');
  lines.push('ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } accept');
  if (v4.length) {
    lines.push(`arp saddr ether != ${anonymousSet(macs)} drop`);
    lines.push(`arp saddr ip != ${anonymousSet(v4)} drop`);
    lines.push(`ip saddr != ${anonymousSet(v4)} drop`);
  } else {
    lines.push('ether type { arp, ip } drop');
  }
  lines.push(`ip6 saddr != ${anonymousSet(v6)} drop`);
  lines.push('accept');
  return lines;
}

/** The port's egress rules: allowed traffic returns to the base chain (for the destination's ingress). */
function egressChain(port: FirewallPort): string[] {
  const filter = port.filter;
  if (filter && !filter.portSecurityEnabled) return ['return'];
  const lines = [
    `meta l4proto ipv6-icmp icmpv6 type { ${ICMPV6_ALWAYS.join(', ')} } return`,
    'meta nfproto ipv4 udp sport 68 udp dport 67 return',
  ];
  for (const rule of filter?.rules ?? []) {
    if (rule.direction !== 'egress') continue;
    const match = ruleMatch(rule);
    if (match) lines.push(`${match} return`);
  }
  lines.push('drop');
  return lines;
}

function ingressChain(port: FirewallPort): string[] {
  const filter = port.filter;
  if (filter && !filter.portSecurityEnabled) return ['accept'];
  const lines = [
    `meta l4proto ipv6-icmp icmpv6 type { ${[...ICMPV6_ALWAYS, 'nd-router-advert'].join(', ')} } accept`,
  ];
  for (const rule of filter?.rules ?? []) {
    if (rule.direction !== 'ingress') continue;
    const match = ruleMatch(rule);
    if (match) lines.push(`${match} accept`);
  }
  lines.push('drop');
  return lines;
}

/** A named set or verdict map of the ruleset: its nft type line(s) and its elements (a map's: `key : verdict`). */
interface NamedSet {
  declaration: string[];
  elements: Map<string, string>;
}

/** One family's table: its chains (name → rules) and its named sets and maps. */
interface TableModel {
  chains: Map<string, string[]>;
  sets: Map<string, NamedSet>;
}

/**
 * A host's ruleset as data, so that a change can be loaded as the difference from the ruleset loaded before
 * (`renderChange`) instead of the whole of it: the ports' chains hang from named verdict maps, and each port
 * keeps its index (its chains' names, its marks) for as long as it is on the host.
 */
export interface Ruleset {
  table: string;
  /** Each port's index by its device name. */
  indices: Map<string, number>;
  bridge: TableModel;
  inet: TableModel;
}

const ifnameSet = (): NamedSet => ({ declaration: ['type ifname'], elements: new Map() });
const verdictMap = (key: string): NamedSet => ({
  declaration: [`type ${key} : verdict`],
  elements: new Map(),
});

/** The members of each remote group the ports' filters name: the union of what each port's filter says. */
export function groupMembers(ports: readonly Pick<FirewallPort, 'filter'>[]): Map<string, Set<string>> {
  const members = new Map<string, Set<string>>();
  for (const port of ports) {
    for (const [group, addresses] of Object.entries(port.filter?.remoteGroupMembers ?? {})) {
      const known = members.get(group) ?? new Set<string>();
      for (const address of addresses) known.add(address);
      members.set(group, known);
    }
  }
  return members;
}

/** Indices for the ports: the ones they had in `previous`, the lowest free ones for the others. */
function assignIndices(sorted: readonly FirewallPort[], previous?: Ruleset): Map<string, number> {
  const indices = new Map<string, number>();
  const taken = new Set<number>();
  for (const port of sorted) {
    const index = previous?.indices.get(port.devname);
    if (index !== undefined) {
      indices.set(port.devname, index);
      taken.add(index);
    }
  }
  let next = 1;
  for (const port of sorted) {
    if (indices.has(port.devname)) continue;
    while (taken.has(next)) next++;
    indices.set(port.devname, next);
    taken.add(next);
  }
  return indices;
}

/**
 * This host's guest ports' firewall, as data (`renderRuleset` makes it a script).
 *
 * - `bridge <table>`: on the way in from a guest, its anti-spoofing and the source mark; on the way out
 *   to a guest, the destination mark; nothing from a guest port reaches the host itself.
 * - `inet <table>` (bridged IPv4/IPv6 through br_netfilter): conntrack (replies pass), then the source
 *   port's egress rules, then the destination port's ingress rules; anything else on Novum's bridges drops.
 * - The metadata devices: a guest reaches only TCP port 80 of the metadata address behind them (after its
 *   egress rules), and they send nothing but ARP and the replies of those connections.
 * - The tunnel devices (a network's VXLAN to its other hosts): what leaves through one has passed the source
 *   port's egress rules here; what comes in from one passes the destination port's ingress rules here (the
 *   sending host applied its port's anti-spoofing and egress), as Neutron's firewalls split the work between
 *   hosts. A host's metadata service serves only its own guests: nothing crosses between a tunnel and a
 *   metadata device.
 * - The router devices (routers' ports on the networks): like a tunnel, a router is trusted to send what it
 *   forwards (from other networks, or NATed from outside) and the destination port's ingress rules decide;
 *   what guests send to it has passed their egress rules. Routers do not reach the metadata devices.
 *
 * `previous`: the ruleset loaded now, whose ports keep their indices; without it, ports are numbered by
 * device name.
 */
export function buildRuleset(
  table: string,
  ports: readonly FirewallPort[],
  metadata: readonly MetadataDevice[] = [],
  tunnels: readonly TunnelDevice[] = [],
  routers: readonly RouterDevice[] = [],
  previous?: Ruleset,
): Ruleset {
  if (ports.length > MAX_PORTS) throw new Error(`More than ${MAX_PORTS} guest ports on one host.`);
  const sorted = [...ports].sort((a, b) => a.devname.localeCompare(b.devname));
  const indices = assignIndices(sorted, previous);
  const bridge: TableModel = { chains: new Map(), sets: new Map() };
  const inet: TableModel = { chains: new Map(), sets: new Map() };
  const ruleset: Ruleset = { table, indices, bridge, inet };
  if (!sorted.length) return ruleset;
  const indexed = sorted.map((port) => ({ port, index: indices.get(port.devname)! }));
  const metadataDevices = [...new Set(metadata.map((device) => quote(device.devname)))].sort();
  const tunnelDevices = [...new Set(tunnels.map((device) => quote(device.devname)))].sort();
  const routerDevices = [...new Set(routers.map((device) => quote(device.devname)))].sort();

  const fromDevices = verdictMap('ifname');
  const toDevices = verdictMap('ifname');
  const guestDevices = ifnameSet();
  const special: [string[], string][] = [
    [metadataDevices, 'metadata'],
    [tunnelDevices, 'tunnel'],
    [routerDevices, 'router'],
  ];
  for (const { port, index } of indexed) {
    fromDevices.elements.set(quote(port.devname), `goto from_${index}`);
    toDevices.elements.set(quote(port.devname), `goto to_${index}`);
    guestDevices.elements.set(quote(port.devname), '');
    bridge.chains.set(`from_${index}`, fromChain(port, index));
    bridge.chains.set(`to_${index}`, [`meta mark set meta mark | ${hex(index)}`]);
  }
  for (const [devices, kind] of special) {
    for (const device of devices) {
      fromDevices.elements.set(device, `goto from_${kind}`);
      toDevices.elements.set(device, `goto to_${kind}`);
      guestDevices.elements.set(device, '');
    }
  }
  bridge.sets.set('from_devices', fromDevices);
  bridge.sets.set('to_devices', toDevices);
  bridge.sets.set('host_closed', guestDevices);
  bridge.chains.set('prerouting', [
    'type filter hook prerouting priority -300; policy accept;',
    'iifname vmap @from_devices',
  ]);
  if (metadataDevices.length) {
    bridge.chains.set('from_metadata', [
      `meta mark set ${hex(MARK_TAG | (METADATA_INDEX << 12))}`,
      `arp saddr ip ${METADATA_ADDRESS} accept`,
      `ip saddr ${METADATA_ADDRESS} tcp sport 80 accept`,
      'drop',
    ]);
    bridge.chains.set('to_metadata', [`meta mark set meta mark | ${hex(METADATA_INDEX)}`]);
  }
  if (tunnelDevices.length) {
    bridge.chains.set('from_tunnel', [`meta mark set ${hex(MARK_TAG | (TUNNEL_INDEX << 12))}`, 'accept']);
    bridge.chains.set('to_tunnel', [`meta mark set meta mark | ${hex(TUNNEL_INDEX)}`]);
  }
  if (routerDevices.length) {
    bridge.chains.set('from_router', [`meta mark set ${hex(MARK_TAG | (ROUTER_INDEX << 12))}`, 'accept']);
    bridge.chains.set('to_router', [`meta mark set meta mark | ${hex(ROUTER_INDEX)}`]);
  }
  const apart = [...tunnelDevices, ...routerDevices];
  bridge.chains.set(
    'crossing',
    apart.length && metadataDevices.length
      ? [
          `iifname { ${apart.join(', ')} } oifname { ${metadataDevices.join(', ')} } drop`,
          `iifname { ${metadataDevices.join(', ')} } oifname { ${apart.join(', ')} } drop`,
        ]
      : [],
  );
  bridge.chains.set('forward', [
    'type filter hook forward priority -200; policy accept;',
    'jump crossing',
    'oifname vmap @to_devices',
  ]);
  bridge.chains.set('input', [
    'type filter hook input priority -200; policy accept;',
    'iifname @host_closed drop',
  ]);

  const bridges = ifnameSet();
  for (const name of [...new Set(sorted.map((port) => port.bridge))].sort())
    bridges.elements.set(quote(name), '');
  inet.sets.set('bridges', bridges);
  const members = groupMembers(sorted);
  const referenced = new Set(
    sorted.flatMap((port) =>
      (port.filter?.rules ?? []).map((rule) => rule.remoteGroupId).filter((id): id is string => !!id),
    ),
  );
  for (const group of [...referenced].sort()) {
    for (const version of [4, 6] as const) {
      const items = elements([...(members.get(group) ?? [])], version);
      inet.sets.set(remoteSetName(group, version), {
        declaration: [`type ${version === 4 ? 'ipv4_addr' : 'ipv6_addr'}`, 'flags interval', 'auto-merge'],
        elements: new Map(items.map((item) => [item, ''])),
      });
    }
  }
  const egress = verdictMap('mark');
  const ingress = verdictMap('mark');
  for (const { port, index } of indexed) {
    egress.elements.set(hex(index << 12), `jump egress_${index}`);
    ingress.elements.set(hex(index), `jump ingress_${index}`);
    inet.chains.set(`egress_${index}`, egressChain(port));
    inet.chains.set(`ingress_${index}`, ingressChain(port));
  }
  if (metadataDevices.length) {
    ingress.elements.set(hex(METADATA_INDEX), 'jump metadata_in');
    inet.chains.set('metadata_in', [
      `meta nfproto ipv4 ip daddr ${METADATA_ADDRESS} tcp dport 80 accept`,
      'drop',
    ]);
  }
  // The destination's host applies its ingress rules.
  if (tunnelDevices.length) ingress.elements.set(hex(TUNNEL_INDEX), 'accept');
  // A router forwards what passed the source port's egress rules.
  if (routerDevices.length) ingress.elements.set(hex(ROUTER_INDEX), 'accept');
  inet.sets.set('egress_marks', egress);
  inet.sets.set('ingress_marks', ingress);
  inet.chains.set('forward', [
    'type filter hook forward priority -10; policy accept;',
    'iifname != @bridges return',
    `meta mark & ${hex(MARK_TAG_MASK)} != ${hex(MARK_TAG)} drop`,
    'ct state invalid drop',
    'ct state established,related accept',
    // Replies pass by conntrack; nothing opens a connection from a metadata namespace.
    `meta mark & ${hex(SOURCE_MASK)} ${hex(METADATA_INDEX << 12)} drop`,
    `meta mark & ${hex(SOURCE_MASK)} vmap @egress_marks`,
    `meta mark & ${hex(DESTINATION_MASK)} vmap @ingress_marks`,
    'drop',
  ]);
  return ruleset;
}

const FAMILIES = ['bridge', 'inet'] as const;

const isEmpty = (ruleset?: Ruleset) => !ruleset || !ruleset.indices.size;

/** `map` for a verdict map, `set` for a set: the word nft's commands name it by. */
const kindOf = (set: NamedSet) => (set.declaration[0].includes(': verdict') ? 'map' : 'set');

function elementList(set: NamedSet): string {
  return [...set.elements].map(([key, value]) => (value ? `${key} : ${value}` : key)).join(', ');
}

/**
 * The whole ruleset as one nft transaction that replaces both tables (so it also repairs tables changed
 * behind the agent's back). With no ports, the script only removes the tables.
 */
export function renderFull(ruleset: Ruleset): string {
  const { table } = ruleset;
  const out = [
    `table bridge ${table}`,
    `delete table bridge ${table}`,
    `table inet ${table}`,
    `delete table inet ${table}`,
  ];
  if (isEmpty(ruleset)) return `${out.join('\n')}\n`;
  for (const family of FAMILIES) {
    const model = ruleset[family];
    out.push(`table ${family} ${table} {`);
    for (const [name, set] of model.sets) {
      out.push(`  ${kindOf(set)} ${name} {`);
      out.push(...set.declaration.map((line) => `    ${line}`));
      if (set.elements.size) out.push(`    elements = { ${elementList(set)} }`);
      out.push('  }');
    }
    for (const [name, lines] of model.chains) {
      out.push(`  chain ${name} {`, ...lines.map((line) => `    ${line}`), '  }');
    }
    out.push('}');
  }
  return `${out.join('\n')}\n`;
}

const sameLines = (a: readonly string[] | undefined, b: readonly string[]) =>
  !!a && a.length === b.length && a.every((line, i) => line === b[i]);

/**
 * The nft transaction that turns the loaded ruleset `from` into `to`: new and changed sets and chains, map
 * elements added and removed, then what nothing refers to any more deleted. Empty when nothing changes. The
 * full script when either side has no ports (the tables come or go whole).
 */
export function renderChange(from: Ruleset | undefined, to: Ruleset): string {
  if (isEmpty(from) || isEmpty(to) || from!.table !== to.table) return renderFull(to);
  const { table } = to;
  const sets: string[] = [];
  const chains: string[] = [];
  const elements: string[] = [];
  const deletions: string[] = [];
  for (const family of FAMILIES) {
    const before = from![family];
    const after = to[family];
    const where = `${family} ${table}`;
    for (const [name, set] of after.sets) {
      const old = before.sets.get(name);
      const kind = kindOf(set);
      // A set whose type changed could still be in use: the tables are loaded anew.
      if (old && !sameLines(old.declaration, set.declaration)) return renderFull(to);
      if (!old) {
        sets.push(`add ${kind} ${where} ${name} { ${set.declaration.join('; ')}; }`);
        if (set.elements.size) elements.push(`add element ${where} ${name} { ${elementList(set)} }`);
        continue;
      }
      const interval = set.declaration.includes('flags interval');
      const changed = [...old.elements].some(([key, value]) => set.elements.get(key) !== value);
      const added = [...set.elements].filter(([key, value]) => old.elements.get(key) !== value);
      if (interval && (changed || added.length)) {
        // Intervals merged on the way in cannot be taken out one by one: the set is filled anew.
        sets.push(`flush set ${where} ${name}`);
        if (set.elements.size) sets.push(`add element ${where} ${name} { ${elementList(set)} }`);
        continue;
      }
      const gone = [...old.elements].filter(([key, value]) => set.elements.get(key) !== value);
      if (gone.length)
        elements.unshift(`delete element ${where} ${name} { ${gone.map(([key]) => key).join(', ')} }`);
      if (added.length) {
        const partial: NamedSet = { declaration: set.declaration, elements: new Map(added) };
        elements.push(`add element ${where} ${name} { ${elementList(partial)} }`);
      }
    }
    for (const [name, lines] of after.chains) {
      const old = before.chains.get(name);
      if (sameLines(old, lines)) continue;
      // A base chain (a hook) is not one of a port's: it changes only with the tables' layout.
      if (lines[0]?.startsWith('type ') || old?.[0]?.startsWith('type ')) return renderFull(to);
      if (old) chains.push(`flush chain ${where} ${name}`);
      else chains.push(`add chain ${where} ${name}`);
      for (const line of lines) chains.push(`add rule ${where} ${name} ${line}`);
    }
    for (const name of before.chains.keys()) {
      if (!after.chains.has(name)) deletions.push(`delete chain ${where} ${name}`);
    }
    for (const [name, set] of before.sets) {
      if (!after.sets.has(name)) deletions.push(`delete ${kindOf(set)} ${where} ${name}`);
    }
  }
  const script = [...sets, ...chains, ...elements, ...deletions];
  return script.length ? `${script.join('\n')}\n` : '';
}

/** The whole nft script for this host's guest ports, replacing the previous ruleset in one transaction. */
export function renderRuleset(
  table: string,
  ports: readonly FirewallPort[],
  metadata: readonly MetadataDevice[] = [],
  tunnels: readonly TunnelDevice[] = [],
  routers: readonly RouterDevice[] = [],
): string {
  return renderFull(buildRuleset(table, ports, metadata, tunnels, routers));
}
