import {
  Inject,
  Injectable,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  OnModuleDestroy,
} from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Duplex, Readable } from 'node:stream';
import { DataSource, In, IsNull } from 'typeorm';
import { MessageBus } from '@novum/bus';
import { ApiError, BadRequestError, ConflictError, NotFoundError, rootLogger } from '@novum/common';
import {
  Binary,
  BuildAndRunInstanceRequest,
  checkRequest,
  ComputeMethod,
  computeQueue,
  ComputeRpcClient,
  confirmMigrationClaim,
  ConsoleAuthTokens,
  ConsoleOutputRequest,
  DiskOffer,
  DRIVER_EXTRA_SPEC,
  errorMessage,
  InstanceCallRequest,
  InstanceRecords,
  InstanceRequest,
  LiveMigrationDestinationRequest,
  LiveMigrationRequest,
  MigrationSourceRequest,
  RebootInstanceRequest,
  RebuildInstanceRequest,
  recomputeUsage,
  release,
  RescueInstanceRequest,
  ResizeInstanceRequest,
  ServiceHeartbeat,
  SetAdminPasswordRequest,
  ShelveInstanceRequest,
  SnapshotInstanceRequest,
  setMigrationStatus,
} from '@novum/compute';
import {
  ComputeNodeEntity,
  InstanceEntity,
  InstanceFlavor,
  MigrationEntity,
  nowIso,
  ServerGroupEntity,
  ServerGroupMemberEntity,
} from '@novum/db';
import {
  ComputeDriver,
  ConsoleEndpoint,
  ConsoleUnavailable,
  Diagnostics,
  FlavorSpec,
  HostResources,
  ImageSource,
  InstanceNotFound,
  InstanceInvalidState,
  InstanceSpec,
  LiveMigrationTarget,
  NETWORK_PLUGIN_QUEUE,
  NetworkInfo,
  NotSupportedByDriver,
  PluginMethod,
  PowerState,
  SnapshotData,
  TaskState,
  VmState,
} from '@novum/virt';
import { DiskTransfer, fetchDisks, FetchOptions } from './disk-transfer';
import type { GuestNetworking } from './guest-network';
import type { SerialConsoleRelay } from './serial-console-relay';

export const AGENT_OPTIONS = Symbol('AGENT_OPTIONS');

export interface AgentOptions {
  host: string;
  /** The first is the default for flavors without `novum:driver`. */
  drivers: ComputeDriver[];
  reportIntervalSeconds: number;
  powerSyncIntervalSeconds: number;
  /** Nova's initial allocation ratios by default: 16 vCPUs per core, 1.5 x RAM, 1.0 x disk. */
  allocationRatios?: { cpu: number; ram: number; disk: number };
  /** NOVUM_RESIZE_CONFIRM_WINDOW: resizes older than this are confirmed by the agent; 0 never. */
  resizeConfirmWindowSeconds?: number;
  /** NOVUM_SHELVED_OFFLOAD_TIME: 0 offloads at once, -1 never, more after that many seconds. */
  shelvedOffloadTimeSeconds?: number;
  /** NOVUM_RECLAIM_INSTANCE_INTERVAL: soft-deleted instances older than this are deleted; 0 never. */
  reclaimInstanceIntervalSeconds?: number;
  /** Seconds between the periodic tasks (auto-confirm, offload, reclaim); the power-sync interval by default. */
  periodicIntervalSeconds?: number;
  /** Stores a snapshot's bytes in the image service (`PUT /v2/images/{id}/file`); absent: snapshots fail. */
  imageUpload?: ImageUpload;
  /** Ports for the drivers that plug them into the host (all but fake); absent: guests get no ports. */
  network?: GuestNetworking;
  /** Where console proxies reach this host's serial consoles; absent: the drivers' own endpoints are given. */
  serialConsoleRelay?: SerialConsoleRelay;
  /**
   * Serves this host's exported disks to the destination of a cross-host cold migration or resize; absent:
   * such a guest is made again from its image on the destination, without what it wrote.
   */
  diskTransfer?: DiskTransfer;
  /** How a destination bounds the fetch of a guest's disks. */
  diskFetch?: FetchOptions;
  /**
   * NOVUM_LIVE_MIGRATION_INBOUND_ADDR (else NOVUM_TUNNEL_IP, else 127.0.0.1): where the guests of live
   * migrations to this host arrive.
   */
  liveMigrationAddress?: string;
}

/** Uploads a snapshot's data to the queued image `imageId`. */
export type ImageUpload = ((imageId: string, snapshot: SnapshotData) => Promise<void>) & {
  /** Deletes an image (the shelved snapshot once unshelved), when the agent can. */
  remove?: (imageId: string) => Promise<void>;
  /** The image's data (`GET /v2/images/{id}/file`), for drivers that boot its bits. */
  download?: (imageId: string) => Promise<Readable>;
};

/** The instance's system_metadata keys this agent writes (JSON strings where noted). */
export const SysMeta = {
  OLD_VM_STATE: 'old_vm_state',
  MIGRATION_ID: 'migration_id',
  SOURCE_HOST: 'migration_source_host',
  SOURCE_NODE: 'migration_source_node',
  DEST_HOST: 'migration_dest_host',
  DEST_NODE: 'migration_dest_node',
  /** JSON InstanceFlavor. */
  OLD_FLAVOR: 'old_flavor',
  /** JSON InstanceFlavor. */
  NEW_FLAVOR: 'new_flavor',
  RESIZED_AT: 'resized_at',
  SHELVED_AT: 'shelved_at',
  SHELVED_HOST: 'shelved_host',
  SHELVED_IMAGE_ID: 'shelved_image_id',
  SOFT_DELETED_AT: 'soft_deleted_at',
  RESCUE_IMAGE_REF: 'rescue_image_ref',
} as const;

const MIGRATION_KEYS = [
  SysMeta.OLD_VM_STATE,
  SysMeta.MIGRATION_ID,
  SysMeta.SOURCE_HOST,
  SysMeta.SOURCE_NODE,
  SysMeta.DEST_HOST,
  SysMeta.DEST_NODE,
  SysMeta.OLD_FLAVOR,
  SysMeta.NEW_FLAVOR,
  SysMeta.RESIZED_AT,
];
const SHELVE_KEYS = [SysMeta.SHELVED_AT, SysMeta.SHELVED_HOST, SysMeta.SHELVED_IMAGE_ID];

/** One hypervisor type for a host of several drivers: each driver's own, once, in the drivers' order. */
export function combinedHypervisorType(types: readonly string[]): string {
  return [...new Set(types)].join(',');
}

function withoutKeys(meta: Record<string, string>, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(meta).filter(([key]) => !keys.includes(key)));
}

const olderThan = (iso: string | undefined, seconds: number, now = Date.now()) =>
  !!iso && now - Date.parse(iso) >= seconds * 1000;

const DEFAULT_RATIOS = { cpu: 16, ram: 1.5, disk: 1 };

/** The vm_states whose guest must exist on the host; the others may have none (stopped, error, ...). */
const GUEST_EXPECTED: readonly string[] = [
  VmState.ACTIVE,
  VmState.PAUSED,
  VmState.SUSPENDED,
  VmState.RESCUED,
  VmState.RESIZED,
];

/**
 * A power action (Nova's compute manager methods): the task_state the API set, the driver call, and the
 * vm_state it ends in. Redelivered messages find the task already cleared and do nothing.
 */
interface PowerAction {
  action: string;
  tasks: readonly string[];
  run(driver: ComputeDriver, spec: InstanceSpec, networkInfo: NetworkInfo): Promise<void>;
  vmState: VmState;
  /** The guest's ports are plugged (again) by this action. */
  plugs?: true;
}

const POWER_ACTIONS: Record<string, PowerAction> = {
  [ComputeMethod.STOP_INSTANCE]: {
    action: 'stop',
    tasks: [TaskState.POWERING_OFF],
    run: (d, s) => d.powerOff(s),
    vmState: VmState.STOPPED,
  },
  [ComputeMethod.START_INSTANCE]: {
    action: 'start',
    tasks: [TaskState.POWERING_ON],
    run: (d, s, n) => d.powerOn(s, n),
    vmState: VmState.ACTIVE,
    plugs: true,
  },
  [ComputeMethod.PAUSE_INSTANCE]: {
    action: 'pause',
    tasks: [TaskState.PAUSING],
    run: (d, s) => d.pause(s),
    vmState: VmState.PAUSED,
  },
  [ComputeMethod.UNPAUSE_INSTANCE]: {
    action: 'unpause',
    tasks: [TaskState.UNPAUSING],
    run: (d, s) => d.unpause(s),
    vmState: VmState.ACTIVE,
  },
  [ComputeMethod.SUSPEND_INSTANCE]: {
    action: 'suspend',
    tasks: [TaskState.SUSPENDING],
    run: (d, s) => d.suspend(s),
    vmState: VmState.SUSPENDED,
  },
  [ComputeMethod.RESUME_INSTANCE]: {
    action: 'resume',
    tasks: [TaskState.RESUMING],
    run: (d, s, n) => d.resume(s, n),
    vmState: VmState.ACTIVE,
    plugs: true,
  },
};

/** The task states a build may be in on the host (Nova sets them in turn while building). */
const BUILD_TASKS: readonly (string | null)[] = [
  TaskState.SCHEDULING,
  null,
  TaskState.NETWORKING,
  TaskState.BLOCK_DEVICE_MAPPING,
  TaskState.SPAWNING,
];

function flavorSpecOf(flavor: InstanceFlavor): FlavorSpec {
  return {
    vcpus: flavor.vcpus,
    memoryMb: flavor.memory_mb,
    rootGb: flavor.root_gb,
    ephemeralGb: flavor.ephemeral_gb,
    swapMb: flavor.swap,
    extraSpecs: flavor.extra_specs ?? {},
  };
}

/** The instance as drivers (and the metadata service) see it. */
export function instanceSpecOf(instance: InstanceEntity): InstanceSpec {
  return {
    uuid: instance.uuid,
    name: `instance-${instance.uuid.slice(0, 8)}`,
    hostname: instance.hostname,
    displayName: instance.displayName,
    launchIndex: instance.launchIndex,
    reservationId: instance.reservationId,
    projectId: instance.projectId,
    userId: instance.userId,
    flavor: flavorSpecOf(instance.flavor),
    imageRef: instance.imageRef,
    imageProperties: instance.systemMetadata,
    metadata: instance.metadata,
    userData: instance.userData ?? undefined,
    keyName: instance.keyName ?? undefined,
    keyData: instance.keyData ?? undefined,
    availabilityZone: instance.availabilityZone ?? undefined,
    configDrive: instance.configDrive,
  };
}

