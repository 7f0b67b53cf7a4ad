import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuthContext, authorize } from '@novum/auth';
import { ApiError, BadRequestError, ConflictError, NotFoundError } from '@novum/common';
import { FloatingIpEntity, NetworkEntity, nowIso, PortEntity, RouterEntity } from '@novum/db';
import { In } from 'typeorm';
import { canRead, canWrite, isAdmin, owningProject } from './access';
import { FloatingIpInput, GatewayInput, RouterInput, RouterInterfaceBody } from './controllers/dto';
import { canonicalIp, cidrsOverlap, parseCidr } from '@novum/common';
import { NetworkService, subnetNotFound } from './network.service';
import { uniqueTags } from './tag-set';
import { NetworkStore } from './network.store';
import {
  FLOATING_IP_OWNER,
  PortService,
  portNotFound,
  ROUTER_GATEWAY,
  ROUTER_INTERFACE,
} from './port.service';
import { QuotaService } from './quota.service';

export function routerNotFound(id: string): NotFoundError {
  return new NotFoundError(`Router ${id} could not be found`, 'RouterNotFound');
}
export function floatingIpNotFound(id: string): NotFoundError {
  return new NotFoundError(`Floating IP ${id} could not be found`, 'FloatingIPNotFound');
}

export interface RouterInterfaceInfo {
  id: string;
  tenant_id: string;
  project_id: string;
  subnet_id: string;
  subnet_ids: string[];
  port_id: string;
  network_id: string;
}

/** Routers and floating IPs: the API and data model (forwarding comes with the drivers). */
@Injectable()
export class RouterService {
  constructor(
    private readonly store: NetworkStore,
    private readonly networks: NetworkService,
    private readonly ports: PortService,
    private readonly quotas: QuotaService,
  ) {}

  async listRouters(auth: AuthContext): Promise<RouterEntity[]> {
    if (isAdmin(auth)) return this.store.routers.find();
    return this.store.routers.findBy({ projectId: auth.projectId ?? '' });
  }

  async getRouter(auth: AuthContext, id: string): Promise<RouterEntity> {
    const router = await this.store.routers.findOneBy({ id });
    if (!router || !canRead(auth, router.projectId)) throw routerNotFound(id);
    return router;
  }

  async gatewayAllocations(routers: RouterEntity[]) {
    return this.ports.allocationsOf(routers.map((r) => r.gatewayPortId).filter((id): id is string => !!id));
  }

  async createRouter(auth: AuthContext, input: RouterInput): Promise<RouterEntity> {
    const projectId = owningProject(auth, 'create_router', input);
    await this.quotas.check(projectId, 'router', () => this.store.routers.countBy({ projectId }));
    const now = nowIso();
    const router: RouterEntity = {
      id: randomUUID(),
      projectId,
      name: input.name ?? '',
      description: input.description ?? '',
      revisionNumber: 1,
      createdAt: now,
      updatedAt: now,
      adminStateUp: input.admin_state_up ?? true,
      status: 'ACTIVE',
      gatewayNetworkId: null,
      gatewayPortId: null,
      enableSnat: true,
      routes: [],
      tags: uniqueTags(input.tags),
    };
    if (input.routes?.length)
      throw new BadRequestError(
        'Invalid input for operation: routes cannot be set on router create.',
        'InvalidInput',
      );
    if (!input.external_gateway_info?.network_id) input.external_gateway_info = undefined;
    const gateway = input.external_gateway_info
      ? await this.checkGateway(auth, input.external_gateway_info)
      : undefined;
    await this.store.routers.insert(router);
    if (gateway) {
      try {
        await this.setGateway(router, gateway.network, input.external_gateway_info!);
      } catch (error) {
        await this.store.routers.delete({ id: router.id });
        throw error;
      }
    }
    return router;
  }

  private async checkGateway(auth: AuthContext, info: GatewayInput): Promise<{ network: NetworkEntity }> {
    if (info.enable_snat !== undefined)
      authorize('create_router:external_gateway_info:enable_snat', isAdmin(auth));
    if (info.external_fixed_ips !== undefined) {
      authorize('create_router:external_gateway_info:external_fixed_ips', isAdmin(auth));
    }
    // An invisible network does not exist for the caller; a visible one that is not external is a bad gateway.
    const network = await this.networks.getNetwork(auth, info.network_id!);
    if (!network.external) {
      throw new BadRequestError(
        `Bad router request: Network ${info.network_id} is not a valid external network.`,
        'BadRequest',
      );
    }
    return { network };
  }

