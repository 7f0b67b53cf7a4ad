import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuthContext, authorize } from '@novum/auth';
import { BadRequestError, ConflictError, NotFoundError, ServiceUnavailableError } from '@novum/common';
import { NetworkEntity, nowIso, SubnetEntity } from '@novum/db';
import { In } from 'typeorm';
import { adminOnly, canRead, canWrite, isAdmin, owningProject } from './access';
import { NetworkInput, SubnetInput } from './controllers/dto';
import {
  bits,
  canonicalIp,
  Cidr,
  cidrContains,
  cidrsOverlap,
  defaultPools,
  formatIp,
  parseCidr,
  parseIp,
  Range,
} from '@novum/common';
import { uniqueTags } from './tag-set';
import { NetworkStore } from './network.store';
import { QuotaService } from './quota.service';
import { checkMtu, maxMtu, randomSegmentationId, requestedSegment, Segment } from './segments';

const MAX_DNS_NAMESERVERS = 5;
const MAX_HOST_ROUTES = 20;

export function networkNotFound(id: string): NotFoundError {
  return new NotFoundError(`Network ${id} could not be found.`, 'NetworkNotFound');
}
export function subnetNotFound(id: string): NotFoundError {
  return new NotFoundError(`Subnet ${id} could not be found.`, 'SubnetNotFound');
}
function segmentInUse(segment: Segment): ConflictError {
  if (segment.type === 'flat') {
    return new ConflictError(
      `Unable to create the flat network. Physical network ${segment.physicalNetwork} is in use.`,
      'FlatNetworkInUse',
    );
  }
  return segment.type === 'vlan'
    ? new ConflictError(
        `Unable to create the network. The VLAN ${segment.segmentationId} on physical network ${segment.physicalNetwork} is in use.`,
        'VlanIdInUse',
      )
    : new ConflictError(
        `Unable to create the network. The tunnel ID ${segment.segmentationId} is in use.`,
        'TunnelIdInUse',
      );
}

function invalidInput(message: string): BadRequestError {
  return new BadRequestError(`Invalid input for operation: ${message}`, 'InvalidInput');
}

/** Who may see a network: its project, everyone for shared and external networks, admins. */
export function canSeeNetwork(auth: AuthContext, network: NetworkEntity): boolean {
  return canRead(auth, network.projectId) || network.shared || network.external;
}

/** Networks and their subnets. */
@Injectable()
export class NetworkService {
  constructor(
    private readonly store: NetworkStore,
    private readonly quotas: QuotaService,
  ) {}

  async listNetworks(auth: AuthContext): Promise<NetworkEntity[]> {
    if (isAdmin(auth)) return this.store.networks.find();
    return this.store.networks.find({
      where: [{ projectId: auth.projectId ?? '' }, { shared: true }, { external: true }],
    });
  }

  async subnetIdsByNetwork(networkIds: string[]): Promise<Map<string, string[]>> {
    const subnets = networkIds.length
      ? await this.store.subnets.find({
          select: { id: true, networkId: true, createdAt: true },
          where: { networkId: In(networkIds) },
          order: { createdAt: 'ASC' },
        })
      : [];
    const byNetwork = new Map<string, string[]>(networkIds.map((id) => [id, []]));
    for (const subnet of subnets) byNetwork.get(subnet.networkId)?.push(subnet.id);
    return byNetwork;
  }

  /** A network the caller can see, else 404 (another project's network does not exist for them). */
  async getNetwork(auth: AuthContext, id: string): Promise<NetworkEntity> {
    const network = await this.store.networks.findOneBy({ id });
    if (!network || !canSeeNetwork(auth, network)) throw networkNotFound(id);
    return network;
  }

