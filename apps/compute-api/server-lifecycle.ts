import { Inject, Injectable } from '@nestjs/common';
import { AuthContext, hasRole, isAdmin } from '@novum/auth';
import {
  ApiError,
  BadRequestError,
  NotFoundError,
  ConflictError,
  ForbiddenError,
  NOVUM_CONFIG,
  NovumConfig,
} from '@novum/common';
import { ConsoleAuthTokens, DRIVER_EXTRA_SPEC, NO_VALID_HOST } from '@novum/compute';
import { InstanceEntity } from '@novum/db';
import { TaskState, VmState } from '@novum/virt';
import type { FastifyReply } from 'fastify';
import { isIP } from 'node:net';
import { canonicalIp } from '@novum/common';
import { FlavorService } from './flavor.service';
import { ApiVersion } from './microversion';
import { asApiError, PeerServices } from './peers';
import { allow } from './policy';
import { QuotaService } from './quota.service';
import { COMPUTE_ROOT_URL, ComputeLinks } from './serializers';
import {
  checkDescription,
  checkMetadata,
  checkName,
  checkString,
  imageIdFromRef,
  invalid,
  isBase64,
  isObject,
  onlyKeys,
  requireObject,
} from './server-schemas';
import {
  generatePassword,
  imageSystemMetadata,
  instanceFlavor,
  invalidState,
  requestIdNow,
  ServerService,
} from './server.service';
import { serverView } from './server-view';

const member = (auth: AuthContext) => hasRole(auth, 'member') || isAdmin(auth);

/** Nova's parameter_types.boolean (strutils' strict strings) as a boolean; 400 for anything else. */
const NOVA_TRUE = ['true', '1', 'on', 'yes'];
const NOVA_FALSE = ['false', '0', 'off', 'no'];
function novaBoolean(field: string, value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  const text = typeof value === 'string' ? value.toLowerCase() : undefined;
  if (text !== undefined && NOVA_TRUE.includes(text)) return true;
  if (text !== undefined && NOVA_FALSE.includes(text)) return false;
  throw invalid(field, value, `${JSON.stringify(value)} is not of type 'boolean', 'string'`);
}

/** An action body that may be null or `{}` but nothing else. */
function emptyBody(name: string, body: unknown): void {
  if (body === null || body === undefined) return;
  onlyKeys(name, requireObject(name, body), []);
}

/**
 * The lifecycle actions beyond power: rebuild, resize/migrate (+confirm/revert), createImage, shelve and
 * unshelve, rescue, soft delete's forceDelete/restore, crash dump, password, security groups, consoles.
 * Each checks policy, lock and state as Nova's compute API does, sets the task state, and hands over to
 * the host's agent or the conductor (libs/compute contract).
 */
@Injectable()
export class ServerLifecycleActions {
  private readonly links: ComputeLinks;

  constructor(
    private readonly servers: ServerService,
    private readonly flavors: FlavorService,
    private readonly quotas: QuotaService,
    private readonly peers: PeerServices,
    @Inject(COMPUTE_ROOT_URL) root: string,
    @Inject(NOVUM_CONFIG) private readonly config: NovumConfig,
  ) {
    this.links = new ComputeLinks(root);
  }

  private get rpc() {
    return this.servers.rpc;
  }

  private request(instance: InstanceEntity) {
    return { instanceUuid: instance.uuid, requestId: requestIdNow() };
  }

