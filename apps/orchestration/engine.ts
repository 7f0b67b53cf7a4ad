import { randomUUID } from 'node:crypto';
import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { rootLogger } from '@novum/common';
import { HeatResourceEntity, HeatSnapshotEntity, HeatStackEntity, nowIso } from '@novum/db';
import {
  BoundTemplate,
  deepEqual,
  DependencyGraph,
  HotError,
  HotTemplate,
  isMap,
  Json,
  JsonMap,
} from '@novum/hot';
import { IsNull } from 'typeorm';
import { CloudError, IdentityClient } from './cloud';
import { isTemplateName, templateResource } from './resources/nested';
import { resourceType } from './resources/registry';
import {
  ActionContext,
  ActionResult,
  changedProperties,
  NestedStackResult,
  NestedStacks,
  NestedStackSpec,
  ResourceActionError,
  ResourceState,
  ResourceType,
  StackAction,
  TemplateResource,
  validateLiteralProperties,
  validateProperties,
  validateUpdatePolicy,
} from './resources/types';
import { StackStore } from './stack.store';
import type { StackEngine } from './engine-rpc';

export class TimeoutError extends Error {}

/** Heat's ForcedCancel: the running create or update was cancelled (cancel_update, cancel_without_rollback). */
export class ForcedCancel extends Error {
  constructor(readonly withRollback: boolean) {
    super('Operation cancelled');
  }
}

/** Heat's error_wait_time: how long resources already being acted on may go on after a cancel. */
export const CANCEL_GRACE_MS = 240_000;

/** Heat's ExceptionGroup of a check: every resource failure, in the message Python's str of a list gives. */
class FailureGroup extends Error {
  constructor(readonly failures: unknown[]) {
    super(`[${failures.map((failure) => pythonRepr((failure as Error).message)).join(', ')}]`);
  }
}