  async createNetwork(auth: AuthContext, input: NetworkInput): Promise<NetworkEntity> {
    const projectId = owningProject(auth, 'create_network', input);
    adminOnly(
      auth,
      'create_network',
      input,
      [
        'shared',
        'router:external',
        'is_default',
        'provider:network_type',
        'provider:physical_network',
        'provider:segmentation_id',
      ],
      { shared: false, 'router:external': false, is_default: false },
    );
    await this.quotas.check(projectId, 'network', () => this.store.networks.countBy({ projectId }));
    const now = nowIso();
    const segment = requestedSegment(input);
    if (input.mtu !== undefined) checkMtu(segment.type, input.mtu);
    const network: NetworkEntity = {
      id: randomUUID(),
      projectId,
      name: input.name ?? '',
      description: input.description ?? '',
      revisionNumber: 1,
      createdAt: now,
      updatedAt: now,
      adminStateUp: input.admin_state_up ?? true,
      shared: input.shared ?? false,
      external: input['router:external'] ?? false,
      isDefault: input.is_default ?? false,
      portSecurityEnabled: input.port_security_enabled ?? true,
      mtu: input.mtu ?? maxMtu(segment.type),
      tags: uniqueTags(input.tags),
      networkType: segment.type,
      physicalNetwork: segment.physicalNetwork,
      segmentationId:
        segment.segmentationId === undefined ? randomSegmentationId(segment.type) : segment.segmentationId,
    };
    // The (type, physical network, segmentation id) unique index decides; a random id that lost is drawn again.
    for (let attempt = 0; ; attempt++) {
      await this.store.insertIfAbsent(NetworkEntity, network);
      if (await this.store.networks.existsBy({ id: network.id })) return network;
      if (segment.segmentationId !== undefined) throw segmentInUse(segment);
      if (attempt >= 50) {
        throw new ServiceUnavailableError(
          'Unable to create the network. No tenant network is available for allocation.',
        );
      }
      network.segmentationId = randomSegmentationId(segment.type);
    }
  }

  async updateNetwork(auth: AuthContext, id: string, input: NetworkInput): Promise<NetworkEntity> {
    const network = await this.getNetwork(auth, id);
    authorize('update_network', canWrite(auth, network.projectId));
    adminOnly(auth, 'update_network', input, [
      'shared',
      'router:external',
      'is_default',
      'provider:network_type',
      'provider:physical_network',
      'provider:segmentation_id',
      'tenant_id',
      'project_id',
    ]);
    if (input.mtu !== undefined) checkMtu(network.networkType, input.mtu);
    if (input.project_id !== undefined || input.tenant_id !== undefined) {
      throw new BadRequestError('Cannot update read-only attribute project_id');
    }
    for (const provider of [
      'provider:network_type',
      'provider:physical_network',
      'provider:segmentation_id',
    ] as const) {
      if (input[provider] !== undefined)
        throw new BadRequestError(`Cannot update read-only attribute ${provider}`);
    }
    if (input.shared === false && network.shared) {
      const foreign = await this.store.ports
        .createQueryBuilder('port')
        .where('port.network_id = :id AND port.project_id <> :owner AND port.project_id <> :none', {
          id,
          owner: network.projectId,
          none: '',
        })
        .getCount();
      if (foreign > 0) {
        throw new ConflictError(
          `Unable to reconfigure sharing settings for network ${id}. Multiple tenants are using it.`,
          'InvalidSharedSetting',
        );
      }
    }
    Object.assign(network, {
      name: input.name ?? network.name,
      description: input.description ?? network.description,
      adminStateUp: input.admin_state_up ?? network.adminStateUp,
      shared: input.shared ?? network.shared,
      external: input['router:external'] ?? network.external,
      isDefault: input.is_default ?? network.isDefault,
      portSecurityEnabled: input.port_security_enabled ?? network.portSecurityEnabled,
      mtu: input.mtu ?? network.mtu,
      revisionNumber: network.revisionNumber + 1,
      updatedAt: nowIso(),
    });
    await this.store.networks.save(network);
    return network;
  }