  async rebuild(auth: AuthContext, instance: InstanceEntity, body: unknown, v: ApiVersion) {
    allow('os_compute_api:servers:rebuild', member(auth));
    const args = requireObject('rebuild', body);
    const allowed = [
      'imageRef',
      'name',
      'adminPass',
      'metadata',
      'preserve_ephemeral',
      'OS-DCF:diskConfig',
      'accessIPv4',
      'accessIPv6',
    ];
    if (!v.atLeast('2.57')) allowed.push('personality');
    if (v.atLeast('2.19')) allowed.push('description');
    if (v.atLeast('2.54')) allowed.push('key_name');
    if (v.atLeast('2.57')) allowed.push('user_data');
    if (v.atLeast('2.63')) allowed.push('trusted_image_certificates');
    if (v.atLeast('2.90')) allowed.push('hostname');
    onlyKeys('rebuild', args, allowed);
    if (args.imageRef === undefined) throw invalid('rebuild', args, "'imageRef' is a required property");
    const imageId = imageIdFromRef(checkString('imageRef', args.imageRef, 1, 255));
    if (!imageId) throw new BadRequestError('Invalid imageRef provided.');
    this.servers.checkLocked(auth, instance);
    const changes: Parameters<ServerService['records']['update']>[1] = { imageRef: imageId };
    if (args.name !== undefined) changes.displayName = checkName('name', args.name);
    if (args.metadata !== undefined) changes.metadata = checkMetadata('metadata', args.metadata);
    if (args.description !== undefined) changes.description = checkDescription(args.description);
    for (const [field, version] of [
      ['accessIPv4', 4],
      ['accessIPv6', 6],
    ] as const) {
      const value = args[field];
      if (value === undefined) continue;
      if (typeof value !== 'string' || (value !== '' && isIP(value) !== version)) {
        throw invalid(field, value, `is not a 'ipv${version}'`);
      }
      changes[field === 'accessIPv4' ? 'accessIpV4' : 'accessIpV6'] = value
        ? (canonicalIp(value) ?? value)
        : null;
    }
    if (args['OS-DCF:diskConfig'] !== undefined) {
      if (args['OS-DCF:diskConfig'] !== 'AUTO' && args['OS-DCF:diskConfig'] !== 'MANUAL') {
        throw invalid('OS-DCF:diskConfig', args['OS-DCF:diskConfig'], "is not one of ['AUTO', 'MANUAL']");
      }
      changes.autoDiskConfig = args['OS-DCF:diskConfig'] === 'AUTO';
    }
    if (args.user_data !== undefined) {
      if (
        args.user_data !== null &&
        (typeof args.user_data !== 'string' || !isBase64(args.user_data) || args.user_data.length > 65535)
      ) {
        throw new BadRequestError('User data needs to be valid base 64.');
      }
      changes.userData = args.user_data as string | null;
    }
    if (args.key_name !== undefined) {
      if (args.key_name === null) {
        changes.keyName = null;
        changes.keyData = null;
      } else {
        const name = checkString('key_name', args.key_name, 1, 255);
        const key = await this.servers.store.keyPairs.findOneBy({ userId: instance.userId, name });
        if (!key) throw new BadRequestError(`Invalid key_name provided.`);
        changes.keyName = name;
        changes.keyData = key.publicKey;
      }
    }
    if (args.hostname !== undefined) changes.hostname = checkString('hostname', args.hostname, 1, 255);
    if (args.trusted_image_certificates !== undefined && args.trusted_image_certificates !== null) {
      throw new BadRequestError('Image certificate validation is not supported in this cloud.');
    }
    let preserveEphemeral = false;
    if (args.preserve_ephemeral !== undefined) {
      if (typeof args.preserve_ephemeral !== 'boolean')
        throw invalid('preserve_ephemeral', args.preserve_ephemeral, "is not of type 'boolean'");
      preserveEphemeral = args.preserve_ephemeral;
    }
    const image = await this.peers.image(auth, imageId).catch((error: unknown) => {
      throw asApiError(error);
    });
    if (!image) throw new BadRequestError(`Image ${imageId} could not be found.`);
    if (image.status !== 'active') throw new BadRequestError(`Image ${imageId} is not active.`);
    if (instance.flavor.memory_mb < Number(image.min_ram ?? 0)) {
      throw new BadRequestError("Flavor's memory is too small for requested image.");
    }
    if (instance.flavor.root_gb > 0 && instance.flavor.root_gb < Number(image.min_disk ?? 0)) {
      throw new BadRequestError("Flavor's disk is too small for requested image.");
    }
    // The new image's facts replace the old one's (Nova rewrites the image_* system metadata on rebuild).
    changes.systemMetadata = {
      ...Object.fromEntries(
        Object.entries(instance.systemMetadata).filter(([key]) => !key.startsWith('image_')),
      ),
      ...imageSystemMetadata(image),
    };
    const adminPass = typeof args.adminPass === 'string' ? args.adminPass : generatePassword();
    await this.servers.beginTask(
      auth,
      instance,
      {
        action: 'rebuild',
        vmStates: [VmState.ACTIVE, VmState.STOPPED, VmState.ERROR],
        task: TaskState.REBUILDING,
      },
      changes,
    );
    await this.rpc.rebuildInstance(instance.host!, {
      ...this.request(instance),
      adminPassword: adminPass,
      preserveEphemeral,
    });
    const updated = await this.servers.get(auth, instance.uuid);
    const record = await this.servers.record(updated);
    const view = serverView(
      record,
      {
        links: this.links,
        version: v,
        extendedAttributes: isAdmin(auth),
        hostStatus: false,
        flavorExtraSpecs: true,
        isAdmin: isAdmin(auth),
        serverGroups: v.atLeast('2.71')
          ? (await this.servers.store.serverGroupMembers.findBy({ instanceUuid: instance.uuid })).map(
              (m) => m.groupId,
            )
          : undefined,
      },
      'rebuild',
    );
    view.adminPass = adminPass;
    return { server: view };
  }

