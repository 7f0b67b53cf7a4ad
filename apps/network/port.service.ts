import { randomBytes, randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuthContext, authorize } from '@novum/auth';
import { BadRequestError, ConflictError, NotFoundError } from '@novum/common';
import { IpAllocationEntity, NetworkEntity, nowIso, PortEntity, SubnetEntity } from '@novum/db';
import { In } from 'typeorm';
import { adminOnly, canRead, canWrite, isAdmin, owningProject } from './access';
import { AddressPairInput, FixedIpInput, PortInput } from './controllers/dto';
import { canonicalIp, parseCidr, parseIp } from '@novum/common';
import { Ipam } from './ipam';
import { NetworkService } from './network.service';
import { uniqueTags } from './tag-set';
import { NetworkStore, NetworkTables } from './network.store';
import { NetworkNotifier } from './port-events';
import { QuotaService } from './quota.service';
import { SecurityGroupService } from './security-group.service';

export function portNotFound(id: string): NotFoundError {
  return new NotFoundError(`Port ${id} could not be found.`, 'PortNotFound');
}

/** Neutron's base MAC, `fa:16:3e`, with three random octets. */
export function randomMac(): string {
  return ['fa', '16', '3e', ...[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

function canonicalMac(text: string): string | undefined {
  if (!/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(text)) return undefined;
  const mac = text.toLowerCase().replace(/-/g, ':');
  // Multicast and all-zero addresses cannot name a port.
  if (parseInt(mac.slice(0, 2), 16) & 1 || mac === '00:00:00:00:00:00') return undefined;
  return mac;
}

/** Owners whose ports Neutron manages itself (router interfaces, gateways, floating IPs, DHCP). */
export const ROUTER_INTERFACE = 'network:router_interface';
export const ROUTER_GATEWAY = 'network:router_gateway';
export const FLOATING_IP_OWNER = 'network:floatingip';

export interface NewPort {
  network: NetworkEntity;
  projectId: string;
  name?: string;
  description?: string;
  adminStateUp?: boolean;
  macAddress?: string;
  fixedIps?: FixedIpInput[];
  deviceId?: string;
  deviceOwner?: string;
  bindingHostId?: string;
  bindingVnicType?: string;
  bindingProfile?: Record<string, unknown>;
  portSecurityEnabled?: boolean;
  securityGroups?: string[];
  allowedAddressPairs?: { ip_address: string; mac_address: string }[];
  /** Without `fixedIps`: the IP versions to take one address of each (default: IPv4 and IPv6). */
  ipVersions?: number[];
  tags?: string[];
}

/** Port filters listPorts applies before any view is made; each is a list of alternatives. */
export interface PortFilters {
  ids?: string[];
  networkIds?: string[];
  deviceIds?: string[];
  deviceOwners?: string[];
  securityGroups?: string[];
}

/** Ports and the addresses IPAM gives them. */
@Injectable()
export class PortService {
  constructor(
    private readonly store: NetworkStore,
    private readonly networks: NetworkService,
    private readonly securityGroups: SecurityGroupService,
    private readonly quotas: QuotaService,
    private readonly ipam: Ipam,
    private readonly notifier: NetworkNotifier,
  ) {}

  /**
   * The ports the caller may see, narrowed by `filters` (each a list of alternatives) in the query rather than
   * after every port's view is made: an agent asks for the members of a security group at every build, and
   * a cloud has hundreds of ports.
   */
  async listPorts(auth: AuthContext, filters: PortFilters = {}): Promise<PortEntity[]> {
    const narrow = {
      ...(filters.ids ? { id: In(filters.ids) } : {}),
      ...(filters.networkIds ? { networkId: In(filters.networkIds) } : {}),
      ...(filters.deviceIds ? { deviceId: In(filters.deviceIds) } : {}),
      ...(filters.deviceOwners ? { deviceOwner: In(filters.deviceOwners) } : {}),
    };
    let ports: PortEntity[];
    if (isAdmin(auth)) {
      ports = await this.store.ports.find({ where: narrow });
    } else {
      let owned = (await this.store.networks.findBy({ projectId: auth.projectId ?? '' })).map((n) => n.id);
      if (filters.networkIds) owned = owned.filter((id) => filters.networkIds!.includes(id));
      ports = await this.store.ports.find({
        where: [
          { ...narrow, projectId: auth.projectId ?? '' },
          ...(owned.length ? [{ ...narrow, networkId: In(owned) }] : []),
        ],
      });
    }
    const groups = filters.securityGroups;
    return groups
      ? ports.filter((port) => port.securityGroups.some((group) => groups.includes(group)))
      : ports;
  }

  async allocationsOf(portIds: string[]): Promise<Map<string, IpAllocationEntity[]>> {
    const rows = portIds.length ? await this.store.allocations.findBy({ portId: In(portIds) }) : [];
    const byPort = new Map<string, IpAllocationEntity[]>(portIds.map((id) => [id, []]));
    for (const row of rows) byPort.get(row.portId)?.push(row);
    return byPort;
  }

  /** A port the caller may see: their own, or one on a network they own; else 404. */
  async getPort(auth: AuthContext, id: string): Promise<PortEntity> {
    const port = await this.store.ports.findOneBy({ id });
    if (!port) throw portNotFound(id);
    if (canRead(auth, port.projectId)) return port;
    const network = await this.store.networks.findOneBy({ id: port.networkId });
    if (!network || !canRead(auth, network.projectId)) throw portNotFound(id);
    return port;
  }

  async createPort(auth: AuthContext, input: PortInput): Promise<PortEntity> {
    if (!input.network_id)
      throw new BadRequestError("Invalid input for operation: 'network_id' is required.", 'InvalidInput');
    const network = await this.networks.getNetwork(auth, input.network_id);
    const projectId = owningProject(auth, 'create_port', input);
    // A visible network is usable when it is shared or the caller's own; an external one is for admins.
    authorize('create_port', isAdmin(auth), network.shared, network.projectId === projectId);
    adminOnly(auth, 'create_port', input, ['binding:host_id', 'binding:profile']);
    if (input.mac_address !== undefined) {
      authorize('create_port:mac_address', isAdmin(auth), network.projectId === projectId);
    }
    await this.quotas.check(projectId, 'port', () => this.store.ports.countBy({ projectId }));
    const port = await this.insertPort(
      {
        network,
        projectId,
        name: input.name,
        description: input.description,
        adminStateUp: input.admin_state_up,
        macAddress: input.mac_address,
        fixedIps: input.fixed_ips,
        deviceId: input.device_id,
        deviceOwner: input.device_owner,
        bindingHostId: input['binding:host_id'],
        bindingVnicType: input['binding:vnic_type'],
        bindingProfile: input['binding:profile'],
        portSecurityEnabled: input.port_security_enabled,
        securityGroups: input.security_groups,
        allowedAddressPairs: this.parseAddressPairs(input.allowed_address_pairs),
        tags: input.tags,
      },
      auth,
    );
    this.notifier.emit('port.create.end', { port: this.eventView(port) });
    return port;
  }

  /** What the notifications say of a port: enough for an agent to know whose filters change. */
  private eventView(port: PortEntity): Record<string, unknown> {
    return {
      id: port.id,
      network_id: port.networkId,
      device_id: port.deviceId,
      security_groups: port.securityGroups,
      port_security_enabled: port.portSecurityEnabled,
      'binding:host_id': port.bindingHostId,
    };
  }

  /**
   * Creates a port and its addresses in one transaction: when IPAM cannot serve the request, no port is
   * left behind. Also used for the ports Neutron owns itself (router interfaces, floating IPs).
   */
  async insertPort(spec: NewPort, auth?: AuthContext): Promise<PortEntity> {
    const deviceOwner = spec.deviceOwner ?? '';
    const portSecurity = spec.portSecurityEnabled ?? spec.network.portSecurityEnabled;
    let groups: string[] = [];
    if (spec.securityGroups !== undefined) {
      groups = [...new Set(spec.securityGroups)];
      for (const id of groups) {
        const group = await this.store.securityGroups.findOneBy({ id });
        // A port uses groups of its own project; an admin may use any.
        if (!group || (group.projectId !== spec.projectId && !(auth && isAdmin(auth)))) {
          throw new NotFoundError(`Security group ${id} does not exist`, 'SecurityGroupNotFound');
        }
      }
      if (groups.length && !portSecurity) {
        throw new BadRequestError(
          'Port security must be enabled and port must have an IP address in order to use security groups.',
          'PortSecurityAndIPRequiredForSecurityGroups',
        );
      }
    } else if (portSecurity && !deviceOwner.startsWith('network:')) {
      const defaultGroup = await this.securityGroups.ensureDefault(spec.projectId);
      if (defaultGroup) groups = [defaultGroup];
    }
    if (!portSecurity && spec.allowedAddressPairs?.length) {
      throw new ConflictError(
        'Port Security must be enabled in order to have allowed address pairs on a port.',
        'AddressPairAndPortSecurityRequired',
      );
    }
    let mac: string | undefined;
    if (spec.macAddress !== undefined) {
      mac = canonicalMac(spec.macAddress);
      if (!mac)
        throw new BadRequestError(
          `Invalid input for mac_address. Reason: '${spec.macAddress}' is not a valid MAC address.`,
          'InvalidInput',
        );
    }
    const now = nowIso();
    const port: PortEntity = {
      id: randomUUID(),
      projectId: spec.projectId,
      name: spec.name ?? '',
      description: spec.description ?? '',
      revisionNumber: 1,
      createdAt: now,
      updatedAt: now,
      networkId: spec.network.id,
      tags: uniqueTags(spec.tags),
      macAddress: mac ?? randomMac(),
      adminStateUp: spec.adminStateUp ?? true,
      status: 'DOWN',
      deviceId: spec.deviceId ?? '',
      deviceOwner,
      bindingHostId: spec.bindingHostId ?? '',
      bindingVnicType: spec.bindingVnicType ?? 'normal',
      bindingProfile: spec.bindingProfile ?? {},
      portSecurityEnabled: portSecurity,
      securityGroups: groups,
      allowedAddressPairs: spec.allowedAddressPairs ?? [],
    };
    await this.store.transaction(async (t) => {
      // The (network, mac) unique index decides; a random MAC that lost is drawn again.
      for (let attempt = 0; ; attempt++) {
        await t.insertIfAbsent(PortEntity, port);
        const mine = await t.ports.findOneBy({ id: port.id });
        if (mine) break;
        if (mac !== undefined || attempt >= 10) {
          throw new ConflictError(
            `Unable to complete operation for network ${spec.network.id}. The mac address ${port.macAddress} is in use.`,
            'MacAddressInUse',
          );
        }
        port.macAddress = randomMac();
      }
      await this.allocate(t, spec.network, port, spec.fixedIps, spec.ipVersions);
    });
    return port;
  }

  /** Addresses for a port: the ones asked for, or one from an IPv4 and one from an IPv6 subnet. */
  private async allocate(
    t: NetworkTables,
    network: NetworkEntity,
    port: PortEntity,
    requested: FixedIpInput[] | undefined,
    versions = [4, 6],
  ): Promise<IpAllocationEntity[]> {
    const subnets = await t.subnets.find({ where: { networkId: network.id }, order: { createdAt: 'ASC' } });
    const routerOwned = port.deviceOwner === ROUTER_INTERFACE;
    const allocated: IpAllocationEntity[] = [];
    if (requested === undefined) {
      for (const version of versions) {
        const candidates = subnets.filter((s) => s.ipVersion === version);
        if (!candidates.length) continue;
        let allocation: IpAllocationEntity | undefined;
        for (const subnet of candidates) {
          allocation = await this.ipam.allocateAny(t, subnet, port.id);
          if (allocation) break;
        }
        if (!allocation) throw this.exhausted(network.id);
        allocated.push(allocation);
      }
      return allocated;
    }
    for (const fixedIp of requested) {
      const subnet = this.subnetFor(network, subnets, fixedIp);
      if (fixedIp.ip_address !== undefined) {
        allocated.push(await this.ipam.allocateAddress(t, subnet, port.id, fixedIp.ip_address, routerOwned));
      } else {
        const allocation = await this.ipam.allocateAny(t, subnet, port.id);
        if (!allocation) throw this.exhausted(network.id);
        allocated.push(allocation);
      }
    }
    return allocated;
  }

  private exhausted(networkId: string): ConflictError {
    return new ConflictError(
      `No more IP addresses available on network ${networkId}.`,
      'IpAddressGenerationFailure',
    );
  }

  private subnetFor(network: NetworkEntity, subnets: SubnetEntity[], fixedIp: FixedIpInput): SubnetEntity {
    if (fixedIp.subnet_id !== undefined) {
      const subnet = subnets.find((s) => s.id === fixedIp.subnet_id);
      if (!subnet) {
        throw new BadRequestError(
          `Invalid input for operation: Failed to create port on network ${network.id}, because fixed_ips included invalid subnet ${fixedIp.subnet_id}.`,
          'InvalidInput',
        );
      }
      return subnet;
    }
    if (fixedIp.ip_address === undefined) {
      throw new BadRequestError(
        'Invalid input for operation: a fixed IP needs a subnet_id or an ip_address.',
        'InvalidInput',
      );
    }
    const ip = parseIp(fixedIp.ip_address);
    if (!ip) {
      throw new BadRequestError(
        `Invalid input for operation: '${fixedIp.ip_address}' is not a valid IP address.`,
        'InvalidInput',
      );
    }
    const subnet = subnets.find((s) => {
      const cidr = parseCidr(s.cidr)!;
      return cidr.version === ip.version && ip.value >= cidr.network && ip.value <= cidr.last;
    });
    if (!subnet) {
      throw new BadRequestError(
        `Invalid input for operation: IP address ${fixedIp.ip_address} is not a valid IP for any of the subnets on the specified network.`,
        'InvalidInput',
      );
    }
    return subnet;
  }

  private parseAddressPairs(pairs: AddressPairInput[] | undefined) {
    return pairs?.map((pair) => {
      const ip =
        canonicalIp(pair.ip_address) ?? (parseCidr(pair.ip_address, false) ? pair.ip_address : undefined);
      if (!ip) {
        throw new BadRequestError(
          `Invalid input for ip_address. Reason: '${pair.ip_address}' is not a valid IP address or CIDR.`,
          'InvalidInput',
        );
      }
      const mac = pair.mac_address === undefined ? '' : canonicalMac(pair.mac_address);
      if (mac === undefined) {
        throw new BadRequestError(
          `Invalid input for mac_address. Reason: '${pair.mac_address}' is not a valid MAC address.`,
          'InvalidInput',
        );
      }
      return { ip_address: ip, mac_address: mac };
    });
  }

  async updatePort(auth: AuthContext, id: string, input: PortInput): Promise<PortEntity> {
    const port = await this.getPort(auth, id);
    authorize('update_port', canWrite(auth, port.projectId));
    adminOnly(auth, 'update_port', input, ['binding:host_id', 'binding:profile', 'mac_address']);
    for (const readOnly of ['network_id', 'tenant_id', 'project_id'] as const) {
      if (
        input[readOnly] !== undefined &&
        input[readOnly] !== port[readOnly === 'network_id' ? 'networkId' : 'projectId']
      ) {
        throw new BadRequestError(`Cannot update read-only attribute ${readOnly}`);
      }
    }
    const network = (await this.store.networks.findOneBy({ id: port.networkId }))!;
    const portSecurity = input.port_security_enabled ?? port.portSecurityEnabled;
    let groups = port.securityGroups;
    if (input.security_groups !== undefined) {
      groups = [...new Set(input.security_groups)];
      for (const groupId of groups) {
        const group = await this.store.securityGroups.findOneBy({ id: groupId });
        if (!group || (!isAdmin(auth) && group.projectId !== port.projectId)) {
          throw new NotFoundError(`Security group ${groupId} does not exist`, 'SecurityGroupNotFound');
        }
      }
    }
    if (!portSecurity && groups.length) {
      throw new ConflictError(
        'Port has security group associated. Cannot disable port security or IP address until security group is removed.',
        'PortSecurityPortHasSecurityGroup',
      );
    }
    const pairs =
      input.allowed_address_pairs !== undefined
        ? this.parseAddressPairs(input.allowed_address_pairs)!
        : port.allowedAddressPairs;
    if (!portSecurity && pairs.length) {
      throw new ConflictError(
        'Port Security must be enabled in order to have allowed address pairs on a port.',
        'AddressPairAndPortSecurityRequired',
      );
    }
    let mac = port.macAddress;
    if (input.mac_address !== undefined) {
      const canonical = canonicalMac(input.mac_address);
      if (!canonical)
        throw new BadRequestError(
          `Invalid input for mac_address. Reason: '${input.mac_address}' is not a valid MAC address.`,
          'InvalidInput',
        );
      if (port.bindingHostId && canonical !== port.macAddress) {
        throw new ConflictError(`Port ${id} is bound: its MAC address cannot change.`, 'PortBound');
      }
      mac = canonical;
    }
    Object.assign(port, {
      name: input.name ?? port.name,
      description: input.description ?? port.description,
      adminStateUp: input.admin_state_up ?? port.adminStateUp,
      deviceId: input.device_id ?? port.deviceId,
      deviceOwner: input.device_owner ?? port.deviceOwner,
      bindingHostId: input['binding:host_id'] ?? port.bindingHostId,
      bindingVnicType: input['binding:vnic_type'] ?? port.bindingVnicType,
      bindingProfile: input['binding:profile'] ?? port.bindingProfile,
      portSecurityEnabled: portSecurity,
      securityGroups: groups,
      allowedAddressPairs: pairs,
      macAddress: mac,
      revisionNumber: port.revisionNumber + 1,
      updatedAt: nowIso(),
    });
    await this.store.transaction(async (t) => {
      if (input.fixed_ips !== undefined) {
        // Addresses the port keeps stay allocated; the rest go back to the pool before new ones are taken.
        const current = await t.allocations.findBy({ portId: id });
        const keep = input.fixed_ips.filter(
          (f) =>
            f.ip_address !== undefined &&
            current.some(
              (c) =>
                c.ipAddress === canonicalIp(f.ip_address!) &&
                (f.subnet_id === undefined || f.subnet_id === c.subnetId),
            ),
        );
        const kept = new Set(keep.map((f) => canonicalIp(f.ip_address!)));
        for (const allocation of current) {
          if (!kept.has(allocation.ipAddress))
            await t.allocations.delete({ subnetId: allocation.subnetId, ipAddress: allocation.ipAddress });
        }
        await this.allocate(
          t,
          network,
          port,
          input.fixed_ips.filter((f) => !keep.includes(f)),
        );
      }
      await t.ports.save(port);
    });
    this.notifier.emit('port.update.end', { port: this.eventView(port) });
    return port;
  }

  async deletePort(auth: AuthContext, id: string): Promise<void> {
    const port = await this.getPort(auth, id);
    authorize('delete_port', canWrite(auth, port.projectId));
    if (
      port.deviceOwner === ROUTER_INTERFACE ||
      port.deviceOwner === ROUTER_GATEWAY ||
      port.deviceOwner === FLOATING_IP_OWNER
    ) {
      throw new ConflictError(
        `Port ${id} cannot be deleted directly via the port API: has device owner ${port.deviceOwner}.`,
        'ServicePortInUse',
      );
    }
    await this.removePort(id);
    this.notifier.emit('port.delete.end', { port_id: id });
  }

  /** Deletes a port, returns its addresses to the pools and detaches floating IPs from it. */
  async removePort(id: string, tables?: NetworkTables): Promise<void> {
    const work = async (t: NetworkTables) => {
      await t.floatingIps.update(
        { portId: id },
        { portId: null, fixedIpAddress: null, routerId: null, status: 'DOWN', updatedAt: nowIso() },
      );
      await t.allocations.delete({ portId: id });
      await t.ports.delete({ id });
    };
    if (tables) await work(tables);
    else await this.store.transaction(work);
  }
}
