import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { BusConsumer, BusTimeoutError, EventListener, MessageBus, RemoteError, RpcMethod } from '@novum/bus';
import { ApiError, ConflictError, NotFoundError, rootLogger, ServiceUnavailableError } from '@novum/common';
import {
  HeatServiceEntity,
  HeatSnapshotEntity,
  HeatStackEntity,
  HeatStackLockEntity,
  nowIso,
} from '@novum/db';
import { BoundTemplate, JsonMap } from '@novum/hot';
import { DataSource, Repository } from 'typeorm';
import { Engine, StackEnvironment } from './engine';
import { StackAction } from './resources/types';
import { StackStore } from './stack.store';

/** The engines' work queue (Heat's `engine` topic): each stack action is taken by one engine. */
export const ENGINE_QUEUE = 'heat-engine';
/** Heard by every engine: what only the engine running a stack can do (a cancel). */
export const ENGINE_TOPIC = 'heat-engine';
export const START_STACK_ACTION = 'start_stack_action';
export const CANCEL_STACK_ACTION = 'cancel_stack_action';

/** Seconds between an engine's reports (Heat's periodic service report); 3 missed and it is dead. */
export const ENGINE_REPORT_INTERVAL_S = 5;
const MISSED_REPORTS = 3;

/** What the API asks of an engine for a stack it has already set IN_PROGRESS. */
export type EngineOperation =
  | { op: 'create' }
  | {
      op: 'update';
      template: JsonMap;
      env: StackEnvironment;
      files: Record<string, string>;
      action: 'UPDATE' | 'RESTORE';
    }
  | { op: 'snapshot'; snapshotId: string }
  | { op: 'delete'; token: string; abandon: boolean }
  | { op: 'adopt'; resources: JsonMap; token: string }
  | { op: 'act'; action: StackAction };

export interface StartStackAction {
  stackId: string;
  operation: EngineOperation;
}

export interface CancelStackAction {
  stackId: string;
  rollback: boolean;
}

/**
 * What the stack API needs of the engine: the actions it hands over (run by an engine, here or elsewhere)
 * and the pure work it does itself (initial rows, abandon data, snapshot data, restore input). `Engine` is
 * one (unit tests, in one process); `EngineClient` hands the actions to the engines over the bus.
 */