  async resize(auth: AuthContext, instance: InstanceEntity, body: unknown) {
    allow('os_compute_api:servers:resize', member(auth));
    const args = requireObject('resize', body);
    onlyKeys('resize', args, ['flavorRef', 'OS-DCF:diskConfig']);
    const ref = args.flavorRef;
    if (ref === undefined) throw invalid('resize', args, "'flavorRef' is a required property");
    if (!(
      (typeof ref === 'string' && ref.length >= 1 && ref.length <= 255) ||
      (typeof ref === 'number' && Number.isInteger(ref))
    )) {
      throw invalid('flavorRef', ref, `${JSON.stringify(ref)} is not of type 'string', 'integer'`);
    }
    this.servers.checkLocked(auth, instance);
    const flavor = await this.flavors.get(auth, String(ref)).catch(() => {
      throw new BadRequestError(`Unable to find flavor ${String(ref)}.`);
    });
    if (flavor.disabled) throw new BadRequestError('Flavor is disabled.');
    if (flavor.id === instance.flavor.id) {
      throw new BadRequestError('When resizing, instances must change flavor!');
    }
    if (flavor.rootGb > 0 && flavor.rootGb < instance.flavor.root_gb) {
      throw new BadRequestError('Resize error: Unable to resize disk down.');
    }
    // Quota: the growth of cores and RAM must fit (Nova counts the larger of the two flavors).
    const limits = await this.quotas.limits(instance.projectId);
    const used = await this.quotas.usage(instance.projectId);
    for (const [resource, delta] of [
      ['cores', flavor.vcpus - instance.flavor.vcpus],
      ['ram', flavor.memoryMb - instance.flavor.memory_mb],
    ] as const) {
      const limit = limits[resource];
      if (delta > 0 && limit >= 0 && used[resource] + delta > limit) {
        throw new ForbiddenError(
          `Quota exceeded for ${resource}: Requested ${delta}, but already used ${used[resource]} of ${limit} ${resource}`,
        );
      }
    }
    const diskConfig = args['OS-DCF:diskConfig'];
    if (diskConfig !== undefined && diskConfig !== 'AUTO' && diskConfig !== 'MANUAL') {
      throw invalid('OS-DCF:diskConfig', diskConfig, "is not one of ['AUTO', 'MANUAL']");
    }
    await this.migrateServer(
      auth,
      instance,
      'resize',
      instanceFlavor(flavor),
      diskConfig === undefined ? {} : { autoDiskConfig: diskConfig === 'AUTO' },
    );
  }