  private async setGateway(router: RouterEntity, network: NetworkEntity, info: GatewayInput): Promise<void> {
    if (!info.external_fixed_ips) await this.requireIpv4Subnet(network, 'router');
    const port = await this.ports.insertPort({
      network,
      projectId: '',
      deviceOwner: ROUTER_GATEWAY,
      deviceId: router.id,
      fixedIps: info.external_fixed_ips,
      ipVersions: [4],
    });
    router.gatewayNetworkId = network.id;
    router.gatewayPortId = port.id;
    router.enableSnat = info.enable_snat ?? true;
    await this.store.routers.update(
      { id: router.id },
      { gatewayNetworkId: network.id, gatewayPortId: port.id, enableSnat: router.enableSnat },
    );
  }

  /** External networks hand out IPv4 addresses to gateways and floating IPs. */
  private async requireIpv4Subnet(network: NetworkEntity, resource: string): Promise<void> {
    if ((await this.store.subnets.countBy({ networkId: network.id, ipVersion: 4 })) === 0) {
      throw new BadRequestError(
        `Bad ${resource} request: Network ${network.id} does not contain any IPv4 subnet.`,
        'BadRequest',
      );
    }
  }

  async updateRouter(auth: AuthContext, id: string, input: RouterInput): Promise<RouterEntity> {
    const router = await this.getRouter(auth, id);
    authorize('update_router', canWrite(auth, router.projectId));
    if (input.project_id !== undefined || input.tenant_id !== undefined) {
      throw new BadRequestError('Cannot update read-only attribute project_id');
    }
    if (input.routes !== undefined) {
      router.routes = input.routes.map((route) => {
        const destination = parseCidr(route.destination, false);
        const nexthop = canonicalIp(route.nexthop);
        if (!destination || !nexthop) {
          throw new BadRequestError(
            `Invalid input for routes. Reason: Invalid data format for hostroute: '${JSON.stringify(route)}'.`,
            'InvalidInput',
          );
        }
        return { destination: route.destination, nexthop };
      });
    }
    if (input.external_gateway_info !== undefined) {
      // Neutron's _update_router_gw_info: gateway info without a network clears the gateway.
      if (!input.external_gateway_info?.network_id) input.external_gateway_info = null;
      const gateway = input.external_gateway_info
        ? await this.checkGateway(auth, input.external_gateway_info)
        : undefined;
      if (router.gatewayNetworkId && (!gateway || gateway.network.id !== router.gatewayNetworkId)) {
        await this.clearGateway(router);
      }
      if (gateway && !router.gatewayNetworkId) {
        await this.setGateway(router, gateway.network, input.external_gateway_info!);
      } else if (gateway) {
        router.enableSnat = input.external_gateway_info!.enable_snat ?? router.enableSnat;
      }
    }
    Object.assign(router, {
      name: input.name ?? router.name,
      description: input.description ?? router.description,
      adminStateUp: input.admin_state_up ?? router.adminStateUp,
      revisionNumber: router.revisionNumber + 1,
      updatedAt: nowIso(),
    });
    await this.store.routers.save(router);
    return router;
  }

  private async clearGateway(router: RouterEntity): Promise<void> {
    if ((await this.store.floatingIps.countBy({ routerId: router.id })) > 0) {
      throw new ConflictError(
        `Gateway cannot be updated for router ${router.id}, since a gateway to external network ${router.gatewayNetworkId} is required by one or more floating IPs.`,
        'RouterExternalGatewayInUseByFloatingIp',
      );
    }
    if (router.gatewayPortId) await this.ports.removePort(router.gatewayPortId);
    router.gatewayNetworkId = null;
    router.gatewayPortId = null;
    await this.store.routers.update({ id: router.id }, { gatewayNetworkId: null, gatewayPortId: null });
  }

  async deleteRouter(auth: AuthContext, id: string): Promise<void> {
    const router = await this.getRouter(auth, id);
    authorize('delete_router', canWrite(auth, router.projectId));
    if ((await this.store.ports.countBy({ deviceId: id, deviceOwner: ROUTER_INTERFACE })) > 0) {
      throw new ConflictError(`Router ${id} still has ports`, 'RouterInUse');
    }
    if (router.gatewayNetworkId) await this.clearGateway(router);
    await this.store.routers.delete({ id });
  }

