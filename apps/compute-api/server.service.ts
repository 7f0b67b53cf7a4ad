import { Inject, Injectable } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { AuthContext, isAdmin } from '@novum/auth';
import {
  BadRequestError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  NOVUM_CONFIG,
  NovumConfig,
  requestContext,
  rootLogger,
} from '@novum/common';
import {
  Binary,
  ComputeRpcClient,
  errorMessage,
  InstanceRecords,
  isServiceUp,
  release,
  sanitizeHostname,
} from '@novum/compute';
import {
  InstanceEntity,
  InstanceFaultEntity,
  InstanceFlavor,
  InstanceTagEntity,
  InstanceVif,
  ServerGroupMemberEntity,
} from '@novum/db';
import { PowerState, TaskState, VmState } from '@novum/virt';
import { In, IsNull } from 'typeorm';
import { ComputeStore } from './compute.store';
import { FlavorService } from './flavor.service';
import { KeyPairService } from './keypair.service';
import { asApiError, GlanceImage, NeutronNetwork, PeerServices } from './peers';
import { GLANCE_ATTRIBUTES } from './proxy-views';
import { QuotaService } from './quota.service';
import { imageIdFromRef, RequestedNetwork, ServerCreateRequest } from './server-schemas';
import { ServerGroupService } from './server-group.service';

/** Nova's InstanceInvalidState message. */
export function invalidState(
  action: string,
  instance: InstanceEntity,
  attribute: 'vm_state' | 'task_state' = 'vm_state',
): ConflictError {
  const value = attribute === 'vm_state' ? instance.vmState : instance.taskState;
  return new ConflictError(
    `Cannot '${action}' instance ${instance.uuid} while it is in ${attribute} ${value}`,
  );
}

/** The request id of the current HTTP request (the instance action's key). */
export function requestIdNow(): string {
  return requestContext.getStore()?.requestId ?? `req-${randomUUID()}`;
}

export interface TaskTransition {
  /** The name in Nova's state error (`pause`, `rebuild`). */
  action: string;
  /** The instance action recorded, when it differs from `action`. */
  instanceAction?: string;
  vmStates: readonly string[];
  /** Task states the instance may be in; `[null]` (idle) unless said. */
  taskStates?: readonly (string | null)[];
  task: string | null;
  /** The action may run on an instance without a host (unshelve of an offloaded one). */
  hostless?: boolean;
}

/** A server as the views render it: the row, its newest fault, its tags. */
export interface ServerRecord {
  instance: InstanceEntity;
  fault: InstanceFaultEntity | null;
  tags: string[];
}

export interface CreatedServers {
  instances: InstanceEntity[];
  reservationId: string;
  adminPass: string;
  securityGroups: string[];
}

/** Nova's `utils.generate_password`: 12 characters without look-alikes. */
export function generatePassword(length = 12): string {
  const symbols = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  const bytes = randomBytes(length);
  return Array.from(bytes, (byte) => symbols[byte % symbols.length]).join('');
}

/** The instance's copy of its flavor, as Nova keeps it with the instance. */
export function instanceFlavor(flavor: {
  id: string;
  name: string;
  vcpus: number;
  memoryMb: number;
  rootGb: number;
  ephemeralGb: number;
  swap: number;
  extraSpecs: Record<string, string>;
}): InstanceFlavor {
  return {
    id: flavor.id,
    name: flavor.name,
    vcpus: flavor.vcpus,
    memory_mb: flavor.memoryMb,
    root_gb: flavor.rootGb,
    ephemeral_gb: flavor.ephemeralGb,
    swap: flavor.swap,
    extra_specs: flavor.extraSpecs,
  };
}