/**
 * One host's compute agent (Nova's ComputeManager): registers its service and node, heartbeats and reports
 * resources, serves `compute.<host>`, runs every instance operation through the flavor's driver with the
 * state transitions of Nova's manager, syncs power states, and reconciles with its drivers at start.
 */
@Injectable()
export class ComputeManager implements OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown {
  private readonly log;
  private readonly heartbeat: ServiceHeartbeat;
  private readonly locks = new Map<string, Promise<unknown>>();
  private syncTimer?: NodeJS.Timeout;
  private syncing?: Promise<void>;
  private periodicTimer?: NodeJS.Timeout;
  private periodic?: Promise<void>;
  /** The resources the last report saved (see reportResources). */
  private reported?: string;
  private nodeUuid?: string;

  constructor(
    private readonly dataSource: DataSource,
    private readonly bus: MessageBus,
    private readonly records: InstanceRecords,
    private readonly rpc: ComputeRpcClient,
    @Inject(AGENT_OPTIONS) private readonly options: AgentOptions,
  ) {
    this.log = rootLogger().child({ service: 'compute', host: options.host });
    this.heartbeat = new ServiceHeartbeat(
      dataSource,
      options.host,
      Binary.COMPUTE,
      options.reportIntervalSeconds,
      () => this.reportResources(),
    );
  }

  get host(): string {
    return this.options.host;
  }

  async onApplicationBootstrap(): Promise<void> {
    for (const driver of this.options.drivers) await driver.init(this.host);
    await this.options.network?.start();
    await this.registerNode();
    await recomputeUsage(this.dataSource, this.nodeUuid!);
    await this.reconcile();
    await this.heartbeat.start();
    await this.options.serialConsoleRelay?.listen((uuid) => this.connectSerialConsole(uuid));
    await this.bus.serve(computeQueue(this.host), {
      [ComputeMethod.BUILD_AND_RUN_INSTANCE]: (p) =>
        this.buildAndRunInstance(checkRequest.buildAndRunInstance(p)),
      [ComputeMethod.TERMINATE_INSTANCE]: (p) =>
        this.terminateInstance(checkRequest.instance(p, ComputeMethod.TERMINATE_INSTANCE)),
      [ComputeMethod.REBOOT_INSTANCE]: (p) => this.rebootInstance(checkRequest.reboot(p)),
      [ComputeMethod.GET_CONSOLE_OUTPUT]: (p) => this.getConsoleOutput(checkRequest.consoleOutput(p)),
      [ComputeMethod.REBUILD_INSTANCE]: (p) => this.rebuildInstance(checkRequest.rebuild(p)),
      [ComputeMethod.RESIZE_INSTANCE]: (p) => this.resizeInstance(checkRequest.resize(p)),
      [ComputeMethod.CONFIRM_RESIZE]: (p) =>
        this.confirmResize(checkRequest.instance(p, ComputeMethod.CONFIRM_RESIZE)),
      [ComputeMethod.REVERT_RESIZE]: (p) =>
        this.revertResize(checkRequest.instance(p, ComputeMethod.REVERT_RESIZE)),
      [ComputeMethod.MIGRATION_SOURCE]: (p) => this.migrationSource(checkRequest.migrationSource(p)),
      [ComputeMethod.LIVE_MIGRATION]: (p) => this.liveMigration(checkRequest.liveMigration(p)),
      [ComputeMethod.LIVE_MIGRATION_DESTINATION]: (p) =>
        this.liveMigrationDestination(checkRequest.liveMigrationDestination(p)),
      [ComputeMethod.RESCUE_INSTANCE]: (p) => this.rescueInstance(checkRequest.rescue(p)),
      [ComputeMethod.UNRESCUE_INSTANCE]: (p) =>
        this.unrescueInstance(checkRequest.instance(p, ComputeMethod.UNRESCUE_INSTANCE)),
      [ComputeMethod.SHELVE_INSTANCE]: (p) => this.shelveInstance(checkRequest.shelve(p)),
      [ComputeMethod.SHELVE_OFFLOAD_INSTANCE]: (p) =>
        this.shelveOffloadInstance(checkRequest.instance(p, ComputeMethod.SHELVE_OFFLOAD_INSTANCE)),
      [ComputeMethod.UNSHELVE_INSTANCE]: (p) =>
        this.unshelveInstance(checkRequest.instance(p, ComputeMethod.UNSHELVE_INSTANCE)),
      [ComputeMethod.SNAPSHOT_INSTANCE]: (p) => this.snapshotInstance(checkRequest.snapshot(p)),
      [ComputeMethod.TRIGGER_CRASH_DUMP]: (p) =>
        this.triggerCrashDump(checkRequest.instance(p, ComputeMethod.TRIGGER_CRASH_DUMP)),
      [ComputeMethod.GET_SERIAL_CONSOLE]: (p) =>
        this.getSerialConsole(checkRequest.instanceCall(p, ComputeMethod.GET_SERIAL_CONSOLE)),
      [ComputeMethod.GET_DIAGNOSTICS]: (p) =>
        this.getDiagnostics(checkRequest.instanceCall(p, ComputeMethod.GET_DIAGNOSTICS)),
      [ComputeMethod.SET_ADMIN_PASSWORD]: (p) => this.setAdminPassword(checkRequest.setAdminPassword(p)),
      [ComputeMethod.SOFT_DELETE_INSTANCE]: (p) =>
        this.softDeleteInstance(checkRequest.instance(p, ComputeMethod.SOFT_DELETE_INSTANCE)),
      [ComputeMethod.RESTORE_INSTANCE]: (p) =>
        this.restoreInstance(checkRequest.instance(p, ComputeMethod.RESTORE_INSTANCE)),
      ...Object.fromEntries(
        Object.keys(POWER_ACTIONS).map((method) => [
          method,
          (p: unknown) => this.powerAction(method, checkRequest.instance(p, method)),
        ]),
      ),
    });
    this.syncTimer = setInterval(
      () => void this.syncPowerStatesOnce(),
      this.options.powerSyncIntervalSeconds * 1000,
    );
    this.syncTimer.unref();
    this.periodicTimer = setInterval(
      () => void this.runPeriodicTasksOnce(),
      (this.options.periodicIntervalSeconds ?? this.options.powerSyncIntervalSeconds) * 1000,
    );
    this.periodicTimer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    await this.options.network?.stop?.();
    clearInterval(this.syncTimer);
    clearInterval(this.periodicTimer);
    await this.heartbeat.stop();
    await this.syncing;
    await this.periodic;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.options.serialConsoleRelay?.close();
    await this.options.diskTransfer?.close();
    for (const driver of this.options.drivers) await driver.close();
  }