  async deleteNetwork(auth: AuthContext, id: string): Promise<void> {
    const network = await this.getNetwork(auth, id);
    authorize('delete_network', canWrite(auth, network.projectId));
    await this.store.transaction(async (t) => {
      if ((await t.ports.countBy({ networkId: id })) > 0) {
        throw new ConflictError(
          `Unable to complete operation on network ${id}. There are one or more ports still in use on the network.`,
          'NetworkInUse',
        );
      }
      if ((await t.routers.countBy({ gatewayNetworkId: id })) > 0) {
        throw new ConflictError(
          `Unable to complete operation on network ${id}. There are one or more ports still in use on the network.`,
          'NetworkInUse',
        );
      }
      await t.subnets.delete({ networkId: id });
      await t.networks.delete({ id });
    });
  }

  async listSubnets(auth: AuthContext): Promise<SubnetEntity[]> {
    if (isAdmin(auth)) return this.store.subnets.find();
    const visible = (await this.listNetworks(auth)).map((n) => n.id);
    return this.store.subnets.find({
      where: [{ projectId: auth.projectId ?? '' }, ...(visible.length ? [{ networkId: In(visible) }] : [])],
    });
  }

  async getSubnet(auth: AuthContext, id: string): Promise<SubnetEntity> {
    const subnet = await this.store.subnets.findOneBy({ id });
    if (!subnet) throw subnetNotFound(id);
    if (canRead(auth, subnet.projectId)) return subnet;
    const network = await this.store.networks.findOneBy({ id: subnet.networkId });
    if (!network || !canSeeNetwork(auth, network)) throw subnetNotFound(id);
    return subnet;
  }

  async createSubnet(auth: AuthContext, input: SubnetInput): Promise<SubnetEntity> {
    if (!input.network_id) throw invalidInput("'network_id' is required.");
    const network = await this.getNetwork(auth, input.network_id);
    const projectId = owningProject(auth, 'create_subnet', input);
    // Only the network's owner (or an admin) adds subnets, even to a shared network.
    authorize(
      'create_subnet',
      isAdmin(auth),
      network.projectId === projectId && canWrite(auth, network.projectId),
    );
    if (input.cidr === undefined) throw invalidInput('a cidr must be given: subnet pools are not supported.');
    const cidr = this.parseSubnetCidr(input.cidr);
    const ipVersion = input.ip_version ?? cidr.version;
    if (ipVersion !== cidr.version) {
      throw invalidInput(`Cidr ${input.cidr} does not match IP version ${ipVersion}.`);
    }
    if (ipVersion === 4 && (input.ipv6_ra_mode || input.ipv6_address_mode)) {
      throw invalidInput('ipv6_ra_mode or ipv6_address_mode cannot be set when ip_version is 4.');
    }
    if (input.ipv6_ra_mode && input.ipv6_address_mode && input.ipv6_ra_mode !== input.ipv6_address_mode) {
      throw invalidInput(
        `ipv6_ra_mode set to '${input.ipv6_ra_mode}' with ipv6_address_mode set to '${input.ipv6_address_mode}' is not valid. If both attributes are set, they must be the same value.`,
      );
    }
    const gatewayIp =
      input.gateway_ip === null
        ? null
        : input.gateway_ip === undefined
          ? formatIp({ version: cidr.version, value: cidr.network + 1n })
          : this.parseGateway(input.gateway_ip, cidr);
    const pools = input.allocation_pools
      ? this.parsePools(input.allocation_pools, cidr, gatewayIp)
      : defaultPools(cidr, gatewayIp === null ? undefined : parseIp(gatewayIp)!.value);
    const now = nowIso();
    const subnet: SubnetEntity = {
      id: randomUUID(),
      projectId,
      name: input.name ?? '',
      description: input.description ?? '',
      revisionNumber: 0,
      createdAt: now,
      updatedAt: now,
      networkId: network.id,
      tags: uniqueTags(input.tags),
      ipVersion,
      cidr: `${formatIp({ version: cidr.version, value: cidr.network })}/${cidr.prefix}`,
      gatewayIp,
      allocationPools: pools.map((p) => ({
        start: formatIp({ version: cidr.version, value: p.first }),
        end: formatIp({ version: cidr.version, value: p.last }),
      })),
      enableDhcp: input.enable_dhcp ?? true,
      dnsNameservers: this.parseNameservers(input.dns_nameservers ?? []),
      hostRoutes: this.parseRoutes(input.host_routes ?? [], cidr.version),
      ipv6RaMode: input.ipv6_ra_mode ?? null,
      ipv6AddressMode: input.ipv6_address_mode ?? null,
    };
    await this.quotas.check(projectId, 'subnet', () => this.store.subnets.countBy({ projectId }));
    // The overlap check and the insert are one transaction, so two racing creates cannot both pass it.
    await this.store.transaction(async (t) => {
      for (const other of await t.subnets.findBy({ networkId: network.id })) {
        if (cidrsOverlap(cidr, parseCidr(other.cidr)!)) {
          throw invalidInput(
            `Requested subnet with cidr: ${subnet.cidr} for network: ${network.id} overlaps with another subnet.`,
          );
        }
      }
      await t.subnets.insert(subnet);
      await t.networks.update(
        { id: network.id },
        { revisionNumber: network.revisionNumber + 1, updatedAt: now },
      );
    });
    return subnet;
  }

