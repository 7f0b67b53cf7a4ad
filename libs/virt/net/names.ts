/**
 * Names of the host objects that carry guest traffic. Every one starts with `novum` (so that an operator,
 * and the tests, can tell Novum's objects from anyone else's) and fits Linux's 15-character limit.
 */
const compact = (id: string) => id.replace(/-/g, '').toLowerCase();

/** The Linux bridge of a Neutron network on this host: `novumbr` + the first 8 hex digits of its id. */
export function bridgeName(networkId: string): string {
  return `novumbr${compact(networkId).slice(0, 8)}`;
}

/** A network's VXLAN device on this host, a port of its bridge: `novumx` + the first 9 hex digits of its id. */
export function tunnelName(networkId: string): string {
  return `novumx${compact(networkId).slice(0, 9)}`;
}

/** A VLAN network's subinterface of its physical network's host interface: `novumu` + 9 hex digits of its id. */
export function vlanName(networkId: string): string {
  return `novumu${compact(networkId).slice(0, 9)}`;
}

/** The host end of a container port's veth pair: `novumv` + the first 9 hex digits of the port id. */
export function vethName(portId: string): string {
  return `novumv${compact(portId).slice(0, 9)}`;
}

/** The container end of the pair until it is moved into the container's namespace and renamed `ethN`. */
export function vethPeerName(portId: string): string {
  return `novump${compact(portId).slice(0, 9)}`;
}

/**
 * A VM port's tap device. Nova names it `tap` + 11 characters of the port id; Novum uses `novumt` + 9 hex
 * digits instead, so that every host object it makes is recognisably its own and a real Nova or libvirt on
 * the same host never collides with it.
 */
export function tapName(portId: string): string {
  return `novumt${compact(portId).slice(0, 9)}`;
}

/** The persistent network namespace of a container (`ip netns` name; it outlives stop/start and the agent). */
export function netnsName(instanceUuid: string): string {
  return `novum-${instanceUuid}`;
}

export const NETNS_DIR = '/run/netns';

/** The IPv6 link-local address (EUI-64) a guest's kernel gives itself from its MAC address. */
export function linkLocalAddress(mac: string): string {
  const bytes = mac.split(':').map((octet) => Number.parseInt(octet, 16));
  const eui = [bytes[0] ^ 0x02, bytes[1], bytes[2], 0xff, 0xfe, bytes[3], bytes[4], bytes[5]];
  const groups: string[] = [];
  for (let i = 0; i < 8; i += 2) groups.push(((eui[i] << 8) | eui[i + 1]).toString(16));
  return `fe80::${groups.join(':')}`;
}

/** The address guests reach the metadata service at (Nova's and EC2's link-local address). */
export const METADATA_ADDRESS = '169.254.169.254';

/** The network namespace of a network's metadata proxy on this host (Neutron's `qmeta-`/`ovnmeta-<net>`). */
export function metadataNetnsName(networkId: string): string {
  return `novum-md-${networkId}`;
}

/** The host end, on the network's bridge, of the veth pair into the metadata namespace. */
export function metadataVethName(networkId: string): string {
  return `novumm${compact(networkId).slice(0, 9)}`;
}

/** The metadata namespace's end of that pair (it keeps this name inside the namespace). */
export function metadataVethPeerName(networkId: string): string {
  return `novumq${compact(networkId).slice(0, 9)}`;
}

/** The network namespace of a router on the host that serves it (Neutron's `qrouter-<id>`). */
export function routerNetnsName(routerId: string): string {
  return `novum-r-${routerId}`;
}

/** The host end, on its network's bridge, of a router port's veth: `novumr` + 9 hex digits of the port id. */
export function routerVethName(portId: string): string {
  return `novumr${compact(portId).slice(0, 9)}`;
}

/** A router port's device inside the router's namespace: Neutron's `qr-` (interfaces) or `qg-` (gateway). */
export function routerPortName(kind: 'interface' | 'gateway', portId: string): string {
  return `${kind === 'gateway' ? 'qg' : 'qr'}-${portId.slice(0, 11)}`;
}
