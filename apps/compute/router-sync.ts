import { rootLogger } from '@novum/common';
import { HostNetwork, RouterPortSpec, RouterSpec } from '@novum/virt';
import { ServiceClient } from './service-client';

interface NeutronRouter {
  id: string;
  admin_state_up?: boolean;
  external_gateway_info?: { network_id: string; enable_snat?: boolean } | null;
  routes?: { destination: string; nexthop: string }[];
}

interface NeutronPort {
  id: string;
  network_id: string;
  mac_address: string;
  device_id: string;
  fixed_ips: { subnet_id: string; ip_address: string }[];
  status?: string;
  'binding:host_id'?: string;
}

/** The host the router ports are plugged on, and how it reports a port's device up (ACTIVE). */
export interface RouterPortOwner {
  host: string;
  reportUp(portIds: string[]): Promise<void>;
}

interface NeutronSubnet {
  id: string;
  cidr: string;
  gateway_ip: string | null;
}

interface NeutronNetwork {
  id: string;
  mtu?: number;
  'provider:network_type'?: string | null;
  'provider:segmentation_id'?: number | null;
  'provider:physical_network'?: string | null;
}

interface NeutronFloatingIp {
  floating_ip_address: string;
  fixed_ip_address: string | null;
  router_id: string | null;
}

const SYNC_INTERVAL_MS = 5_000;
const DELAY_MS = 50;
const query = (key: string, values: readonly string[]) =>
  values.map((value) => `${key}=${encodeURIComponent(value)}`).join('&');

/**
 * The L3 agent of the host that serves the routers (NOVUM_L3_AGENT): reads every router, its interface and
 * gateway ports, their subnets and networks, and the floating IPs from the network API as the `nova` service
 * user, and makes the host's router namespaces exactly that (libs/virt/net). Runs at start, soon after a
 * network change is announced, and every few seconds (routers, interfaces and floating IPs change without a
 * port event the agent hears).
 */
export class NeutronRouterSync {
  private readonly log = rootLogger().child({ service: 'compute', component: 'l3-agent' });
  private timer?: NodeJS.Timeout;
  private soon?: NodeJS.Timeout;
  private running?: Promise<void>;
  private dirty = false;
  private stopped = false;
  /** The router ports of the last sync's routers. */
  private ports: NeutronPort[] = [];
  private owner?: RouterPortOwner;

  constructor(
    private readonly hostNetwork: HostNetwork,
    private readonly api: ServiceClient,
    private readonly intervalMs = SYNC_INTERVAL_MS,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule();
    this.timer = setInterval(() => this.schedule(), this.intervalMs);
    this.timer.unref();
  }

  stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.soon);
    return this.running ?? Promise.resolve();
  }

  /** A sync soon; requests while one runs make one more after it. */
  schedule(): void {
    this.dirty = true;
    if (this.soon || this.running || this.stopped) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.running = this.untilClean().finally(() => (this.running = undefined));
    }, DELAY_MS);
    this.soon.unref();
  }

  private async untilClean(): Promise<void> {
    while (this.dirty && !this.stopped) {
      this.dirty = false;
      await this.sync().catch((error) => this.log.warn({ err: error }, 'could not sync the routers'));
    }
  }

  /** Set once the agent's bus is up: from then on the router ports this host plugs are bound to it and ACTIVE. */
  setOwner(owner: RouterPortOwner): void {
    this.owner = owner;
  }

  async sync(): Promise<void> {
    await this.hostNetwork.syncRouters(await this.specs());
    await this.claimPorts();
  }

  /**
   * Neutron's L3 agent sync (l3_rpc's _ensure_host_set_on_port, then the L2 agent's update_device_up): each
   * port of the routers just plugged here is bound to this host and reported up, so it shows ACTIVE.
   */
  private async claimPorts(): Promise<void> {
    const owner = this.owner;
    if (!owner) return;
    for (const port of this.ports) {
      if (port['binding:host_id'] === owner.host) continue;
      await this.api.request('PUT', `/v2.0/ports/${port.id}`, { port: { 'binding:host_id': owner.host } });
      port['binding:host_id'] = owner.host;
    }
    const down = this.ports.filter((port) => port.status !== 'ACTIVE').map((port) => port.id);
    if (down.length) await owner.reportUp(down);
  }

  /** Every router that is up, as the host plugs it. */
  async specs(): Promise<RouterSpec[]> {
    const { routers } = await this.api.request<{ routers: NeutronRouter[] }>('GET', '/v2.0/routers');
    const up = routers.filter((router) => router.admin_state_up !== false);
    this.ports = [];
    if (!up.length) return [];
    const portsOf = async (owner: string) =>
      (
        await this.api.request<{ ports: NeutronPort[] }>(
          'GET',
          `/v2.0/ports?${query('device_owner', [owner])}`,
        )
      ).ports;
    const interfaces = await portsOf('network:router_interface');
    const gateways = await portsOf('network:router_gateway');
    const { floatingips } = await this.api.request<{ floatingips: NeutronFloatingIp[] }>(
      'GET',
      '/v2.0/floatingips',
    );
    const ports = [...interfaces, ...gateways];
    const served = new Set(up.map((router) => router.id));
    this.ports = ports.filter((port) => served.has(port.device_id));
    const subnetIds = [...new Set(ports.flatMap((port) => port.fixed_ips.map((ip) => ip.subnet_id)))];
    const networkIds = [...new Set(ports.map((port) => port.network_id))];
    const subnets = new Map<string, NeutronSubnet>();
    if (subnetIds.length) {
      const list = await this.api.request<{ subnets: NeutronSubnet[] }>(
        'GET',
        `/v2.0/subnets?${query('id', subnetIds)}`,
      );
      for (const subnet of list.subnets) subnets.set(subnet.id, subnet);
    }
    const networks = new Map<string, NeutronNetwork>();
    if (networkIds.length) {
      const list = await this.api.request<{ networks: NeutronNetwork[] }>(
        'GET',
        `/v2.0/networks?${query('id', networkIds)}`,
      );
      for (const network of list.networks) networks.set(network.id, network);
    }
    const spec = (port: NeutronPort): RouterPortSpec => {
      const network = networks.get(port.network_id);
      const type = network?.['provider:network_type'];
      return {
        portId: port.id,
        networkId: port.network_id,
        macAddress: port.mac_address,
        addresses: port.fixed_ips.flatMap((ip) => {
          const prefix = subnets.get(ip.subnet_id)?.cidr.split('/')[1];
          return prefix ? [`${ip.ip_address}/${prefix}`] : [];
        }),
        mtu: network?.mtu,
        segment: type
          ? {
              networkType: type,
              segmentationId: network?.['provider:segmentation_id'] ?? null,
              physicalNetwork: network?.['provider:physical_network'] ?? null,
            }
          : undefined,
      };
    };
    return up.map((router) => {
      const gateway = router.external_gateway_info
        ? gateways.find((port) => port.device_id === router.id)
        : undefined;
      const nexthop = gateway?.fixed_ips
        .map((ip) => subnets.get(ip.subnet_id)?.gateway_ip)
        .find((ip): ip is string => !!ip && !ip.includes(':'));
      return {
        id: router.id,
        interfaces: interfaces.filter((port) => port.device_id === router.id).map(spec),
        gateway: gateway ? { ...spec(gateway), nexthop } : undefined,
        snat: router.external_gateway_info?.enable_snat !== false,
        floatingIps: floatingips
          .filter((fip) => fip.router_id === router.id && fip.fixed_ip_address)
          .map((fip) => ({ floating: fip.floating_ip_address, fixed: fip.fixed_ip_address! })),
        routes: router.routes ?? [],
      };
    });
  }
}