  async addInterface(auth: AuthContext, id: string, body: RouterInterfaceBody): Promise<RouterInterfaceInfo> {
    const router = await this.getRouter(auth, id);
    authorize('add_router_interface', canWrite(auth, router.projectId));
    if (!!body.subnet_id === !!body.port_id) {
      throw new BadRequestError(
        'Bad router request: Either subnet_id or port_id must be specified.',
        'BadRequest',
      );
    }
    const attached = await this.store.ports.findBy({ deviceId: id, deviceOwner: ROUTER_INTERFACE });
    const attachedAllocations = [
      ...(await this.ports.allocationsOf(attached.map((p) => p.id))).values(),
    ].flat();
    const attachedSubnets = await this.store.subnets.findBy({
      id: In(attachedAllocations.map((a) => a.subnetId)),
    });
    let port: PortEntity;
    if (body.subnet_id) {
      const subnet = await this.networks.getSubnet(auth, body.subnet_id).catch(() => {
        throw subnetNotFound(body.subnet_id!);
      });
      if (!subnet.gatewayIp) {
        throw new BadRequestError(
          'Bad router request: Subnet for router interface must have a gateway IP.',
          'BadRequest',
        );
      }
      const cidr = parseCidr(subnet.cidr)!;
      const clash = attachedSubnets.find((s) => s.id === subnet.id || cidrsOverlap(cidr, parseCidr(s.cidr)!));
      if (clash) {
        throw new BadRequestError(
          clash.id === subnet.id
            ? `Bad router request: Router already has a port on subnet ${subnet.id}.`
            : `Bad router request: Cidr ${subnet.cidr} of subnet ${subnet.id} overlaps with cidr ${clash.cidr} of subnet ${clash.id}.`,
          'BadRequest',
        );
      }
      const network = (await this.store.networks.findOneBy({ id: subnet.networkId }))!;
      port = await this.ports.insertPort({
        network,
        projectId: router.projectId,
        deviceOwner: ROUTER_INTERFACE,
        deviceId: router.id,
        fixedIps: [{ subnet_id: subnet.id, ip_address: subnet.gatewayIp }],
      });
    } else {
      port = await this.ports.getPort(auth, body.port_id!);
      if (port.deviceId) {
        throw new ConflictError(
          `Unable to complete operation on port ${port.id} for network ${port.networkId}. Port already has an attached device ${port.deviceId}.`,
          'PortInUse',
        );
      }
      const allocations = (await this.ports.allocationsOf([port.id])).get(port.id)!;
      if (!allocations.length) {
        throw new BadRequestError(
          `Bad router request: Router port must have at least one fixed IP.`,
          'BadRequest',
        );
      }
      const subnets = await this.store.subnets.findBy({ id: In(allocations.map((a) => a.subnetId)) });
      for (const subnet of subnets) {
        if (attachedSubnets.some((s) => cidrsOverlap(parseCidr(subnet.cidr)!, parseCidr(s.cidr)!))) {
          throw new BadRequestError(
            `Bad router request: Router already has a port on subnet ${subnet.id}.`,
            'BadRequest',
          );
        }
      }
      await this.store.ports.update(
        { id: port.id },
        {
          deviceId: router.id,
          deviceOwner: ROUTER_INTERFACE,
          updatedAt: nowIso(),
          revisionNumber: port.revisionNumber + 1,
        },
      );
    }
    return this.interfaceInfo(router, port);
  }

  private async interfaceInfo(router: RouterEntity, port: PortEntity): Promise<RouterInterfaceInfo> {
    const subnetIds = (await this.ports.allocationsOf([port.id])).get(port.id)!.map((a) => a.subnetId);
    return {
      id: router.id,
      tenant_id: router.projectId,
      project_id: router.projectId,
      subnet_id: subnetIds[0],
      subnet_ids: subnetIds,
      port_id: port.id,
      network_id: port.networkId,
    };
  }

