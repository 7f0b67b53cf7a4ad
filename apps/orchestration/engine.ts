import { randomUUID } from 'node:crypto';
import { Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { rootLogger } from '@novum/common';
import { HeatResourceEntity, HeatStackEntity, nowIso } from '@novum/db';
import { BoundTemplate, deepEqual, HotError, HotTemplate, isMap, Json, JsonMap } from '@novum/hot';
import { CloudError, IdentityClient } from './cloud';
import { resourceType } from './resources/registry';
import {
  ActionContext,
  changedProperties,
  ResourceState,
  ResourceType,
  validateLiteralProperties,
  validateProperties,
} from './resources/types';
import { StackStore } from './stack.store';

export class TimeoutError extends Error {}

/** Heat's 12-character suffix of physical names, from the resource row's id. */
function physicalSuffix(id: string): string {
  return id.replace(/-/g, '').slice(0, 12);
}

/** The environment a stack keeps: parameters, parameter_defaults and type aliases (resource_registry). */
export interface StackEnvironment {
  parameters: Record<string, Json>;
  parameter_defaults: Record<string, Json>;
  resource_registry: Record<string, Json>;
}

export function environmentOf(stack: Pick<HeatStackEntity, 'environment'>): StackEnvironment {
  const env = stack.environment as Partial<StackEnvironment>;
  return {
    parameters: env.parameters ?? {},
    parameter_defaults: env.parameter_defaults ?? {},
    resource_registry: env.resource_registry ?? {},
  };
}

/** The resource type a template type name stands for, following the environment's aliases. */
export function typeFor(env: StackEnvironment, name: string): ResourceType | undefined {
  let current = name;
  for (let hops = 0; hops < 5; hops++) {
    const alias = env.resource_registry[current];
    if (typeof alias !== 'string') break;
    current = alias;
  }
  return resourceType(current);
}

function stateOf(row: HeatResourceEntity): ResourceState {
  return {
    name: row.name,
    physicalId: row.physicalId,
    properties: row.properties as JsonMap,
    data: row.data as JsonMap,
  };
}

/** Binds a stack's template to its parameters and to the live resources of `rows` (by name). */
export function bindStack(
  stack: HeatStackEntity,
  rows: Map<string, HeatResourceEntity>,
  template: JsonMap = stack.template as JsonMap,
  env: StackEnvironment = environmentOf(stack),
): BoundTemplate {
  return HotTemplate.parse(template).bind({
    stack: { name: stack.name, id: stack.id, projectId: stack.projectId },
    params: env.parameters,
    parameterDefaults: env.parameter_defaults,
    files: stack.files,
    resource: (name) => {
      const row = rows.get(name);
      if (!row || row.physicalId === null) return undefined;
      const type = resourceType(row.type) ?? typeFor(env, row.type);
      if (!type) return undefined;
      const state = stateOf(row);
      return {
        ref: type.reference?.(state) ?? row.physicalId,
        attribute: (attr) => type.attribute(state, attr),
        allAttributes: () =>
          Object.fromEntries(Object.keys(type.attributes).map((attr) => [attr, type.attribute(state, attr)])),
      };
    },
    checkAttribute: (_name, typeName, attribute) => {
      const type = typeFor(env, typeName);
      if (type && attribute !== 'show' && !(attribute in type.attributes)) throw new Error(attribute);
    },
  });
}

/** Checks what can be checked before any resource exists: types, known properties, required ones. */
export function validateStack(bound: BoundTemplate, env: StackEnvironment): void {
  bound.validate();
  for (const snippet of bound.resources()) {
    const type = typeFor(env, snippet.type);
    const path = ['resources', snippet.name];
    if (!type) throw new HotError(`The Resource Type (${snippet.type}) could not be found.`, path);
    if (type.anyProperties) continue;
    const raw = isMap(snippet.properties) ? snippet.properties : {};
    for (const key of Object.keys(raw)) {
      if (!(key in type.properties))
        throw new HotError(`Unknown Property ${key}`, [...path, 'properties'], 'Property error');
    }
    validateLiteralProperties(type, raw, [...path, 'properties']);
    for (const [key, schema] of Object.entries(type.properties)) {
      if (schema.required && schema.default === undefined && (raw[key] === undefined || raw[key] === null)) {
        throw new HotError(`Property ${key} not assigned`, [...path, 'properties'], 'Property error');
      }
    }
  }
}

export type ChangeKind = 'added' | 'deleted' | 'replaced' | 'unchanged' | 'updated';

/**
 * What an update would do to each resource, without doing it (the update's own rules: no change, in
 * place when every changed property is updatable, replacement otherwise).
 */
export function planUpdate(
  stack: HeatStackEntity,
  rows: Map<string, HeatResourceEntity>,
  template: JsonMap,
  env: StackEnvironment,
): { name: string; type: string; change: ChangeKind }[] {
  const bound = bindStack(stack, rows, template, env);
  validateStack(bound, env);
  const plan: { name: string; type: string; change: ChangeKind }[] = [];
  for (const snippet of bound.resources()) {
    const existing = rows.get(snippet.name);
    const type = typeFor(env, snippet.type) as ResourceType;
    if (!existing) {
      plan.push({ name: snippet.name, type: snippet.type, change: 'added' });
      continue;
    }
    const properties = validateProperties(type, bound.properties(snippet.name), [
      'resources',
      snippet.name,
      'properties',
    ]);
    const before = existing.properties as JsonMap;
    let change: ChangeKind;
    if (existing.type !== snippet.type || existing.status === 'FAILED') change = 'replaced';
    else if (deepEqual(before, properties)) change = 'unchanged';
    else {
      const inPlace =
        type.update &&
        changedProperties(before, properties).every((key) => type.properties[key]?.updateAllowed) &&
        !type.needsReplacement?.(before, properties);
      change = inPlace ? 'updated' : 'replaced';
    }
    plan.push({ name: snippet.name, type: snippet.type, change });
  }
  for (const row of rows.values()) {
    if (!bound.resource(row.name)) plan.push({ name: row.name, type: row.type, change: 'deleted' });
  }
  return plan;
}

/** The message a failed resource action leaves in its status reason, Heat-style (`Type: path: message`). */
function failureReason(error: unknown, resourceName: string): string {
  if (error instanceof HotError) return `StackValidationFailed: ${error.message}`;
  if (error instanceof CloudError) {
    const kind =
      error.status === 404
        ? 'NotFound'
        : error.status === 409
          ? 'Conflict'
          : error.status === 400
            ? 'BadRequest'
            : 'ResourceInError';
    return `${kind}: resources.${resourceName}: ${error.message}`;
  }
  if (error instanceof TimeoutError) return error.message;
  return `Error: resources.${resourceName}: ${(error as Error).message}`;
}

/**
 * Runs stack actions (Heat's engine): resources in dependency order, independent ones in parallel, a
 * deadline from timeout_mins, rollback of a failed create unless disabled, updates by diff, deletes in
 * reverse order. All state is in the database; an engine that stops mid-action leaves the stack FAILED
 * at its next start, with its resources still tracked.
 */
@Injectable()
export class Engine implements OnModuleInit, OnApplicationShutdown {
  private readonly log = rootLogger().child({ service: 'orchestration', component: 'engine' });
  private readonly running = new Map<string, Promise<void>>();
  private stopping = false;

  constructor(
    private readonly store: StackStore,
    private readonly identity: IdentityClient,
  ) {}

  async onModuleInit(): Promise<void> {
    const interrupted = await this.store.stacks.findBy({ status: 'IN_PROGRESS' });
    for (const stack of interrupted) {
      const resources = await this.store.resources.findBy({ stackId: stack.id, status: 'IN_PROGRESS' });
      for (const row of resources) {
        await this.store.setResourceState(
          row,
          row.action,
          'FAILED',
          `Engine went down during resource ${row.action}`,
        );
      }
      await this.store.setStackState(
        stack,
        stack.action,
        'FAILED',
        `Engine went down during stack ${stack.action}`,
      );
      this.log.warn({ stack: stack.id }, 'stack left in progress by a stopped engine marked FAILED');
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([...this.running.values()]);
  }

  /** True while an action runs on the stack in this engine. */
  busy(stackId: string): boolean {
    return this.running.has(stackId);
  }

  /** Waits for the stack's running action (tests, shutdown). */
  async settle(stackId: string): Promise<void> {
    await this.running.get(stackId);
  }

  create(stack: HeatStackEntity): void {
    this.start(stack.id, () => this.runCreate(stack));
  }

  update(
    stack: HeatStackEntity,
    template: JsonMap,
    env: StackEnvironment,
    files: Record<string, string>,
  ): void {
    this.start(stack.id, () => this.runUpdate(stack, template, env, files));
  }

  delete(stack: HeatStackEntity, onDeleted: () => Promise<void>): void {
    this.start(stack.id, () => this.runDelete(stack, onDeleted));
  }

  private start(stackId: string, run: () => Promise<void>): void {
    const task = run()
      .catch((error) => this.log.error({ err: error, stack: stackId }, 'stack action failed unexpectedly'))
      .finally(() => this.running.delete(stackId));
    this.running.set(stackId, task);
  }

  private context(stack: HeatStackEntity, row: HeatResourceEntity, deadline: number): ActionContext {
    return {
      cloud: () => this.identity.session(stack.id, this.identity.credentials.open(stack.credential)),
      stackName: stack.name,
      stackId: stack.id,
      // Stable for the resource's life, so an in-place update keeps a defaulted name.
      physicalName: `${stack.name}-${row.name}-${physicalSuffix(row.id)}`.slice(0, 255),
      sleep: async (ms) => {
        if (this.stopping) throw new Error('The engine is shutting down.');
        if (Date.now() + ms > deadline) {
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())));
          throw new TimeoutError('Operation timed out.');
        }
        await new Promise((resolve) => setTimeout(resolve, ms));
      },
    };
  }

  private deadline(stack: HeatStackEntity): number {
    return Date.now() + (stack.timeoutMins ?? 60) * 60_000;
  }

  /**
   * Runs `act` on every name once all the names it waits for are done; stops starting new work after the
   * first failure (or the deadline) and reports it when the running work has ended.
   */
  private async schedule(
    names: string[],
    waitsFor: (name: string) => string[],
    act: (name: string) => Promise<void>,
    deadline: number,
  ): Promise<unknown> {
    const pending = new Set(names);
    const done = new Set<string>();
    const running = new Map<string, Promise<void>>();
    let failure: unknown;
    while (pending.size || running.size) {
      if (failure === undefined && Date.now() > deadline) failure = new TimeoutError('Operation timed out.');
      if (failure === undefined) {
        for (const name of [...pending]) {
          if (waitsFor(name).every((dep) => done.has(dep) || !names.includes(dep))) {
            pending.delete(name);
            running.set(
              name,
              act(name).then(
                () => {
                  done.add(name);
                  running.delete(name);
                },
                (error) => {
                  failure ??= error;
                  running.delete(name);
                },
              ),
            );
          }
        }
      }
      if (!running.size) break;
      await Promise.race(running.values());
    }
    return failure;
  }

  private async rowsOf(stackId: string): Promise<Map<string, HeatResourceEntity>> {
    const rows = await this.store.resources.findBy({ stackId });
    return new Map(rows.map((row) => [row.name, row]));
  }

  private async createResource(
    stack: HeatStackEntity,
    bound: BoundTemplate,
    env: StackEnvironment,
    row: HeatResourceEntity,
    deadline: number,
  ): Promise<void> {
    const type = typeFor(env, row.type) as ResourceType;
    await this.store.setResourceState(row, 'CREATE', 'IN_PROGRESS', 'state changed');
    try {
      const properties = validateProperties(type, bound.properties(row.name), [
        'resources',
        row.name,
        'properties',
      ]);
      row.properties = properties;
      const result = await type.create(this.context(stack, row, deadline), properties);
      await this.store.setResourceState(row, 'CREATE', 'COMPLETE', 'state changed', {
        physicalId: result.physicalId,
        data: result.data,
        metadata: bound.metadata(row.name),
      });
    } catch (error) {
      const physicalId = (error as { physicalId?: string }).physicalId;
      if (physicalId) row.physicalId = physicalId;
      await this.store.setResourceState(row, 'CREATE', 'FAILED', failureReason(error, row.name));
      throw new Error(failureReason(error, row.name));
    }
  }

  private async deleteResource(
    stack: HeatStackEntity,
    env: StackEnvironment,
    row: HeatResourceEntity,
    deadline: number,
  ): Promise<void> {
    const type = typeFor(env, row.type) ?? resourceType(row.type);
    const snippet = (stack.template as JsonMap).resources as JsonMap | undefined;
    const retain =
      isMap(snippet?.[row.name]) &&
      /^retain$/i.test(String((snippet[row.name] as JsonMap).deletion_policy ?? ''));
    if (
      row.action === 'INIT' ||
      (row.physicalId === null && row.action === 'CREATE' && row.status !== 'FAILED')
    ) {
      await this.store.resources.delete({ id: row.id });
      return;
    }
    await this.store.setResourceState(row, 'DELETE', 'IN_PROGRESS', 'state changed');
    try {
      if (type && !retain) await type.delete(this.context(stack, row, deadline), stateOf(row));
      await this.store.setResourceState(row, 'DELETE', 'COMPLETE', 'state changed');
      await this.store.resources.delete({ id: row.id });
    } catch (error) {
      await this.store.setResourceState(row, 'DELETE', 'FAILED', failureReason(error, row.name));
      throw new Error(failureReason(error, row.name));
    }
  }

  /** Deletes the given resources, dependents before what they depend on. */
  private async deleteAll(
    stack: HeatStackEntity,
    env: StackEnvironment,
    rows: HeatResourceEntity[],
    graphTemplate: JsonMap,
    deadline: number,
  ): Promise<unknown> {
    let dependents: (name: string) => string[] = () => [];
    try {
      const graph = bindStack(stack, new Map(), graphTemplate, env).graph();
      dependents = (name) => graph.dependents(name);
    } catch {
      // A template that no longer binds (parameters changed): delete in any order.
    }
    const byName = new Map(rows.map((row) => [row.name, row]));
    return this.schedule(
      [...byName.keys()],
      dependents,
      (name) => this.deleteResource(stack, env, byName.get(name) as HeatResourceEntity, deadline),
      deadline,
    );
  }

  private async runCreate(stack: HeatStackEntity): Promise<void> {
    const deadline = this.deadline(stack);
    const env = environmentOf(stack);
    const rows = await this.rowsOf(stack.id);
    let failure: unknown;
    try {
      const bound = bindStack(stack, rows);
      const graph = bound.graph();
      failure = await this.schedule(
        graph.names,
        (name) => graph.requirements(name),
        (name) => this.createResource(stack, bound, env, rows.get(name) as HeatResourceEntity, deadline),
        deadline,
      );
    } catch (error) {
      failure = error;
    }
    if (failure === undefined) {
      await this.store.setStackState(stack, 'CREATE', 'COMPLETE', 'Stack CREATE completed successfully');
      return;
    }
    const reason =
      failure instanceof TimeoutError
        ? 'Create timed out'
        : `Resource CREATE failed: ${(failure as Error).message}`;
    await this.store.setStackState(stack, 'CREATE', 'FAILED', reason);
    if (stack.disableRollback) return;
    await this.store.setStackState(stack, 'ROLLBACK', 'IN_PROGRESS', 'Stack ROLLBACK started');
    const rollbackFailure = await this.deleteAll(
      stack,
      env,
      [...(await this.rowsOf(stack.id)).values()],
      stack.template as JsonMap,
      Date.now() + 10 * 60_000,
    );
    if (rollbackFailure) {
      await this.store.setStackState(
        stack,
        'ROLLBACK',
        'FAILED',
        `Resource DELETE failed: ${(rollbackFailure as Error).message}`,
      );
    } else {
      await this.store.setStackState(stack, 'ROLLBACK', 'COMPLETE', 'Rollback completed');
    }
  }

  private async runUpdate(
    stack: HeatStackEntity,
    template: JsonMap,
    env: StackEnvironment,
    files: Record<string, string>,
  ): Promise<void> {
    const deadline = this.deadline(stack);
    const oldTemplate = stack.template as JsonMap;
    const oldEnv = environmentOf(stack);
    const rows = await this.rowsOf(stack.id);
    const replaced: HeatResourceEntity[] = [];
    let failure: unknown;
    try {
      stack.template = template;
      stack.environment = env as unknown as Record<string, unknown>;
      stack.files = files;
      await this.store.stacks.save(stack);
      const bound = bindStack(stack, rows, template, env);
      const graph = bound.graph();
      failure = await this.schedule(
        graph.names,
        (name) => graph.requirements(name),
        async (name) => {
          const snippet = bound.resource(name);
          if (!snippet) return;
          const existing = rows.get(name);
          if (!existing || (existing.status === 'FAILED' && existing.physicalId === null)) {
            const row = existing ?? this.newRow(stack.id, name, snippet.type);
            rows.set(name, row);
            await this.createResource(stack, bound, env, row, deadline);
            return;
          }
          const type = typeFor(env, snippet.type) as ResourceType;
          const properties = validateProperties(type, bound.properties(name), [
            'resources',
            name,
            'properties',
          ]);
          const before = existing.properties as JsonMap;
          if (existing.type === snippet.type && existing.status !== 'FAILED' && deepEqual(before, properties))
            return;
          const changed = changedProperties(before, properties);
          const inPlace =
            existing.type === snippet.type &&
            existing.status !== 'FAILED' &&
            type.update &&
            changed.every((key) => type.properties[key]?.updateAllowed) &&
            !type.needsReplacement?.(before, properties);
          if (inPlace) {
            await this.store.setResourceState(existing, 'UPDATE', 'IN_PROGRESS', 'state changed');
            try {
              const result = await (type.update as NonNullable<ResourceType['update']>)(
                this.context(stack, existing, deadline),
                stateOf(existing),
                properties,
              );
              await this.store.setResourceState(existing, 'UPDATE', 'COMPLETE', 'state changed', {
                properties,
                physicalId: result.physicalId,
                data: result.data,
                metadata: bound.metadata(name),
              });
            } catch (error) {
              await this.store.setResourceState(existing, 'UPDATE', 'FAILED', failureReason(error, name));
              throw new Error(failureReason(error, name));
            }
            return;
          }
          // Replacement: the new resource first, the old one deleted once the update is done (as Heat).
          const row = this.newRow(stack.id, name, snippet.type);
          replaced.push(existing);
          rows.set(name, row);
          await this.createResource(stack, bound, env, row, deadline);
        },
        deadline,
      );
      if (failure === undefined) {
        const removed = [...rows.values()].filter((row) => !bound.resource(row.name));
        const cleanup = [...removed, ...replaced];
        failure = cleanup.length
          ? await this.deleteAll(stack, oldEnv, cleanup, oldTemplate, deadline)
          : undefined;
      }
    } catch (error) {
      failure = error;
    }
    if (failure === undefined) {
      await this.store.setStackState(stack, 'UPDATE', 'COMPLETE', 'Stack UPDATE completed successfully');
    } else {
      const reason =
        failure instanceof TimeoutError
          ? 'Update timed out'
          : `Resource UPDATE failed: ${(failure as Error).message}`;
      await this.store.setStackState(stack, 'UPDATE', 'FAILED', reason);
    }
  }

  private newRow(stackId: string, name: string, type: string): HeatResourceEntity {
    return Object.assign(new HeatResourceEntity(), {
      id: randomUUID(),
      stackId,
      name,
      type,
      physicalId: null,
      action: 'INIT',
      status: 'COMPLETE',
      statusReason: '',
      properties: {},
      data: {},
      metadata: {},
      createdAt: nowIso(),
      updatedAt: null,
    });
  }

  /** The INIT rows a new stack's resources start as (so `resource list` shows them at once). */
  async initialRows(stack: HeatStackEntity, bound: BoundTemplate): Promise<void> {
    const rows = bound.resources().map((snippet) => this.newRow(stack.id, snippet.name, snippet.type));
    if (rows.length) await this.store.resources.save(rows);
  }

  private async runDelete(stack: HeatStackEntity, onDeleted: () => Promise<void>): Promise<void> {
    const deadline = this.deadline(stack);
    const rows = await this.store.resources.findBy({ stackId: stack.id });
    const failure = await this.deleteAll(
      stack,
      environmentOf(stack),
      rows,
      stack.template as JsonMap,
      deadline,
    );
    if (failure) {
      await this.store.setStackState(
        stack,
        'DELETE',
        'FAILED',
        `Resource DELETE failed: ${(failure as Error).message}`,
      );
      return;
    }
    await this.store.setStackState(stack, 'DELETE', 'COMPLETE', 'Stack DELETE completed successfully');
    const deletedAt = nowIso();
    stack.deletedAt = deletedAt;
    await this.store.stacks.update({ id: stack.id }, { deletedAt });
    this.identity.dropSession(stack.id);
    await onDeleted();
  }

  /** Stacks whose ids are in `ids` that have an action running here. */
  runningAmong(ids: string[]): string[] {
    return ids.filter((id) => this.running.has(id));
  }
}
