import {
  Inject,
  Injectable,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  OnModuleDestroy,
} from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { DataSource, In, IsNull } from 'typeorm';
import { MessageBus } from '@novum/bus';
import { ConflictError, NotFoundError, rootLogger } from '@novum/common';
import {
  Binary,
  BuildAndRunInstanceRequest,
  checkRequest,
  ComputeMethod,
  computeQueue,
  ComputeRpcClient,
  ConsoleOutputRequest,
  DRIVER_EXTRA_SPEC,
  errorMessage,
  InstanceRecords,
  InstanceRequest,
  RebootInstanceRequest,
  recomputeUsage,
  release,
  ServiceHeartbeat,
} from '@novum/compute';
import {
  ComputeNodeEntity,
  InstanceEntity,
  nowIso,
  ServerGroupEntity,
  ServerGroupMemberEntity,
} from '@novum/db';
import {
  ComputeDriver,
  ImageSource,
  InstanceNotFound,
  InstanceInvalidState,
  InstanceSpec,
  NotSupportedByDriver,
  PowerState,
  TaskState,
  VmState,
} from '@novum/virt';

export const AGENT_OPTIONS = Symbol('AGENT_OPTIONS');

export interface AgentOptions {
  host: string;
  /** The first is the default for flavors without `novum:driver`. */
  drivers: ComputeDriver[];
  reportIntervalSeconds: number;
  powerSyncIntervalSeconds: number;
  /** Nova's initial allocation ratios by default: 16 vCPUs per core, 1.5 x RAM, 1.0 x disk. */
  allocationRatios?: { cpu: number; ram: number; disk: number };
}

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
  run(driver: ComputeDriver, spec: InstanceSpec): Promise<void>;
  vmState: VmState;
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
    run: (d, s) => d.powerOn(s, []),
    vmState: VmState.ACTIVE,
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
    run: (d, s) => d.resume(s, []),
    vmState: VmState.ACTIVE,
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
    await this.registerNode();
    await recomputeUsage(this.dataSource, this.nodeUuid!);
    await this.reconcile();
    await this.heartbeat.start();
    await this.bus.serve(computeQueue(this.host), {
      [ComputeMethod.BUILD_AND_RUN_INSTANCE]: (p) =>
        this.buildAndRunInstance(checkRequest.buildAndRunInstance(p)),
      [ComputeMethod.TERMINATE_INSTANCE]: (p) =>
        this.terminateInstance(checkRequest.instance(p, ComputeMethod.TERMINATE_INSTANCE)),
      [ComputeMethod.REBOOT_INSTANCE]: (p) => this.rebootInstance(checkRequest.reboot(p)),
      [ComputeMethod.GET_CONSOLE_OUTPUT]: (p) => this.getConsoleOutput(checkRequest.consoleOutput(p)),
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
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.syncTimer);
    await this.heartbeat.stop();
    await this.syncing;
  }

  async onApplicationShutdown(): Promise<void> {
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
          await driver.spawn(spec, this.imageFor(instance), [], { adminPassword: request.adminPassword });
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
        for (const driver of this.options.drivers) await driver.destroy(instance, [], { destroyDisks: true });
        await release(this.dataSource, instance.uuid);
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
        await driver.reboot(this.instanceSpec(instance), request.rebootType, []);
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
        await step.run(driver, this.instanceSpec(instance));
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
    const lines = output.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines
      .slice(Math.max(0, lines.length - request.length))
      .map((line) => `${line}\n`)
      .join('');
  }

  /**
   * Nova's _sync_power_states: records each idle instance's power state as the driver reports it, stops in
   * the database an ACTIVE instance whose guest shut down or crashed, and powers off the guest of a STOPPED
   * one that runs. Instances with a task in progress are left to their task.
   */
  async syncPowerStates(): Promise<void> {
    for (const instance of await this.records.onHost(this.host)) {
      if (instance.taskState !== null || instance.vmState === VmState.BUILDING) continue;
      await this.exclusive(instance.uuid, async () => {
        const current = await this.records.get(instance.uuid);
        if (!this.mine(current) || current.taskState !== null) return;
        const driver = this.driverFor(current);
        const state = await this.powerStateOf(driver, current.uuid);
        const idle = { taskState: [null], vmState: [current.vmState] };
        if (
          current.vmState === VmState.ACTIVE &&
          (state === PowerState.SHUTDOWN || state === PowerState.CRASHED)
        ) {
          this.log.info({ instance: current.uuid, state }, 'guest is off; the instance is now stopped');
          await this.records.update(current.uuid, { vmState: VmState.STOPPED, powerState: state }, idle);
        } else if (current.vmState === VmState.STOPPED && state === PowerState.RUNNING) {
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
      if (present) {
        const state = await this.powerStateOf(this.driverFor(instance), instance.uuid);
        if (state !== instance.powerState) await this.records.update(instance.uuid, { powerState: state });
      } else if (GUEST_EXPECTED.includes(instance.vmState)) {
        await this.markLost(instance, `Instance ${instance.uuid} could not be found on host ${this.host}.`);
      } else if (instance.powerState !== PowerState.NOSTATE) {
        await this.records.update(instance.uuid, { powerState: PowerState.NOSTATE });
      }
    }
    const unknown = [...guests].filter((uuid) => !known.has(uuid));
    if (unknown.length) {
      this.log.warn({ guests: unknown }, 'the hypervisor runs guests the database does not know; left alone');
    }
    this.log.info({ instances: instances.length, guests: guests.size }, 'reconciled with the drivers');
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
    await this.records.update(instance.uuid, {
      vmState: VmState.ERROR,
      taskState: null,
      powerState: PowerState.NOSTATE,
    });
    await this.records.addFault(instance.uuid, { code: 500, message, host: this.host });
  }

  private async cleanUpFailedBuild(
    instance: InstanceEntity,
    request: BuildAndRunInstanceRequest,
    error: unknown,
  ): Promise<void> {
    try {
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
    await this.records.finishEvent(eventId, error);
    const state = await this.currentPowerState(instance);
    await this.records.update(instance.uuid, {
      taskState: null,
      powerState: state,
      ...(vmState ? { vmState } : {}),
    });
    await this.records.addFault(instance.uuid, { code: 500, message: errorMessage(error), host: this.host });
  }

  private mine(instance: InstanceEntity | null): instance is InstanceEntity {
    return !!instance && !instance.deletedAt && instance.host === this.host;
  }

  private driverFor(instance: InstanceEntity): ComputeDriver {
    const wanted = instance.flavor.extra_specs?.[DRIVER_EXTRA_SPEC];
    if (!wanted) return this.options.drivers[0];
    const driver = this.options.drivers.find((candidate) => candidate.name === wanted);
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

  private instanceSpec(instance: InstanceEntity): InstanceSpec {
    const { flavor } = instance;
    return {
      uuid: instance.uuid,
      name: `instance-${instance.uuid.slice(0, 8)}`,
      hostname: instance.hostname,
      projectId: instance.projectId,
      userId: instance.userId,
      flavor: {
        vcpus: flavor.vcpus,
        memoryMb: flavor.memory_mb,
        rootGb: flavor.root_gb,
        ephemeralGb: flavor.ephemeral_gb,
        swapMb: flavor.swap,
        extraSpecs: flavor.extra_specs ?? {},
      },
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

  /** The image as the instance recorded it; fetching its bits from the image service comes with real drivers. */
  private imageFor(instance: InstanceEntity): ImageSource {
    const meta = instance.systemMetadata;
    return {
      id: instance.imageRef,
      diskFormat: meta.image_disk_format ?? 'raw',
      containerFormat: meta.image_container_format ?? 'bare',
      minDiskGb: Number(meta.image_min_disk ?? 0),
      minRamMb: Number(meta.image_min_ram ?? 0),
      properties: meta,
      open: async () => Readable.from([]),
    };
  }

  private async registerNode(): Promise<void> {
    const resources = await this.options.drivers[0].hostResources();
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
  private async reportResources(): Promise<void> {
    if (!this.nodeUuid) return;
    const resources = await this.options.drivers[0].hostResources();
    await this.dataSource.getRepository(ComputeNodeEntity).update(
      { uuid: this.nodeUuid },
      {
        vcpus: resources.vcpus,
        memoryMb: resources.memoryMb,
        localGb: resources.localGb,
        runningVms: resources.runningVms,
        updatedAt: nowIso(),
      },
    );
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