  /**
   * Nova's evacuate (admin): the instance's host is down (stopped, or forced down by the admin), so the
   * server is rebuilt on another host from its image, keeping its ports. `host` names the destination (which
   * must pass the scheduler's filters; 2.29's `force` skips nothing here); below 2.14 `onSharedStorage` is
   * required and the answer carries the admin password; from 2.95 the server arrives stopped.
   */
  async evacuate(auth: AuthContext, instance: InstanceEntity, body: unknown, v: ApiVersion) {
    allow('os_compute_api:os-evacuate', isAdmin(auth));
    const args = requireObject('evacuate', body);
    const allowed = ['host', 'adminPass'];
    if (!v.atLeast('2.14')) allowed.push('onSharedStorage');
    if (v.atLeast('2.29') && !v.atLeast('2.68')) allowed.push('force');
    onlyKeys('evacuate', args, allowed);
    const host = args.host === undefined ? undefined : checkString('host', args.host, 1, 255);
    if (args.adminPass !== undefined && typeof args.adminPass !== 'string') {
      throw invalid('adminPass', args.adminPass, "is not of type 'string'");
    }
    if (!v.atLeast('2.14')) {
      if (args.onSharedStorage === undefined) {
        throw invalid('evacuate', args, "'onSharedStorage' is a required property");
      }
      if (typeof args.onSharedStorage !== 'boolean') {
        throw invalid('onSharedStorage', args.onSharedStorage, "is not of type 'boolean'");
      }
      if (args.onSharedStorage && args.adminPass !== undefined) {
        throw new BadRequestError("admin password can't be changed on existing disk");
      }
    }
    if (args.force !== undefined) {
      if (typeof args.force !== 'boolean') throw invalid('force', args.force, "is not of type 'boolean'");
      if (args.force && !host) throw new BadRequestError("Can't force to a non-provided destination");
    }
    if (host !== undefined && !(await this.servers.computeHost(host))) {
      throw new NotFoundError(`Compute host ${host} not found.`);
    }
    if (host !== undefined && host === instance.host) {
      throw new BadRequestError("The target host can't be the same one.");
    }
    this.servers.checkLocked(auth, instance);
    if (instance.host && (await this.servers.computeHost(instance.host))?.up) {
      throw new BadRequestError(`Compute service of ${instance.host} is still in use.`);
    }
    const adminPass = typeof args.adminPass === 'string' ? args.adminPass : generatePassword();
    await this.servers.beginTask(
      auth,
      instance,
      {
        action: 'evacuate',
        vmStates: [VmState.ACTIVE, VmState.STOPPED, VmState.ERROR],
        task: TaskState.REBUILDING,
      },
      // From 2.95 the server is evacuated to stopped: its agent rebuilds a stopped server without starting it.
      v.atLeast('2.95') ? { vmState: VmState.STOPPED } : {},
    );
    await this.rpc.evacuateServer({
      ...this.request(instance),
      ...(host ? { host } : {}),
      adminPassword: adminPass,
    });
    return v.atLeast('2.14') ? undefined : { adminPass };
  }

  async migrate(auth: AuthContext, instance: InstanceEntity, body: unknown, v: ApiVersion) {
    allow('os_compute_api:os-migrate-server:migrate', isAdmin(auth));
    if (body !== null && body !== undefined) {
      const args = requireObject('migrate', body);
      onlyKeys('migrate', args, v.atLeast('2.56') ? ['host'] : []);
      if (args.host !== undefined && args.host !== null) {
        throw new BadRequestError(
          'A target host for a cold migration is not supported here; the scheduler picks one.',
        );
      }
    }
    await this.migrateServer(auth, instance, 'migrate');
  }

