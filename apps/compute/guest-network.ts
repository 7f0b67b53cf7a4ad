import { Inject, Injectable } from '@nestjs/common';
import { EventListener } from '@novum/bus';
import { rootLogger } from '@novum/common';
import type { InstanceEntity } from '@novum/db';
import {
  bridgeName,
  FixedIp,
  HostNetwork,
  METADATA_ADDRESS,
  NOTIFICATIONS_TOPIC,
  PortFilter,
  SecurityRule,
  Vif,
} from '@novum/virt';
import { AGENT_OPTIONS, AgentOptions } from './compute-manager';
import { NeutronRouterSync } from './router-sync';
import { ServiceCallError, ServiceClient } from './service-client';

/** The agent's side of guest networking: ports as drivers need them, and the host's filters kept current. */
export interface GuestNetworking {
  /** Restores the host's firewall and brings the filters up to date (at agent start). */
  start(): Promise<void>;
  /** The instance's ports, bound to this host, with what a guest needs (addresses, gateway, DNS, MTU, filters). */
  vifsFor(instance: InstanceEntity): Promise<Vif[]>;
  /** Unplugs everything of the instance on this host and unbinds its ports; resolves with their ids. */
  release(instanceUuid: string): Promise<string[]>;
  /** Re-reads groups and rules of every port on this host soon (several requests make one refresh). */
  scheduleRefresh(): void;
  refresh(): Promise<void>;
  /** Ends periodic work (at agent stop). */
  stop?(): Promise<void>;
}

interface NeutronPort {
  id: string;
  network_id: string;
  mac_address: string;
  fixed_ips: { subnet_id: string; ip_address: string }[];
  security_groups?: string[];
  port_security_enabled?: boolean;
  allowed_address_pairs?: { ip_address: string; mac_address?: string }[];
  'binding:host_id'?: string;
  'binding:vif_details'?: { bridge_name?: string };
}

/** What the agent reads of a network (the provider attributes: the service user is an admin). */
interface NeutronNetwork {
  mtu?: number;
  'provider:network_type'?: string | null;
  'provider:segmentation_id'?: number | null;
  'provider:physical_network'?: string | null;
}

function segmentOf(network: NeutronNetwork | undefined): Vif['segment'] {
  const networkType = network?.['provider:network_type'];
  if (!networkType) return undefined;
  return {
    networkType,
    segmentationId: network['provider:segmentation_id'] ?? null,
    physicalNetwork: network['provider:physical_network'] ?? null,
  };
}

interface NeutronSubnet {
  id: string;
  cidr: string;
  ip_version: number;
  gateway_ip: string | null;
  dns_nameservers?: string[];
  host_routes?: { destination: string; nexthop: string }[];
}

interface NeutronRule {
  security_group_id: string;
  direction: 'ingress' | 'egress';
  ethertype: 'IPv4' | 'IPv6';
  protocol: string | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  remote_group_id: string | null;
}

const REFRESH_DELAY_MS = 50;
const query = (key: string, values: readonly string[]) =>
  values.map((value) => `${key}=${encodeURIComponent(value)}`).join('&');

/**
 * Guest networking through the network API (Neutron's), called as the compute service user: ports are bound
 * to this host (`binding:host_id`), their subnets give the guest its addresses, gateway and DNS servers, and
 * their security groups become the host's nftables rules (libs/virt/net).
 */
export class NeutronGuestNetworking implements GuestNetworking {
  private readonly log = rootLogger().child({ service: 'compute', component: 'guest-network' });
  private refreshTimer?: NodeJS.Timeout;
  private refreshing?: Promise<void>;
  private dirty = false;

  constructor(
    private readonly host: string,
    private readonly hostNetwork: HostNetwork,
    private readonly api: ServiceClient,
    /** This host's L3 agent, when it serves the routers. */
    private readonly routers?: NeutronRouterSync,
  ) {}

  async start(): Promise<void> {
    await this.hostNetwork.init();
    // The network service may start after this agent: the filters it had stay in force meanwhile.
    await this.refresh().catch((error) =>
      this.log.warn({ err: error }, 'could not refresh the guest port filters at start'),
    );
    this.routers?.start();
  }