  async removeInterface(
    auth: AuthContext,
    id: string,
    body: RouterInterfaceBody,
  ): Promise<RouterInterfaceInfo> {
    const router = await this.getRouter(auth, id);
    authorize('remove_router_interface', canWrite(auth, router.projectId));
    if (!body.subnet_id && !body.port_id) {
      throw new BadRequestError(
        'Bad router request: Either subnet_id or port_id must be specified.',
        'BadRequest',
      );
    }
    const attached = await this.store.ports.findBy({ deviceId: id, deviceOwner: ROUTER_INTERFACE });
    const allocations = await this.ports.allocationsOf(attached.map((p) => p.id));
    const port = body.port_id
      ? attached.find((p) => p.id === body.port_id)
      : attached.find((p) => allocations.get(p.id)!.some((a) => a.subnetId === body.subnet_id));
    if (!port) {
      throw body.port_id
        ? new NotFoundError(
            `Router ${id} does not have an interface with id ${body.port_id}`,
            'RouterInterfaceNotFound',
          )
        : new NotFoundError(
            `Router ${id} has no interface on subnet ${body.subnet_id}`,
            'RouterInterfaceNotFoundForSubnet',
          );
    }
    const subnetIds = allocations.get(port.id)!.map((a) => a.subnetId);
    const info = await this.interfaceInfo(router, port);
    const floating = await this.store.floatingIps.findBy({ routerId: id });
    if (floating.length) {
      const served = await this.store.allocations.findBy({ subnetId: In(subnetIds) });
      const inUse = floating.find((f) => served.some((a) => a.portId === f.portId));
      if (inUse) {
        throw new ConflictError(
          `Cannot remove router interface from subnet ${subnetIds[0]} of router ${id}: one or more floating IPs require it.`,
          'RouterInterfaceInUseByFloatingIP',
        );
      }
    }
    await this.ports.removePort(port.id);
    return info;
  }

  async listFloatingIps(auth: AuthContext): Promise<FloatingIpEntity[]> {
    if (isAdmin(auth)) return this.store.floatingIps.find();
    return this.store.floatingIps.findBy({ projectId: auth.projectId ?? '' });
  }

  async getFloatingIp(auth: AuthContext, id: string): Promise<FloatingIpEntity> {
    const fip = await this.store.floatingIps.findOneBy({ id });
    if (!fip || !canRead(auth, fip.projectId)) throw floatingIpNotFound(id);
    return fip;
  }

  async portsOf(fips: FloatingIpEntity[]): Promise<Map<string, PortEntity>> {
    const ids = fips.map((f) => f.portId).filter((id): id is string => !!id);
    const ports = ids.length ? await this.store.ports.findBy({ id: In(ids) }) : [];
    return new Map(ports.map((p) => [p.id, p]));
  }

  async createFloatingIp(auth: AuthContext, input: FloatingIpInput): Promise<FloatingIpEntity> {
    if (!input.floating_network_id) {
      throw new BadRequestError(
        "Invalid input for operation: 'floating_network_id' is required.",
        'InvalidInput',
      );
    }
    const projectId = owningProject(auth, 'create_floatingip', input);
    if (input.floating_ip_address !== undefined)
      authorize('create_floatingip:floating_ip_address', isAdmin(auth));
    const network = await this.networks.getNetwork(auth, input.floating_network_id);
    if (!network.external) {
      throw new BadRequestError(
        `Bad floatingip request: Network ${network.id} is not a valid external network.`,
        'BadRequest',
      );
    }
    await this.quotas.check(projectId, 'floatingip', () => this.store.floatingIps.countBy({ projectId }));
    const now = nowIso();
    const fip: FloatingIpEntity = {
      id: randomUUID(),
      projectId,
      name: '',
      description: input.description ?? '',
      revisionNumber: 0,
      createdAt: now,
      updatedAt: now,
      floatingNetworkId: network.id,
      floatingIpAddress: '',
      floatingPortId: '',
      portId: null,
      fixedIpAddress: null,
      routerId: null,
      status: 'DOWN',
      tags: uniqueTags(input.tags),
    };
    const association = input.port_id
      ? await this.association(auth, fip, input.port_id, input.fixed_ip_address ?? undefined)
      : undefined;
    const explicit = input.floating_ip_address !== undefined || input.subnet_id !== undefined;
    if (!explicit) await this.requireIpv4Subnet(network, 'floatingip');
    const port = await this.ports.insertPort({
      network,
      projectId: '',
      deviceOwner: FLOATING_IP_OWNER,
      deviceId: fip.id,
      fixedIps: explicit
        ? [{ subnet_id: input.subnet_id, ip_address: input.floating_ip_address }]
        : undefined,
      ipVersions: [4],
    });
    const [allocation] = (await this.ports.allocationsOf([port.id])).get(port.id)!;
    Object.assign(fip, { floatingPortId: port.id, floatingIpAddress: allocation.ipAddress, ...association });
    try {
      await this.store.floatingIps.insert(fip);
    } catch (error) {
      await this.ports.removePort(port.id);
      throw error;
    }
    return fip;
  }