  /**
   * Nova's os-migrateLive (admin): the server moves to another host while it runs (ACTIVE or PAUSED; 409
   * otherwise), status MIGRATING meanwhile. Body per microversion as Nova's schemas: `host` (null: the
   * scheduler picks) and `block_migration` always, `disk_over_commit` below 2.25 (booleans, or Nova's
   * boolean strings), `block_migration` may be `auto` from 2.25, `force` from 2.30 to 2.67. Every host here
   * has its own storage, so the disks are always copied whatever `block_migration` says. Below 2.34 the
   * conductor's pre-checks answer: a 400 for an unknown or unusable host; from 2.34 the answer is 202 at once
   * and a failed pre-check shows as the migration's `error` and the instance's fault, as Nova's async API.
   */
  async migrateLive(auth: AuthContext, instance: InstanceEntity, body: unknown, v: ApiVersion) {
    allow('os_compute_api:os-migrate-server:migrate_live', isAdmin(auth));
    const args = requireObject('os-migrateLive', body);
    const allowed = ['host', 'block_migration'];
    if (!v.atLeast('2.25')) allowed.push('disk_over_commit');
    if (v.atLeast('2.30') && !v.atLeast('2.68')) allowed.push('force');
    onlyKeys('os-migrateLive', args, allowed);
    for (const required of v.atLeast('2.25') ? ['block_migration', 'host'] : allowed) {
      if (!(required in args)) throw invalid('os-migrateLive', args, `'${required}' is a required property`);
    }
    const host = args.host === null ? undefined : checkString('host', args.host, 1, 255);
    let blockMigration: boolean | undefined;
    if (v.atLeast('2.25')) {
      if (args.block_migration !== 'auto' && typeof args.block_migration !== 'boolean') {
        throw invalid(
          'block_migration',
          args.block_migration,
          `${JSON.stringify(args.block_migration)} is not one of [True, False, 'auto']`,
        );
      }
      blockMigration = args.block_migration === 'auto' ? undefined : args.block_migration;
    } else {
      blockMigration = novaBoolean('block_migration', args.block_migration);
      novaBoolean('disk_over_commit', args.disk_over_commit);
    }
    const force = args.force === undefined ? false : novaBoolean('force', args.force);
    if (force && !host) throw new BadRequestError("Can't force to a non-provided destination");
    this.servers.checkLocked(auth, instance);
    if (instance.vmState !== VmState.ACTIVE && instance.vmState !== VmState.PAUSED) {
      throw invalidState('os-migrateLive', instance);
    }
    // The container driver cannot move a running container (its capability is false on every host).
    if (instance.flavor.extra_specs?.[DRIVER_EXTRA_SPEC] === 'container') {
      throw new BadRequestError(
        'Migration pre-check error: the container driver cannot live-migrate servers.',
      );
    }
    if (host !== undefined) {
      if (!(await this.servers.computeHost(host))) {
        throw new BadRequestError(`Compute host ${host} could not be found.`);
      }
      if (host === instance.host) throw new BadRequestError("The target host can't be the same one.");
    }
    await this.servers.beginTask(auth, instance, {
      action: 'os-migrateLive',
      instanceAction: 'live-migration',
      vmStates: [VmState.ACTIVE, VmState.PAUSED],
      task: TaskState.MIGRATING,
    });
    try {
      await this.rpc.liveMigrateInstance({
        ...this.request(instance),
        ...(host ? { host } : {}),
        ...(blockMigration === undefined ? {} : { blockMigration }),
        ...(force ? { force } : {}),
      });
    } catch (error) {
      // From 2.34 the pre-checks are the conductor's business: the migration and the fault tell.
      if (v.atLeast('2.34')) return;
      const status = (error as { status?: number }).status;
      const message = error instanceof Error ? error.message : String(error);
      if (status === 400 || message.includes(NO_VALID_HOST)) throw new BadRequestError(message);
      if (error instanceof ApiError) throw error;
      throw new ConflictError(`The live migration could not start: ${message}`);
    }
  }

  private async migrateServer(
    auth: AuthContext,
    instance: InstanceEntity,
    action: 'resize' | 'migrate',
    flavor?: ReturnType<typeof instanceFlavor>,
    changes: Parameters<ServerService['records']['update']>[1] = {},
  ): Promise<void> {
    await this.servers.beginTask(
      auth,
      instance,
      { action, vmStates: [VmState.ACTIVE, VmState.STOPPED], task: TaskState.RESIZE_PREP },
      changes,
    );
    try {
      await this.rpc.migrateServer({ ...this.request(instance), ...(flavor ? { flavor } : {}) });
    } catch (error) {
      const status = (error as { status?: number }).status;
      const message = error instanceof Error ? error.message : String(error);
      if (status === 400 || message.includes(NO_VALID_HOST)) throw new BadRequestError(message);
      if (error instanceof ApiError) throw error;
      throw new ConflictError(`The ${action} could not start: ${message}`);
    }
  }

  async confirmOrRevert(auth: AuthContext, instance: InstanceEntity, body: unknown, confirm: boolean) {
    allow(
      confirm ? 'os_compute_api:servers:confirm_resize' : 'os_compute_api:servers:revert_resize',
      member(auth),
    );
    emptyBody(confirm ? 'confirmResize' : 'revertResize', body);
    this.servers.checkLocked(auth, instance);
    if (instance.vmState !== VmState.RESIZED) {
      throw new BadRequestError(`Instance has not been resized.`);
    }
    await this.servers.beginTask(auth, instance, {
      action: confirm ? 'confirmResize' : 'revertResize',
      instanceAction: confirm ? 'confirmResize' : 'revertResize',
      vmStates: [VmState.RESIZED],
      task: confirm ? TaskState.RESIZE_CONFIRMING : TaskState.RESIZE_REVERTING,
    });
    if (confirm) await this.rpc.confirmResize(instance.host!, this.request(instance));
    else await this.rpc.revertResize(instance.host!, this.request(instance));
  }

