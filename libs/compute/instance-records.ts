import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager, In, IsNull } from 'typeorm';
import {
  InstanceActionEntity,
  InstanceActionEventEntity,
  InstanceEntity,
  InstanceFaultEntity,
  InstanceFlavor,
  InstanceTagEntity,
  inTransaction,
  nowIso,
  SchedulerHints,
} from '@novum/db';
import { PowerState, TaskState, VmState } from '@novum/virt';

/** What must hold for a conditional write to apply (Nova's `expected_task_state` / `expected_vm_state`). */
export interface Expected {
  taskState?: readonly (string | null)[];
  vmState?: readonly string[];
  host?: string | null;
}

export type InstanceChanges = Partial<
  Pick<
    InstanceEntity,
    | 'vmState'
    | 'taskState'
    | 'powerState'
    | 'host'
    | 'node'
    | 'launchedAt'
    | 'terminatedAt'
    | 'deletedAt'
    | 'flavor'
    | 'availabilityZone'
    | 'networkInfo'
    | 'imageRef'
    | 'displayName'
    | 'hostname'
    | 'metadata'
    | 'systemMetadata'
    | 'locked'
    | 'lockedReason'
    | 'accessIpV4'
    | 'accessIpV6'
    | 'description'
    | 'autoDiskConfig'
    | 'keyName'
    | 'keyData'
    | 'userData'
  >
>;

/** What the compute API knows of a server to create (one row per instance of a multi-create). */
export interface NewInstance {
  displayName: string;
  hostname?: string;
  projectId: string;
  userId: string;
  flavor: InstanceFlavor;
  imageRef: string;
  availabilityZone?: string | null;
  keyName?: string | null;
  keyData?: string | null;
  userData?: string | null;
  metadata?: Record<string, string>;
  systemMetadata?: Record<string, string>;
  schedulerHints?: SchedulerHints;
  configDrive?: boolean;
  description?: string | null;
  accessIpV4?: string | null;
  accessIpV6?: string | null;
  securityGroups?: string[];
  autoDiskConfig?: boolean;
  tags?: string[];
}

/** Nova's instance fault codes: 500 unless the error carries its own. */
export interface FaultInfo {
  code?: number;
  message: string;
  host?: string | null;
}

/** Nova turns a server name into a host name (sanitize_hostname): lower case, [a-z0-9-], at most 63. */
export function sanitizeHostname(name: string): string {
  const cleaned = name
    .toLowerCase()
    .replace(/[ _]/g, '-')
    .replace(/[^a-z0-9.-]/g, '')
    .replace(/^[.-]+|[.-]+$/g, '')
    .slice(0, 63)
    .replace(/[.-]+$/g, '');
  return cleaned || 'server';
}

/**
 * The instance rows and their history (actions, events, faults), shared by the compute API, the conductor
 * and the compute agent. Every state change goes through `update`, which applies only if the row still is
 * in the expected state, so two writers never silently overwrite each other.
 */
export class InstanceRecords {
  constructor(private readonly dataSource: DataSource) {}

  get(uuid: string): Promise<InstanceEntity | null> {
    return this.dataSource.getRepository(InstanceEntity).findOneBy({ uuid });
  }

  /** Instances on a host that are not deleted. */
  onHost(host: string): Promise<InstanceEntity[]> {
    return this.dataSource.getRepository(InstanceEntity).find({
      where: { host, deletedAt: IsNull() },
      order: { createdAt: 'ASC' },
    });
  }

  /** The hosts the given instances are on (for same_host / different_host hints). */
  async hostsOf(uuids: readonly string[]): Promise<string[]> {
    if (!uuids.length) return [];
    const rows = await this.dataSource
      .getRepository(InstanceEntity)
      .find({ where: { uuid: In([...uuids]), deletedAt: IsNull() }, select: { host: true } });
    return [...new Set(rows.map((row) => row.host).filter((host): host is string => !!host))];
  }