  /** Nova's build_and_run_instance: spawn on this host, or hand the build back for another host. */
  async buildAndRunInstance(request: BuildAndRunInstanceRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!instance || instance.deletedAt || instance.host !== this.host) {
        // Deleted (or moved) before the build began: whatever it claimed here is free again.
        if (!instance || instance.deletedAt) await release(this.dataSource, request.instanceUuid);
        return;
      }
      if (instance.vmState !== VmState.BUILDING || !BUILD_TASKS.includes(instance.taskState)) return;
      const eventId = await this.records.startEvent(
        instance.uuid,
        request.requestId,
        'compute_build_and_run_instance',
        this.host,
        'create',
      );
      const spawning = await this.records.update(
        instance.uuid,
        { taskState: TaskState.SPAWNING },
        { vmState: [VmState.BUILDING], taskState: BUILD_TASKS, host: this.host },
      );
      if (!spawning) {
        await this.records.finishEvent(eventId);
        return;
      }
      try {
        await this.checkGroupPolicy(instance);
        const driver = this.driverFor(instance);
        const spec = this.instanceSpec(instance);
        if (!(await this.hasGuest(driver, instance.uuid))) {
          await this.withPorts(driver, instance, (vifs) =>
            driver.spawn(spec, this.imageFor(instance), vifs, { adminPassword: request.adminPassword }),
          );
        }
        const { state } = await driver.getInfo(spec);
        await this.records.update(
          instance.uuid,
          { vmState: VmState.ACTIVE, taskState: null, powerState: state, launchedAt: nowIso() },
          { vmState: [VmState.BUILDING], taskState: [TaskState.SPAWNING] },
        );
        await this.countBuild(true);
        await this.records.finishEvent(eventId);
      } catch (error) {
        this.log.warn({ err: error, instance: instance.uuid }, 'build failed; rescheduling');
        await this.records.finishEvent(eventId, error);
        await this.countBuild(false);
        await this.cleanUpFailedBuild(instance, request, error);
      }
    });
  }

  /** Nova's terminate_instance: destroy the guest, free the claim, mark the instance deleted. */
  async terminateInstance(request: InstanceRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!instance || instance.deletedAt) return;
      const eventId = await this.records.startEvent(
        instance.uuid,
        request.requestId,
        'compute_terminate_instance',
        this.host,
        'delete',
      );
      try {
        await this.releasePorts(instance);
        for (const driver of this.options.drivers) await driver.destroy(instance, [], { destroyDisks: true });
        await this.dropMigration(instance, request.requestId);
        await release(this.dataSource, instance.uuid);
        // Nova's clean_console_auths_for_instance: no console URL outlives its server.
        await new ConsoleAuthTokens(this.dataSource).deleteForInstance(instance.uuid);
        const now = nowIso();
        await this.records.update(instance.uuid, {
          vmState: VmState.DELETED,
          taskState: null,
          powerState: PowerState.NOSTATE,
          terminatedAt: now,
          deletedAt: now,
        });
        await this.records.finishEvent(eventId);
      } catch (error) {
        await this.fail(instance, eventId, error, VmState.ERROR);
      }
    });
  }

  /** Nova's reboot_instance: rebooting(_hard) → reboot_started(_hard) → active with no task. */
  async rebootInstance(request: RebootInstanceRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const hard = request.rebootType === 'HARD';
      const pending = hard
        ? [TaskState.REBOOTING_HARD, TaskState.REBOOT_PENDING_HARD]
        : [TaskState.REBOOTING, TaskState.REBOOT_PENDING];
      const instance = await this.records.get(request.instanceUuid);
      if (!this.mine(instance) || !pending.includes(instance.taskState as never)) return;
      const eventId = await this.records.startEvent(
        instance.uuid,
        request.requestId,
        'compute_reboot_instance',
        this.host,
        'reboot',
      );
      await this.records.update(instance.uuid, {
        taskState: hard ? TaskState.REBOOT_STARTED_HARD : TaskState.REBOOT_STARTED,
      });
      try {
        const driver = this.driverFor(instance);
        await this.withPorts(driver, instance, (vifs) =>
          driver.reboot(this.instanceSpec(instance), request.rebootType, vifs),
        );
        const { state } = await driver.getInfo(instance);
        await this.records.update(instance.uuid, {
          vmState: VmState.ACTIVE,
          taskState: null,
          powerState: state,
        });
        await this.records.finishEvent(eventId);
      } catch (error) {
        // As Nova: a guest still running after a failed reboot stays ACTIVE; otherwise the instance is in ERROR.
        const state = await this.currentPowerState(instance);
        await this.fail(
          instance,
          eventId,
          error,
          state === PowerState.RUNNING ? VmState.ACTIVE : VmState.ERROR,
        );
      }
    });
  }

  async powerAction(method: string, request: InstanceRequest): Promise<void> {
    const step = POWER_ACTIONS[method];
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!this.mine(instance) || !step.tasks.includes(instance.taskState as string)) return;
      const eventId = await this.records.startEvent(
        instance.uuid,
        request.requestId,
        `compute_${method}`,
        this.host,
        step.action,
      );
      try {
        const driver = this.driverFor(instance);
        const spec = this.instanceSpec(instance);
        if (step.plugs) await this.withPorts(driver, instance, (vifs) => step.run(driver, spec, vifs));
        else await step.run(driver, spec, []);
        const { state } = await driver.getInfo(instance);
        await this.records.update(
          instance.uuid,
          { vmState: step.vmState, taskState: null, powerState: state },
          { taskState: step.tasks },
        );
        await this.records.finishEvent(eventId);
      } catch (error) {
        await this.fail(instance, eventId, error);
      }
    });
  }

  /**
   * Nova's rebuild_instance: rebuilding → rebuild_block_device_mapping → rebuild_spawning → the vm_state it
   * began in (a stopped server is rebuilt and stays stopped; one in error comes back active). The API has
   * written the new image_ref before the cast. A guest that is gone (error) is spawned again.
   */
  async rebuildInstance(request: RebuildInstanceRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!this.mine(instance) || instance.taskState !== TaskState.REBUILDING) return;
      const eventId = await this.start(instance, request, 'compute_rebuild_instance', 'rebuild');
      const wasStopped = instance.vmState === VmState.STOPPED;
      try {
        const driver = this.driverFor(instance);
        const spec = this.instanceSpec(instance);
        await this.step(instance, TaskState.REBUILDING, TaskState.REBUILD_BLOCK_DEVICE_MAPPING);
        await this.step(instance, TaskState.REBUILD_BLOCK_DEVICE_MAPPING, TaskState.REBUILD_SPAWNING);
        const options = { adminPassword: request.adminPassword, powerOn: !wasStopped };
        if (await this.hasGuest(driver, instance.uuid)) {
          await this.withPorts(driver, instance, (vifs) =>
            driver.rebuild(spec, this.imageFor(instance), vifs, options),
          );
        } else {
          await this.withPorts(driver, instance, (vifs) =>
            driver.spawn(spec, this.imageFor(instance), vifs, options),
          );
        }
        const { state } = await driver.getInfo(instance);
        await this.finish(instance, eventId, [TaskState.REBUILD_SPAWNING], {
          vmState: wasStopped ? VmState.STOPPED : VmState.ACTIVE,
          powerState: state,
          launchedAt: nowIso(),
        });
        await this.endEvacuation(instance.uuid, 'done');
      } catch (error) {
        await this.fail(instance, eventId, error, VmState.ERROR);
        await this.endEvacuation(instance.uuid, 'failed');
      }
    });
  }

  /**
   * Nova's prep_resize + resize_instance + finish_resize on the destination (this host): resize_prep →
   * resize_migrating → resize_migrated → resize_finish → `resized` on the new flavor, the old flavor kept in
   * system_metadata. On the same host the driver resizes in place; from another host the source powers its
   * guest off (kept for a revert) and exports its disks (Nova's migrate_disk_and_power_off), and this host
   * fetches them from the source's disk transfer and spawns the guest on them. A failure frees the
   * destination claim and leaves the instance as it was, with a fault.
   */
  async resizeInstance(request: ResizeInstanceRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      const meta = instance?.systemMetadata ?? {};
      if (
        !instance ||
        instance.deletedAt ||
        instance.taskState !== TaskState.RESIZE_PREP ||
        meta[SysMeta.MIGRATION_ID] !== request.migrationId ||
        meta[SysMeta.DEST_HOST] !== this.host
      ) {
        return;
      }
      const eventId = await this.start(instance, request, 'compute_resize_instance', 'resize');
      const source = meta[SysMeta.SOURCE_HOST];
      const sameHost = source === this.host;
      const newFlavor = JSON.parse(meta[SysMeta.NEW_FLAVOR]) as InstanceFlavor;
      const powerOn = meta[SysMeta.OLD_VM_STATE] !== VmState.STOPPED;
      const resized = { ...instance, flavor: newFlavor };
      const driver = this.driverFor(resized);
      let sourceOff = false;
      try {
        await this.step(instance, TaskState.RESIZE_PREP, TaskState.RESIZE_MIGRATING);
        await setMigrationStatus(this.dataSource, request.migrationId, 'migrating');
        if (sameHost) {
          await this.step(instance, TaskState.RESIZE_MIGRATING, TaskState.RESIZE_MIGRATED);
          await this.step(instance, TaskState.RESIZE_MIGRATED, TaskState.RESIZE_FINISH);
          await driver.resize(this.instanceSpec(instance), this.flavorSpec(newFlavor), [], { powerOn });
        } else {
          await this.rpc.migrationSource(source, this.sourceRequest(instance, request, 'power_off'));
          sourceOff = true;
          const offer = await this.rpc.exportDisks(
            source,
            this.sourceRequest(instance, request, 'power_off'),
          );
          await this.step(instance, TaskState.RESIZE_MIGRATING, TaskState.RESIZE_MIGRATED);
          await this.step(instance, TaskState.RESIZE_MIGRATED, TaskState.RESIZE_FINISH);
          if (!(await this.hasGuest(driver, instance.uuid))) {
            await this.spawnMigrated(
              driver,
              this.instanceSpec(resized),
              this.imageFor(instance),
              offer,
              powerOn,
            );
          }
        }
        const { state } = await driver.getInfo(instance);
        await this.finish(instance, eventId, [TaskState.RESIZE_FINISH], {
          vmState: VmState.RESIZED,
          powerState: state,
          flavor: newFlavor,
          host: this.host,
          node: meta[SysMeta.DEST_NODE],
          systemMetadata: { ...meta, [SysMeta.RESIZED_AT]: nowIso() },
        });
        await setMigrationStatus(this.dataSource, request.migrationId, 'finished');
      } catch (error) {
        await setMigrationStatus(this.dataSource, request.migrationId, 'error');
        if (!sameHost) {
          await this.bestEffort(instance, 'undoing a failed migration', async () => {
            await driver.destroy(instance, []);
            if (sourceOff && powerOn) {
              await this.rpc.migrationSource(source, this.sourceRequest(instance, request, 'power_on'));
            }
          });
        }
        await release(this.dataSource, request.migrationId);
        await this.records.addFault(instance.uuid, {
          code: 500,
          message: errorMessage(error),
          host: this.host,
        });
        await this.records.finishEvent(eventId, error);
        await this.records.update(instance.uuid, {
          taskState: null,
          systemMetadata: withoutKeys(meta, MIGRATION_KEYS),
        });
      }
    });
  }

  /**
   * Nova's confirm_resize: the old guest (the source's, or the driver's saved state on the same host) is
   * dropped, the old claim freed and the migration's claim becomes the instance's; active, or stopped when
   * the guest is off. The API sets `resize_confirming`; the agent's own auto-confirm finds no task.
   */
  async confirmResize(request: InstanceRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!this.mine(instance) || instance.vmState !== VmState.RESIZED) return;
      if (instance.taskState !== TaskState.RESIZE_CONFIRMING && instance.taskState !== null) return;
      const meta = instance.systemMetadata;
      const eventId = await this.start(instance, request, 'compute_confirm_resize', 'confirmResize');
      try {
        const driver = this.driverFor(instance);
        if (meta[SysMeta.SOURCE_HOST] === this.host) {
          if (await this.hasGuest(driver, instance.uuid)) await driver.confirmResize(instance);
        } else if (meta[SysMeta.SOURCE_HOST]) {
          await this.rpc.migrationSource(
            meta[SysMeta.SOURCE_HOST],
            this.sourceRequest(instance, request, 'destroy'),
          );
        }
        if (meta[SysMeta.MIGRATION_ID]) {
          await confirmMigrationClaim(this.dataSource, instance.uuid, meta[SysMeta.MIGRATION_ID]);
        }
        await setMigrationStatus(this.dataSource, meta[SysMeta.MIGRATION_ID], 'confirmed');
        const state = await this.powerStateOf(driver, instance.uuid);
        await this.finish(instance, eventId, [TaskState.RESIZE_CONFIRMING, null], {
          vmState: state === PowerState.SHUTDOWN ? VmState.STOPPED : VmState.ACTIVE,
          powerState: state,
          systemMetadata: withoutKeys(meta, MIGRATION_KEYS),
        });
      } catch (error) {
        await this.fail(instance, eventId, error);
      }
    });
  }

  /**
   * Nova's revert_resize + finish_revert_resize: back to the old flavor on the source host (its guest
   * powered on again unless the server was stopped), the destination's guest and claim dropped.
   */
  async revertResize(request: InstanceRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!this.mine(instance) || instance.vmState !== VmState.RESIZED) return;
      if (instance.taskState !== TaskState.RESIZE_REVERTING) return;
      const meta = instance.systemMetadata;
      const eventId = await this.start(instance, request, 'compute_revert_resize', 'revertResize');
      try {
        const oldFlavor = JSON.parse(meta[SysMeta.OLD_FLAVOR]) as InstanceFlavor;
        const source = meta[SysMeta.SOURCE_HOST];
        const powerOn = meta[SysMeta.OLD_VM_STATE] !== VmState.STOPPED;
        let state: PowerState;
        if (source === this.host) {
          const driver = this.driverFor(instance);
          await driver.revertResize(this.instanceSpec({ ...instance, flavor: oldFlavor }), [], { powerOn });
          state = await this.powerStateOf(driver, instance.uuid);
        } else {
          await this.driverFor(instance).destroy(instance, [], { destroyDisks: true });
          state = await this.rpc.migrationSource(
            source,
            this.sourceRequest(instance, request, powerOn ? 'power_on' : 'power_off'),
          );
        }
        await release(this.dataSource, meta[SysMeta.MIGRATION_ID]);
        await setMigrationStatus(this.dataSource, meta[SysMeta.MIGRATION_ID], 'reverted');
        await this.finish(instance, eventId, [TaskState.RESIZE_REVERTING], {
          vmState: powerOn ? VmState.ACTIVE : VmState.STOPPED,
          powerState: state,
          flavor: oldFlavor,
          host: source,
          node: meta[SysMeta.SOURCE_NODE],
          systemMetadata: withoutKeys(meta, MIGRATION_KEYS),
        });
      } catch (error) {
        await this.fail(instance, eventId, error);
      }
    });
  }

  /**
   * Spawns a migrated guest on the disks the source offers (fetched, checked for size and SHA-256 as they
   * stream in); without an offer (the source's driver or agent cannot export) from its image, as before.
   */
  private async spawnMigrated(
    driver: ComputeDriver,
    spec: InstanceSpec,
    image: ImageSource,
    offer: DiskOffer | null,
    powerOn: boolean,
  ): Promise<void> {
    if (!offer) {
      this.log.warn(
        { instance: spec.uuid },
        "the source cannot export the guest's disks: it is made again from its image",
      );
      await driver.spawn(spec, image, [], { powerOn });
      return;
    }
    if (!driver.capabilities.migrateDisks) {
      throw new ConflictError(`The ${driver.name} driver of ${this.host} cannot import a guest's disks.`);
    }
    const started = Date.now();
    const data = await fetchDisks(offer, this.options.diskFetch);
    try {
      await driver.spawn(spec, image, [], { powerOn, migratedDisks: { format: offer.format, data } });
    } finally {
      data.destroy();
    }
    this.log.info(
      { instance: spec.uuid, bytes: offer.sizeBytes, ms: Date.now() - started, format: offer.format },
      "the guest's disks came from the source",
    );
  }

  /** The source host's part of a cross-host resize (a call from the destination's agent). */
  async migrationSource(request: MigrationSourceRequest): Promise<PowerState | DiskOffer | null> {
    const instance = await this.records.get(request.instanceUuid);
    const meta = instance?.systemMetadata ?? {};
    if (
      !instance ||
      meta[SysMeta.MIGRATION_ID] !== request.migrationId ||
      meta[SysMeta.SOURCE_HOST] !== this.host
    ) {
      throw new NotFoundError(`Migration ${request.migrationId} could not be found.`);
    }
    const flavor = JSON.parse(meta[SysMeta.OLD_FLAVOR]) as InstanceFlavor;
    const old = { ...instance, flavor };
    const driver = this.driverFor(old);
    if (request.step === 'export_disks') {
      const transfer = this.options.diskTransfer;
      if (!transfer || !driver.capabilities.migrateDisks) return null;
      return transfer.offer(instance.uuid, await driver.exportDisks(instance));
    }
    await this.options.diskTransfer?.withdraw(instance.uuid);
    if (request.step === 'destroy') {
      await driver.destroy(instance, [], { destroyDisks: true });
      return PowerState.NOSTATE;
    }
    if (request.step === 'power_off') await driver.powerOff(instance);
    else await driver.powerOn(this.instanceSpec(old), []);
    return (await driver.getInfo(instance)).state;
  }

  /**
   * Nova's live_migration and _post_live_migration on the source host (cast by the conductor, task_state
   * `migrating`): the destination prepares the guest (`pre`), the driver copies the disks and the running
   * state there, then the guest goes from here (process, ports, files), the claim moves (this host's
   * allocation dropped), the instance's host and node become the destination's, and the destination lets
   * the guest run on (`post`, which ends the task). Before the copy has completed, a failure rolls back: the
   * destination's guest goes, the guest runs on here, the migration is `error` (preparing) or `failed` (the
   * copy), the task ends with a fault. Once it has completed, a failure is the instance's ERROR, as Nova's.
   */
  async liveMigration(request: LiveMigrationRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!this.mine(instance) || instance.taskState !== TaskState.MIGRATING) return;
      const migration = await this.dataSource
        .getRepository(MigrationEntity)
        .findOneBy({ uuid: request.migrationId, instanceUuid: instance.uuid });
      // A redelivered cast finds its migration under way or done: nothing to do again.
      if (!migration || migration.status !== 'accepted' || !migration.destCompute) return;
      const dest = migration.destCompute;
      const eventId = await this.start(instance, request, 'compute_live_migration', 'live-migration');
      const driver = this.driverFor(instance);
      const paused = instance.vmState === VmState.PAUSED;
      const destRequest = (step: LiveMigrationDestinationRequest['step']) => ({
        instanceUuid: instance.uuid,
        requestId: request.requestId,
        migrationId: request.migrationId,
        step,
        ...(step === 'post' ? { paused } : {}),
      });
      await setMigrationStatus(this.dataSource, request.migrationId, 'queued');
      let copying = false;
      try {
        if (!driver.capabilities.liveMigration) {
          throw new NotSupportedByDriver('liveMigration', driver.name);
        }
        await setMigrationStatus(this.dataSource, request.migrationId, 'preparing');
        const target = await this.rpc.liveMigrationDestination<LiveMigrationTarget>(dest, destRequest('pre'));
        await setMigrationStatus(this.dataSource, request.migrationId, 'running');
        copying = true;
        const started = Date.now();
        await driver.liveMigration(instance, target);
        this.log.info(
          { instance: instance.uuid, dest, ms: Date.now() - started },
          'the guest has live-migrated',
        );
      } catch (error) {
        this.log.warn({ err: error, instance: instance.uuid, dest }, 'live migration failed; rolling back');
        await this.bestEffort(instance, 'rolling back the destination of a live migration', () =>
          this.rpc.liveMigrationDestination(dest, destRequest('rollback')),
        );
        // The destination may have bound the ports to itself: back to this host.
        const network = driver.name === 'fake' ? undefined : this.options.network;
        if (network) {
          await this.bestEffort(instance, 'binding the ports back', () => network.vifsFor(instance));
        }
        await release(this.dataSource, request.migrationId);
        await setMigrationStatus(this.dataSource, request.migrationId, copying ? 'failed' : 'error');
        await this.records.addFault(instance.uuid, {
          code: 500,
          message: errorMessage(error),
          host: this.host,
        });
        await this.records.finishEvent(eventId, error);
        await this.records.update(
          instance.uuid,
          { taskState: null, powerState: await this.currentPowerState(instance) },
          { taskState: [TaskState.MIGRATING] },
        );
        return;
      }
      try {
        await driver.postLiveMigration(instance, []);
        await this.releasePorts(instance);
        await confirmMigrationClaim(this.dataSource, instance.uuid, request.migrationId);
        await this.records.update(
          instance.uuid,
          { host: dest, node: migration.destNode ?? dest },
          { taskState: [TaskState.MIGRATING], host: this.host },
        );
        await this.rpc.liveMigrationDestination(dest, destRequest('post'));
        await setMigrationStatus(this.dataSource, request.migrationId, 'completed');
        await this.records.finishEvent(eventId);
      } catch (error) {
        this.log.error({ err: error, instance: instance.uuid, dest }, 'live migration failed after the copy');
        await setMigrationStatus(this.dataSource, request.migrationId, 'error');
        await this.records.addFault(instance.uuid, {
          code: 500,
          message: errorMessage(error),
          host: this.host,
        });
        await this.records.finishEvent(eventId, error);
        await this.records.update(instance.uuid, { vmState: VmState.ERROR, taskState: null });
      }
    });
  }

  /**
   * The destination's part of a live migration (a call): `check` (the conductor's, Nova's
   * check_can_live_migrate_destination), `pre` (Nova's pre_live_migration: the guest prepared here with its
   * ports, answering where it is awaited; idempotent), `post` (post_live_migration_at_destination: the ports
   * bound here and up, the guest runs, the task ends) and `rollback` (rollback_live_migration_at_destination).
   */
  async liveMigrationDestination(
    request: LiveMigrationDestinationRequest,
  ): Promise<LiveMigrationTarget | null> {
    return this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      const migration = await this.dataSource
        .getRepository(MigrationEntity)
        .findOneBy({ uuid: request.migrationId, instanceUuid: request.instanceUuid });
      if (!instance || instance.deletedAt || !migration || migration.destCompute !== this.host) {
        throw new NotFoundError(`Migration ${request.migrationId} could not be found.`);
      }
      const driver = this.driverFor(instance);
      const network = driver.name === 'fake' ? undefined : this.options.network;
      if (request.step === 'rollback') {
        await driver.rollbackLiveMigrationAtDestination(instance, []);
        if (network && instance.host !== this.host) await network.release(instance.uuid);
        return null;
      }
      if (instance.taskState !== TaskState.MIGRATING) {
        throw new ConflictError(`Instance ${instance.uuid} is not being live-migrated.`);
      }
      if (request.step === 'check') {
        if (!driver.capabilities.liveMigration) {
          throw new BadRequestError(
            `Migration pre-check error: the ${driver.name} driver of ${this.host} cannot live-migrate servers.`,
          );
        }
        return null;
      }
      if (request.step === 'pre') {
        if (instance.host === this.host) {
          throw new BadRequestError(`Instance ${instance.uuid} is already on ${this.host}.`);
        }
        const eventId = await this.start(instance, request, 'compute_pre_live_migration', 'live-migration');
        try {
          const vifs = network ? await network.vifsFor(instance) : [];
          const target = await driver.preLiveMigration(
            this.instanceSpec(instance),
            this.imageFor(instance),
            vifs,
            {
              listenAddress: this.options.liveMigrationAddress ?? '127.0.0.1',
            },
          );
          await this.records.finishEvent(eventId);
          return target;
        } catch (error) {
          await this.records.finishEvent(eventId, error);
          throw error;
        }
      }
      // post: the source has handed the instance over.
      if (instance.host !== this.host) {
        throw new ConflictError(`Instance ${instance.uuid} has not been handed over to ${this.host}.`);
      }
      const eventId = await this.start(
        instance,
        request,
        'compute_post_live_migration_at_destination',
        'live-migration',
      );
      try {
        await this.withPorts(driver, instance, () =>
          driver.postLiveMigrationAtDestination(instance, { paused: request.paused }),
        );
        await this.finish(instance, eventId, [TaskState.MIGRATING], {
          powerState: await this.powerStateOf(driver, instance.uuid),
        });
      } catch (error) {
        await this.records.finishEvent(eventId, error);
        throw error;
      }
      return null;
    });
  }

  /** Nova's rescue_instance: the rescue image boots with the guest's disk; `rescued`. A failure is ERROR. */
  async rescueInstance(request: RescueInstanceRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!this.mine(instance) || instance.taskState !== TaskState.RESCUING) return;
      const eventId = await this.start(instance, request, 'compute_rescue_instance', 'rescue');
      try {
        const driver = this.driverFor(instance);
        const rescueImage = this.imageFor(instance, request.rescueImageRef ?? instance.imageRef);
        await driver.rescue(this.instanceSpec(instance), rescueImage, [], {
          rescuePassword: request.rescuePassword,
        });
        const { state } = await driver.getInfo(instance);
        await this.finish(instance, eventId, [TaskState.RESCUING], {
          vmState: VmState.RESCUED,
          powerState: state,
          systemMetadata: {
            ...instance.systemMetadata,
            [SysMeta.OLD_VM_STATE]: instance.vmState,
            [SysMeta.RESCUE_IMAGE_REF]: rescueImage.id,
          },
        });
      } catch (error) {
        await this.fail(instance, eventId, error, VmState.ERROR);
      }
    });
  }

  /** Nova's unrescue_instance: the guest boots its own disk again; `active`. */
  async unrescueInstance(request: InstanceRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!this.mine(instance) || instance.taskState !== TaskState.UNRESCUING) return;
      const eventId = await this.start(instance, request, 'compute_unrescue_instance', 'unrescue');
      try {
        const driver = this.driverFor(instance);
        await driver.unrescue(instance);
        const { state } = await driver.getInfo(instance);
        await this.finish(instance, eventId, [TaskState.UNRESCUING], {
          vmState: VmState.ACTIVE,
          powerState: state,
          systemMetadata: withoutKeys(instance.systemMetadata, [
            SysMeta.OLD_VM_STATE,
            SysMeta.RESCUE_IMAGE_REF,
          ]),
        });
      } catch (error) {
        await this.fail(instance, eventId, error);
      }
    });
  }

  /**
   * Nova's shelve_instance: the guest is powered off, snapshotted to the API's queued image when one is
   * given (shelving_image_pending_upload → shelving_image_uploading), and the instance `shelved`; with
   * NOVUM_SHELVED_OFFLOAD_TIME 0 it is offloaded at once.
   */
  async shelveInstance(request: ShelveInstanceRequest): Promise<void> {
    const shelved = await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!this.mine(instance) || instance.taskState !== TaskState.SHELVING) return false;
      const eventId = await this.start(instance, request, 'compute_shelve_instance', 'shelve');
      try {
        const driver = this.driverFor(instance);
        await driver.powerOff(instance);
        await this.step(instance, TaskState.SHELVING, TaskState.SHELVING_IMAGE_PENDING_UPLOAD);
        if (request.imageId) {
          const imageId = request.imageId;
          await driver.snapshot(instance, imageId, async (snapshot) => {
            await this.step(
              instance,
              TaskState.SHELVING_IMAGE_PENDING_UPLOAD,
              TaskState.SHELVING_IMAGE_UPLOADING,
            );
            await this.upload(imageId, snapshot);
          });
        } else {
          await this.step(
            instance,
            TaskState.SHELVING_IMAGE_PENDING_UPLOAD,
            TaskState.SHELVING_IMAGE_UPLOADING,
          );
        }
        const state = await this.powerStateOf(driver, instance.uuid);
        return await this.finish(instance, eventId, [TaskState.SHELVING_IMAGE_UPLOADING], {
          vmState: VmState.SHELVED,
          powerState: state,
          systemMetadata: {
            ...instance.systemMetadata,
            [SysMeta.SHELVED_AT]: nowIso(),
            [SysMeta.SHELVED_HOST]: this.host,
            ...(request.imageId ? { [SysMeta.SHELVED_IMAGE_ID]: request.imageId } : {}),
          },
        });
      } catch (error) {
        await this.fail(instance, eventId, error);
        return false;
      }
    });
    if (shelved && this.options.shelvedOffloadTimeSeconds === 0) {
      await this.offloadShelved(request.instanceUuid, request.requestId);
    }
  }

  /**
   * Nova's shelve_offload_instance: the guest is destroyed, the claim freed and the host cleared;
   * `shelved_offloaded`. Unshelving schedules it again.
   */
  async shelveOffloadInstance(request: InstanceRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!this.mine(instance) || instance.vmState !== VmState.SHELVED) return;
      if (instance.taskState !== TaskState.SHELVING_OFFLOADING) return;
      const eventId = await this.start(instance, request, 'compute_shelve_offload_instance', 'shelveOffload');
      try {
        await this.releasePorts(instance);
        for (const driver of this.options.drivers) await driver.destroy(instance, [], { destroyDisks: true });
        await release(this.dataSource, instance.uuid);
        await this.finish(instance, eventId, [TaskState.SHELVING_OFFLOADING], {
          vmState: VmState.SHELVED_OFFLOADED,
          powerState: PowerState.NOSTATE,
          host: null,
          node: null,
        });
      } catch (error) {
        await this.fail(instance, eventId, error);
      }
    });
  }

  /**
   * Nova's unshelve_instance on the host the conductor claimed: unshelving → spawning from the shelved
   * image (or the instance's own) → `active`. A failure frees the claim and the host: back to
   * `shelved_offloaded` with a fault, as Nova.
   */
  async unshelveInstance(request: InstanceRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!this.mine(instance) || instance.vmState !== VmState.SHELVED_OFFLOADED) return;
      if (instance.taskState !== TaskState.UNSHELVING) return;
      const eventId = await this.start(instance, request, 'compute_unshelve_instance', 'unshelve');
      try {
        await this.step(instance, TaskState.UNSHELVING, TaskState.SPAWNING);
        const driver = this.driverFor(instance);
        const shelvedImage = instance.systemMetadata[SysMeta.SHELVED_IMAGE_ID];
        const image = this.imageFor(instance, shelvedImage ?? instance.imageRef);
        if (!(await this.hasGuest(driver, instance.uuid))) {
          await this.withPorts(driver, instance, (vifs) =>
            driver.spawn(this.instanceSpec(instance), image, vifs),
          );
        }
        const { state } = await driver.getInfo(instance);
        await this.finish(instance, eventId, [TaskState.SPAWNING], {
          vmState: VmState.ACTIVE,
          powerState: state,
          launchedAt: nowIso(),
          systemMetadata: withoutKeys(instance.systemMetadata, SHELVE_KEYS),
        });
        // As Nova: the shelved snapshot has served its purpose once the server runs again.
        const remove = this.options.imageUpload?.remove;
        if (shelvedImage && remove) {
          await this.bestEffort(instance, 'deleting the shelved image', () => remove(shelvedImage));
        }
      } catch (error) {
        await this.bestEffort(instance, 'cleaning up a failed unshelve', () =>
          this.driverFor(instance).destroy(instance, []),
        );
        await release(this.dataSource, instance.uuid);
        await this.records.addFault(instance.uuid, {
          code: 500,
          message: errorMessage(error),
          host: this.host,
        });
        await this.records.finishEvent(eventId, error);
        await this.records.update(instance.uuid, {
          taskState: null,
          host: null,
          node: null,
          powerState: PowerState.NOSTATE,
        });
      }
    });
  }

  /**
   * Nova's snapshot_instance (createImage): image_snapshot_pending → image_snapshot → image_pending_upload
   * → image_uploading → none; the driver's bytes go to the API's queued image. The vm_state is kept.
   */
  async snapshotInstance(request: SnapshotInstanceRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      const tasks: (string | null)[] = [TaskState.IMAGE_SNAPSHOT_PENDING, TaskState.IMAGE_SNAPSHOT];
      if (!this.mine(instance) || !tasks.includes(instance.taskState)) return;
      const eventId = await this.start(instance, request, 'compute_snapshot_instance', 'createImage');
      try {
        await this.step(instance, tasks, TaskState.IMAGE_SNAPSHOT);
        const driver = this.driverFor(instance);
        await this.step(instance, [TaskState.IMAGE_SNAPSHOT], TaskState.IMAGE_PENDING_UPLOAD);
        await driver.snapshot(instance, request.imageId, async (snapshot) => {
          await this.step(instance, [TaskState.IMAGE_PENDING_UPLOAD], TaskState.IMAGE_UPLOADING);
          await this.upload(request.imageId, snapshot);
        });
        await this.finish(instance, eventId, [TaskState.IMAGE_UPLOADING], {
          powerState: await this.powerStateOf(driver, instance.uuid),
        });
      } catch (error) {
        await this.fail(instance, eventId, error);
      }
    });
  }

  /** Nova's trigger_crash_dump: an NMI to the guest; no task, a fault and an Error event on failure. */
  async triggerCrashDump(request: InstanceRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!this.mine(instance)) return;
      const eventId = await this.start(instance, request, 'compute_trigger_crash_dump', 'trigger_crash_dump');
      try {
        await this.driverFor(instance).triggerCrashDump(instance);
        await this.records.finishEvent(eventId);
      } catch (error) {
        await this.records.finishEvent(eventId, error);
        await this.records.addFault(instance.uuid, {
          code: 500,
          message: errorMessage(error),
          host: this.host,
        });
      }
    });
  }

  /**
   * A call: where a console proxy reaches the guest's serial port: this agent's relay with a ticket for the
   * guest (the driver's own endpoint without a relay). A driver without serial consoles is Nova's
   * NotImplementedError (501), a guest without one ConsoleTypeUnavailable (400).
   */
  async getSerialConsole(request: InstanceCallRequest): Promise<ConsoleEndpoint> {
    const instance = await this.records.get(request.instanceUuid);
    if (!this.mine(instance)) throw new NotFoundError(`Instance ${request.instanceUuid} could not be found.`);
    const endpoint = await this.driverFor(instance)
      .getSerialConsole(instance)
      .catch((error: unknown) => {
        if (error instanceof NotSupportedByDriver) {
          throw new ApiError(501, 'The requested functionality is not supported.', 'HTTPNotImplemented');
        }
        if (error instanceof ConsoleUnavailable) {
          this.log.info({ instance_uuid: instance.uuid }, error.message);
          throw new BadRequestError('Unavailable console type serial.');
        }
        throw asApiError(error);
      });
    return this.options.serialConsoleRelay?.endpoint(instance.uuid) ?? endpoint;
  }

  /** The relay's way to a guest's serial port: the driver's stream, for a guest of this host. */
  private async connectSerialConsole(instanceUuid: string): Promise<Duplex> {
    const instance = await this.records.get(instanceUuid);
    if (!this.mine(instance)) throw new InstanceNotFound(instanceUuid);
    return this.driverFor(instance).connectSerialConsole(instance);
  }

  /** A call: the guest's diagnostics. */
  async getDiagnostics(request: InstanceCallRequest): Promise<Diagnostics> {
    const instance = await this.records.get(request.instanceUuid);
    if (!this.mine(instance)) throw new NotFoundError(`Instance ${request.instanceUuid} could not be found.`);
    return this.driverFor(instance)
      .getDiagnostics(instance)
      .catch((error: unknown) => {
        throw asApiError(error);
      });
  }

  /**
   * Nova's set_admin_password (a call): updating_password → none. A driver without the operation answers
   * 409 (Nova's SetAdminPasswdNotSupported); the task ends either way.
   */
  async setAdminPassword(request: SetAdminPasswordRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!this.mine(instance)) {
        throw new NotFoundError(`Instance ${request.instanceUuid} could not be found.`);
      }
      if (instance.taskState !== TaskState.UPDATING_PASSWORD) return;
      const eventId = await this.start(instance, request, 'compute_set_admin_password', 'changePassword');
      try {
        const driver = this.driverFor(instance) as ComputeDriver & {
          setAdminPassword?: (instance: InstanceSpec, password: string) => Promise<void>;
        };
        if (typeof driver.setAdminPassword !== 'function') {
          throw new ConflictError('Set admin password is not supported');
        }
        await driver.setAdminPassword(this.instanceSpec(instance), request.newPassword);
        await this.finish(instance, eventId, [TaskState.UPDATING_PASSWORD], {});
      } catch (error) {
        await this.records.finishEvent(eventId, error);
        await this.records.update(
          instance.uuid,
          { taskState: null },
          { taskState: [TaskState.UPDATING_PASSWORD] },
        );
        throw error instanceof ConflictError ? error : asApiError(error);
      }
    });
  }

  /** Nova's soft_delete_instance: the guest powered off, `soft-delete`; kept until restored or reclaimed. */
  async softDeleteInstance(request: InstanceRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!this.mine(instance) || instance.taskState !== TaskState.SOFT_DELETING) return;
      const eventId = await this.start(instance, request, 'compute_soft_delete_instance', 'delete');
      try {
        const driver = this.driverFor(instance);
        if (await this.hasGuest(driver, instance.uuid)) await driver.powerOff(instance);
        await this.finish(instance, eventId, [TaskState.SOFT_DELETING], {
          vmState: VmState.SOFT_DELETED,
          powerState: await this.powerStateOf(driver, instance.uuid),
          systemMetadata: { ...instance.systemMetadata, [SysMeta.SOFT_DELETED_AT]: nowIso() },
        });
      } catch (error) {
        await this.fail(instance, eventId, error);
      }
    });
  }

  /** Nova's restore_instance: the guest powered on again; `active`. */
  async restoreInstance(request: InstanceRequest): Promise<void> {
    await this.exclusive(request.instanceUuid, async () => {
      const instance = await this.records.get(request.instanceUuid);
      if (!this.mine(instance) || instance.vmState !== VmState.SOFT_DELETED) return;
      if (instance.taskState !== TaskState.RESTORING) return;
      const eventId = await this.start(instance, request, 'compute_restore_instance', 'restore');
      try {
        const driver = this.driverFor(instance);
        await this.withPorts(driver, instance, (vifs) => driver.powerOn(this.instanceSpec(instance), vifs));
        const { state } = await driver.getInfo(instance);
        await this.finish(instance, eventId, [TaskState.RESTORING], {
          vmState: VmState.ACTIVE,
          powerState: state,
          systemMetadata: withoutKeys(instance.systemMetadata, [SysMeta.SOFT_DELETED_AT]),
        });
      } catch (error) {
        await this.fail(instance, eventId, error);
      }
    });
  }

  /**
   * The periodic tasks of Nova's manager: _poll_unconfirmed_resizes (NOVUM_RESIZE_CONFIRM_WINDOW),
   * _poll_shelved_instances (NOVUM_SHELVED_OFFLOAD_TIME > 0) and _reclaim_queued_deletes
   * (NOVUM_RECLAIM_INSTANCE_INTERVAL). Each acts as the API would: task set on condition, then the method.
   */
  async runPeriodicTasks(now = Date.now()): Promise<void> {
    const window = this.options.resizeConfirmWindowSeconds ?? 0;
    const offload = this.options.shelvedOffloadTimeSeconds ?? 0;
    const reclaim = this.options.reclaimInstanceIntervalSeconds ?? 0;
    for (const instance of await this.records.onHost(this.host)) {
      if (instance.taskState !== null) continue;
      const meta = instance.systemMetadata;
      const requestId = `req-${randomUUID()}`;
      if (
        window > 0 &&
        instance.vmState === VmState.RESIZED &&
        olderThan(meta[SysMeta.RESIZED_AT], window, now)
      ) {
        this.log.info({ instance: instance.uuid }, 'confirming a resize after the confirm window');
        const set = await this.records.update(
          instance.uuid,
          { taskState: TaskState.RESIZE_CONFIRMING },
          { taskState: [null], vmState: [VmState.RESIZED], host: this.host },
        );
        if (set) await this.confirmResize({ instanceUuid: instance.uuid, requestId });
      } else if (
        offload > 0 &&
        instance.vmState === VmState.SHELVED &&
        olderThan(meta[SysMeta.SHELVED_AT], offload, now)
      ) {
        await this.offloadShelved(instance.uuid, requestId);
      } else if (
        reclaim > 0 &&
        instance.vmState === VmState.SOFT_DELETED &&
        olderThan(meta[SysMeta.SOFT_DELETED_AT], reclaim, now)
      ) {
        this.log.info({ instance: instance.uuid }, 'reclaiming a soft-deleted instance');
        const set = await this.records.update(
          instance.uuid,
          { taskState: TaskState.DELETING },
          { taskState: [null], vmState: [VmState.SOFT_DELETED], host: this.host },
        );
        if (set) {
          await this.records.startAction(instance.uuid, 'delete', requestId);
          await this.terminateInstance({ instanceUuid: instance.uuid, requestId });
        }
      }
    }
  }

  private async offloadShelved(uuid: string, requestId: string): Promise<void> {
    const set = await this.records.update(
      uuid,
      { taskState: TaskState.SHELVING_OFFLOADING },
      { taskState: [null], vmState: [VmState.SHELVED], host: this.host },
    );
    if (set) await this.shelveOffloadInstance({ instanceUuid: uuid, requestId });
  }

  private runPeriodicTasksOnce(): void {
    if (this.periodic) return;
    this.periodic = this.runPeriodicTasks()
      .catch((error) => this.log.warn({ err: error }, 'periodic tasks failed'))
      .finally(() => (this.periodic = undefined));
  }

  /** A resize's leftovers when its instance is deleted: the migration claim and the source's guest. */
  private async dropMigration(instance: InstanceEntity, requestId: string): Promise<void> {
    const meta = instance.systemMetadata;
    const migrationId = meta[SysMeta.MIGRATION_ID];
    if (!migrationId) return;
    await release(this.dataSource, migrationId);
    const source = meta[SysMeta.SOURCE_HOST];
    if (source && source !== this.host && instance.host === this.host) {
      await this.bestEffort(instance, 'destroying the source guest of a resize', () =>
        this.rpc.migrationSource(source, {
          instanceUuid: instance.uuid,
          requestId,
          migrationId,
          step: 'destroy',
        }),
      );
    }
  }

  private sourceRequest(
    instance: InstanceEntity,
    request: InstanceRequest,
    step: MigrationSourceRequest['step'],
  ): MigrationSourceRequest {
    return {
      instanceUuid: instance.uuid,
      requestId: request.requestId,
      migrationId: instance.systemMetadata[SysMeta.MIGRATION_ID],
      step,
    };
  }

  private async upload(imageId: string, snapshot: SnapshotData): Promise<void> {
    if (!this.options.imageUpload) {
      snapshot.data.destroy();
      throw new Error('This compute agent has no image service credential to upload snapshots with.');
    }
    await this.options.imageUpload(imageId, snapshot);
  }

  /** Records the compute event of an operation (and its action when the API did not). */
  private start(instance: InstanceEntity, request: InstanceRequest, event: string, action: string) {
    return this.records.startEvent(instance.uuid, request.requestId, event, this.host, action);
  }

  /** Moves the task on (Nova's expected_task_state saves); fails when someone else changed it. */
  private async step(
    instance: InstanceEntity,
    from: string | readonly (string | null)[],
    to: string,
  ): Promise<void> {
    const expected = typeof from === 'string' ? [from] : from;
    const moved = await this.records.update(instance.uuid, { taskState: to }, { taskState: expected });
    if (!moved) {
      throw new Error(`Instance ${instance.uuid} changed state while ${to.replace(/_/g, ' ')} ran.`);
    }
  }

  /** Ends an operation: the task cleared with `changes`, on condition of the task, and the event done. */
  private async finish(
    instance: InstanceEntity,
    eventId: string,
    tasks: readonly (string | null)[],
    changes: Parameters<InstanceRecords['update']>[1],
  ): Promise<boolean> {
    const done = await this.records.update(
      instance.uuid,
      { ...changes, taskState: null },
      { taskState: tasks },
    );
    await this.records.finishEvent(eventId);
    return done;
  }

  private async bestEffort(instance: InstanceEntity, what: string, work: () => Promise<unknown>) {
    try {
      await work();
    } catch (error) {
      this.log.warn({ err: error, instance: instance.uuid }, `${what} failed`);
    }
  }

  /** A call: the guest's console, its last `length` lines when given. */
  async getConsoleOutput(request: ConsoleOutputRequest): Promise<string> {
    const instance = await this.records.get(request.instanceUuid);
    if (!this.mine(instance)) throw new NotFoundError(`Instance ${request.instanceUuid} could not be found.`);
    const output = await this.driverFor(instance)
      .getConsoleOutput(instance)
      .catch((error: unknown) => {
        throw asApiError(error);
      });
    if (request.length === undefined) return output;
    // Nova's _tail_log: the last `length` pieces of the text split at newlines; 0 gives nothing.
    if (request.length === 0) return '';
    return output.split('\n').slice(-request.length).join('\n');
  }

  /**
   * Nova's _sync_power_states: records each idle instance's power state as the driver reports it, stops in
   * the database an ACTIVE instance whose guest shut down or crashed, and powers off the guest of a STOPPED
   * one that runs. Instances with a task in progress are left to their task.
   */
  async syncPowerStates(): Promise<void> {
    for (const instance of await this.records.onHost(this.host)) {
      if (instance.taskState !== null || instance.vmState === VmState.BUILDING) continue;
      // A guest as the listing has it needs nothing: only a difference is read again under the instance's
      // lock, so that a host's sync costs one read of its instances, not one more per instance.
      const listed = await this.powerStateOf(this.driverFor(instance), instance.uuid);
      if (!powerSyncNeeded(instance, listed)) continue;
      await this.exclusive(instance.uuid, async () => {
        const current = await this.records.get(instance.uuid);
        if (!this.mine(current) || current.taskState !== null) return;
        const driver = this.driverFor(current);
        const state = await this.powerStateOf(driver, current.uuid);
        const idle = { taskState: [null], vmState: [current.vmState] };
        if (isOff(current, state)) {
          this.log.info({ instance: current.uuid, state }, 'guest is off; the instance is now stopped');
          await this.records.update(current.uuid, { vmState: VmState.STOPPED, powerState: state }, idle);
        } else if (runsStopped(current, state)) {
          this.log.info({ instance: current.uuid }, 'guest of a stopped instance runs; powering it off');
          await driver.powerOff(current);
          await this.records.update(current.uuid, { powerState: PowerState.SHUTDOWN }, idle);
        } else if (state !== current.powerState) {
          await this.records.update(current.uuid, { powerState: state }, idle);
        }
      });
    }
  }

  /**
   * At start: instances on this host whose guest the driver still has are re-adopted (power state synced);
   * ones whose guest must exist but is gone go to ERROR with a fault; a build the agent died in the middle
   * of goes to ERROR unless its guest exists (then it completes). Guests no instance row knows are only
   * reported: destroying what the database forgot could lose a user's data.
   */
  async reconcile(): Promise<void> {
    const guests = new Set<string>();
    for (const driver of this.options.drivers)
      for (const uuid of await driver.listInstances()) guests.add(uuid);
    const instances = await this.records.onHost(this.host);
    const known = new Set(instances.map((instance) => instance.uuid));
    for (const instance of instances) {
      const present = guests.has(instance.uuid);
      if (instance.vmState === VmState.BUILDING) {
        if (instance.taskState === TaskState.SCHEDULING) continue;
        if (present) {
          const { state } = await this.driverFor(instance).getInfo(instance);
          await this.records.update(
            instance.uuid,
            { vmState: VmState.ACTIVE, taskState: null, powerState: state, launchedAt: nowIso() },
            { vmState: [VmState.BUILDING] },
          );
        } else {
          await this.markLost(
            instance,
            `Instance ${instance.uuid} was being built on ${this.host} when its compute agent stopped.`,
          );
        }
        continue;
      }
      if (instance.taskState === TaskState.MIGRATING) await this.abortLiveMigration(instance);
      if (present) {
        const state = await this.powerStateOf(this.driverFor(instance), instance.uuid);
        if (state !== instance.powerState) await this.records.update(instance.uuid, { powerState: state });
      } else if (GUEST_EXPECTED.includes(instance.vmState)) {
        await this.markLost(instance, `Instance ${instance.uuid} could not be found on host ${this.host}.`);
      } else if (instance.powerState !== PowerState.NOSTATE) {
        await this.records.update(instance.uuid, { powerState: PowerState.NOSTATE });
      }
    }
    const evacuated = await this.destroyEvacuated(guests);
    const unknown = [...guests].filter((uuid) => !known.has(uuid) && !evacuated.has(uuid));
    if (unknown.length) {
      this.log.warn({ guests: unknown }, 'the hypervisor runs guests the database does not know; left alone');
    }
    this.log.info({ instances: instances.length, guests: guests.size }, 'reconciled with the drivers');
  }

  /**
   * Nova's _init_instance for a server found `migrating` on its source at start: the live migration this
   * agent ran stopped with it. The destination drops what it prepared, the migration's claim goes, the
   * migration is `error` and the task ends; the guest runs on here.
   */
  private async abortLiveMigration(instance: InstanceEntity): Promise<void> {
    const migrations = await this.dataSource.getRepository(MigrationEntity).findBy({
      instanceUuid: instance.uuid,
      migrationType: 'live-migration',
      sourceCompute: this.host,
      status: In(['accepted', 'queued', 'preparing', 'running']),
    });
    for (const migration of migrations) {
      const dest = migration.destCompute;
      if (dest) {
        await this.bestEffort(instance, 'rolling back the destination of an interrupted live migration', () =>
          this.rpc.liveMigrationDestination(
            dest,
            {
              instanceUuid: instance.uuid,
              requestId: `req-${randomUUID()}`,
              migrationId: migration.uuid,
              step: 'rollback',
            },
            30_000,
          ),
        );
      }
      await release(this.dataSource, migration.uuid);
      await setMigrationStatus(this.dataSource, migration.uuid, 'error');
    }
    await this.records.update(instance.uuid, { taskState: null }, { taskState: [TaskState.MIGRATING] });
    this.log.warn({ instance: instance.uuid }, 'a live migration was interrupted by the agent stopping');
  }

  /**
   * Nova's late check of a server group's policy on the host (_validate_instance_group_policy), for builds
   * that raced past the scheduler together: of two members placed at once, the one created later fails
   * here and is rescheduled.
   */
  private async checkGroupPolicy(instance: InstanceEntity): Promise<void> {
    const groupId = instance.schedulerHints?.group;
    if (!groupId) return;
    const group = await this.dataSource.getRepository(ServerGroupEntity).findOneBy({ id: groupId });
    if (!group || (group.policy !== 'affinity' && group.policy !== 'anti-affinity')) return;
    const members = await this.dataSource.getRepository(ServerGroupMemberEntity).findBy({ groupId });
    const uuids = members.map((member) => member.instanceUuid).filter((uuid) => uuid !== instance.uuid);
    const earlier = uuids.length
      ? (
          await this.dataSource.getRepository(InstanceEntity).findBy({ uuid: In(uuids), deletedAt: IsNull() })
        ).filter(
          (other) =>
            other.host !== null &&
            (other.createdAt < instance.createdAt ||
              (other.createdAt === instance.createdAt && other.uuid < instance.uuid)),
        )
      : [];
    if (group.policy === 'anti-affinity') {
      const max = group.rules?.max_server_per_host ?? 1;
      if (earlier.filter((other) => other.host === this.host).length >= max) {
        throw new Error('Anti-affinity instance group policy was violated.');
      }
    } else if (earlier.some((other) => other.host !== this.host)) {
      throw new Error('Affinity instance group policy was violated.');
    }
  }

  private async markLost(instance: InstanceEntity, message: string): Promise<void> {
    this.log.warn({ instance: instance.uuid }, message);
    await this.records.addFault(instance.uuid, { code: 500, message, host: this.host });
    await this.records.update(instance.uuid, {
      vmState: VmState.ERROR,
      taskState: null,
      powerState: PowerState.NOSTATE,
    });
  }

  private async cleanUpFailedBuild(
    instance: InstanceEntity,
    request: BuildAndRunInstanceRequest,
    error: unknown,
  ): Promise<void> {
    try {
      await this.releasePorts(instance);
      await this.driverFor(instance).destroy(instance, []);
    } catch (cleanup) {
      this.log.warn({ err: cleanup, instance: instance.uuid }, 'cleanup after a failed build failed');
    }
    await release(this.dataSource, instance.uuid);
    const handedBack = await this.records.update(
      instance.uuid,
      { host: null, node: null, taskState: TaskState.SCHEDULING, powerState: PowerState.NOSTATE },
      { vmState: [VmState.BUILDING], taskState: [TaskState.SPAWNING], host: this.host },
    );
    if (!handedBack) return;
    await this.rpc.buildInstances({
      instanceUuids: [instance.uuid],
      requestId: request.requestId,
      attempt: request.attempt + 1,
      excludedHosts: [...request.excludedHosts, this.host],
      lastFault: errorMessage(error),
      adminPassword: request.adminPassword,
    });
  }

  /** Nova's reverts_task_state + wrap_instance_fault: the task ends, a fault is recorded, the event fails. */
  private async fail(
    instance: InstanceEntity,
    eventId: string,
    error: unknown,
    vmState?: VmState,
  ): Promise<void> {
    this.log.warn({ err: error, instance: instance.uuid }, 'instance operation failed');
    await this.records.addFault(instance.uuid, { code: 500, message: errorMessage(error), host: this.host });
    await this.records.finishEvent(eventId, error);
    const state = await this.currentPowerState(instance);
    await this.records.update(instance.uuid, {
      taskState: null,
      powerState: state,
      ...(vmState ? { vmState } : {}),
    });
  }

  /** An evacuation to this host (a rebuild the conductor handed over) is `done` or `failed`. */
  private async endEvacuation(instanceUuid: string, status: 'done' | 'failed'): Promise<void> {
    await this.dataSource
      .getRepository(MigrationEntity)
      .update(
        { instanceUuid, migrationType: 'evacuation', status: 'accepted', destCompute: this.host },
        { status, updatedAt: nowIso() },
      );
  }

  /**
   * Nova's _destroy_evacuated_instances: at start, the guests of instances evacuated from this host while it
   * was down (their evacuation `accepted` or `done`) are destroyed here, their host plumbing with them but
   * not their ports, which their new host holds; the evacuation becomes `completed`. Returns their uuids.
   */
  private async destroyEvacuated(guests: ReadonlySet<string>): Promise<Set<string>> {
    const evacuations = await this.dataSource.getRepository(MigrationEntity).findBy({
      migrationType: 'evacuation',
      sourceCompute: this.host,
      status: In(['accepted', 'done']),
    });
    const destroyed = new Set<string>();
    for (const evacuation of evacuations) {
      const instance = await this.records.get(evacuation.instanceUuid);
      if (guests.has(evacuation.instanceUuid) && instance && instance.host !== this.host) {
        try {
          await this.driverFor(instance).destroy(instance, []);
        } catch (error) {
          this.log.warn({ err: error, instance: instance.uuid }, 'could not destroy an evacuated guest');
          continue;
        }
        destroyed.add(instance.uuid);
        this.log.info(
          { instance: instance.uuid, host: instance.host },
          'destroyed the guest of an evacuated instance',
        );
      }
      await setMigrationStatus(this.dataSource, evacuation.uuid, 'completed');
    }
    return destroyed;
  }

  private mine(instance: InstanceEntity | null): instance is InstanceEntity {
    return !!instance && !instance.deletedAt && instance.host === this.host;
  }

  /** The flavor's driver; `fake` stands in for one this host does not offer (as the DriverFilter lets it). */
  private driverFor(instance: InstanceEntity): ComputeDriver {
    const wanted = instance.flavor.extra_specs?.[DRIVER_EXTRA_SPEC];
    if (!wanted) return this.options.drivers[0];
    const driver =
      this.options.drivers.find((candidate) => candidate.name === wanted) ??
      this.options.drivers.find((candidate) => candidate.name === 'fake');
    if (!driver) throw new Error(`Host ${this.host} does not offer the ${wanted} driver.`);
    return driver;
  }

  /** The guest's power state for the record after a failure; NOSTATE when even that cannot be read. */
  private async currentPowerState(instance: InstanceEntity): Promise<PowerState> {
    try {
      return await this.powerStateOf(this.driverFor(instance), instance.uuid);
    } catch (error) {
      this.log.warn({ err: error, instance: instance.uuid }, 'could not read the power state');
      return PowerState.NOSTATE;
    }
  }

  /**
   * Runs a driver operation with the instance's ports (bound to this host) for a driver that plugs them
   * (the fake one does not); once it succeeded the ports are ACTIVE, as Neutron's L2 agent reports them.
   */
  private async withPorts(
    driver: ComputeDriver,
    instance: InstanceEntity,
    work: (networkInfo: NetworkInfo) => Promise<void>,
  ): Promise<void> {
    const network = driver.name === 'fake' ? undefined : this.options.network;
    const vifs = network ? await network.vifsFor(instance) : [];
    await work(vifs);
    if (vifs.length)
      await this.reportPorts(
        vifs.map((vif) => vif.id),
        true,
      );
  }

  /** Unplugs the instance's ports from this host and unbinds them (DOWN), before its guest goes. */
  private async releasePorts(instance: InstanceEntity): Promise<void> {
    const network = this.options.network;
    const wanted = instance.flavor.extra_specs?.[DRIVER_EXTRA_SPEC];
    const driver =
      this.options.drivers.find((candidate) => candidate.name === wanted) ?? this.options.drivers[0];
    if (!network || driver.name === 'fake') return;
    const portIds = await network.release(instance.uuid);
    if (portIds.length) await this.reportPorts(portIds, false);
  }

  private async reportPorts(portIds: string[], up: boolean): Promise<void> {
    try {
      await this.bus.call(
        NETWORK_PLUGIN_QUEUE,
        up ? PluginMethod.DEVICE_UP : PluginMethod.DEVICE_DOWN,
        { portIds, host: this.host },
        10_000,
      );
    } catch (error) {
      this.log.warn({ err: error, ports: portIds, up }, 'could not report the ports to the network service');
    }
  }

  private async hasGuest(driver: ComputeDriver, uuid: string): Promise<boolean> {
    try {
      await driver.getInfo({ uuid });
      return true;
    } catch (error) {
      if (error instanceof InstanceNotFound) return false;
      throw error;
    }
  }

  private async powerStateOf(driver: ComputeDriver, uuid: string): Promise<PowerState> {
    try {
      return (await driver.getInfo({ uuid })).state;
    } catch (error) {
      if (error instanceof InstanceNotFound) return PowerState.NOSTATE;
      throw error;
    }
  }

  private flavorSpec(flavor: InstanceFlavor): FlavorSpec {
    return flavorSpecOf(flavor);
  }

  private instanceSpec(instance: InstanceEntity): InstanceSpec {
    return instanceSpecOf(instance);
  }

  /**
   * The image as the instance recorded it (or `imageId`, a snapshot of it); its bits come from the image
   * service, downloaded only when the driver asks (a cache miss). Without a download an image is empty.
   */
  private imageFor(instance: InstanceEntity, imageId: string = instance.imageRef): ImageSource {
    const meta = instance.systemMetadata;
    const download = this.options.imageUpload?.download;
    return {
      id: imageId,
      diskFormat: meta.image_disk_format ?? 'raw',
      containerFormat: meta.image_container_format ?? 'bare',
      minDiskGb: Number(meta.image_min_disk ?? 0),
      minRamMb: Number(meta.image_min_ram ?? 0),
      properties: meta,
      open: async () => (download ? download(imageId) : Readable.from([])),
    };
  }

  /**
   * The host as its first driver sees it (the drivers share one host's CPUs, memory and disk), with the guests
   * running on every driver: Nova's `running_vms` counts all the instances of the node, so a server that a
   * host offering `container,fake` runs on the fake driver counts too. Its hypervisor type names each driver's
   * (`runc,QEMU`), so that `openstack hypervisor list` and Horizon's Hypervisors panel show what the host runs.
   */
  private async hostResources(): Promise<HostResources> {
    const [first, ...others] = await Promise.all(
      this.options.drivers.map((driver) => driver.hostResources()),
    );
    return {
      ...first,
      hypervisorType: combinedHypervisorType([first, ...others].map((each) => each.hypervisorType)),
      runningVms: others.reduce((sum, more) => sum + more.runningVms, first.runningVms),
    };
  }

  private async registerNode(): Promise<void> {
    const resources = await this.hostResources();
    const repository = this.dataSource.getRepository(ComputeNodeEntity);
    const ratios = this.options.allocationRatios ?? DEFAULT_RATIOS;
    const now = nowIso();
    const fields = {
      host: this.host,
      hypervisorType: resources.hypervisorType,
      hypervisorVersion: resources.hypervisorVersion,
      hostIp: '127.0.0.1',
      vcpus: resources.vcpus,
      memoryMb: resources.memoryMb,
      localGb: resources.localGb,
      runningVms: resources.runningVms,
      cpuAllocationRatio: ratios.cpu,
      ramAllocationRatio: ratios.ram,
      diskAllocationRatio: ratios.disk,
      drivers: this.options.drivers.map((driver) => driver.name),
      cpuInfo: { ...resources.cpuInfo },
      updatedAt: now,
    };
    const existing = await repository.findOneBy({ hypervisorHostname: resources.hypervisorHostname });
    if (existing) {
      await repository.update({ uuid: existing.uuid }, fields);
      this.nodeUuid = existing.uuid;
      return;
    }
    const uuid = randomUUID();
    try {
      await repository.insert({
        ...fields,
        uuid,
        hypervisorHostname: resources.hypervisorHostname,
        vcpusUsed: 0,
        memoryMbUsed: 0,
        localGbUsed: 0,
        failedBuilds: 0,
        createdAt: now,
      });
      this.nodeUuid = uuid;
    } catch (error) {
      const raced = await repository.findOneBy({ hypervisorHostname: resources.hypervisorHostname });
      if (!raced) throw error;
      this.nodeUuid = raced.uuid;
    }
  }

  /** The periodic resource report: hypervisor totals and running guests (the used counters follow claims). */
  /**
   * The node's resources as the driver has them, saved when they changed since the last report (Nova's
   * resource tracker compares before it saves): 1,000 hosts would otherwise write 100 rows a second to
   * say nothing new.
   */
  private async reportResources(): Promise<void> {
    if (!this.nodeUuid) return;
    const { vcpus, memoryMb, localGb, runningVms } = await this.hostResources();
    const report = JSON.stringify([this.nodeUuid, vcpus, memoryMb, localGb, runningVms]);
    if (report === this.reported) return;
    await this.dataSource
      .getRepository(ComputeNodeEntity)
      .update({ uuid: this.nodeUuid }, { vcpus, memoryMb, localGb, runningVms, updatedAt: nowIso() });
    this.reported = report;
  }

  /** Nova's failed_builds stat: grows with each failed build, back to 0 after a success. */
  private async countBuild(succeeded: boolean): Promise<void> {
    if (!this.nodeUuid) return;
    await this.dataSource
      .createQueryBuilder()
      .update(ComputeNodeEntity)
      .set({ failedBuilds: succeeded ? 0 : () => 'failed_builds + 1' })
      .where('uuid = :uuid', { uuid: this.nodeUuid })
      .execute();
  }

  private syncPowerStatesOnce(): void {
    if (this.syncing) return;
    this.syncing = this.syncPowerStates()
      .catch((error) => this.log.warn({ err: error }, 'power state sync failed'))
      .finally(() => (this.syncing = undefined));
  }

  /** One operation at a time per instance, as Nova's instance lock. */
  private exclusive<T>(uuid: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(uuid) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.locks.set(uuid, settled);
    void settled.then(() => {
      if (this.locks.get(uuid) === settled) this.locks.delete(uuid);
    });
    return next;
  }
}

/**
 * What a caller of a `call` sees of a driver error, as the API will show it: a guest gone (deleted while
 * the call ran) is 404, a state or a driver that does not allow the operation is 409, as Nova answers.
 */
function asApiError(error: unknown): unknown {
  if (error instanceof InstanceNotFound) return new NotFoundError(error.message);
  if (error instanceof InstanceInvalidState || error instanceof NotSupportedByDriver) {
    return new ConflictError(error.message);
  }
  return error;
}

/** An active instance whose guest is off or crashed: the power-state sync stops it. */
function isOff(instance: InstanceEntity, state: PowerState): boolean {
  return (
    instance.vmState === VmState.ACTIVE && (state === PowerState.SHUTDOWN || state === PowerState.CRASHED)
  );
}

/** A stopped instance whose guest runs: the power-state sync powers the guest off. */
function runsStopped(instance: InstanceEntity, state: PowerState): boolean {
  return instance.vmState === VmState.STOPPED && state === PowerState.RUNNING;
}

/** Whether the power-state sync has anything to do for an instance whose guest is in this state. */
function powerSyncNeeded(instance: InstanceEntity, state: PowerState): boolean {
  return isOff(instance, state) || runsStopped(instance, state) || state !== instance.powerState;
}