export abstract class StackEngine {
  abstract initialRows(stack: HeatStackEntity, bound: BoundTemplate): Promise<void>;
  abstract abandonData(stack: HeatStackEntity): Promise<JsonMap>;
  abstract deleteSnapshotData(stack: HeatStackEntity, snapshot: HeatSnapshotEntity): Promise<void>;
  abstract restoreInput(
    stack: HeatStackEntity,
    snapshot: HeatSnapshotEntity,
  ): { template: JsonMap; env: StackEnvironment; files: Record<string, string> };
  /** True while an engine runs an action on the stack. */
  abstract busy(stackId: string): boolean | Promise<boolean>;
  abstract create(stack: HeatStackEntity): void | Promise<void>;
  abstract update(
    stack: HeatStackEntity,
    template: JsonMap,
    env: StackEnvironment,
    files: Record<string, string>,
    action?: 'UPDATE' | 'RESTORE',
  ): void | Promise<void>;
  abstract snapshot(stack: HeatStackEntity, snapshot: HeatSnapshotEntity): void | Promise<void>;
  abstract delete(stack: HeatStackEntity, token: string, abandon?: boolean): void | Promise<void>;
  abstract adopt(stack: HeatStackEntity, resources: JsonMap, token: string): void | Promise<void>;
  abstract act(stack: HeatStackEntity, action: StackAction): void | Promise<void>;
  abstract cancel(stackId: string, rollback: boolean): Promise<void>;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The engines and their stack locks in the database (Heat's `service` and `stack_lock`). An engine is alive
 * while it reports; one on this machine whose process is gone is dead at once (a killed engine restarted
 * here need not wait for its reports to age).
 */
export class EngineRegistry {
  readonly services: Repository<HeatServiceEntity>;
  readonly locks: Repository<HeatStackLockEntity>;

  constructor(dataSource: DataSource) {
    this.services = dataSource.getRepository(HeatServiceEntity);
    this.locks = dataSource.getRepository(HeatStackLockEntity);
  }

  isAlive(service: HeatServiceEntity | null, now = Date.now()): boolean {
    if (!service) return false;
    if (now - Date.parse(service.updatedAt) > MISSED_REPORTS * service.reportInterval * 1000) return false;
    return service.hostname !== hostname() || pidAlive(service.pid);
  }

  async alive(engineId: string): Promise<boolean> {
    return this.isAlive(await this.services.findOneBy({ id: engineId }));
  }

  async busy(stackId: string): Promise<boolean> {
    const lock = await this.locks.findOneBy({ stackId });
    return !!lock && (await this.alive(lock.engineId));
  }

  /**
   * Heat's StackLock.acquire: the stack's lock for `engineId`, taken over from a dead engine; false while a
   * live engine (another, or this one's record of an action it still runs) holds it.
   */
  async acquire(stackId: string, engineId: string): Promise<boolean> {
    await this.locks
      .createQueryBuilder()
      .insert()
      .values({ stackId, engineId, createdAt: nowIso() })
      .orIgnore()
      .execute();
    const lock = await this.locks.findOneBy({ stackId });
    if (!lock) return false;
    if (lock.engineId === engineId) return true;
    if (await this.alive(lock.engineId)) return false;
    const stolen = await this.locks.update(
      { stackId, engineId: lock.engineId },
      { engineId, createdAt: nowIso() },
    );
    return (stolen.affected ?? 0) > 0;
  }

  async release(stackId: string, engineId: string): Promise<void> {
    await this.locks.delete({ stackId, engineId });
  }
}

/**
 * The API's side of the engines: each action goes to the engine queue as a call, answered once an engine
 * holds the stack's lock and has started it (409 ActionInProgress when a live engine already runs one), so
 * the API answers only for work an engine has taken. No engine answering within the time fails the stack
 * (503); a cancel is heard by every engine, and the one running the stack acts on it.
 */
@Injectable()
export class EngineClient extends StackEngine {
  constructor(
    private readonly bus: MessageBus,
    private readonly local: Engine,
    private readonly store: StackStore,
    private readonly registry: EngineRegistry,
  ) {
    super();
  }

  initialRows(stack: HeatStackEntity, bound: BoundTemplate): Promise<void> {
    return this.local.initialRows(stack, bound);
  }

  abandonData(stack: HeatStackEntity): Promise<JsonMap> {
    return this.local.abandonData(stack);
  }

  deleteSnapshotData(stack: HeatStackEntity, snapshot: HeatSnapshotEntity): Promise<void> {
    return this.local.deleteSnapshotData(stack, snapshot);
  }

  restoreInput(stack: HeatStackEntity, snapshot: HeatSnapshotEntity) {
    return this.local.restoreInput(stack, snapshot);
  }

  busy(stackId: string): Promise<boolean> {
    return this.registry.busy(stackId);
  }

  create(stack: HeatStackEntity): Promise<void> {
    return this.start(stack, { op: 'create' });
  }

  update(
    stack: HeatStackEntity,
    template: JsonMap,
    env: StackEnvironment,
    files: Record<string, string>,
    action: 'UPDATE' | 'RESTORE' = 'UPDATE',
  ): Promise<void> {
    return this.start(stack, { op: 'update', template, env, files, action });
  }

  snapshot(stack: HeatStackEntity, snapshot: HeatSnapshotEntity): Promise<void> {
    return this.start(stack, { op: 'snapshot', snapshotId: snapshot.id });
  }

  delete(stack: HeatStackEntity, token: string, abandon = false): Promise<void> {
    return this.start(stack, { op: 'delete', token, abandon });
  }

  adopt(stack: HeatStackEntity, resources: JsonMap, token: string): Promise<void> {
    return this.start(stack, { op: 'adopt', resources, token });
  }

  act(stack: HeatStackEntity, action: StackAction): Promise<void> {
    return this.start(stack, { op: 'act', action });
  }

  async cancel(stackId: string, rollback: boolean): Promise<void> {
    await this.bus.publish(ENGINE_TOPIC, CANCEL_STACK_ACTION, {
      stackId,
      rollback,
    } satisfies CancelStackAction);
  }

  private async start(stack: HeatStackEntity, operation: EngineOperation): Promise<void> {
    try {
      await this.bus.call<void>(
        ENGINE_QUEUE,
        START_STACK_ACTION,
        { stackId: stack.id, operation } satisfies StartStackAction,
        30_000,
      );
    } catch (error) {
      if (error instanceof RemoteError && (error.status === 409 || error.status === 404)) {
        throw new ApiError(
          error.status,
          error.message,
          error.status === 409 ? 'ActionInProgress' : 'EntityNotFound',
        );
      }
      if (error instanceof BusTimeoutError) {
        await this.store.setStackState(
          stack,
          stack.action,
          'FAILED',
          'No orchestration engine took the stack action in time',
        );
        throw new ServiceUnavailableError('No orchestration engine is available; try again later.');
      }
      throw error;
    }
  }
}

/**
 * An orchestration engine (heat-engine): takes stack actions from the engine queue, holding each stack's
 * lock while it runs, reports every ENGINE_REPORT_INTERVAL_S seconds, and fails the stacks that a dead
 * engine held (Heat's reset_stack_status: `Engine went down during stack ACTION`), at start and then at each
 * report, so that a stack never stays IN_PROGRESS for an engine that is gone.
 */
@BusConsumer(ENGINE_QUEUE)
@Injectable()
export class EngineService implements OnModuleInit, OnApplicationShutdown {
  readonly engineId = randomUUID();
  private readonly log = rootLogger().child({ service: 'orchestration', component: 'engine-service' });
  private timer?: NodeJS.Timeout;
  private reporting?: Promise<void>;

  constructor(
    private readonly engine: Engine,
    private readonly store: StackStore,
    private readonly registry: EngineRegistry,
  ) {}

  async onModuleInit(): Promise<void> {
    const now = nowIso();
    await this.registry.services.save(
      Object.assign(new HeatServiceEntity(), {
        id: this.engineId,
        hostname: hostname(),
        pid: process.pid,
        reportInterval: ENGINE_REPORT_INTERVAL_S,
        createdAt: now,
        updatedAt: now,
      }),
    );
    await this.reap();
    this.timer = setInterval(() => {
      this.reporting ??= this.report().finally(() => (this.reporting = undefined));
    }, ENGINE_REPORT_INTERVAL_S * 1000);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.reporting;
    await this.engine.onApplicationShutdown();
    await this.registry.services.delete({ id: this.engineId }).catch(() => undefined);
  }

  /** The report, then the reaping of what dead engines held. */
  async report(): Promise<void> {
    try {
      await this.registry.services.update({ id: this.engineId }, { updatedAt: nowIso() });
      await this.reap();
    } catch (error) {
      this.log.warn({ err: error }, 'engine report failed');
    }
  }

  /** Fails the stacks whose lock a dead engine holds, and forgets dead engines. */
  async reap(): Promise<void> {
    const services = await this.registry.services.find();
    const dead = new Set(
      services.filter((s) => s.id !== this.engineId && !this.registry.isAlive(s)).map((s) => s.id),
    );
    const known = new Set(services.map((s) => s.id));
    const roots = new Set<string>();
    for (const lock of await this.registry.locks.find()) {
      if (lock.engineId === this.engineId) continue;
      if (!dead.has(lock.engineId) && known.has(lock.engineId)) continue;
      // Whoever removes the dead engine's lock fails its stack: one engine, not each that notices.
      const removed = await this.registry.locks.delete({ stackId: lock.stackId, engineId: lock.engineId });
      if ((removed.affected ?? 0) > 0) roots.add(lock.stackId);
    }
    if (roots.size) {
      this.log.warn({ stacks: [...roots] }, 'stacks held by a dead engine marked FAILED');
      await this.engine.failInterrupted(roots);
    }
    if (dead.size) await this.registry.services.delete([...dead]);
  }

  @RpcMethod(START_STACK_ACTION)
  async start(request: StartStackAction): Promise<void> {
    const { stackId, operation } = request;
    const stack = await this.store.stacks.findOneBy({ id: stackId });
    if (!stack) throw new NotFoundError(`The Stack (${stackId}) could not be found.`);
    // The API sets the action IN_PROGRESS before handing it over; anything else is a request that waited too
    // long on the queue (its caller already gave up and failed the stack) or was already done.
    if (stack.status !== 'IN_PROGRESS')
      throw new ConflictError(`Stack ${stack.name} is ${stack.action}_${stack.status}, not in progress.`);
    if (this.engine.busy(stackId) || !(await this.registry.acquire(stackId, this.engineId)))
      throw new ConflictError(`Stack ${stack.name} already has an action (${stack.action}) in progress.`);
    try {
      await this.dispatch(stack, operation);
    } catch (error) {
      await this.registry.release(stackId, this.engineId);
      throw error;
    }
    void this.engine
      .settle(stackId)
      .finally(() => this.registry.release(stackId, this.engineId))
      .catch((error: unknown) => this.log.warn({ err: error, stack: stackId }, 'stack lock not released'));
  }

  @EventListener(ENGINE_TOPIC, CANCEL_STACK_ACTION)
  async cancel(request: CancelStackAction): Promise<void> {
    await this.engine.cancel(request.stackId, request.rollback);
  }

  private async dispatch(stack: HeatStackEntity, operation: EngineOperation): Promise<void> {
    switch (operation.op) {
      case 'create':
        return this.engine.create(stack);
      case 'update':
        return this.engine.update(
          stack,
          operation.template,
          operation.env,
          operation.files,
          operation.action,
        );
      case 'snapshot': {
        const snapshot = await this.store.snapshots.findOneBy({ id: operation.snapshotId });
        if (!snapshot) throw new NotFoundError(`Snapshot with id ${operation.snapshotId} not found`);
        return this.engine.snapshot(stack, snapshot);
      }
      case 'delete':
        return this.engine.delete(stack, operation.token, operation.abandon);
      case 'adopt':
        return this.engine.adopt(stack, operation.resources, operation.token);
      case 'act':
        return this.engine.act(stack, operation.action);
    }
  }
}