  async stop(): Promise<void> {
    await this.routers?.stop();
  }

  async vifsFor(instance: InstanceEntity): Promise<Vif[]> {
    const ports: NeutronPort[] = [];
    for (const cached of instance.networkInfo ?? []) {
      const port = await this.bind(cached.portId);
      if (port) ports.push(port);
      else this.log.warn({ instance: instance.uuid, port: cached.portId }, 'the port is gone; not plugged');
    }
    const filters = await this.filters(ports);
    const networks = new Map<string, NeutronNetwork>();
    const subnets = new Map<string, NeutronSubnet>();
    const vifs: Vif[] = [];
    for (const port of ports) {
      if (!networks.has(port.network_id)) {
        const { network } = await this.api.request<{ network: NeutronNetwork }>(
          'GET',
          `/v2.0/networks/${port.network_id}`,
        );
        networks.set(port.network_id, network);
        const list = await this.api.request<{ subnets: NeutronSubnet[] }>(
          'GET',
          `/v2.0/subnets?${query('network_id', [port.network_id])}`,
        );
        for (const subnet of list.subnets) subnets.set(subnet.id, subnet);
      }
      const fixedIps: FixedIp[] = port.fixed_ips.flatMap((ip) => {
        const subnet = subnets.get(ip.subnet_id);
        if (!subnet) return [];
        return [
          {
            address: ip.ip_address,
            version: subnet.ip_version === 6 ? 6 : 4,
            subnetId: subnet.id,
            cidr: subnet.cidr,
            gateway: subnet.gateway_ip ?? undefined,
            dnsNameservers: subnet.dns_nameservers ?? [],
            hostRoutes: [...(subnet.host_routes ?? [])],
          },
        ];
      });
      vifs.push({
        id: port.id,
        macAddress: port.mac_address,
        networkId: port.network_id,
        fixedIps,
        bridge: port['binding:vif_details']?.bridge_name ?? bridgeName(port.network_id),
        mtu: networks.get(port.network_id)?.mtu,
        filter: filters.get(port.id),
        segment: segmentOf(networks.get(port.network_id)),
      });
    }
    this.routeToMetadata(vifs);
    return vifs;
  }

  /**
   * The metadata service is on the link of every network (libs/virt/net's metadata namespaces): the first
   * IPv4 address gets an on-link host route to it (nexthop 0.0.0.0, as a Neutron host route on the link),
   * unless its subnet routes the address already.
   */
  private routeToMetadata(vifs: Vif[]): void {
    if (!this.hostNetwork.servesMetadata) return;
    const first = vifs.flatMap((vif) => vif.fixedIps).find((ip) => ip.version === 4);
    const destination = `${METADATA_ADDRESS}/32`;
    if (!first || first.hostRoutes?.some((route) => route.destination === destination)) return;
    first.hostRoutes = [...(first.hostRoutes ?? []), { destination, nexthop: '0.0.0.0' }];
  }

  async release(instanceUuid: string): Promise<string[]> {
    const portIds = (await this.hostNetwork.plugged())
      .filter((port) => port.instanceUuid === instanceUuid)
      .map((port) => port.portId);
    await this.hostNetwork.unplugInstance(instanceUuid);
    for (const portId of portIds) {
      // A port the server made is usually deleted by now; one the user brought is unbound, as Nova does.
      await this.api
        .request('PUT', `/v2.0/ports/${portId}`, { port: { 'binding:host_id': '' } })
        .catch((error) => {
          if (!(error instanceof ServiceCallError && error.status === 404)) {
            this.log.warn({ err: error, port: portId }, 'could not unbind a port');
          }
        });
    }
    return portIds;
  }