  async createImage(
    auth: AuthContext,
    instance: InstanceEntity,
    body: unknown,
    v: ApiVersion,
    reply: FastifyReply,
  ) {
    allow('os_compute_api:servers:create_image', member(auth));
    const args = requireObject('createImage', body);
    onlyKeys('createImage', args, ['name', 'metadata']);
    if (args.name === undefined) throw invalid('createImage', args, "'name' is a required property");
    const name = checkName('name', args.name);
    const metadata = args.metadata === undefined ? {} : checkMetadata('metadata', args.metadata);
    const allowedStates: string[] = [VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED];
    if (!allowedStates.includes(instance.vmState) || instance.taskState !== null) {
      throw invalidState('createImage', instance, instance.taskState !== null ? 'task_state' : 'vm_state');
    }
    const image = await this.queuedSnapshot(auth, instance, name, metadata);
    await this.servers.beginTask(auth, instance, {
      action: 'createImage',
      vmStates: allowedStates,
      task: TaskState.IMAGE_SNAPSHOT_PENDING,
    });
    await this.rpc.snapshotInstance(instance.host!, { ...this.request(instance), imageId: image.id });
    if (!v.atLeast('2.45')) {
      reply.header('location', `${this.links.bookmark('images', image.id)}`);
      return undefined;
    }
    return { image_id: image.id };
  }

  async shelve(auth: AuthContext, instance: InstanceEntity, body: unknown) {
    allow('os_compute_api:os-shelve:shelve', member(auth));
    emptyBody('shelve', body);
    this.servers.checkLocked(auth, instance);
    const states: string[] = [VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED];
    if (!states.includes(instance.vmState) || instance.taskState !== null) {
      throw invalidState('shelve', instance, instance.taskState !== null ? 'task_state' : 'vm_state');
    }
    // Nova snapshots the server into `<name>-shelved`, which unshelve boots from.
    const image = await this.queuedSnapshot(auth, instance, `${instance.displayName}-shelved`, {});
    await this.servers.beginTask(auth, instance, {
      action: 'shelve',
      vmStates: states,
      task: TaskState.SHELVING,
    });
    await this.rpc.shelveInstance(instance.host!, { ...this.request(instance), imageId: image.id });
  }

  /** The queued Glance image a snapshot fills (createImage, shelve), with Nova's snapshot properties. */
  private queuedSnapshot(
    auth: AuthContext,
    instance: InstanceEntity,
    name: string,
    metadata: Record<string, string>,
  ) {
    return this.peers
      .createImage(auth, {
        name,
        disk_format: instance.systemMetadata.image_disk_format || 'raw',
        container_format: instance.systemMetadata.image_container_format || 'bare',
        visibility: 'private',
        ...metadata,
        instance_uuid: instance.uuid,
        image_type: 'snapshot',
        base_image_ref: instance.imageRef,
        owner_user_name: auth.userName,
        owner_project_name: auth.projectName ?? '',
      })
      .catch((error: unknown) => {
        throw asApiError(error);
      });
  }

  async shelveOffload(auth: AuthContext, instance: InstanceEntity, body: unknown) {
    allow('os_compute_api:os-shelve:shelve_offload', isAdmin(auth));
    emptyBody('shelveOffload', body);
    await this.servers.beginTask(auth, instance, {
      action: 'shelveOffload',
      vmStates: [VmState.SHELVED],
      task: TaskState.SHELVING_OFFLOADING,
    });
    await this.rpc.shelveOffloadInstance(instance.host!, this.request(instance));
  }

  async unshelve(auth: AuthContext, instance: InstanceEntity, body: unknown, v: ApiVersion) {
    allow('os_compute_api:os-shelve:unshelve', member(auth));
    if (body !== null && body !== undefined) {
      const args = requireObject('unshelve', body);
      onlyKeys(
        'unshelve',
        args,
        v.atLeast('2.91') ? ['availability_zone', 'host'] : v.atLeast('2.77') ? ['availability_zone'] : [],
      );
      if (args.host !== undefined) allow('os_compute_api:os-shelve:unshelve_to_host', isAdmin(auth));
      if (args.availability_zone !== undefined && args.availability_zone !== null) {
        if (instance.vmState !== VmState.SHELVED_OFFLOADED) {
          throw new ConflictError('The availability_zone can only be given to unshelve an offloaded server.');
        }
        await this.servers.records.update(instance.uuid, {
          availabilityZone: checkString('availability_zone', args.availability_zone, 1, 255),
        });
      }
    }
    this.servers.checkLocked(auth, instance);
    await this.servers.beginTask(auth, instance, {
      action: 'unshelve',
      vmStates: [VmState.SHELVED, VmState.SHELVED_OFFLOADED],
      task: TaskState.UNSHELVING,
      hostless: true,
    });
    await this.rpc.unshelveInstance(this.request(instance));
  }