/** Python's repr of a string (the quotes Heat's messages show when it prints a list of them). */
function pythonRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  const escaped = text
    .replace(/\\/g, '\\\\')
    .replace(/\n/g, '\\n')
    .replace(/\t/g, '\\t')
    .replace(/\r/g, '\\r');
  return quote + (quote === "'" ? escaped.replace(/'/g, "\\'") : escaped) + quote;
}

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

/** Heat's max_nested_stack_depth: how deep nested stacks may go below a top-level stack. */
export const MAX_NESTED_DEPTH = 5;

/** Where the resource_registry maps a type name: an exact entry, else a `Prefix::*` wildcard entry. */
function registryTarget(registry: Record<string, Json>, name: string): string | undefined {
  const exact = registry[name];
  if (typeof exact === 'string') return exact;
  for (const [key, target] of Object.entries(registry)) {
    if (key.endsWith('*') && typeof target === 'string' && name.startsWith(key.slice(0, -1))) {
      return target.endsWith('*') ? target.slice(0, -1) + name.slice(key.length - 1) : target;
    }
  }
  return undefined;
}

/**
 * The resource type a template type name stands for: the environment's resource_registry followed
 * (aliases, wildcards), then a built-in type or a template file from `files` (a template resource).
 */
export function typeFor(
  env: StackEnvironment,
  name: string,
  files: Record<string, string> = {},
): ResourceType | undefined {
  let current = name;
  let registryKey: string | undefined;
  for (let hops = 0; hops < 5; hops++) {
    const target = registryTarget(env.resource_registry, current);
    if (target === undefined || target === current) break;
    registryKey = current;
    current = target;
  }
  const builtin = resourceType(current);
  if (builtin) return builtin;
  const text = isTemplateName(current) ? files[current] : undefined;
  if (text === undefined) return undefined;
  return templateResource(name, text, registryKey, env.parameter_defaults);
}

/** The type a resource row was made with, as its stack's environment and files resolve it now. */
function rowType(
  env: StackEnvironment,
  type: string,
  files: Record<string, string>,
): ResourceType | undefined {
  try {
    return typeFor(env, type, files) ?? resourceType(type);
  } catch {
    return resourceType(type);
  }
}

/** Heat's path of a resource in messages: `resources.name`, or `resources[0]` for a group member. */
function resourcePath(name: string): string {
  return /^\d+$/.test(name) ? `resources[${name}]` : `resources.${name}`;
}

/** A nested stack that ended FAILED: its status reason, and the stack (the resource's physical id). */
export class NestedStackFailure extends Error {
  constructor(
    readonly reason: string,
    readonly physicalId: string,
  ) {
    super(reason);
  }
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
  files: Record<string, string> = stack.files,
): BoundTemplate {
  return HotTemplate.parse(template).bind({
    stack: { name: stack.name, id: stack.id, projectId: stack.projectId },
    params: env.parameters,
    parameterDefaults: env.parameter_defaults,
    files,
    resource: (name) => {
      const row = rows.get(name);
      if (!row || row.physicalId === null) return undefined;
      const type = rowType(env, row.type, files);
      if (!type) return undefined;
      const state = stateOf(row);
      const attributeAt = type.attributeAt;
      return {
        ref: type.reference?.(state) ?? row.physicalId,
        attribute: (attr) => type.attribute(state, attr),
        ...(attributeAt
          ? { attributeAt: (attr: string, path: Json[]) => attributeAt(state, attr, path) }
          : {}),
        allAttributes: () =>
          Object.fromEntries(Object.keys(type.attributes).map((attr) => [attr, type.attribute(state, attr)])),
      };
    },
    checkAttribute: (_name, typeName, attribute) => {
      const type = typeFor(env, typeName, files);
      if (type && !type.anyAttributes && attribute !== 'show' && !(attribute in type.attributes))
        throw new Error(attribute);
    },
  });
}

/** The resource's evaluated update_policy checked against its type's schema; undefined for types without one. */
function updatePolicyOf(type: ResourceType, bound: BoundTemplate, name: string): JsonMap | undefined {
  if (!type.updatePolicy) return undefined;
  return validateUpdatePolicy(type.updatePolicy, bound.updatePolicy(name), [
    'resources',
    name,
    'update_policy',
  ]);
}

/** The message of a type name that resolves to nothing: a missing template file, or an unknown type. */
function unknownType(env: StackEnvironment, name: string, path: (string | number)[]): HotError {
  const target = registryTarget(env.resource_registry, name) ?? name;
  if (isTemplateName(target))
    return new HotError(`Could not fetch remote template "${target}": Invalid URL scheme `, path);
  return new HotError(`The Resource Type (${name}) could not be found.`, path);
}

/** Checks what can be checked before any resource exists: types, known properties, required ones. */
export function validateStack(bound: BoundTemplate, env: StackEnvironment): void {
  bound.validate();
  for (const snippet of bound.resources()) {
    const path = ['resources', snippet.name];
    const type = typeFor(env, snippet.type, bound.files);
    if (!type) throw unknownType(env, snippet.type, path);
    if (type.anyProperties) continue;
    const raw = isMap(snippet.properties) ? snippet.properties : {};
    const member = type.memberType?.(raw);
    if (member !== undefined && !typeFor(env, member, bound.files)) {
      const cause = unknownType(env, member, []);
      throw new HotError(`Failed to validate: ${cause.message}`, [...path, 'properties', 'resource_def']);
    }
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
    const refusal = type.validate?.(raw);
    if (refusal) throw new HotError(refusal, [...path, 'properties']);
    if (type.updatePolicy && isMap(snippet.updatePolicy)) {
      const policyPath = [...path, 'update_policy'];
      for (const key of Object.keys(snippet.updatePolicy)) {
        if (!(key in type.updatePolicy))
          throw new HotError(`Unknown Property ${key}`, policyPath, 'Property error');
      }
      const policyType = { ...type, properties: type.updatePolicy, anyProperties: false };
      validateLiteralProperties(policyType, snippet.updatePolicy, policyPath);
    }
  }
}

/** The template's dependency graph with the edges its resource types add (Heat's add_dependencies). */
export function dependencyGraph(
  bound: BoundTemplate,
  env: StackEnvironment,
  files: Record<string, string> = bound.files,
): DependencyGraph {
  const graph = bound.graph();
  const typed = bound.resources().map((snippet) => {
    let type: ResourceType | undefined;
    try {
      type = typeFor(env, snippet.type, files);
    } catch {
      type = undefined;
    }
    const view: TemplateResource = {
      name: snippet.name,
      type: type?.name ?? snippet.type,
      properties: isMap(snippet.properties) ? snippet.properties : {},
      requires: graph.requirements(snippet.name),
    };
    return { type, view };
  });
  const views = typed.map(({ view }) => view);
  const edges = new Map(graph.names.map((name) => [name, new Set(graph.requirements(name))]));
  let added = false;
  for (const { type, view } of typed) {
    for (const dep of type?.implicitRequirements?.(view, views) ?? []) {
      const deps = edges.get(view.name);
      if (dep === view.name || !deps || deps.has(dep)) continue;
      deps.add(dep);
      added = true;
    }
  }
  return added ? new DependencyGraph(edges) : graph;
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
  files: Record<string, string> = stack.files,
): { name: string; type: string; change: ChangeKind }[] {
  const bound = bindStack(stack, rows, template, env, files);
  validateStack(bound, env);
  const plan: { name: string; type: string; change: ChangeKind }[] = [];
  for (const snippet of bound.resources()) {
    const existing = rows.get(snippet.name);
    const type = typeFor(env, snippet.type, files) as ResourceType;
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
    else if (deepEqual(before, properties) && !type.outdated?.(stateOf(existing))) change = 'unchanged';
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
  if (error instanceof NestedStackFailure) {
    // The child's `Resource CREATE failed: Error: resources.x: message` under this resource's path (Heat's).
    const nested = /^Resource \w+ failed: (\w+): (resources[^:]*): ([\s\S]*)$/.exec(error.reason);
    if (nested) return `${nested[1]}: ${resourcePath(resourceName)}.${nested[2]}: ${nested[3]}`;
    return `Error: ${resourcePath(resourceName)}: ${error.reason}`;
  }
  if (error instanceof CloudError) {
    const kind =
      error.status === 404
        ? 'NotFound'
        : error.status === 409
          ? 'Conflict'
          : error.status === 400
            ? 'BadRequest'
            : 'ResourceInError';
    return `${kind}: ${resourcePath(resourceName)}: ${error.message}`;
  }
  if (error instanceof TimeoutError || error instanceof ForcedCancel) return error.message;
  if (error instanceof ResourceActionError)
    return `${error.kind}: ${resourcePath(resourceName)}: ${error.message}`;
  return `Error: ${resourcePath(resourceName)}: ${(error as Error).message}`;
}

/**
 * Runs stack actions (Heat's engine): resources in dependency order, independent ones in parallel, a
 * deadline from timeout_mins, rollback of a failed create unless disabled, updates by diff, deletes in
 * reverse order. All state is in the database; an engine that stops mid-action leaves the stack FAILED
 * at its next start, with its resources still tracked.
 */
@Injectable()
export class Engine implements OnApplicationShutdown, StackEngine {
  private readonly log = rootLogger().child({ service: 'orchestration', component: 'engine' });
  private readonly running = new Map<string, Promise<void>>();
  /** Cancels asked for the running create or update of a stack: rollback wanted, and since when. */
  private readonly cancels = new Map<string, { rollback: boolean; at: number }>();
  private stopping = false;

  constructor(
    private readonly store: StackStore,
    private readonly identity: IdentityClient,
  ) {}

  /**
   * Fails what a stopped engine left in progress (Heat's reset_stack_status): the stacks, their resources in
   * progress and their snapshots being taken. With `roots`, only the top-level stacks named there and their
   * nested stacks (those a dead engine held); without, every one (a lone engine starting).
   */
  async failInterrupted(roots?: ReadonlySet<string>): Promise<void> {
    const interrupted: HeatStackEntity[] = [];
    for (const stack of await this.store.stacks.findBy({ status: 'IN_PROGRESS' }))
      if (!roots || roots.has(await this.rootOf(stack))) interrupted.push(stack);
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
    // A snapshot being taken or deleted when the engine stopped would otherwise stay IN_PROGRESS for good
    // (and could never be deleted).
    for (const snapshot of await this.store.snapshots.findBy({ status: 'IN_PROGRESS' })) {
      if (roots && !roots.has(snapshot.stackId)) continue;
      Object.assign(snapshot, {
        status: 'FAILED',
        statusReason: `Engine went down during snapshot ${snapshot.action}`,
        updatedAt: nowIso(),
      });
      await this.store.snapshots.save(snapshot);
    }
  }

  /** The id of the top-level stack a (nested) stack belongs to. */
  private async rootOf(stack: HeatStackEntity): Promise<string> {
    let current = stack;
    for (let depth = 0; current.ownerId && depth <= MAX_NESTED_DEPTH; depth++) {
      const owner = await this.store.stacks.findOneBy({ id: current.ownerId });
      if (!owner) break;
      current = owner;
    }
    return current.id;
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

  /** An update of a stack set UPDATE_IN_PROGRESS (or RESTORE_IN_PROGRESS: a snapshot's restore, never rolled back). */
  update(
    stack: HeatStackEntity,
    template: JsonMap,
    env: StackEnvironment,
    files: Record<string, string>,
    action: 'UPDATE' | 'RESTORE' = 'UPDATE',
  ): void {
    this.start(stack.id, () => this.runUpdate(stack, template, env, files, action));
  }

  /**
   * Heat's stack_snapshot (legacy engine) of a stack set SNAPSHOT_IN_PROGRESS: each resource in dependency
   * order takes its snapshot (SNAPSHOT_IN_PROGRESS → SNAPSHOT_COMPLETE; a server's is a Glance image), then the
   * snapshot record gets the stack's abandon data with that status (Heat's save_snapshot) and the stack ends
   * SNAPSHOT_COMPLETE or SNAPSHOT_FAILED.
   */
  snapshot(stack: HeatStackEntity, snapshot: HeatSnapshotEntity): void {
    this.start(stack.id, () => this.runSnapshot(stack, snapshot));
  }

  /**
   * Heat's Stack.delete_snapshot: what the snapshot's resources made (a server's image) is removed, for each
   * resource of the snapshot's template whose type knows how (the types as the stack's environment names them).
   */
  async deleteSnapshotData(stack: HeatStackEntity, snapshot: HeatSnapshotEntity): Promise<void> {
    const data = snapshot.data as JsonMap | null;
    const entries = isMap(data?.resources ?? null) ? (data?.resources as Record<string, Json>) : {};
    const env = environmentOf(stack);
    const deadline = this.deadline(stack);
    for (const [name, entry] of Object.entries(entries)) {
      if (!isMap(entry) || typeof entry.type !== 'string') continue;
      const type = rowType(env, entry.type, stack.files);
      if (type?.deleteSnapshot)
        await type.deleteSnapshot(
          this.context(stack, this.newRow(stack.id, name, entry.type), deadline),
          entry,
        );
    }
  }

  /**
   * Heat's Stack.restore_data: the snapshot's template with each resource's properties as its type restores
   * them (Heat's handle_restore: a server boots from its snapshot's image), with the snapshot's environment
   * and files.
   */
  restoreInput(
    stack: HeatStackEntity,
    snapshot: HeatSnapshotEntity,
  ): { template: JsonMap; env: StackEnvironment; files: Record<string, string> } {
    const data = (snapshot.data ?? {}) as JsonMap;
    const template = JSON.parse(JSON.stringify(data.template ?? {})) as JsonMap;
    const env = environmentOf({
      environment: (isMap(data.environment ?? null) ? data.environment : {}) as JsonMap,
    });
    const files = (isMap(data.files ?? null) ? data.files : {}) as Record<string, string>;
    const entries = isMap(data.resources ?? null) ? (data.resources as JsonMap) : {};
    const resources = isMap(template.resources ?? null) ? (template.resources as JsonMap) : {};
    for (const [name, snippet] of Object.entries(resources)) {
      const entry = entries[name];
      if (!isMap(snippet) || typeof snippet.type !== 'string' || !isMap(entry ?? null)) continue;
      const type = typeFor(env, snippet.type, files);
      if (!type?.restore) continue;
      const properties = isMap(snippet.properties ?? null) ? (snippet.properties as JsonMap) : {};
      snippet.properties = type.restore(properties, entry as JsonMap);
    }
    return { template, env, files };
  }

  /**
   * Deletes the stack; with `abandon` (Heat's abandon), only its records: every physical resource is left.
   * Its credential is then removed with `token`, the user's who asked.
   */
  delete(stack: HeatStackEntity, token: string, abandon = false): void {
    this.start(stack.id, () => this.runDelete(stack, () => this.forgetCredential(stack, token), { abandon }));
  }

  private forgetCredential(stack: HeatStackEntity, token: string): Promise<void> {
    return this.identity.forget(this.identity.credentials.open(stack.credential), token);
  }

  /**
   * Heat's Stack.adopt of a stack set ADOPT_IN_PROGRESS: each resource takes over the physical resource its
   * entry of the abandon data's `resources` names (nothing is created); a failure ends ADOPT_FAILED and, when
   * rollback is enabled, removes the stack as an abandon does (its credential then removed with `token`).
   */
  adopt(stack: HeatStackEntity, resources: JsonMap, token: string): void {
    this.start(stack.id, () => this.runAdopt(stack, resources, () => this.forgetCredential(stack, token)));
  }

  /**
   * Heat's Stack.prepare_abandon: the stack's name, id, state, template, environment, files and tags, and for
   * each resource its physical id, type, state, metadata and data (`resource_data`); a resource with a nested
   * stack gives that stack's own abandon data instead (Heat's StackResource.prepare_abandon), which an adopt
   * hands to the nested stack it makes.
   */
  async abandonData(stack: HeatStackEntity): Promise<JsonMap> {
    const env = environmentOf(stack);
    const children = await this.store.stacks.findBy({ ownerId: stack.id, deletedAt: IsNull() });
    const resources: JsonMap = {};
    for (const row of (await this.rowsOf(stack.id)).values()) {
      if (rowType(env, row.type, stack.files)?.nestedStack) {
        const child = children.find((candidate) => candidate.id === row.physicalId);
        resources[row.name] = child ? await this.abandonData(child) : {};
        continue;
      }
      resources[row.name] = {
        name: row.name,
        resource_id: row.physicalId,
        type: row.type,
        action: row.action,
        status: row.status,
        metadata: row.metadata as JsonMap,
        resource_data: row.data as JsonMap,
      };
    }
    return {
      name: stack.name,
      id: stack.id,
      action: stack.action,
      status: stack.status,
      environment: env as unknown as JsonMap,
      files: stack.files,
      template: stack.template as JsonMap,
      resources,
      project_id: stack.projectId,
      stack_user_project_id: stack.projectId,
      tags: stack.tags.length ? stack.tags : null,
    };
  }

  /** Suspend, resume or check (Heat's stack_suspend, stack_resume, stack_check) of a stack set IN_PROGRESS. */
  act(stack: HeatStackEntity, action: StackAction): void {
    this.start(stack.id, () => this.runAction(stack, action));
  }

  /**
   * Heat's stack_cancel_update (a legacy engine's THREAD_CANCEL message): the running create or update
   * starts no further resource, lets those under way finish (for at most CANCEL_GRACE_MS), then fails with
   * `Operation cancelled` and rolls back when asked or when the stack's rollback is enabled. Its running
   * nested stacks are cancelled without rollback (Heat's StackResource.handle_update_cancel). Nothing to do
   * when no action of this engine runs on the stack.
   */
  async cancel(stackId: string, rollback: boolean): Promise<void> {
    if (!this.running.has(stackId) || this.cancels.has(stackId)) return;
    this.cancels.set(stackId, { rollback, at: Date.now() });
    const children = await this.store.stacks.findBy({ ownerId: stackId, deletedAt: IsNull() });
    for (const child of children) {
      if (child.status === 'IN_PROGRESS' && ['CREATE', 'UPDATE'].includes(child.action))
        await this.cancel(child.id, false);
    }
  }

  /** The cancel of the stack's running action, as the failure it ends with, once asked for. */
  private cancelled(stackId: string): ForcedCancel | undefined {
    const cancel = this.cancels.get(stackId);
    return cancel ? new ForcedCancel(cancel.rollback) : undefined;
  }

  /** Ends a cancel: the failure the action ends with instead of the one it saw (none if nothing was cut short). */
  private takeCancel(stackId: string, failure: unknown): unknown {
    const cancel = this.cancelled(stackId);
    this.cancels.delete(stackId);
    return cancel && failure !== undefined ? cancel : failure;
  }

  private start(stackId: string, run: () => Promise<void>): void {
    const task = run()
      .catch((error) => this.log.error({ err: error, stack: stackId }, 'stack action failed unexpectedly'))
      .finally(() => this.running.delete(stackId));
    this.running.set(stackId, task);
  }

  /**
   * What a resource action may use; `adopt`: the abandon data of the resources its nested stack adopts;
   * `updatePolicy`: the resource's checked update_policy.
   */
  private context(
    stack: HeatStackEntity,
    row: HeatResourceEntity,
    deadline: number,
    adopt?: JsonMap,
    updatePolicy?: JsonMap,
  ): ActionContext {
    // Stable for the resource's life, so an in-place update keeps a defaulted name.
    const physicalName = `${stack.name}-${row.name}-${physicalSuffix(row.id)}`.slice(0, 255);
    return {
      cloud: () => this.identity.session(stack.id, this.identity.credentials.open(stack.credential)),
      stackName: stack.name,
      stackId: stack.id,
      physicalName,
      nested: this.nestedStacks(stack, physicalName, deadline, adopt),
      ...(updatePolicy ? { updatePolicy } : {}),
      softwareConfig: (id) => this.softwareConfig(stack.projectId, id),
      created: async (physicalId, data = {}) => {
        row.physicalId = physicalId;
        row.data = data;
        await this.store.resources.save(row);
      },
      sleep: async (ms) => {
        if (this.stopping) throw new Error('The engine is shutting down.');
        const cancel = this.cancels.get(stack.id);
        if (cancel && Date.now() - cancel.at >= CANCEL_GRACE_MS) throw new ForcedCancel(cancel.rollback);
        if (Date.now() + ms > deadline) {
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())));
          throw new TimeoutError('Operation timed out.');
        }
        await new Promise((resolve) => setTimeout(resolve, ms));
      },
    };
  }

  /** A config resource's content by its id, among the stacks of the project (Heat's software config store). */
  private async softwareConfig(projectId: string, id: string): Promise<string | undefined> {
    for (const row of await this.store.resources.findBy({ physicalId: id })) {
      const config = (row.data as JsonMap).config;
      if (typeof config !== 'string') continue;
      const owner = await this.store.stacks.findOneBy({ id: row.stackId });
      if (owner?.projectId === projectId) return config;
    }
    return undefined;
  }

  private deadline(stack: HeatStackEntity): number {
    return Date.now() + (stack.timeoutMins ?? 60) * 60_000;
  }

  /**
   * Runs `act` on every name once all the names it waits for are done; stops starting new work after the
   * first failure (or the deadline, or what `interrupt` reports) and reports it when the running work has
   * ended. With `aggregate` (Heat's aggregate_exceptions, a check), a failure only stops what waits for the
   * failed name, and every failure is reported together as a FailureGroup.
   */
  private async schedule(
    names: string[],
    waitsFor: (name: string) => string[],
    act: (name: string) => Promise<void>,
    deadline: number,
    options: { interrupt?: () => unknown; aggregate?: boolean } = {},
  ): Promise<unknown> {
    const pending = new Set(names);
    const scheduled = new Set(names);
    const done = new Set<string>();
    const failed = new Set<string>();
    const failures: unknown[] = [];
    const running = new Map<string, Promise<void>>();
    let failure: unknown;
    while (pending.size || running.size) {
      if (failure === undefined && Date.now() > deadline) failure = new TimeoutError('Operation timed out.');
      if (failure === undefined) failure = options.interrupt?.();
      let skipped = false;
      if (failure === undefined) {
        for (const name of [...pending]) {
          const deps = waitsFor(name);
          if (deps.some((dep) => failed.has(dep))) {
            // Heat cancels what comes after a failed resource in the traversal.
            pending.delete(name);
            failed.add(name);
            skipped = true;
          } else if (deps.every((dep) => done.has(dep) || !scheduled.has(dep))) {
            pending.delete(name);
            running.set(
              name,
              act(name).then(
                () => {
                  done.add(name);
                  running.delete(name);
                },
                (error) => {
                  if (options.aggregate) {
                    failed.add(name);
                    failures.push(error);
                  } else failure ??= error;
                  running.delete(name);
                },
              ),
            );
          }
        }
        if (skipped && !running.size && pending.size) continue;
      }
      if (!running.size) break;
      await Promise.race(running.values());
    }
    if (failure === undefined && failures.length) return new FailureGroup(failures);
    return failure;
  }

  /**
   * The current row of each resource name: the newest, as a replacement interrupted by a failure or an engine
   * stop leaves the row it replaces beside it (see supersededRows).
   */
  private async rowsOf(stackId: string): Promise<Map<string, HeatResourceEntity>> {
    const rows = await this.store.resources.find({ where: { stackId }, order: { createdAt: 'ASC' } });
    return new Map(rows.map((row) => [row.name, row]));
  }

  /** The rows that `current` (from rowsOf) supersedes: older rows of the same names, still to be deleted. */
  private async supersededRows(
    stackId: string,
    current: Map<string, HeatResourceEntity>,
  ): Promise<HeatResourceEntity[]> {
    const rows = await this.store.resources.findBy({ stackId });
    return rows.filter((row) => current.get(row.name)?.id !== row.id);
  }

  private async createResource(
    stack: HeatStackEntity,
    bound: BoundTemplate,
    env: StackEnvironment,
    row: HeatResourceEntity,
    deadline: number,
  ): Promise<void> {
    const type = typeFor(env, row.type, stack.files) as ResourceType;
    await this.store.setResourceState(row, 'CREATE', 'IN_PROGRESS', 'state changed');
    try {
      const properties = validateProperties(type, bound.properties(row.name), [
        'resources',
        row.name,
        'properties',
      ]);
      row.properties = properties;
      const result = await type.create(
        this.context(stack, row, deadline, undefined, updatePolicyOf(type, bound, row.name)),
        properties,
      );
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

  private async runSnapshot(stack: HeatStackEntity, snapshot: HeatSnapshotEntity): Promise<void> {
    const deadline = this.deadline(stack);
    const env = environmentOf(stack);
    let failure: unknown;
    try {
      const rows = await this.rowsOf(stack.id);
      const graph = dependencyGraph(bindStack(stack, rows), env);
      failure = await this.schedule(
        graph.names.filter((name) => rows.has(name)),
        (name) => graph.requirements(name),
        (name) => this.snapshotResource(stack, env, rows.get(name) as HeatResourceEntity, deadline),
        deadline,
      );
    } catch (error) {
      failure = error;
    }
    const status = failure === undefined ? 'COMPLETE' : 'FAILED';
    const reason =
      failure === undefined
        ? 'Stack SNAPSHOT completed successfully'
        : failure instanceof TimeoutError
          ? 'Snapshot timed out'
          : `Resource SNAPSHOT failed: ${(failure as Error).message}`;
    const data = await this.abandonData(stack);
    data.status = status;
    Object.assign(snapshot, { data, status, statusReason: reason, updatedAt: nowIso() });
    await this.store.snapshots.save(snapshot);
    await this.store.setStackState(stack, 'SNAPSHOT', status, reason);
  }

  /** Heat's Resource.snapshot: SNAPSHOT_IN_PROGRESS, the type's snapshot if it has one, SNAPSHOT_COMPLETE. */
  private async snapshotResource(
    stack: HeatStackEntity,
    env: StackEnvironment,
    row: HeatResourceEntity,
    deadline: number,
  ): Promise<void> {
    const type = rowType(env, row.type, stack.files);
    await this.store.setResourceState(row, 'SNAPSHOT', 'IN_PROGRESS', 'state changed');
    try {
      const kept = await type?.snapshot?.(this.context(stack, row, deadline), stateOf(row));
      await this.store.setResourceState(
        row,
        'SNAPSHOT',
        'COMPLETE',
        'state changed',
        kept ? { data: { ...(row.data as JsonMap), ...kept } } : {},
      );
    } catch (error) {
      await this.store.setResourceState(row, 'SNAPSHOT', 'FAILED', failureReason(error, row.name));
      throw new Error(failureReason(error, row.name));
    }
  }

  /**
   * Heat's Resource.adopt (handle_adopt): the resource takes over the physical id, data and metadata of its
   * entry in the abandon data, creating nothing; a nested-stack resource makes its nested stack adopt the
   * resources of its entry (itself a stack's abandon data). No entry, or one without a physical id, fails it.
   */
  private async adoptResource(
    stack: HeatStackEntity,
    bound: BoundTemplate,
    env: StackEnvironment,
    row: HeatResourceEntity,
    entry: Json | undefined,
    deadline: number,
  ): Promise<void> {
    const type = typeFor(env, row.type, stack.files) as ResourceType;
    await this.store.setResourceState(row, 'ADOPT', 'IN_PROGRESS', 'state changed');
    try {
      const properties = validateProperties(type, bound.properties(row.name), [
        'resources',
        row.name,
        'properties',
      ]);
      row.properties = properties;
      const given = isMap(entry ?? null) ? (entry as JsonMap) : {};
      const missing = new ResourceActionError('Exception', 'Resource ID was not provided.');
      let result: ActionResult;
      if (type.nestedStack) {
        if (!isMap(given.resources ?? null)) throw missing;
        result = await type.create(
          this.context(stack, row, deadline, given.resources as JsonMap),
          properties,
        );
      } else {
        const id = given.resource_id;
        if (id === undefined || id === null || id === '' || isMap(id) || Array.isArray(id)) throw missing;
        const data = given.resource_data ?? null;
        result = { physicalId: String(id), data: isMap(data) ? data : {} };
      }
      const metadata = given.metadata ?? null;
      await this.store.setResourceState(row, 'ADOPT', 'COMPLETE', 'state changed', {
        physicalId: result.physicalId,
        data: result.data,
        metadata: isMap(metadata) ? metadata : bound.metadata(row.name),
      });
    } catch (error) {
      await this.store.setResourceState(row, 'ADOPT', 'FAILED', failureReason(error, row.name));
      throw new Error(failureReason(error, row.name));
    }
  }

  private async runAdopt(
    stack: HeatStackEntity,
    resources: JsonMap,
    onRemoved: () => Promise<void>,
  ): Promise<void> {
    const deadline = this.deadline(stack);
    const env = environmentOf(stack);
    const rows = await this.rowsOf(stack.id);
    let failure: unknown;
    try {
      const bound = bindStack(stack, rows);
      const graph = dependencyGraph(bound, env);
      failure = await this.schedule(
        graph.names,
        (name) => graph.requirements(name),
        (name) =>
          this.adoptResource(
            stack,
            bound,
            env,
            rows.get(name) as HeatResourceEntity,
            Object.prototype.hasOwnProperty.call(resources, name) ? resources[name] : undefined,
            deadline,
          ),
        deadline,
      );
    } catch (error) {
      failure = error;
    }
    if (failure === undefined) {
      await this.store.setStackState(stack, 'ADOPT', 'COMPLETE', 'Stack ADOPT completed successfully');
      return;
    }
    const reason =
      failure instanceof TimeoutError
        ? 'Adopt timed out'
        : `Resource ADOPT failed: ${(failure as Error).message}`;
    await this.store.setStackState(stack, 'ADOPT', 'FAILED', reason);
    if (stack.disableRollback) return;
    // Heat's adopt rollback: the stack goes as in an abandon, leaving what it had taken over.
    await this.store.setStackState(stack, 'ROLLBACK', 'IN_PROGRESS', 'Stack ROLLBACK started');
    await this.runDelete(stack, onRemoved, { abandon: true, action: 'ROLLBACK' });
  }

  private async deleteResource(
    stack: HeatStackEntity,
    env: StackEnvironment,
    row: HeatResourceEntity,
    deadline: number,
    abandon = false,
  ): Promise<void> {
    const type = rowType(env, row.type, stack.files);
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
      // An abandon retains every resource, but a nested stack's records go with the abandoned stack.
      if (abandon) {
        if (row.physicalId) await this.abandonNested(stack.id, row.physicalId);
      } else if (type && !retain) await type.delete(this.context(stack, row, deadline), stateOf(row));
      // A template resource whose file is gone still has its nested stack to delete.
      else if (!type && row.physicalId) await this.deleteNested(stack.id, row.physicalId);
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
    interrupt?: () => unknown,
    abandon = false,
  ): Promise<unknown> {
    let dependents: (name: string) => string[] = () => [];
    try {
      const graph = dependencyGraph(bindStack(stack, new Map(), graphTemplate, env), env, stack.files);
      dependents = (name) => graph.dependents(name);
    } catch {
      // A template that no longer binds (parameters changed): delete in any order.
    }
    // A name can have several rows (a replacement and the row it replaces): each one goes.
    const byName = new Map<string, HeatResourceEntity[]>();
    for (const row of rows) byName.set(row.name, [...(byName.get(row.name) ?? []), row]);
    return this.schedule(
      [...byName.keys()],
      dependents,
      async (name) => {
        for (const row of byName.get(name) ?? [])
          await this.deleteResource(stack, env, row, deadline, abandon);
      },
      deadline,
      { interrupt },
    );
  }

  private async runCreate(stack: HeatStackEntity): Promise<void> {
    const deadline = this.deadline(stack);
    const env = environmentOf(stack);
    const rows = await this.rowsOf(stack.id);
    let failure: unknown;
    try {
      const bound = bindStack(stack, rows);
      const graph = dependencyGraph(bound, env);
      failure = await this.schedule(
        graph.names,
        (name) => graph.requirements(name),
        (name) => this.createResource(stack, bound, env, rows.get(name) as HeatResourceEntity, deadline),
        deadline,
        { interrupt: () => this.cancelled(stack.id) },
      );
    } catch (error) {
      failure = error;
    }
    failure = this.takeCancel(stack.id, failure);
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
    action: 'UPDATE' | 'ROLLBACK' | 'RESTORE' = 'UPDATE',
  ): Promise<void> {
    const deadline = this.deadline(stack);
    const oldTemplate = stack.template as JsonMap;
    const oldEnv = environmentOf(stack);
    const oldFiles = stack.files;
    const rows = await this.rowsOf(stack.id);
    const replaced = await this.supersededRows(stack.id, rows);
    const supersededBefore = replaced.length;
    let failure: unknown;
    try {
      stack.template = template;
      stack.environment = env as unknown as Record<string, unknown>;
      stack.files = files;
      await this.store.stacks.save(stack);
      const bound = bindStack(stack, rows, template, env);
      const graph = dependencyGraph(bound, env);
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
          const type = typeFor(env, snippet.type, files) as ResourceType;
          const properties = validateProperties(type, bound.properties(name), [
            'resources',
            name,
            'properties',
          ]);
          const before = existing.properties as JsonMap;
          if (
            existing.type === snippet.type &&
            existing.status !== 'FAILED' &&
            deepEqual(before, properties) &&
            !type.outdated?.(stateOf(existing))
          )
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
                this.context(stack, existing, deadline, undefined, updatePolicyOf(type, bound, name)),
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
        { interrupt: () => this.cancelled(stack.id) },
      );
      if (failure === undefined) {
        const removed = [...rows.values()].filter((row) => !bound.resource(row.name));
        const cleanup = [...removed, ...replaced];
        failure = cleanup.length
          ? await this.deleteAll(stack, oldEnv, cleanup, oldTemplate, deadline, () =>
              this.cancelled(stack.id),
            )
          : undefined;
      }
    } catch (error) {
      failure = error;
    }
    failure = this.takeCancel(stack.id, failure);
    if (failure === undefined) {
      await this.store.setStackState(stack, action, 'COMPLETE', `Stack ${action} completed successfully`);
      return;
    }
    // Heat's _update_exception_handler: a cancel's reason is its own; it rolls back when asked to.
    const reason =
      failure instanceof ForcedCancel
        ? failure.message
        : failure instanceof TimeoutError
          ? `${action.charAt(0)}${action.slice(1).toLowerCase()} timed out`
          : `Resource ${action} failed: ${(failure as Error).message}`;
    await this.store.setStackState(stack, action, 'FAILED', reason);
    const rollback =
      failure instanceof ForcedCancel
        ? failure.withRollback || !stack.disableRollback
        : !stack.disableRollback;
    if (action === 'UPDATE' && rollback)
      await this.rollbackUpdate(stack, oldTemplate, oldEnv, oldFiles, replaced.slice(supersededBefore));
  }

  /**
   * Heat's rollback of a failed update (unless rollback is disabled): the replacements the update made are
   * deleted, so the resources they replaced are current again, and the stack is updated back to its previous
   * template, parameters and files (added resources deleted, in-place changes undone).
   */
  private async rollbackUpdate(
    stack: HeatStackEntity,
    template: JsonMap,
    env: StackEnvironment,
    files: Record<string, string>,
    replacedNow: HeatResourceEntity[],
  ): Promise<void> {
    await this.store.setStackState(stack, 'ROLLBACK', 'IN_PROGRESS', 'Stack ROLLBACK started');
    const current = await this.rowsOf(stack.id);
    const replacements = replacedNow
      .map((old) => [old, current.get(old.name)] as const)
      .filter(([old, row]) => row !== undefined && row.id !== old.id)
      .map(([, row]) => row as HeatResourceEntity);
    const failure = replacements.length
      ? await this.deleteAll(
          stack,
          environmentOf(stack),
          replacements,
          stack.template as JsonMap,
          this.deadline(stack),
        )
      : undefined;
    if (failure) {
      await this.store.setStackState(
        stack,
        'ROLLBACK',
        'FAILED',
        `Resource DELETE failed: ${(failure as Error).message}`,
      );
      return;
    }
    await this.runUpdate(stack, template, env, files, 'ROLLBACK');
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

  /**
   * Deletes the stack's resources in reverse dependency order, then the stack (its row kept, `deleted_at` set).
   * `abandon` keeps every physical resource and removes only the records (nested stacks' too); `action` is
   * ROLLBACK for a failed adopt's rollback.
   */
  private async runDelete(
    stack: HeatStackEntity,
    onDeleted: () => Promise<void>,
    { abandon = false, action = 'DELETE' }: { abandon?: boolean; action?: 'DELETE' | 'ROLLBACK' } = {},
  ): Promise<void> {
    const deadline = this.deadline(stack);
    await this.deleteAllSnapshots(stack);
    const rows = await this.store.resources.findBy({ stackId: stack.id });
    let failure = await this.deleteAll(
      stack,
      environmentOf(stack),
      rows,
      stack.template as JsonMap,
      deadline,
      undefined,
      abandon,
    );
    if (!failure) {
      // Nested stacks no resource row leads to (a create interrupted before the row knew it) go too.
      const known = new Set(rows.map((row) => row.physicalId));
      const orphans = await this.store.stacks.findBy({ ownerId: stack.id, deletedAt: IsNull() });
      for (const child of orphans.filter((orphan) => !known.has(orphan.id))) {
        failure = await (
          abandon ? this.abandonNested(stack.id, child.id) : this.deleteNested(stack.id, child.id)
        ).then(
          () => undefined,
          (error: unknown) => error,
        );
        if (failure) break;
      }
    }
    if (failure) {
      await this.store.setStackState(
        stack,
        action,
        'FAILED',
        `Resource DELETE failed: ${(failure as Error).message}`,
      );
      return;
    }
    await this.store.setStackState(stack, action, 'COMPLETE', `Stack ${action} completed successfully`);
    const deletedAt = nowIso();
    stack.deletedAt = deletedAt;
    await this.store.stacks.update({ id: stack.id }, { deletedAt });
    this.identity.dropSession(stack.id);
    await onDeleted();
  }

  /** Runs a nested stack's action here and now, tracked like any stack's (busy, shutdown). */
  private async track(stackId: string, run: () => Promise<void>): Promise<void> {
    const task = run().finally(() => this.running.delete(stackId));
    this.running.set(stackId, task);
    await task;
  }

  private nestedStacks(
    parent: HeatStackEntity,
    name: string,
    deadline: number,
    adopt?: JsonMap,
  ): NestedStacks {
    return {
      create: (spec) => this.createNested(parent, name, spec, deadline, adopt),
      update: (id, spec) => this.updateNested(parent, id, name, spec, deadline),
      delete: (id) => this.deleteNested(parent.id, id),
      act: (id, action) => this.actNested(parent.id, id, action),
    };
  }

  /** The child's environment: its parameters, the parent's defaults and registry (less what led here). */
  private childEnvironment(parent: HeatStackEntity, spec: NestedStackSpec): StackEnvironment {
    const inherited = environmentOf(parent);
    const registry = { ...inherited.resource_registry };
    if (spec.registryKeyToDrop !== undefined) delete registry[spec.registryKeyToDrop];
    delete registry.resources;
    return {
      parameters: spec.parameters as Record<string, Json>,
      parameter_defaults: inherited.parameter_defaults,
      resource_registry: registry,
    };
  }

  private async createNested(
    parent: HeatStackEntity,
    name: string,
    spec: NestedStackSpec,
    deadline: number,
    adopt?: JsonMap,
  ): Promise<NestedStackResult> {
    if ((parent.nestedDepth ?? 0) >= MAX_NESTED_DEPTH) {
      throw new HotError(`Recursion depth exceeds ${MAX_NESTED_DEPTH}.`);
    }
    const env = this.childEnvironment(parent, spec);
    const action = adopt ? 'ADOPT' : 'CREATE';
    const child = Object.assign(new HeatStackEntity(), {
      id: randomUUID(),
      name,
      projectId: parent.projectId,
      userId: parent.userId,
      username: parent.username,
      action,
      status: 'IN_PROGRESS',
      statusReason: `Stack ${action} started`,
      template: spec.template,
      environment: env,
      files: parent.files,
      timeoutMins: spec.timeoutMins ?? Math.max(1, Math.ceil((deadline - Date.now()) / 60_000)),
      disableRollback: true,
      tags: [],
      credential: parent.credential,
      ownerId: parent.id,
      nestedDepth: (parent.nestedDepth ?? 0) + 1,
      createdAt: nowIso(),
      updatedAt: null,
      deletedAt: null,
    });
    const bound = bindStack(child, new Map());
    validateStack(bound, env);
    await this.store.stacks.save(child);
    await this.initialRows(child, bound);
    await this.store.setStackState(child, action, 'IN_PROGRESS', `Stack ${action} started`);
    await this.track(child.id, () =>
      adopt ? this.runAdopt(child, adopt, async () => undefined) : this.runCreate(child),
    );
    return this.nestedResult(child, action);
  }

  private async updateNested(
    parent: HeatStackEntity,
    id: string,
    name: string,
    spec: NestedStackSpec,
    deadline: number,
  ): Promise<NestedStackResult> {
    const child = await this.store.stacks.findOneBy({ id, ownerId: parent.id, deletedAt: IsNull() });
    if (!child) return this.createNested(parent, name, spec, deadline);
    const env = this.childEnvironment(parent, spec);
    const files = parent.files;
    validateStack(bindStack(child, new Map(), spec.template, env, files), env);
    if (spec.timeoutMins) child.timeoutMins = spec.timeoutMins;
    await this.store.setStackState(child, 'UPDATE', 'IN_PROGRESS', 'Stack UPDATE started');
    await this.track(child.id, () => this.runUpdate(child, spec.template, env, files));
    return this.nestedResult(child, 'UPDATE');
  }

  private async deleteNested(parentId: string, id: string): Promise<void> {
    const child = await this.store.stacks.findOneBy({ id, ownerId: parentId, deletedAt: IsNull() });
    if (!child) return;
    await this.store.setStackState(child, 'DELETE', 'IN_PROGRESS', 'Stack DELETE started');
    await this.track(child.id, () => this.runDelete(child, async () => undefined));
    if (!child.deletedAt) throw new NestedStackFailure(child.statusReason, child.id);
  }

  /**
   * Heat's delete_all_snapshots, at the start of a stack's delete (or abandon): each snapshot's images and its
   * record go. One that cannot be cleaned up is logged and its record removed all the same, so that it does
   * not keep the stack.
   */
  private async deleteAllSnapshots(stack: HeatStackEntity): Promise<void> {
    for (const snapshot of await this.store.snapshots.findBy({ stackId: stack.id })) {
      await this.deleteSnapshotData(stack, snapshot).catch((error: unknown) =>
        this.log.warn({ err: error, stack: stack.id, snapshot: snapshot.id }, 'snapshot data not deleted'),
      );
      await this.store.snapshots.delete({ id: snapshot.id });
    }
  }

  /** A nested stack's abandon inside its parent's: its records go, its physical resources stay. */
  private async abandonNested(parentId: string, id: string): Promise<void> {
    const child = await this.store.stacks.findOneBy({ id, ownerId: parentId, deletedAt: IsNull() });
    if (!child) return;
    await this.store.setStackState(child, 'DELETE', 'IN_PROGRESS', 'Stack DELETE started');
    await this.track(child.id, () => this.runDelete(child, async () => undefined, { abandon: true }));
    if (!child.deletedAt) throw new NestedStackFailure(child.statusReason, child.id);
  }

  /** A finished nested stack's outcome: its outputs and members' values, or its failure. */
  private async nestedResult(child: HeatStackEntity, action: string): Promise<NestedStackResult> {
    if (child.action !== action || child.status !== 'COMPLETE') {
      throw new NestedStackFailure(child.statusReason, child.id);
    }
    const rows = await this.rowsOf(child.id);
    const env = environmentOf(child);
    const bound = bindStack(child, rows);
    const outputs: JsonMap = {};
    for (const output of bound.outputs()) outputs[output.name] = bound.output(output).value;
    const members: NestedStackResult['members'] = {};
    for (const row of rows.values()) {
      const type = rowType(env, row.type, child.files);
      if (!type || row.physicalId === null) continue;
      const state = stateOf(row);
      const attributes: JsonMap = {};
      for (const attribute of Object.keys(type.attributes)) {
        try {
          attributes[attribute] = type.attribute(state, attribute) ?? null;
        } catch {
          attributes[attribute] = null;
        }
      }
      members[row.name] = { ref: type.reference?.(state) ?? row.physicalId, attributes };
    }
    return {
      stackId: child.id,
      stackName: child.name,
      arn: `arn:openstack:heat::${child.projectId}:stacks/${child.name}/${child.id}`,
      outputs,
      members,
    };
  }

  /**
   * Heat's stack_task for SUSPEND (resources in reverse dependency order), RESUME and CHECK (in order; a
   * check goes on past failures and reports them all): the stack ends ACTION_COMPLETE or ACTION_FAILED. A
   * check of a stack with resources that cannot be checked says so in the reason (Heat's
   * supports_check_action, a second event).
   */
  private async runAction(stack: HeatStackEntity, action: StackAction): Promise<void> {
    const deadline = this.deadline(stack);
    const env = environmentOf(stack);
    let failure: unknown;
    try {
      const rows = await this.rowsOf(stack.id);
      const graph = dependencyGraph(bindStack(stack, rows), env);
      failure = await this.schedule(
        graph.names.filter((name) => rows.has(name)),
        action === 'SUSPEND' ? (name) => graph.dependents(name) : (name) => graph.requirements(name),
        (name) => this.actOnResource(stack, env, rows.get(name) as HeatResourceEntity, action, deadline),
        deadline,
        { aggregate: action === 'CHECK' },
      );
    } catch (error) {
      failure = error;
    }
    const title = action.charAt(0) + action.slice(1).toLowerCase();
    if (failure === undefined)
      await this.store.setStackState(stack, action, 'COMPLETE', `Stack ${action} completed successfully`);
    else
      await this.store.setStackState(
        stack,
        action,
        'FAILED',
        failure instanceof TimeoutError
          ? `${title} timed out`
          : `Resource ${action} failed: ${(failure as Error).message}`,
      );
    if (action === 'CHECK' && !(await this.supportsCheck(stack)))
      await this.store.setStackState(
        stack,
        'CHECK',
        stack.status,
        `${stack.statusReason}. 'CHECK' not fully supported (see resources)`,
      );
  }

  /**
   * Heat's Resource.suspend / resume / check on one resource: the state it must be in (else the action
   * fails with the resource left as it is), ACTION_IN_PROGRESS, the type's handler if any, then
   * ACTION_COMPLETE (with the data the handler returns) or ACTION_FAILED. A type that cannot check is
   * marked CHECK_COMPLETE with the reason, unless it was never created.
   */
  private async actOnResource(
    stack: HeatStackEntity,
    env: StackEnvironment,
    row: HeatResourceEntity,
    action: StackAction,
    deadline: number,
  ): Promise<void> {
    const type = rowType(env, row.type, stack.files);
    const state = `${row.action}_${row.status}`;
    const invalid = (message: string) => new Error(failureReason(new Error(message), row.name));
    const stateText = `('${row.action}', '${row.status}')`;
    if (action === 'CHECK' && !type?.check) {
      if (state !== 'INIT_COMPLETE')
        await this.store.setResourceState(row, 'CHECK', 'COMPLETE', `CHECK not supported for ${row.type}`);
      return;
    }
    if (action === 'CHECK' && state === 'INIT_COMPLETE') {
      await this.store.setResourceState(
        row,
        'CHECK',
        'FAILED',
        `Can not check ${row.name}, resource not created yet.`,
      );
      throw invalid(`Resource ${row.name} not created yet.`);
    }
    if (
      action === 'SUSPEND' &&
      (row.action === 'DELETE' || (row.action !== 'SUSPEND' && row.status !== 'COMPLETE'))
    )
      throw invalid(`State ${stateText} invalid for suspend`);
    if (action === 'RESUME' && !['SUSPEND_COMPLETE', 'RESUME_FAILED', 'RESUME_COMPLETE'].includes(state))
      throw invalid(`State ${stateText} invalid for resume`);
    await this.store.setResourceState(row, action, 'IN_PROGRESS', 'state changed');
    try {
      const ctx = this.context(stack, row, deadline);
      let data: JsonMap | void = undefined;
      if (action === 'SUSPEND') data = await type?.suspend?.(ctx, stateOf(row));
      else if (action === 'RESUME') data = await type?.resume?.(ctx, stateOf(row));
      else await type?.check?.(ctx, stateOf(row));
      await this.store.setResourceState(row, action, 'COMPLETE', 'state changed', data ? { data } : {});
    } catch (error) {
      await this.store.setResourceState(row, action, 'FAILED', failureReason(error, row.name));
      throw new Error(failureReason(error, row.name));
    }
  }

  /** Heat's supports_check_action: every resource (of nested stacks too) has a check handler. */
  private async supportsCheck(stack: HeatStackEntity): Promise<boolean> {
    const env = environmentOf(stack);
    const children = await this.store.stacks.findBy({ ownerId: stack.id, deletedAt: IsNull() });
    for (const row of (await this.rowsOf(stack.id)).values()) {
      const child = children.find((candidate) => candidate.id === row.physicalId);
      const supported = child
        ? await this.supportsCheck(child)
        : !!rowType(env, row.type, stack.files)?.check;
      if (!supported) return false;
    }
    return true;
  }

  /**
   * A nested stack's suspend, resume or check inside its parent's (Heat's StackResource handlers, which ask
   * the engine for the stack action and wait for it): nothing when it is already suspended (resumed), a
   * refusal while it has an action in progress, else the action; the resource fails when it ends FAILED.
   */
  private async actNested(parentId: string, id: string, action: StackAction): Promise<void> {
    const child = await this.store.stacks.findOneBy({ id, ownerId: parentId, deletedAt: IsNull() });
    if (!child) throw new ResourceActionError('EntityNotFound', `The Stack (${id}) could not be found.`);
    if (action !== 'CHECK' && child.action === action && child.status === 'COMPLETE') return;
    if (child.status === 'IN_PROGRESS' || this.running.has(child.id))
      throw new ResourceActionError(
        'ActionInProgress',
        `Stack ${child.name} already has an action (${child.action}) in progress.`,
      );
    await this.store.setStackState(child, action, 'IN_PROGRESS', `Stack ${action} started`);
    await this.track(child.id, () => this.runAction(child, action));
    if (child.action !== action || child.status !== 'COMPLETE')
      throw new NestedStackFailure(child.statusReason, child.id);
  }

  /** Stacks whose ids are in `ids` that have an action running here. */
  runningAmong(ids: string[]): string[] {
    return ids.filter((id) => this.running.has(id));
  }
}