  async updateSubnet(auth: AuthContext, id: string, input: SubnetInput): Promise<SubnetEntity> {
    const subnet = await this.getSubnet(auth, id);
    authorize('update_subnet', canWrite(auth, subnet.projectId));
    for (const readOnly of [
      'network_id',
      'ip_version',
      'cidr',
      'tenant_id',
      'project_id',
      'ipv6_ra_mode',
      'ipv6_address_mode',
    ] as const) {
      if (input[readOnly] !== undefined)
        throw new BadRequestError(`Cannot update read-only attribute ${readOnly}`);
    }
    const cidr = parseCidr(subnet.cidr)!;
    if (input.gateway_ip !== undefined) {
      subnet.gatewayIp = input.gateway_ip === null ? null : this.parseGateway(input.gateway_ip, cidr);
    }
    if (input.allocation_pools !== undefined) {
      subnet.allocationPools = this.parsePools(input.allocation_pools, cidr, subnet.gatewayIp).map((p) => ({
        start: formatIp({ version: cidr.version, value: p.first }),
        end: formatIp({ version: cidr.version, value: p.last }),
      }));
    } else if (input.gateway_ip !== undefined && subnet.gatewayIp) {
      this.parsePools(subnet.allocationPools, cidr, subnet.gatewayIp);
    }
    if (input.dns_nameservers !== undefined)
      subnet.dnsNameservers = this.parseNameservers(input.dns_nameservers);
    if (input.host_routes !== undefined)
      subnet.hostRoutes = this.parseRoutes(input.host_routes, cidr.version);
    subnet.name = input.name ?? subnet.name;
    subnet.description = input.description ?? subnet.description;
    subnet.enableDhcp = input.enable_dhcp ?? subnet.enableDhcp;
    subnet.revisionNumber += 1;
    subnet.updatedAt = nowIso();
    await this.store.subnets.save(subnet);
    return subnet;
  }

  async deleteSubnet(auth: AuthContext, id: string): Promise<void> {
    const subnet = await this.getSubnet(auth, id);
    authorize('delete_subnet', canWrite(auth, subnet.projectId));
    await this.store.transaction(async (t) => {
      if ((await t.allocations.countBy({ subnetId: id })) > 0) {
        throw new ConflictError(
          `Unable to complete operation on subnet ${id}: One or more ports have an IP allocation from this subnet.`,
          'SubnetInUse',
        );
      }
      await t.subnets.delete({ id });
    });
  }

  private parseSubnetCidr(text: string): Cidr {
    const loose = parseCidr(text, false);
    if (!loose) throw invalidInput(`'${text}' is not a valid IP subnet.`);
    const strict = parseCidr(text);
    if (!strict) {
      const recommended = `${formatIp({ version: loose.version, value: loose.network })}/${loose.prefix}`;
      throw invalidInput(`'${text}' isn't a recommended CIDR, '${recommended}' is recommended.`);
    }
    if (strict.prefix === 0) throw invalidInput(`${text} is not allowed as a subnet CIDR.`);
    return strict;
  }

