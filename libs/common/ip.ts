import { isIPv4, isIPv6 } from 'node:net';

/** IP addresses as numbers, so that CIDR and pool arithmetic is exact for IPv4 and IPv6 alike. */
export interface Ip {
  version: 4 | 6;
  value: bigint;
}

export interface Cidr {
  version: 4 | 6;
  /** The network address. */
  network: bigint;
  prefix: number;
  /** The last address of the block. */
  last: bigint;
}

export const bits = (version: 4 | 6) => (version === 4 ? 32 : 128);

function parseV4(text: string): bigint {
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function parseV6(text: string): bigint {
  let head = text;
  let tailV4: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    tailV4 = parseV4(text.slice(lastColon + 1));
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const leftGroups = left ? left.split(':') : [];
  const rightGroups = right === undefined ? [] : right ? right.split(':') : [];
  const missing = 8 - leftGroups.length - rightGroups.length;
  const groups = [
    ...leftGroups,
    ...Array<string>(right === undefined ? 0 : missing).fill('0'),
    ...rightGroups,
  ];
  let value = groups.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
  if (tailV4 !== undefined) value = (value & ~0xffffffffn) | tailV4;
  return value;
}

/** A strictly valid IPv4 (dotted quad) or IPv6 address, else undefined. */
export function parseIp(text: unknown): Ip | undefined {
  if (typeof text !== 'string') return undefined;
  if (isIPv4(text)) return { version: 4, value: parseV4(text) };
  if (isIPv6(text) && !text.includes('%')) return { version: 6, value: parseV6(text) };
  return undefined;
}

export function formatIp(ip: Ip): string {
  if (ip.version === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((ip.value >> shift) & 0xffn)).join('.');
  }
  const groups = Array.from({ length: 8 }, (_, i) => Number((ip.value >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952: compress the longest run (at least two) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** Canonical text of an address ("10.0.0.01" is refused by parseIp; "FE80::0:1" becomes "fe80::1"). */
export function canonicalIp(text: string): string | undefined {
  const ip = parseIp(text);
  return ip && formatIp(ip);
}

/** A CIDR; `strict` refuses host bits (Neutron refuses "10.0.0.1/24" for a subnet). */
export function parseCidr(text: unknown, strict = true): Cidr | undefined {
  if (typeof text !== 'string') return undefined;
  const match = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!match) return undefined;
  const ip = parseIp(match[1]);
  const prefix = Number(match[2]);
  if (!ip || prefix > bits(ip.version)) return undefined;
  const hostBits = BigInt(bits(ip.version) - prefix);
  const hostMask = (1n << hostBits) - 1n;
  const network = ip.value & ~hostMask;
  if (strict && network !== ip.value) return undefined;
  return { version: ip.version, network, prefix, last: network | hostMask };
}

/** The network of a prefix with host bits (`10.2.3.124/24` → `10.2.3.0/24`), as Neutron's normalized_cidr. */
export function normalizeCidr(text: string | null): string | null {
  const cidr = text === null ? undefined : parseCidr(text, false);
  return cidr ? formatCidr(cidr) : text;
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp({ version: cidr.version, value: cidr.network })}/${cidr.prefix}`;
}

export function cidrContains(cidr: Cidr, ip: Ip): boolean {
  return cidr.version === ip.version && ip.value >= cidr.network && ip.value <= cidr.last;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.version === b.version && a.network <= b.last && b.network <= a.last;
}

export interface Range {
  first: bigint;
  last: bigint;
}

/**
 * Neutron's default allocation pools: the whole block minus the network address (the IPv6
 * subnet-router anycast address), the IPv4 broadcast address and the gateway.
 */
export function defaultPools(cidr: Cidr, gateway: bigint | undefined): Range[] {
  const first = cidr.prefix >= bits(cidr.version) - 1 ? cidr.network : cidr.network + 1n;
  const last = cidr.version === 4 && cidr.prefix < 31 ? cidr.last - 1n : cidr.last;
  if (first > last) return [];
  if (gateway === undefined || gateway < first || gateway > last) return [{ first, last }];
  return [
    { first, last: gateway - 1n },
    { first: gateway + 1n, last },
  ].filter((range) => range.first <= range.last);
}

export function rangeSize(ranges: Range[]): bigint {
  return ranges.reduce((sum, range) => sum + range.last - range.first + 1n, 0n);
}

/** The IP protocol names Neutron accepts in security group rules, with their numbers. */
export const IP_PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  ah: 51,
  dccp: 33,
  egp: 8,
  esp: 50,
  gre: 47,
  icmp: 1,
  icmpv6: 58,
  igmp: 2,
  'ipv6-encap': 41,
  'ipv6-frag': 44,
  'ipv6-icmp': 58,
  'ipv6-nonxt': 59,
  'ipv6-opts': 60,
  'ipv6-route': 43,
  ospf: 89,
  pgm: 113,
  rsvp: 46,
  sctp: 132,
  tcp: 6,
  udp: 17,
  udplite: 136,
  vrrp: 112,
};