  async rescue(auth: AuthContext, instance: InstanceEntity, body: unknown, v: ApiVersion) {
    allow('os_compute_api:os-rescue', member(auth));
    let adminPass = generatePassword();
    let rescueImageRef: string | undefined;
    if (body !== null && body !== undefined) {
      const args = requireObject('rescue', body);
      onlyKeys('rescue', args, ['adminPass', 'rescue_image_ref']);
      if (args.adminPass !== undefined) adminPass = checkString('adminPass', args.adminPass, 0, 255);
      if (args.rescue_image_ref !== undefined) {
        rescueImageRef = imageIdFromRef(checkString('rescue_image_ref', args.rescue_image_ref, 1, 255));
        if (!rescueImageRef) throw new BadRequestError('Invalid rescue_image_ref provided.');
        const image = await this.peers.image(auth, rescueImageRef);
        if (!image) throw new BadRequestError(`Image ${rescueImageRef} could not be found.`);
      }
    }
    void v;
    this.servers.checkLocked(auth, instance);
    await this.servers.beginTask(auth, instance, {
      action: 'rescue',
      vmStates: [VmState.ACTIVE, VmState.STOPPED, VmState.ERROR],
      task: TaskState.RESCUING,
    });
    await this.rpc.rescueInstance(instance.host!, {
      ...this.request(instance),
      rescuePassword: adminPass,
      rescueImageRef,
    });
    return { adminPass };
  }

  async unrescue(auth: AuthContext, instance: InstanceEntity, body: unknown) {
    allow('os_compute_api:os-rescue:unrescue', member(auth));
    emptyBody('unrescue', body);
    this.servers.checkLocked(auth, instance);
    await this.servers.beginTask(auth, instance, {
      action: 'unrescue',
      vmStates: [VmState.RESCUED],
      task: TaskState.UNRESCUING,
    });
    await this.rpc.unrescueInstance(instance.host!, this.request(instance));
  }

  async forceDelete(auth: AuthContext, instance: InstanceEntity, body: unknown) {
    allow('os_compute_api:os-deferred-delete:force', member(auth));
    emptyBody('forceDelete', body);
    if (instance.vmState !== VmState.SOFT_DELETED) throw invalidState('forceDelete', instance);
    await this.servers.delete(auth, instance.uuid, requestIdNow(), true);
  }

  async restore(auth: AuthContext, instance: InstanceEntity, body: unknown) {
    allow('os_compute_api:os-deferred-delete:restore', member(auth));
    emptyBody('restore', body);
    await this.servers.beginTask(auth, instance, {
      action: 'restore',
      vmStates: [VmState.SOFT_DELETED],
      task: TaskState.RESTORING,
    });
    await this.rpc.restoreInstance(instance.host!, this.request(instance));
  }

  async crashDump(auth: AuthContext, instance: InstanceEntity, body: unknown, v: ApiVersion) {
    if (!v.atLeast('2.17')) throw new BadRequestError('There is no such action: trigger_crash_dump');
    allow('os_compute_api:servers:trigger_crash_dump', member(auth));
    emptyBody('trigger_crash_dump', body);
    this.servers.checkLocked(auth, instance);
    const states: string[] = [
      VmState.ACTIVE,
      VmState.PAUSED,
      VmState.RESCUED,
      VmState.RESIZED,
      VmState.ERROR,
    ];
    if (!states.includes(instance.vmState) || instance.taskState !== null) {
      throw invalidState(
        'trigger_crash_dump',
        instance,
        instance.taskState !== null ? 'task_state' : 'vm_state',
      );
    }
    if (!instance.host) throw new ConflictError(`Instance ${instance.uuid} is not ready yet.`);
    await this.servers.records.startAction(instance.uuid, 'trigger_crash_dump', requestIdNow(), {
      userId: auth.userId,
      projectId: auth.projectId,
    });
    await this.rpc.triggerCrashDump(instance.host, this.request(instance));
  }