  private parseGateway(text: string, cidr: Cidr): string {
    const ip = parseIp(text);
    if (!ip) throw invalidInput(`'${text}' is not a valid IP address.`);
    if (ip.version !== cidr.version)
      throw invalidInput(`Gateway IP version inconsistent with subnet IP version.`);
    const edge = ip.value === cidr.network || (cidr.version === 4 && ip.value === cidr.last);
    if (edge && cidr.prefix < bits(cidr.version) - 1) {
      throw new BadRequestError(`Gateway is not valid on subnet: ${text}`, 'InvalidInput');
    }
    return formatIp(ip);
  }

  private parsePools(pools: { start: string; end: string }[], cidr: Cidr, gateway: string | null): Range[] {
    const ranges: Range[] = pools.map((pool) => {
      const start = parseIp(pool.start);
      const end = parseIp(pool.end);
      if (
        !start ||
        !end ||
        start.version !== cidr.version ||
        end.version !== cidr.version ||
        start.value > end.value
      ) {
        throw new BadRequestError(
          `The allocation pool ${pool.start}-${pool.end} is not valid.`,
          'InvalidAllocationPool',
        );
      }
      const edge = (v: bigint) =>
        cidr.version === 4 && cidr.prefix < 31 && (v === cidr.network || v === cidr.last);
      if (!cidrContains(cidr, start) || !cidrContains(cidr, end) || edge(start.value) || edge(end.value)) {
        throw new BadRequestError(
          `The allocation pool ${pool.start}-${pool.end} spans beyond the subnet cidr ${formatIp({ version: cidr.version, value: cidr.network })}/${cidr.prefix}.`,
          'OutOfBoundsAllocationPool',
        );
      }
      return { first: start.value, last: end.value };
    });
    const sorted = [...ranges].sort((a, b) => (a.first < b.first ? -1 : 1));
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i].first <= sorted[i - 1].last) {
        throw new ConflictError('Found overlapping allocation pools.', 'OverlappingAllocationPools');
      }
    }
    const gatewayValue = gateway === null ? undefined : parseIp(gateway)?.value;
    if (gatewayValue !== undefined && ranges.some((r) => gatewayValue >= r.first && gatewayValue <= r.last)) {
      throw new ConflictError(
        `Gateway ip ${gateway} conflicts with allocation pool.`,
        'GatewayConflictWithAllocationPools',
      );
    }
    return ranges;
  }

  private parseNameservers(servers: string[]): string[] {
    if (servers.length > MAX_DNS_NAMESERVERS) {
      throw new BadRequestError(
        `Unable to complete operation for subnet. The number of DNS nameservers exceeds the limit ${MAX_DNS_NAMESERVERS}.`,
        'DNSNameServersExhausted',
      );
    }
    const canonical = servers.map((server) => {
      const ip = canonicalIp(server);
      if (!ip) throw invalidInput(`'${server}' is not a valid nameserver.`);
      return ip;
    });
    if (new Set(canonical).size !== canonical.length) {
      throw invalidInput(`Duplicate nameserver '${canonical.find((s, i) => canonical.indexOf(s) !== i)}'.`);
    }
    return canonical;
  }

  private parseRoutes(routes: { destination: string; nexthop: string }[], version: 4 | 6) {
    if (routes.length > MAX_HOST_ROUTES) {
      throw new BadRequestError(
        `Unable to complete operation for subnet. The number of host routes exceeds the limit ${MAX_HOST_ROUTES}.`,
        'HostRoutesExhausted',
      );
    }
    return routes.map((route) => {
      const destination = parseCidr(route.destination, false);
      const nexthop = parseIp(route.nexthop);
      if (!destination || !nexthop || destination.version !== version || nexthop.version !== version) {
        throw invalidInput(`Invalid data format for hostroute: '${JSON.stringify(route)}'.`);
      }
      return {
        destination: `${formatIp({ version, value: destination.network })}/${destination.prefix}`,
        nexthop: formatIp(nexthop),
      };
    });
  }
}