  /** Where a floating IP attached to `portId` forwards: the port's fixed IP and the router that reaches it. */
  private async association(
    auth: AuthContext,
    fip: FloatingIpEntity,
    portId: string,
    fixedIp: string | undefined,
  ) {
    const port = await this.ports.getPort(auth, portId).catch((error: ApiError) => {
      throw error.status === 404 ? portNotFound(portId) : error;
    });
    if (port.projectId !== fip.projectId && !isAdmin(auth)) {
      throw new BadRequestError(
        `Bad floatingip request: Cannot create floating IP and bind it to Port ${portId}, since that port is owned by a different tenant.`,
        'BadRequest',
      );
    }
    const allocations = (await this.ports.allocationsOf([port.id]))
      .get(port.id)!
      .filter((a) => !a.ipAddress.includes(':'));
    const wanted =
      fixedIp === undefined ? allocations[0] : allocations.find((a) => a.ipAddress === canonicalIp(fixedIp));
    if (!wanted) {
      throw new BadRequestError(
        fixedIp === undefined
          ? `Bad floatingip request: Port ${portId} does not have any IPv4 address.`
          : `Bad floatingip request: Port ${portId} does not have fixed ip ${fixedIp}.`,
        'BadRequest',
      );
    }
    const routers = await this.store.routers.findBy({ gatewayNetworkId: fip.floatingNetworkId });
    const interfaces = routers.length
      ? await this.store.ports.findBy({
          deviceId: In(routers.map((r) => r.id)),
          deviceOwner: ROUTER_INTERFACE,
        })
      : [];
    const interfaceAllocations = await this.ports.allocationsOf(interfaces.map((p) => p.id));
    const via = interfaces.find((p) =>
      interfaceAllocations.get(p.id)!.some((a) => a.subnetId === wanted.subnetId),
    );
    if (!via) {
      throw new NotFoundError(
        `External network ${fip.floatingNetworkId} is not reachable from subnet ${wanted.subnetId}. Therefore, cannot associate Port ${portId} with a Floating IP.`,
        'ExternalGatewayForFloatingIPNotFound',
      );
    }
    const taken = await this.store.floatingIps.findOneBy({
      portId,
      fixedIpAddress: wanted.ipAddress,
      floatingNetworkId: fip.floatingNetworkId,
    });
    if (taken && taken.id !== fip.id) {
      throw new ConflictError(
        `Cannot associate floating IP ${fip.floatingIpAddress} (${fip.id}) with port ${portId} using fixed IP ${wanted.ipAddress}, as that fixed IP already has a floating IP on external network ${fip.floatingNetworkId}.`,
        'FloatingIPPortAlreadyAssociated',
      );
    }
    return { portId, fixedIpAddress: wanted.ipAddress, routerId: via.deviceId, status: 'ACTIVE' };
  }

  async updateFloatingIp(auth: AuthContext, id: string, input: FloatingIpInput): Promise<FloatingIpEntity> {
    const fip = await this.getFloatingIp(auth, id);
    authorize('update_floatingip', canWrite(auth, fip.projectId));
    for (const readOnly of [
      'floating_network_id',
      'floating_ip_address',
      'subnet_id',
      'tenant_id',
      'project_id',
    ] as const) {
      if (input[readOnly] !== undefined)
        throw new BadRequestError(`Cannot update read-only attribute ${readOnly}`);
    }
    if (input.port_id !== undefined) {
      const association = input.port_id
        ? await this.association(auth, fip, input.port_id, input.fixed_ip_address ?? undefined)
        : { portId: null, fixedIpAddress: null, routerId: null, status: 'DOWN' };
      Object.assign(fip, association);
    }
    fip.description = input.description ?? fip.description;
    fip.revisionNumber += 1;
    fip.updatedAt = nowIso();
    await this.store.floatingIps.save(fip);
    return fip;
  }

  async deleteFloatingIp(auth: AuthContext, id: string): Promise<void> {
    const fip = await this.getFloatingIp(auth, id);
    authorize('delete_floatingip', canWrite(auth, fip.projectId));
    await this.store.transaction(async (t) => {
      await t.floatingIps.delete({ id });
      await this.ports.removePort(fip.floatingPortId, t);
    });
  }
}