  scheduleRefresh(): void {
    this.routers?.schedule();
    this.dirty = true;
    if (this.refreshTimer || this.refreshing) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.refreshing = this.refreshUntilClean().finally(() => (this.refreshing = undefined));
    }, REFRESH_DELAY_MS);
    this.refreshTimer.unref();
  }

  async refresh(): Promise<void> {
    const plugged = await this.hostNetwork.plugged();
    if (!plugged.length) return;
    const ids = [...new Set(plugged.map((port) => port.portId))];
    const { ports } = await this.api.request<{ ports: NeutronPort[] }>(
      'GET',
      `/v2.0/ports?${query('id', ids)}`,
    );
    await this.hostNetwork.updateFilters(await this.filters(ports));
  }

  private async refreshUntilClean(): Promise<void> {
    while (this.dirty) {
      this.dirty = false;
      await this.refresh().catch((error) =>
        this.log.warn({ err: error }, 'could not refresh the guest port filters'),
      );
    }
  }

  /** The port bound to this host (bound only when it is not yet); undefined when it is gone. */
  private async bind(portId: string): Promise<NeutronPort | undefined> {
    try {
      const { port } = await this.api.request<{ port: NeutronPort }>('GET', `/v2.0/ports/${portId}`);
      if (port['binding:host_id'] === this.host) return port;
      const bound = await this.api.request<{ port: NeutronPort }>('PUT', `/v2.0/ports/${portId}`, {
        port: { 'binding:host_id': this.host },
      });
      return bound.port;
    } catch (error) {
      if (error instanceof ServiceCallError && error.status === 404) return undefined;
      throw error;
    }
  }

  /** Each port's filter: its groups' rules, and the members of the groups those rules name. */
  private async filters(ports: readonly NeutronPort[]): Promise<Map<string, PortFilter>> {
    const groups = [...new Set(ports.flatMap((port) => port.security_groups ?? []))];
    const rules = groups.length
      ? (
          await this.api.request<{ security_group_rules: NeutronRule[] }>(
            'GET',
            `/v2.0/security-group-rules?${query('security_group_id', groups)}`,
          )
        ).security_group_rules
      : [];
    const members: Record<string, string[]> = {};
    for (const group of new Set(
      rules.map((rule) => rule.remote_group_id).filter((id): id is string => !!id),
    )) {
      const { ports: inGroup } = await this.api.request<{ ports: NeutronPort[] }>(
        'GET',
        `/v2.0/ports?${query('security_groups', [group])}&fields=fixed_ips&fields=allowed_address_pairs`,
      );
      members[group] = inGroup.flatMap((port) => [
        ...port.fixed_ips.map((ip) => ip.ip_address),
        ...(port.allowed_address_pairs ?? []).map((pair) => pair.ip_address),
      ]);
    }
    const filters = new Map<string, PortFilter>();
    for (const port of ports) {
      const own = rules.filter((rule) => (port.security_groups ?? []).includes(rule.security_group_id));
      const securityRules: SecurityRule[] = own.map((rule) => ({
        direction: rule.direction,
        ethertype: rule.ethertype,
        protocol: rule.protocol,
        portRangeMin: rule.port_range_min,
        portRangeMax: rule.port_range_max,
        remoteIpPrefix: rule.remote_ip_prefix,
        remoteGroupId: rule.remote_group_id,
      }));
      const remote = new Set(
        securityRules.map((rule) => rule.remoteGroupId).filter((id): id is string => !!id),
      );
      filters.set(port.id, {
        portSecurityEnabled: port.port_security_enabled !== false,
        allowedAddressPairs: (port.allowed_address_pairs ?? []).map((pair) => ({
          ipAddress: pair.ip_address,
          macAddress: pair.mac_address,
        })),
        rules: securityRules,
        remoteGroupMembers: Object.fromEntries([...remote].map((group) => [group, members[group] ?? []])),
      });
    }
    return filters;
  }
}

/** Re-filters this host's ports when the network service announces a change of ports, groups or rules. */
@Injectable()
export class NetworkFilterEvents {
  constructor(@Inject(AGENT_OPTIONS) private readonly options: AgentOptions) {}

  @EventListener(NOTIFICATIONS_TOPIC, 'port.create.end')
  @EventListener(NOTIFICATIONS_TOPIC, 'port.update.end')
  @EventListener(NOTIFICATIONS_TOPIC, 'port.delete.end')
  @EventListener(NOTIFICATIONS_TOPIC, 'security_group.delete.end')
  @EventListener(NOTIFICATIONS_TOPIC, 'security_group_rule.create.end')
  @EventListener(NOTIFICATIONS_TOPIC, 'security_group_rule.delete.end')
  onFilterChange(): void {
    this.options.network?.scheduleRefresh();
  }
}