  async changePassword(auth: AuthContext, instance: InstanceEntity, body: unknown) {
    allow('os_compute_api:os-admin-password', member(auth));
    const args = requireObject('changePassword', body);
    onlyKeys('changePassword', args, ['adminPass']);
    if (args.adminPass === undefined)
      throw invalid('changePassword', args, "'adminPass' is a required property");
    const password = checkString('adminPass', args.adminPass, 0, 255);
    this.servers.checkLocked(auth, instance);
    await this.servers.beginTask(auth, instance, {
      action: 'changePassword',
      instanceAction: 'changePassword',
      vmStates: [VmState.ACTIVE],
      task: TaskState.UPDATING_PASSWORD,
    });
    // The agent's 409 (a driver without the operation, Nova's SetAdminPasswdNotSupported) is the answer.
    await this.rpc.setAdminPassword(instance.host!, { ...this.request(instance), newPassword: password });
  }

  async securityGroup(auth: AuthContext, instance: InstanceEntity, body: unknown, add: boolean) {
    const action = add ? 'addSecurityGroup' : 'removeSecurityGroup';
    allow(`os_compute_api:os-security-groups:${add ? 'add' : 'remove'}`, member(auth));
    const args = requireObject(action, body);
    onlyKeys(action, args, ['name']);
    const name = checkString('name', args.name, 1, 255);
    const groups = await this.peers.securityGroups(auth).catch((error: unknown) => {
      throw asApiError(error);
    });
    const group = groups.find((g) => g.name === name || g.id === name);
    if (!group) throw new ConflictError(`Security group ${name} not found for project ${auth.projectId}.`);
    const current = instance.securityGroups ?? [];
    if (add && current.includes(group.name)) {
      throw new BadRequestError(
        `Security group ${group.name} is already associated with the instance ${instance.uuid}`,
      );
    }
    if (!add && !current.includes(group.name)) {
      throw new BadRequestError(
        `Security group ${group.name} not associated with the instance ${instance.uuid}`,
      );
    }
    const next = add ? [...current, group.name] : current.filter((n) => n !== group.name);
    const ids = next.map((n) => groups.find((g) => g.name === n)?.id).filter((id): id is string => !!id);
    for (const vif of instance.networkInfo ?? []) {
      await this.peers.updatePort(auth, vif.portId, { security_groups: ids }).catch((error: unknown) => {
        throw asApiError(error);
      });
    }
    await this.servers.records.update(instance.uuid, {});
    await this.servers.store.dataSource
      .createQueryBuilder()
      .update(InstanceEntity)
      .set({ securityGroups: next })
      .where('uuid = :uuid', { uuid: instance.uuid })
      .execute();
  }

  async serialConsole(auth: AuthContext, instance: InstanceEntity, body: unknown) {
    allow('os_compute_api:os-remote-consoles', member(auth));
    const args = requireObject('os-getSerialConsole', body);
    onlyKeys('os-getSerialConsole', args, ['type']);
    if (args.type !== 'serial') throw invalid('type', args.type, "is not one of ['serial']");
    return { console: { type: 'serial', url: await this.serialUrl(instance) } };
  }

  /**
   * Nova's get_serial_console: the guest's agent tells where its console is (its relay, with a ticket for
   * the guest), a token for that is recorded, and the URL is the serial console proxy's with the token.
   * A guest without a host is not ready (409), one being deleted or migrated or not running is in the wrong
   * state (409); the agent's 400 (no console on the guest) and 501 (a driver without serial consoles) pass.
   */
  async serialUrl(instance: InstanceEntity): Promise<string> {
    if (!instance.host) throw new ConflictError(`Instance ${instance.uuid} is not ready`);
    if ([TaskState.DELETING, TaskState.MIGRATING].includes(instance.taskState as never)) {
      throw invalidState('get_serial_console', instance, 'task_state');
    }
    if (![VmState.ACTIVE, VmState.PAUSED, VmState.RESCUED].includes(instance.vmState as never)) {
      throw invalidState('get_serial_console', instance);
    }
    const endpoint = await this.rpc.getSerialConsole(instance.host, { instanceUuid: instance.uuid });
    const { url } = await new ConsoleAuthTokens(this.servers.store.dataSource).authorize({
      instanceUuid: instance.uuid,
      consoleType: 'serial',
      endpoint,
      accessUrlBase: `ws://${this.config.publicHost}:${this.config.ports.serialProxy}/`,
      ttlSeconds: this.config.consoleTokenTtlSeconds,
    });
    return url;
  }

  isActionBody(body: unknown): body is Record<string, unknown> {
    return isObject(body);
  }
}