  /** How many of the given instances each host has (server group placement). */
  async hostCounts(uuids: readonly string[]): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    if (!uuids.length) return counts;
    const rows = await this.dataSource
      .getRepository(InstanceEntity)
      .find({ where: { uuid: In([...uuids]), deletedAt: IsNull() }, select: { host: true } });
    for (const { host } of rows) if (host) counts.set(host, (counts.get(host) ?? 0) + 1);
    return counts;
  }

  /**
   * Applies `changes` if the row is in the `expected` state; false when it was not (or is gone). With a
   * `fault`, the fault is recorded in the same transaction and only if the change applied, so no reader
   * sees the new state (ERROR, or the task ended) without the fault that explains it.
   */
  async update(
    uuid: string,
    changes: InstanceChanges,
    expected: Expected = {},
    fault?: FaultInfo,
  ): Promise<boolean> {
    if (!fault) return this.apply(this.dataSource.manager, uuid, changes, expected);
    return inTransaction(this.dataSource, async (manager) => {
      const applied = await this.apply(manager, uuid, changes, expected);
      if (applied) await this.insertFault(manager, uuid, fault);
      return applied;
    });
  }

  private async apply(
    manager: EntityManager,
    uuid: string,
    changes: InstanceChanges,
    expected: Expected,
  ): Promise<boolean> {
    const query = manager
      .createQueryBuilder()
      .update(InstanceEntity)
      .set({ ...changes, updatedAt: nowIso(), version: () => 'version + 1' })
      .where('uuid = :uuid', { uuid });
    if (expected.vmState) query.andWhere('vm_state IN (:...vmStates)', { vmStates: expected.vmState });
    if (expected.taskState) {
      const states = expected.taskState.filter((s): s is string => s !== null);
      const orNull = expected.taskState.includes(null);
      if (states.length && orNull) {
        query.andWhere('(task_state IN (:...taskStates) OR task_state IS NULL)', { taskStates: states });
      } else if (states.length) {
        query.andWhere('task_state IN (:...taskStates)', { taskStates: states });
      } else {
        query.andWhere('task_state IS NULL');
      }
    }
    if (expected.host !== undefined) {
      if (expected.host === null) query.andWhere('host IS NULL');
      else query.andWhere('host = :host', { host: expected.host });
    }
    const result = await query.execute();
    return (result.affected ?? 0) > 0;
  }

  async addFault(instanceUuid: string, fault: FaultInfo): Promise<void> {
    await this.insertFault(this.dataSource.manager, instanceUuid, fault);
  }

  private async insertFault(manager: EntityManager, instanceUuid: string, fault: FaultInfo): Promise<void> {
    await manager.getRepository(InstanceFaultEntity).insert({
      id: randomUUID(),
      instanceUuid,
      code: fault.code ?? 500,
      message: fault.message.slice(0, 255),
      details: '',
      host: fault.host ?? null,
      createdAt: nowIso(),
    });
  }

  /** The server's `fault`: the newest one. */
  latestFault(instanceUuid: string): Promise<InstanceFaultEntity | null> {
    return this.dataSource
      .getRepository(InstanceFaultEntity)
      .findOne({ where: { instanceUuid }, order: { createdAt: 'DESC' } });
  }

  async actions(instanceUuid: string): Promise<InstanceActionEntity[]> {
    return this.dataSource
      .getRepository(InstanceActionEntity)
      .find({ where: { instanceUuid }, order: { startTime: 'ASC' } });
  }

  async events(actionId: string): Promise<InstanceActionEventEntity[]> {
    return this.dataSource
      .getRepository(InstanceActionEventEntity)
      .find({ where: { actionId }, order: { startTime: 'ASC' } });
  }

  /** Records the start of a user request on an instance; a second record of the same request is a no-op. */
  async startAction(
    instanceUuid: string,
    action: string,
    requestId: string,
    who: { userId?: string | null; projectId?: string | null } = {},
  ): Promise<InstanceActionEntity> {
    const repository = this.dataSource.getRepository(InstanceActionEntity);
    const existing = await repository.findOneBy({ instanceUuid, requestId });
    if (existing) return existing;
    const now = nowIso();
    const row: InstanceActionEntity = {
      id: randomUUID(),
      instanceUuid,
      action,
      requestId,
      userId: who.userId ?? null,
      projectId: who.projectId ?? null,
      startTime: now,
      finishTime: null,
      message: null,
      updatedAt: now,
    };
    try {
      await repository.insert(row);
      return row;
    } catch (error) {
      // The unique (instance, request) key: a concurrent writer recorded it first.
      const raced = await repository.findOneBy({ instanceUuid, requestId });
      if (raced) return raced;
      throw error;
    }
  }

  /** Nova's EventReporter: an event of the request's action, started now, on `host`. */
  async startEvent(
    instanceUuid: string,
    requestId: string,
    event: string,
    host: string,
    action = event,
  ): Promise<string> {
    const parent = await this.startAction(instanceUuid, action, requestId);
    const id = randomUUID();
    await this.dataSource.getRepository(InstanceActionEventEntity).insert({
      id,
      actionId: parent.id,
      event,
      startTime: nowIso(),
      finishTime: null,
      result: null,
      traceback: null,
      host,
      details: null,
    });
    return id;
  }

  /** Ends an event with Success, or Error and the failure's message (never a traceback). */
  async finishEvent(eventId: string, error?: unknown): Promise<void> {
    const now = nowIso();
    const events = this.dataSource.getRepository(InstanceActionEventEntity);
    await events.update(
      { id: eventId },
      {
        finishTime: now,
        result: error === undefined ? 'Success' : 'Error',
        details: error === undefined ? null : errorMessage(error),
      },
    );
    const event = await events.findOneBy({ id: eventId });
    if (!event) return;
    await this.dataSource
      .getRepository(InstanceActionEntity)
      .update(
        { id: event.actionId },
        error === undefined
          ? { finishTime: now, updatedAt: now }
          : { finishTime: now, updatedAt: now, message: 'Error' },
      );
  }

  /**
   * What the compute API does on `POST /servers` before it casts `build_instances`: one row per instance
   * (vm_state building, task_state scheduling, one reservation id) and a `create` action of the request.
   */
  async createInstances(
    spec: NewInstance,
    options: { count?: number; requestId: string; reservationId?: string },
  ): Promise<InstanceEntity[]> {
    const count = options.count ?? 1;
    const reservationId = options.reservationId ?? `r-${randomUUID().replace(/-/g, '').slice(0, 8)}`;
    const now = nowIso();
    const rows: InstanceEntity[] = Array.from({ length: count }, (_, launchIndex) => {
      const displayName = count > 1 ? `${spec.displayName}-${launchIndex + 1}` : spec.displayName;
      return {
        uuid: randomUUID(),
        displayName,
        hostname: spec.hostname ?? sanitizeHostname(displayName),
        projectId: spec.projectId,
        userId: spec.userId,
        host: null,
        node: null,
        availabilityZone: spec.availabilityZone ?? null,
        vmState: VmState.BUILDING,
        taskState: TaskState.SCHEDULING,
        powerState: PowerState.NOSTATE,
        flavor: spec.flavor,
        imageRef: spec.imageRef,
        keyName: spec.keyName ?? null,
        keyData: spec.keyData ?? null,
        userData: spec.userData ?? null,
        metadata: spec.metadata ?? {},
        systemMetadata: spec.systemMetadata ?? {},
        schedulerHints: spec.schedulerHints ?? {},
        configDrive: spec.configDrive ?? false,
        locked: false,
        lockedReason: null,
        accessIpV4: spec.accessIpV4 ?? null,
        accessIpV6: spec.accessIpV6 ?? null,
        description: spec.description ?? null,
        reservationId,
        launchIndex,
        launchedAt: null,
        terminatedAt: null,
        createdAt: now,
        updatedAt: now,
        deletedAt: null,
        version: 1,
        networkInfo: [],
        securityGroups: spec.securityGroups ?? [],
        autoDiskConfig: spec.autoDiskConfig ?? false,
      };
    });
    await inTransaction(this.dataSource, async (manager) => {
      await manager.insert(InstanceEntity, rows);
      const tags = [...new Set(spec.tags ?? [])];
      if (tags.length) {
        await manager.insert(
          InstanceTagEntity,
          rows.flatMap((row) => tags.map((tag) => ({ instanceUuid: row.uuid, tag }))),
        );
      }
      await manager.insert(
        InstanceActionEntity,
        rows.map((row) => ({
          id: randomUUID(),
          instanceUuid: row.uuid,
          action: 'create',
          requestId: options.requestId,
          userId: spec.userId,
          projectId: spec.projectId,
          startTime: now,
          finishTime: null,
          message: null,
          updatedAt: now,
        })),
      );
    });
    return rows;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
