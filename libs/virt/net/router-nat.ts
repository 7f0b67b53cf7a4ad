import { normalizeCidr, parseIp } from '@novum/common';

/** A router port as the host plugs it: one of the router's interfaces, or its gateway on an external network. */
export interface RouterPortSpec {
  portId: string;
  networkId: string;
  macAddress: string;
  /** The port's fixed IPs with their subnets' prefix lengths (`10.0.0.1/24`). */
  addresses: string[];
  mtu?: number;
  /** The network's segment: a VXLAN one reaches the router from other hosts. */
  segment?: { networkType: string; segmentationId: number | null; physicalNetwork?: string | null };
}

/** What the host that serves a router makes of it (Neutron's legacy L3 agent's router info). */
export interface RouterSpec {
  id: string;
  interfaces: RouterPortSpec[];
  /** The gateway port, with the external subnet's gateway as the router's default route. */
  gateway?: RouterPortSpec & { nexthop?: string };
  /** Source NAT of the internal networks to the gateway's address (`enable_snat`). */
  snat: boolean;
  /** Floating IPs of this router: inbound to `floating` is sent to `fixed`, and `fixed` goes out as `floating`. */
  floatingIps: { floating: string; fixed: string }[];
  /** Extra routes (`routes` of the router). */
  routes: { destination: string; nexthop: string }[];
}

const isV4 = (address: string) => parseIp(address.split('/')[0])?.version === 4;
const quote = (name: string) => `"${name.replace(/[^A-Za-z0-9_.-]/g, '')}"`;

/**
 * The router namespace's NAT as one nft script replacing the previous one: floating IPs (DNAT in, SNAT out,
 * as Neutron's `float-snat`) and the source NAT of every internal IPv4 subnet to the gateway's first IPv4
 * address. IPv6 is routed, never NATed, as in Neutron.
 */
export function renderRouterNat(spec: RouterSpec, gatewayDevice: string): string {
  const out = ['table ip novum_router', 'delete table ip novum_router', 'table ip novum_router {'];
  const fips = spec.gateway ? spec.floatingIps.filter((fip) => isV4(fip.floating) && isV4(fip.fixed)) : [];
  out.push('  chain prerouting {', '    type nat hook prerouting priority dstnat; policy accept;');
  for (const fip of fips) out.push(`    ip daddr ${fip.floating} dnat to ${fip.fixed}`);
  out.push('  }');
  out.push('  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;');
  for (const fip of fips)
    out.push(`    oifname ${quote(gatewayDevice)} ip saddr ${fip.fixed} snat to ${fip.floating}`);
  const gatewayAddress = spec.gateway?.addresses.find(isV4)?.split('/')[0];
  const internal = [
    ...new Set(
      spec.interfaces
        .flatMap((port) => port.addresses)
        .filter(isV4)
        .map((cidr) => normalizeCidr(cidr))
        .filter((cidr): cidr is string => !!cidr),
    ),
  ].sort();
  if (spec.snat && gatewayAddress && internal.length) {
    out.push(
      `    oifname ${quote(gatewayDevice)} ip saddr { ${internal.join(', ')} } snat to ${gatewayAddress}`,
    );
  }
  out.push('  }', '}');
  return `${out.join('\n')}\n`;
}