/** Image facts kept in the instance's system metadata (Nova's `image_*` keys). */
export function imageSystemMetadata(image: GlanceImage): Record<string, string> {
  const meta: Record<string, string> = {
    image_disk_format: String(image.disk_format ?? ''),
    image_container_format: String(image.container_format ?? ''),
    image_min_disk: String(image.min_disk ?? 0),
    image_min_ram: String(image.min_ram ?? 0),
    image_base_image_ref: image.id,
  };
  if (image.name) meta.image_name = image.name;
  for (const [key, value] of Object.entries(image)) {
    if (
      !GLANCE_ATTRIBUTES.has(key) &&
      (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
    ) {
      meta[`image_${key}`] = String(value).slice(0, 255);
    }
  }
  return meta;
}

/**
 * Servers: create (validation against flavors, images, networks, key pairs and quotas, then the instance rows,
 * their ports and the cast to the conductor), reads with Nova's visibility (other projects get 404), updates
 * and delete. Actions live in ServerActionService.
 */
@Injectable()
export class ServerService {
  private readonly log = rootLogger().child({ service: 'compute-api', component: 'servers' });
  readonly records: InstanceRecords;

  constructor(
    readonly store: ComputeStore,
    private readonly flavors: FlavorService,
    private readonly keyPairs: KeyPairService,
    private readonly quotas: QuotaService,
    private readonly groups: ServerGroupService,
    private readonly peers: PeerServices,
    readonly rpc: ComputeRpcClient,
    @Inject(NOVUM_CONFIG) private readonly config: NovumConfig,
  ) {
    this.records = new InstanceRecords(store.dataSource);
  }

  notFound(id: string): NotFoundError {
    return new NotFoundError(`Instance ${id} could not be found.`);
  }

  /** A server the caller may see (its project's; any for an admin), deleted ones only when asked. */
  async get(auth: AuthContext, id: string, options: { deleted?: boolean } = {}): Promise<InstanceEntity> {
    const instance = await this.store.dataSource.getRepository(InstanceEntity).findOneBy({ uuid: id });
    if (!instance || (instance.deletedAt && !options.deleted)) throw this.notFound(id);
    if (!isAdmin(auth) && instance.projectId !== auth.projectId) throw this.notFound(id);
    return instance;
  }

  async record(instance: InstanceEntity): Promise<ServerRecord> {
    const [records] = await this.recordsOf([instance]);
    return records;
  }

  /** The faults (newest per instance) and tags of many instances in two queries. */
  async recordsOf(instances: InstanceEntity[]): Promise<ServerRecord[]> {
    if (!instances.length) return [];
    const uuids = instances.map((i) => i.uuid);
    const faulty = instances.filter((i) => i.vmState === VmState.ERROR || i.deletedAt).map((i) => i.uuid);
    const faults = new Map<string, InstanceFaultEntity>();
    if (faulty.length) {
      const rows = await this.store.dataSource
        .getRepository(InstanceFaultEntity)
        .find({ where: { instanceUuid: In(faulty) }, order: { createdAt: 'ASC' } });
      for (const row of rows) faults.set(row.instanceUuid, row);
    }
    const tags = new Map<string, string[]>();
    const tagRows = await this.store.dataSource
      .getRepository(InstanceTagEntity)
      .find({ where: { instanceUuid: In(uuids) }, order: { tag: 'ASC' } });
    for (const row of tagRows) tags.set(row.instanceUuid, [...(tags.get(row.instanceUuid) ?? []), row.tag]);
    return instances.map((instance) => ({
      instance,
      fault: faults.get(instance.uuid) ?? null,
      tags: tags.get(instance.uuid) ?? [],
    }));
  }

  async create(auth: AuthContext, request: ServerCreateRequest, requestId: string): Promise<CreatedServers> {
    const projectId = auth.projectId ?? '';
    const flavor = await this.flavors.get(auth, request.flavorRef).catch((error: unknown) => {
      if (error instanceof NotFoundError) throw new BadRequestError('Invalid flavorRef provided.');
      throw error;
    });
    if (flavor.disabled) throw new BadRequestError('Flavor is disabled.');

    if (!request.imageRef) {
      throw new BadRequestError('Missing imageRef attribute: booting from a volume is not available here.');
    }
    const imageId = imageIdFromRef(request.imageRef);
    if (!imageId) throw new BadRequestError('Invalid imageRef provided.');
    const image = await this.peers.image(auth, imageId).catch((error: unknown) => {
      throw asApiError(error);
    });
    if (!image) throw new BadRequestError(`Image ${imageId} could not be found.`);
    if (image.status !== 'active') throw new BadRequestError(`Image ${imageId} is not active.`);
    if (flavor.memoryMb < Number(image.min_ram ?? 0)) {
      throw new BadRequestError("Flavor's memory is too small for requested image.");
    }
    if (flavor.rootGb > 0 && flavor.rootGb < Number(image.min_disk ?? 0)) {
      throw new BadRequestError("Flavor's disk is too small for requested image.");
    }
    if (flavor.rootGb > 0 && image.size && image.size > flavor.rootGb * 1024 ** 3) {
      throw new BadRequestError(
        `Flavor's disk is too small for requested image. Flavor disk is ${flavor.rootGb * 1024 ** 3} bytes, image is ${image.size} bytes.`,
      );
    }

    let keyData: string | null = null;
    if (request.keyName) {
      const key = await this.keyPairs.get(auth.userId, request.keyName).catch(() => {
        throw new BadRequestError('Invalid key_name provided.');
      });
      keyData = key.publicKey;
    }

    const { zone, host } = this.placement(auth, request);
    const networks = await this.resolveNetworks(auth, request);
    const securityGroups = await this.resolveSecurityGroups(auth, request, networks.length > 0);

    const limits = await this.quotas.limits(projectId);
    const metadataLimit = limits.metadata_items;
    if (metadataLimit >= 0 && Object.keys(request.metadata).length > metadataLimit) {
      throw new ForbiddenError(
        `Quota exceeded for metadata_items: Requested ${Object.keys(request.metadata).length}, but already used 0 of ${metadataLimit} metadata_items`,
      );
    }
    if (
      request.personality.length &&
      limits.injected_files >= 0 &&
      request.personality.length > limits.injected_files
    ) {
      throw new ForbiddenError('Personality file limit exceeded');
    }
    const count = await this.allowedCount(projectId, flavor, request.minCount, request.maxCount, limits);

    if (request.schedulerHints.group) {
      const group = await this.groups.get(auth, request.schedulerHints.group).catch(() => {
        throw new BadRequestError(
          `Invalid server group: ${request.schedulerHints.group} could not be found.`,
        );
      });
      const limit = limits.server_group_members;
      if (limit >= 0 && (await this.liveMembers(group.id)) + count > limit) {
        throw new ForbiddenError('Quota exceeded, too many servers in group');
      }
    }

    const adminPass = request.adminPass ?? generatePassword();
    const systemMetadata = imageSystemMetadata(image);
    if (request.personality.length)
      systemMetadata.personality = JSON.stringify(request.personality).slice(0, 65535);
    const instances = await this.records.createInstances(
      {
        displayName: request.name,
        hostname: request.hostname ?? (count > 1 ? undefined : sanitizeHostname(request.name)),
        projectId,
        userId: auth.userId,
        flavor: instanceFlavor(flavor),
        imageRef: imageId,
        availabilityZone: zone ?? null,
        keyName: request.keyName ?? null,
        keyData,
        userData: request.userData ?? null,
        metadata: request.metadata,
        systemMetadata,
        schedulerHints: {
          ...(request.schedulerHints.group ? { group: request.schedulerHints.group } : {}),
          ...(request.schedulerHints.sameHost.length ? { same_host: request.schedulerHints.sameHost } : {}),
          ...(request.schedulerHints.differentHost.length
            ? { different_host: request.schedulerHints.differentHost }
            : {}),
          ...(host ? { requested_host: host } : {}),
        },
        configDrive: request.configDrive,
        description: request.description ?? null,
        accessIpV4: request.accessIPv4 ?? null,
        accessIpV6: request.accessIPv6 ?? null,
        securityGroups,
        autoDiskConfig: request.diskConfig === 'AUTO',
        tags: request.tags,
      },
      { count, requestId },
    );
    if (request.schedulerHints.group) {
      await this.store.dataSource
        .getRepository(ServerGroupMemberEntity)
        .insert(instances.map((i) => ({ groupId: request.schedulerHints.group!, instanceUuid: i.uuid })));
    }

    const ready: string[] = [];
    let groupIds: string[] | undefined;
    for (const instance of instances) {
      try {
        groupIds ??= await this.securityGroupIds(auth, securityGroups, networks.length > 0);
        instance.networkInfo = await this.allocatePorts(auth, instance, networks, groupIds, zone);
        await this.records.update(instance.uuid, { networkInfo: instance.networkInfo });
        ready.push(instance.uuid);
      } catch (error) {
        this.log.warn({ err: error, instance: instance.uuid }, 'port allocation failed');
        await this.records.update(
          instance.uuid,
          { vmState: VmState.ERROR, taskState: null },
          {},
          { code: 500, message: `Build of instance ${instance.uuid} aborted: ${errorMessage(error)}` },
        );
      }
    }
    if (ready.length) {
      await this.rpc.buildInstances({ instanceUuids: ready, requestId, adminPassword: adminPass });
    }
    return { instances, reservationId: instances[0].reservationId, adminPass, securityGroups };
  }

  /** `availability_zone` as `zone`, `zone:host` or `zone:host:node` (host for admins), or 2.74 `host`. */
  private placement(auth: AuthContext, request: ServerCreateRequest): { zone?: string; host?: string } {
    let zone = request.availabilityZone;
    let host: string | undefined;
    if (zone?.includes(':')) {
      const [name, forcedHost, node] = zone.split(':');
      zone = name || undefined;
      host = forcedHost || node || undefined;
      if (host && !isAdmin(auth)) {
        throw new ForbiddenError(
          `Policy doesn't allow os_compute_api:servers:create:forced_host to be performed.`,
        );
      }
    }
    if (request.host || request.hypervisorHostname) {
      if (!isAdmin(auth)) {
        throw new ForbiddenError(
          `Policy doesn't allow compute:servers:create:requested_destination to be performed.`,
        );
      }
      host = request.host ?? request.hypervisorHostname;
    }
    return { zone, host };
  }

  /** Nova's quota check of a multi-create: as many as fit between min_count and max_count, else 403. */
  private async allowedCount(
    projectId: string,
    flavor: { vcpus: number; memoryMb: number },
    minCount: number,
    maxCount: number,
    limits: Record<string, number>,
  ): Promise<number> {
    const used = await this.quotas.usage(projectId);
    const per: Record<string, number> = { instances: 1, cores: flavor.vcpus, ram: flavor.memoryMb };
    let allowed = maxCount;
    for (const resource of ['instances', 'cores', 'ram']) {
      const limit = limits[resource];
      if (limit < 0 || per[resource] === 0) continue;
      const room = Math.floor((limit - (used[resource] ?? 0)) / per[resource]);
      allowed = Math.min(allowed, room);
    }
    if (allowed >= minCount) return allowed;
    for (const resource of ['instances', 'cores', 'ram']) {
      const limit = limits[resource];
      const requested = per[resource] * minCount;
      if (limit >= 0 && (used[resource] ?? 0) + requested > limit) {
        throw new ForbiddenError(
          `Quota exceeded for ${resource}: Requested ${requested}, but already used ${used[resource] ?? 0} of ${limit} ${resource}`,
        );
      }
    }
    throw new ForbiddenError('Quota exceeded for instances.');
  }

  private async liveMembers(groupId: string): Promise<number> {
    const members = await this.store.serverGroupMembers.findBy({ groupId });
    if (!members.length) return 0;
    return this.store.dataSource.getRepository(InstanceEntity).countBy({
      uuid: In(members.map((m) => m.instanceUuid)),
      deletedAt: IsNull(),
    });
  }

  /** The networks (and pre-existing ports) a create asked for, checked with the network service. */
  private async resolveNetworks(
    auth: AuthContext,
    request: ServerCreateRequest,
  ): Promise<{ network: NeutronNetwork; requested: RequestedNetwork }[]> {
    try {
      if (request.networks === 'none') return [];
      if (request.networks === undefined || request.networks === 'auto') {
        const available = await this.peers.availableNetworks(auth);
        if (!available.length) {
          if (request.networks === 'auto') {
            throw new BadRequestError(
              'Unable to automatically allocate a network for the project: none is available.',
            );
          }
          return [];
        }
        if (available.length > 1) {
          throw new ConflictError('Multiple possible networks found, use a Network ID to be more specific.');
        }
        return [{ network: available[0], requested: { uuid: available[0].id } }];
      }
      const resolved: { network: NeutronNetwork; requested: RequestedNetwork }[] = [];
      const portsSeen = new Set<string>();
      for (const requested of request.networks) {
        if (requested.port) {
          if (portsSeen.has(requested.port)) {
            throw new BadRequestError(`Port ${requested.port} is still in use.`);
          }
          portsSeen.add(requested.port);
          const port = await this.peers.port(auth, requested.port);
          if (!port) throw new BadRequestError(`Port id ${requested.port} could not be found.`);
          if (port.device_id) throw new ConflictError(`Port ${requested.port} is still in use.`);
          const network = await this.peers.network(auth, port.network_id);
          if (!network) throw new BadRequestError(`Network ${port.network_id} could not be found.`);
          resolved.push({ network, requested });
          continue;
        }
        const id = requested.uuid!;
        const network = await this.peers.network(auth, id);
        if (!network) throw new BadRequestError(`Network ${id} could not be found.`);
        if (!network.subnets?.length) {
          throw new BadRequestError(`Network ${id} requires a subnet in order to boot instances on.`);
        }
        resolved.push({ network, requested });
      }
      return resolved;
    } catch (error) {
      throw asApiError(error);
    }
  }

  private async resolveSecurityGroups(
    auth: AuthContext,
    request: ServerCreateRequest,
    hasPorts: boolean,
  ): Promise<string[]> {
    const names = [...new Set(request.securityGroups)];
    if (!names.length) return hasPorts ? ['default'] : [];
    if (!hasPorts) return names;
    const groups = await this.peers.securityGroups(auth).catch((error: unknown) => {
      throw asApiError(error);
    });
    for (const name of names) {
      if (!groups.some((group) => group.name === name || group.id === name)) {
        throw new BadRequestError(`Security group ${name} not found for project ${auth.projectId}.`);
      }
    }
    return names;
  }

  /** The ids of the named security groups, looked up once for all instances of a create. */
  private async securityGroupIds(auth: AuthContext, names: string[], needed: boolean): Promise<string[]> {
    if (!needed || !names.length) return [];
    const groups = await this.peers.securityGroups(auth);
    return names
      .map((name) => groups.find((group) => group.name === name || group.id === name)?.id)
      .filter((id): id is string => !!id);
  }

  /** Nova's allocate_for_instance: a new port per network (or the given port), bound to the instance. */
  private async allocatePorts(
    auth: AuthContext,
    instance: InstanceEntity,
    networks: { network: NeutronNetwork; requested: RequestedNetwork }[],
    groupIds: string[],
    zone: string | undefined,
  ): Promise<InstanceVif[]> {
    const vifs: InstanceVif[] = [];
    if (!networks.length) return vifs;
    const deviceOwner = `compute:${zone ?? 'nova'}`;
    try {
      for (const { network, requested } of networks) {
        const port = requested.port
          ? await this.peers.updatePort(auth, requested.port, {
              device_id: instance.uuid,
              device_owner: deviceOwner,
            })
          : await this.peers.createPort(auth, {
              network_id: network.id,
              device_id: instance.uuid,
              device_owner: deviceOwner,
              ...(groupIds.length ? { security_groups: groupIds } : {}),
              ...(requested.fixedIp ? { fixed_ips: [{ ip_address: requested.fixedIp }] } : {}),
            });
        vifs.push({
          portId: port.id,
          networkId: network.id,
          networkName: network.name,
          macAddress: port.mac_address,
          ips: port.fixed_ips.map((ip) => ({
            address: ip.ip_address,
            version: ip.ip_address.includes(':') ? 6 : 4,
          })),
          preexisting: !!requested.port,
          tag: requested.tag ?? null,
        });
      }
      return vifs;
    } catch (error) {
      await this.releasePorts(auth, vifs);
      throw asApiError(error);
    }
  }

  /** Deletes the ports the server made and unbinds the ones the user brought. */
  async releasePorts(auth: AuthContext, vifs: readonly InstanceVif[]): Promise<void> {
    for (const vif of vifs) {
      try {
        if (vif.preexisting)
          await this.peers.updatePort(auth, vif.portId, { device_id: '', device_owner: '' });
        else await this.peers.deletePort(auth, vif.portId);
      } catch (error) {
        this.log.warn({ err: error, port: vif.portId }, 'could not release a port');
      }
    }
  }

  async update(
    auth: AuthContext,
    id: string,
    changes: {
      autoDiskConfig?: boolean;
      name?: string;
      description?: string | null;
      accessIPv4?: string;
      accessIPv6?: string;
      hostname?: string;
    },
  ): Promise<InstanceEntity> {
    const instance = await this.get(auth, id);
    const set: Parameters<InstanceRecords['update']>[1] = {};
    if (changes.name !== undefined) set.displayName = changes.name;
    if (changes.description !== undefined) set.description = changes.description;
    if (changes.accessIPv4 !== undefined) set.accessIpV4 = changes.accessIPv4 || null;
    if (changes.accessIPv6 !== undefined) set.accessIpV6 = changes.accessIPv6 || null;
    if (changes.hostname !== undefined) set.hostname = changes.hostname;
    if (changes.autoDiskConfig !== undefined) set.autoDiskConfig = changes.autoDiskConfig;
    if (Object.keys(set).length) await this.records.update(instance.uuid, set);
    return this.get(auth, id);
  }

  /**
   * Nova's delete: a server with no host (never scheduled, shelved offloaded, failed before a host) or on a
   * host whose compute service is down is deleted here (a "local delete"); one on a live host goes to task
   * `deleting` (or `soft-deleting` with a reclaim interval) and the agent ends it. Ports are released here.
   */
  async delete(auth: AuthContext, id: string, requestId: string, force = false): Promise<void> {
    const instance = await this.get(auth, id);
    this.checkLocked(auth, instance);
    if (instance.taskState === TaskState.DELETING && !force) return;
    const soft =
      !force &&
      this.config.reclaimInstanceIntervalSeconds > 0 &&
      !!instance.host &&
      instance.vmState !== VmState.SOFT_DELETED &&
      instance.vmState !== VmState.ERROR &&
      instance.vmState !== VmState.BUILDING;
    await this.records.startAction(
      instance.uuid,
      soft ? 'soft_delete' : force ? 'forceDelete' : 'delete',
      requestId,
      {
        userId: auth.userId,
        projectId: auth.projectId,
      },
    );
    if (soft && (await this.hostIsUp(instance.host!))) {
      const applied = await this.records.update(
        instance.uuid,
        { taskState: TaskState.SOFT_DELETING },
        { vmState: [instance.vmState], taskState: [instance.taskState] },
      );
      if (!applied)
        throw invalidState('delete', (await this.records.get(instance.uuid)) ?? instance, 'task_state');
      await this.rpc.softDeleteInstance(instance.host!, { instanceUuid: instance.uuid, requestId });
      return;
    }
    await this.releasePorts(auth, instance.networkInfo ?? []);
    await this.records.update(instance.uuid, { networkInfo: [] });
    if (!instance.host || !(await this.hostIsUp(instance.host))) {
      const now = new Date().toISOString();
      const deleted = await this.records.update(
        instance.uuid,
        {
          vmState: VmState.DELETED,
          taskState: null,
          powerState: PowerState.NOSTATE,
          terminatedAt: now,
          deletedAt: now,
        },
        { host: instance.host },
      );
      if (deleted) {
        await release(this.store.dataSource, instance.uuid);
        return;
      }
      // Scheduled meanwhile: its host deletes it.
      return this.delete(auth, id, requestId, force);
    }
    await this.records.update(instance.uuid, { taskState: TaskState.DELETING });
    await this.rpc.instanceAction(instance.host, 'terminate_instance', {
      instanceUuid: instance.uuid,
      requestId,
    });
  }

  /** Whether a compute service of that host exists, and whether it is up (Nova's servicegroup is_up). */
  async computeHost(host: string): Promise<{ up: boolean } | undefined> {
    const service = await this.store.services.findOneBy({ host, binary: Binary.COMPUTE });
    return service ? { up: isServiceUp(service, Date.now(), this.config.serviceDownTimeSeconds) } : undefined;
  }

  private async hostIsUp(host: string): Promise<boolean> {
    return !!(await this.computeHost(host))?.up;
  }

  /**
   * Nova's check_instance_state and the conditional task_state write of an action (with any `changes` the
   * action makes at once, as rebuild's new image); 409 as Nova when the instance is not in a state for it.
   * Records the instance action under the request.
   */
  async beginTask(
    auth: AuthContext,
    instance: InstanceEntity,
    transition: TaskTransition,
    changes: Parameters<InstanceRecords['update']>[1] = {},
  ): Promise<void> {
    const taskStates = transition.taskStates ?? [null];
    if (!transition.vmStates.includes(instance.vmState)) throw invalidState(transition.action, instance);
    if (!taskStates.includes(instance.taskState))
      throw invalidState(transition.action, instance, 'task_state');
    if (!instance.host && !transition.hostless) {
      throw new ConflictError(`Instance ${instance.uuid} is not ready yet: it has no host.`);
    }
    const applied = await this.records.update(
      instance.uuid,
      { ...changes, taskState: transition.task },
      { vmState: transition.vmStates, taskState: taskStates },
    );
    if (!applied) {
      const now = (await this.records.get(instance.uuid)) ?? instance;
      throw invalidState(transition.action, now, 'task_state');
    }
    await this.records.startAction(
      instance.uuid,
      transition.instanceAction ?? transition.action,
      requestIdNow(),
      {
        userId: auth.userId,
        projectId: auth.projectId,
      },
    );
  }

  /** The subnet of each fixed IP on the given ports, as Neutron has them (os-interface shows them). */
  async portSubnets(auth: AuthContext, portIds: string[]): Promise<Map<string, string>> {
    const subnets = new Map<string, string>();
    for (const port of await Promise.all(portIds.map((id) => this.peers.port(auth, id))))
      for (const ip of port?.fixed_ips ?? []) subnets.set(ip.ip_address, ip.subnet_id);
    return subnets;
  }

  /** Nova's check_instance_lock: a locked server refuses changes by its owner (admins may act). */
  checkLocked(auth: AuthContext, instance: InstanceEntity): void {
    if (instance.locked && !isAdmin(auth)) {
      throw new ConflictError(`Instance ${instance.uuid} is locked`);
    }
  }
}
