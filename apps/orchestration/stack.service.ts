import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Optional } from '@nestjs/common';
import { AuthContext, authorize, canActOnProject, canReadProject, isAdmin } from '@novum/auth';
import { BadRequestError, ConflictError, NOVUM_CONFIG, NotFoundError, NovumConfig } from '@novum/common';
import { HeatEventEntity, HeatResourceEntity, HeatSnapshotEntity, HeatStackEntity, nowIso } from '@novum/db';
import {
  BoundTemplate,
  checkNesting,
  HotError,
  HotTemplate,
  isMap,
  Json,
  JsonMap,
  parseTemplateText,
} from '@novum/hot';
import { IsNull } from 'typeorm';
import { IdentityClient, StackCredential } from './cloud';
import {
  bindStack,
  ChangeKind,
  environmentOf,
  planUpdate,
  StackEnvironment,
  typeFor,
  validateStack,
} from './engine';
import { StackEngine } from './engine-rpc';
import { checkCustomConstraint } from './resources/constraints';
import { StackStore } from './stack.store';

export interface StackRequest {
  stack_name?: unknown;
  template?: unknown;
  template_url?: unknown;
  parameters?: unknown;
  environment?: unknown;
  files?: unknown;
  timeout_mins?: unknown;
  disable_rollback?: unknown;
  tags?: unknown;
  adopt_stack_data?: unknown;
}

/** The settings of Heat's engine the stack API follows (Heat's enable_stack_abandon, enable_stack_adopt...). */
export type StackPolicy = Pick<
  NovumConfig,
  'heatEnableStackAbandon' | 'heatEnableStackAdopt' | 'heatMaxSnapshotsPerStack'
>;

const DEFAULT_POLICY: StackPolicy = {
  heatEnableStackAbandon: true,
  heatEnableStackAdopt: true,
  heatMaxSnapshotsPerStack: 32,
};

/**
 * The abandon data of `POST /stacks` with `adopt_stack_data` (a JSON or YAML text, as heatclient sends the
 * file, or a mapping), checked as Heat's InstantiationData.template: a mapping with a `template`.
 */
function adoptDataOf(value: unknown): JsonMap {
  let data = value;
  if (typeof value === 'string') {
    try {
      data = parseTemplateText(value, 'adopt_stack_data');
    } catch (error) {
      throw new BadRequestError(`Invalid adopt data: ${(error as Error).message}`);
    }
  }
  if (!isMap((data ?? null) as Json))
    throw new BadRequestError('Invalid adopt data: The template is not a JSON object or YAML mapping.');
  const map = data as JsonMap;
  if (map.template === undefined || map.template === null)
    throw new BadRequestError(`Invalid adopt data: 'template'`);
  if (map.resources !== undefined && map.resources !== null && !isMap(map.resources))
    throw new BadRequestError('Invalid adopt data: resources must be a mapping of resource names.');
  if (map.environment !== undefined && map.environment !== null && !isMap(map.environment))
    throw new BadRequestError('Invalid adopt data: environment must be a mapping.');
  return map;
}

/** The body keys of `POST .../actions` (Heat's ActionController.ACTIONS). */
const STACK_ACTIONS = ['suspend', 'resume', 'check', 'cancel_update', 'cancel_without_rollback'] as const;
export type StackActionName = (typeof STACK_ACTIONS)[number];

/** The action a `POST .../actions` body asks for, checked as Heat's ActionController.action does. */
export function stackActionOf(body: unknown): StackActionName {
  const given = body && typeof body === 'object' && !Array.isArray(body) ? Object.keys(body) : [];
  if (given.length < 1) throw new BadRequestError('No action specified');
  if (given.length > 1) throw new BadRequestError('Multiple actions specified');
  const action = given[0];
  if (!(STACK_ACTIONS as readonly string[]).includes(action))
    throw new BadRequestError(`Invalid action ${action} specified`);
  return action as StackActionName;
}

const NAME_PATTERN = /^[a-zA-Z][a-zA-Z0-9_.-]{0,254}$/;
const SORT_KEYS: Record<string, keyof HeatStackEntity> = {
  stack_name: 'name',
  stack_status: 'status',
  creation_time: 'createdAt',
  updated_time: 'updatedAt',
};

/** A template given as a mapping or as text (YAML or JSON), parsed with Heat's messages. */
function templateOf(body: StackRequest): JsonMap {
  if (body.template_url !== undefined && body.template === undefined) {
    throw new BadRequestError('Fetching templates from a URL is not supported; pass the template itself.');
  }
  if (body.template === undefined || body.template === null) {
    throw new BadRequestError('No Template provided.');
  }
  if (typeof body.template === 'string') return parseTemplateText(body.template);
  if (!isMap(body.template as Json)) throw new HotError('The template is not a JSON object or YAML mapping.');
  return body.template as JsonMap;
}

function environmentFrom(body: StackRequest): StackEnvironment {
  let env: unknown = body.environment ?? {};
  if (typeof env === 'string') env = env.trim() ? parseTemplateText(env, '[environment]') : {};
  if (!isMap(env as Json))
    throw new BadRequestError('The environment is not a valid YAML mapping data type.');
  checkNesting(env, 'The environment');
  checkNesting(body.parameters, 'The parameters');
  const map = env as JsonMap;
  for (const key of Object.keys(map)) {
    if (
      ![
        'parameters',
        'parameter_defaults',
        'resource_registry',
        'event_sinks',
        'encrypted_param_names',
        'parameter_merge_strategies',
      ].includes(key)
    ) {
      throw new BadRequestError(`environment has wrong section "${key}"`);
    }
  }
  const params = body.parameters ?? {};
  if (!isMap(params as Json)) throw new BadRequestError('The parameters must be a mapping.');
  return {
    parameters: { ...((map.parameters as JsonMap | undefined) ?? {}), ...(params as JsonMap) },
    parameter_defaults: (map.parameter_defaults as JsonMap | undefined) ?? {},
    resource_registry: (map.resource_registry as JsonMap | undefined) ?? {},
  };
}

function filesFrom(body: StackRequest): Record<string, string> {
  const files = body.files ?? {};
  if (!isMap(files as Json)) throw new BadRequestError('The files must be a mapping.');
  return Object.fromEntries(Object.entries(files as JsonMap).map(([k, v]) => [k, String(v)]));
}

function timeoutOf(value: unknown): number | null {
  if (value === undefined || value === null || value === '') return null;
  const n = Number(value);
  // The database keeps minutes as a 32-bit integer.
  if (!Number.isInteger(n) || n <= 0 || n > 2 ** 31 - 1)
    throw new BadRequestError(`Invalid timeout value ${String(value)}`);
  return n;
}

function boolOf(value: unknown, fallback: boolean): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'boolean') return value;
  const text = String(value).toLowerCase();
  if (['true', '1', 'yes', 'on', 't', 'y'].includes(text)) return true;
  if (['false', '0', 'no', 'off', 'f', 'n'].includes(text)) return false;
  throw new BadRequestError(`Unrecognized value "${String(value)}", acceptable values are: true, false`);
}

function tagsOf(value: unknown): string[] {
  if (value === undefined || value === null || value === '') return [];
  if (Array.isArray(value)) return value.map(String);
  return String(value).split(',');
}

/** Stack operations as the API offers them: checks, records, and hands the work to the engine. */
@Injectable()
export class StackService {
  private readonly policy: StackPolicy;

  constructor(
    private readonly store: StackStore,
    private readonly engine: StackEngine,
    private readonly identity: IdentityClient,
    @Optional() @Inject(NOVUM_CONFIG) config?: Partial<StackPolicy>,
  ) {
    this.policy = {
      ...DEFAULT_POLICY,
      ...Object.fromEntries(
        Object.entries(config ?? {}).filter(([key, value]) => key in DEFAULT_POLICY && value !== undefined),
      ),
    };
  }

  private bindForValidation(
    stack: Pick<HeatStackEntity, 'name' | 'id' | 'projectId'>,
    template: JsonMap,
    env: StackEnvironment,
    files: Record<string, string>,
  ) {
    const bound = HotTemplate.parse(template).bind({
      stack: { name: stack.name, id: stack.id, projectId: stack.projectId },
      params: env.parameters,
      parameterDefaults: env.parameter_defaults,
      files,
    });
    validateStack(bound, env);
    return bound;
  }

  /** Runs the template's custom constraints (flavors, images, key pairs, networks) with the caller's rights. */
  private async checkCustomConstraints(auth: AuthContext, bound: BoundTemplate): Promise<void> {
    const custom = bound.template.parameterSchemas.some((schema) =>
      schema.constraints.some((c) => c.kind === 'custom_constraint'),
    );
    if (!custom) return;
    const { session } = await this.identity.authenticate({ kind: 'token', token: auth.token });
    await bound.checkCustomConstraints((constraint, value) =>
      checkCustomConstraint(session, constraint, value),
    );
  }

  /**
   * A stack from a template (CREATE), or with `adopt_stack_data` (Heat's stack adopt) a stack of the abandon
   * data's template whose resources take over the physical resources it names (ADOPT): the data's parameters
   * apply, those given beside it win.
   */
  async create(auth: AuthContext, body: StackRequest): Promise<HeatStackEntity> {
    authorize('stacks:create', canActOnProject(auth, auth.projectId));
    const adopting = body.adopt_stack_data !== undefined && body.adopt_stack_data !== null;
    if (adopting && !this.policy.heatEnableStackAdopt)
      throw new BadRequestError('Stack Adopt is not supported.', 'NotSupported');
    const name = body.stack_name;
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
      throw new BadRequestError(
        `Invalid stack name ${String(name)} must contain only alphanumeric or "_-." characters, must start with alpha and must be 255 characters or less.`,
      );
    }
    const adopt = adopting ? adoptDataOf(body.adopt_stack_data) : undefined;
    const template = templateOf(adopt ? { template: adopt.template } : body);
    const env = environmentFrom(body);
    if (adopt) {
      const adoptEnv = (adopt.environment as JsonMap | undefined) ?? {};
      const adoptParameters = adoptEnv.parameters ?? null;
      env.parameters = { ...(isMap(adoptParameters) ? adoptParameters : {}), ...env.parameters };
    }
    const files = filesFrom(body);
    const projectId = auth.projectId as string;
    if (await this.store.stacks.existsBy({ projectId, name, deletedAt: IsNull() })) {
      throw new ConflictError(`The Stack (${name}) already exists.`, 'StackExists');
    }
    const id = randomUUID();
    const bound = this.bindForValidation({ name, id, projectId }, template, env, files);
    await this.checkCustomConstraints(auth, bound);
    const credential: StackCredential = await this.identity.credentialFor(
      { userId: auth.userId, token: auth.token },
      id,
    );
    const stack = Object.assign(new HeatStackEntity(), {
      id,
      name,
      projectId,
      userId: auth.userId,
      username: auth.userName,
      action: adopt ? 'ADOPT' : 'CREATE',
      status: 'IN_PROGRESS',
      statusReason: `Stack ${adopt ? 'ADOPT' : 'CREATE'} started`,
      template,
      environment: env,
      files,
      timeoutMins: timeoutOf(body.timeout_mins),
      disableRollback: boolOf(body.disable_rollback, true),
      tags: tagsOf(body.tags),
      credential: this.identity.credentials.seal(credential),
      ownerId: null,
      nestedDepth: 0,
      createdAt: nowIso(),
      updatedAt: null,
      deletedAt: null,
    });
    await this.store.stacks.save(stack);
    await this.engine.initialRows(stack, bound);
    await this.store.setStackState(stack, stack.action, 'IN_PROGRESS', stack.statusReason);
    if (adopt) await this.engine.adopt(stack, (adopt.resources as JsonMap | undefined) ?? {}, auth.token);
    else await this.engine.create(stack);
    return stack;
  }

  /**
   * Heat's abandon_stack: the stack's abandon data (Engine.abandonData), then the stack is deleted with every
   * resource retained (its records go, its physical resources stay; the engine's credential is removed as in
   * a delete). 400 `NotSupported` when NOVUM_HEAT_ENABLE_STACK_ABANDON is off (checked first, as Heat).
   */
  async abandon(auth: AuthContext, find: () => Promise<HeatStackEntity>): Promise<JsonMap> {
    if (!this.policy.heatEnableStackAbandon)
      throw new BadRequestError('Stack Abandon is not supported.', 'NotSupported');
    const stack = await find();
    authorize('stacks:abandon', canActOnProject(auth, stack.projectId));
    if (stack.deletedAt)
      throw new NotFoundError(`The Stack (${stack.name}) could not be found.`, 'EntityNotFound');
    if (stack.status === 'IN_PROGRESS' || (await this.engine.busy(stack.id))) {
      throw new ConflictError(
        `Stack ${stack.name} already has an action (${stack.action}) in progress.`,
        'ActionInProgress',
      );
    }
    const data = await this.engine.abandonData(stack);
    await this.store.setStackState(stack, 'DELETE', 'IN_PROGRESS', 'Stack DELETE started');
    await this.engine.delete(stack, auth.token, true);
    return data;
  }

  /** Heat's export_stack: the abandon data of the stack, which is left as it is (same switch as abandon). */
  async export(auth: AuthContext, find: () => Promise<HeatStackEntity>): Promise<JsonMap> {
    if (!this.policy.heatEnableStackAbandon)
      throw new BadRequestError('Stack Abandon is not supported.', 'NotSupported');
    const stack = await find();
    authorize('stacks:export', canReadProject(auth, stack.projectId));
    if (stack.deletedAt)
      throw new NotFoundError(`The Stack (${stack.name}) could not be found.`, 'EntityNotFound');
    return this.engine.abandonData(stack);
  }

  /** `stack create --dry-run`: the stack and its resources as they would be created, nothing made. */
  async preview(auth: AuthContext, body: StackRequest) {
    authorize('stacks:preview', canActOnProject(auth, auth.projectId));
    const name = body.stack_name;
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
      throw new BadRequestError(
        `Invalid stack name ${String(name)} must contain only alphanumeric or "_-." characters, must start with alpha and must be 255 characters or less.`,
      );
    }
    const template = templateOf(body);
    const env = environmentFrom(body);
    const files = filesFrom(body);
    const stack = Object.assign(new HeatStackEntity(), {
      id: 'None',
      name,
      projectId: auth.projectId as string,
      userId: auth.userId,
      username: auth.userName,
      action: 'INIT',
      status: 'COMPLETE',
      statusReason: '',
      template,
      environment: env,
      files,
      timeoutMins: timeoutOf(body.timeout_mins),
      disableRollback: boolOf(body.disable_rollback, true),
      tags: tagsOf(body.tags),
      credential: {},
      ownerId: null,
      nestedDepth: 0,
      createdAt: nowIso(),
      updatedAt: null,
      deletedAt: null,
    });
    const bound = this.bindForValidation(stack, template, env, files);
    await this.checkCustomConstraints(auth, bound);
    const graph = bound.graph();
    const resources = bound.resources().map((snippet) => ({
      resource_name: snippet.name,
      resource_type: snippet.type,
      resource_action: 'INIT',
      resource_status: 'COMPLETE',
      resource_status_reason: '',
      physical_resource_id: '',
      description: snippet.description,
      properties: bound.properties(snippet.name),
      metadata: bound.metadata(snippet.name),
      required_by: graph.dependents(snippet.name),
      stack_name: name,
    }));
    return { stack, bound, resources };
  }

  /** `stack update --dry-run`: which resources an update would add, delete, replace, update or leave. */
  async previewUpdate(auth: AuthContext, stack: HeatStackEntity, body: StackRequest, patch: boolean) {
    authorize('stacks:preview_update', canActOnProject(auth, stack.projectId));
    const { template, env, files } = this.updateInput(stack, body, patch);
    const rows = await this.store.resources.findBy({ stackId: stack.id });
    const plan = planUpdate(stack, new Map(rows.map((r) => [r.name, r])), template, env, files);
    const changes: Record<ChangeKind, unknown[]> = {
      added: [],
      deleted: [],
      replaced: [],
      unchanged: [],
      updated: [],
    };
    for (const item of plan) {
      const row = rows.find((r) => r.name === item.name);
      changes[item.change].push({
        resource_name: item.name,
        resource_type: item.type,
        resource_action: row?.action ?? 'INIT',
        resource_status: row?.status ?? 'COMPLETE',
        resource_status_reason: row?.statusReason ?? '',
        physical_resource_id: row?.physicalId ?? '',
        resource_identity: {
          stack_name: stack.name,
          stack_id: stack.id,
          tenant: stack.projectId,
          path: `/resources/${item.name}`,
        },
        stack_name: stack.name,
      });
    }
    return { resource_changes: changes };
  }

  private updateInput(stack: HeatStackEntity, body: StackRequest, patch: boolean) {
    const template =
      patch && (body.template ?? null) === null && (body.template_url ?? null) === null
        ? (stack.template as JsonMap)
        : templateOf(body);
    const given = environmentFrom(body);
    const previous = environmentOf(stack);
    const env: StackEnvironment = patch
      ? {
          parameters: { ...previous.parameters, ...given.parameters },
          parameter_defaults: { ...previous.parameter_defaults, ...given.parameter_defaults },
          resource_registry: { ...previous.resource_registry, ...given.resource_registry },
        }
      : given;
    const files = patch ? { ...stack.files, ...filesFrom(body) } : filesFrom(body);
    return { template, env, files };
  }

  /**
   * A stack of the caller's project by name or id, else 404. As Heat's identify_stack, an id finds a deleted
   * stack too (its status then DELETE_COMPLETE: Horizon polls a stack being deleted by id until it sees that);
   * a name finds deleted ones only when asked.
   */
  async lookup(auth: AuthContext, nameOrId: string, withDeleted = false): Promise<HeatStackEntity> {
    const projectId = auth.projectId ?? '';
    const where = withDeleted ? {} : { deletedAt: IsNull() };
    const stack =
      (await this.store.stacks.findOneBy({ id: nameOrId, projectId })) ??
      (await this.store.stacks.findOne({
        where: { name: nameOrId, projectId, ...where },
        order: { createdAt: 'DESC' },
      }));
    if (!stack || !canReadProject(auth, stack.projectId))
      throw new NotFoundError(`The Stack (${nameOrId}) could not be found.`, 'EntityNotFound');
    return stack;
  }

  /** The stack named by both parts of `/stacks/{name}/{id}`. */
  async identify(auth: AuthContext, name: string, id: string): Promise<HeatStackEntity> {
    const stack = await this.store.stacks.findOneBy({ id, projectId: auth.projectId ?? '' });
    if (!stack || stack.name !== name || !canReadProject(auth, stack.projectId)) {
      throw new NotFoundError(`The Stack (${name}) could not be found.`, 'EntityNotFound');
    }
    return stack;
  }

  async list(auth: AuthContext, query: Record<string, string | string[]>) {
    authorize('stacks:index', canReadProject(auth, auth.projectId));
    const one = (key: string) =>
      Array.isArray(query[key]) ? (query[key] as string[])[0] : (query[key] as string | undefined);
    const many = (key: string) =>
      query[key] === undefined
        ? []
        : Array.isArray(query[key])
          ? (query[key] as string[])
          : [query[key] as string];
    const showDeleted = boolOf(one('show_deleted'), false);
    const showNested = boolOf(one('show_nested'), false);
    let stacks = await this.store.stacks.findBy({
      projectId: auth.projectId ?? '',
      ...(showDeleted ? {} : { deletedAt: IsNull() }),
      ...(showNested ? {} : { ownerId: IsNull() }),
    });
    const names = many('name');
    if (names.length) stacks = stacks.filter((s) => names.includes(s.name));
    const ids = many('id');
    if (ids.length) stacks = stacks.filter((s) => ids.includes(s.id));
    const statuses = many('status');
    if (statuses.length)
      stacks = stacks.filter(
        (s) => statuses.includes(s.status) || statuses.includes(`${s.action}_${s.status}`),
      );
    const actions = many('action');
    if (actions.length) stacks = stacks.filter((s) => actions.includes(s.action));
    const tags = one('tags');
    if (tags) stacks = stacks.filter((s) => tags.split(',').every((t) => s.tags.includes(t)));
    const tagsAny = one('tags_any');
    if (tagsAny) stacks = stacks.filter((s) => tagsAny.split(',').some((t) => s.tags.includes(t)));
    const notTags = one('not_tags');
    if (notTags) stacks = stacks.filter((s) => !notTags.split(',').every((t) => s.tags.includes(t)));
    const sortKey = one('sort_keys') ?? 'creation_time';
    const field = SORT_KEYS[sortKey];
    if (!field)
      throw new BadRequestError(
        `Sort key "${sortKey}" not supported: use one of ${Object.keys(SORT_KEYS).join(', ')}`,
      );
    const dir = (one('sort_dir') ?? 'desc').toLowerCase();
    if (dir !== 'asc' && dir !== 'desc')
      throw new BadRequestError(`Unknown sort direction, must be 'desc' or 'asc'`);
    stacks.sort(
      (a, b) => String(a[field] ?? '').localeCompare(String(b[field] ?? '')) || a.id.localeCompare(b.id),
    );
    if (dir === 'desc') stacks.reverse();
    const marker = one('marker');
    if (marker) {
      const index = stacks.findIndex((s) => s.id === marker);
      if (index < 0) throw new NotFoundError(`The Stack (${marker}) could not be found.`, 'EntityNotFound');
      stacks = stacks.slice(index + 1);
    }
    const limitText = one('limit');
    if (limitText !== undefined) {
      const limit = Number(limitText);
      if (!Number.isInteger(limit) || limit < 0)
        throw new BadRequestError(`Only integer is acceptable by 'limit'.`);
      stacks = stacks.slice(0, limit);
    }
    return stacks;
  }

  async bound(stack: HeatStackEntity) {
    const rows = await this.store.resources.findBy({ stackId: stack.id });
    try {
      return bindStack(stack, new Map(rows.map((r) => [r.name, r])));
    } catch {
      return undefined;
    }
  }

  async update(auth: AuthContext, stack: HeatStackEntity, body: StackRequest, patch: boolean): Promise<void> {
    authorize('stacks:update', canActOnProject(auth, stack.projectId));
    if (stack.status === 'IN_PROGRESS' || (await this.engine.busy(stack.id))) {
      throw new ConflictError(
        `Stack ${stack.name} already has an action (${stack.action}) in progress.`,
        'ActionInProgress',
      );
    }
    if (stack.deletedAt || stack.action === 'DELETE')
      throw new NotFoundError(`The Stack (${stack.name}) could not be found.`, 'EntityNotFound');
    const { template, env, files } = this.updateInput(stack, body, patch);
    await this.checkCustomConstraints(auth, this.bindForValidation(stack, template, env, files));
    if (body.timeout_mins !== undefined) stack.timeoutMins = timeoutOf(body.timeout_mins);
    if (body.disable_rollback !== undefined) stack.disableRollback = boolOf(body.disable_rollback, true);
    if (body.tags !== undefined) stack.tags = tagsOf(body.tags);
    await this.store.stacks.save(stack);
    await this.store.setStackState(stack, 'UPDATE', 'IN_PROGRESS', 'Stack UPDATE started');
    await this.engine.update(stack, template, env, files);
  }

  async delete(auth: AuthContext, stack: HeatStackEntity): Promise<void> {
    authorize('stacks:delete', canActOnProject(auth, stack.projectId));
    if (stack.deletedAt)
      throw new NotFoundError(`The Stack (${stack.name}) could not be found.`, 'EntityNotFound');
    if (await this.engine.busy(stack.id)) {
      throw new ConflictError(
        `Stack ${stack.name} already has an action (${stack.action}) in progress.`,
        'ActionInProgress',
      );
    }
    await this.store.setStackState(stack, 'DELETE', 'IN_PROGRESS', 'Stack DELETE started');
    await this.engine.delete(stack, auth.token);
  }

  /**
   * Heat's stack actions (`POST .../actions`): suspend, resume and check start with the stack
   * ACTION_IN_PROGRESS (a suspended stack is not suspended again, nor a resumed one resumed); cancel_update
   * cancels an UPDATE_IN_PROGRESS and rolls it back, cancel_without_rollback an UPDATE or CREATE in progress.
   */
  async act(auth: AuthContext, stack: HeatStackEntity, action: StackActionName): Promise<void> {
    authorize(
      `actions:${action}`,
      action === 'check' ? canReadProject(auth, stack.projectId) : canActOnProject(auth, stack.projectId),
    );
    if (stack.deletedAt)
      throw new NotFoundError(`The Stack (${stack.name}) could not be found.`, 'EntityNotFound');
    if (action === 'cancel_update' || action === 'cancel_without_rollback') {
      const allowed = action === 'cancel_update' ? ['UPDATE'] : ['UPDATE', 'CREATE'];
      if (stack.status !== 'IN_PROGRESS' || !allowed.includes(stack.action))
        throw new BadRequestError(
          `Cancelling update when stack is ${stack.action}_${stack.status} is not supported.`,
          'NotSupported',
        );
      await this.engine.cancel(stack.id, action === 'cancel_update');
      return;
    }
    const stackAction = action.toUpperCase() as 'SUSPEND' | 'RESUME' | 'CHECK';
    if (stackAction !== 'CHECK' && stack.action === stackAction && stack.status === 'COMPLETE') return;
    if (stack.status === 'IN_PROGRESS' || (await this.engine.busy(stack.id))) {
      throw new ConflictError(
        `Stack ${stack.name} already has an action (${stack.action}) in progress.`,
        'ActionInProgress',
      );
    }
    await this.store.setStackState(stack, stackAction, 'IN_PROGRESS', `Stack ${stackAction} started`);
    await this.engine.act(stack, stackAction);
  }

  /**
   * Heat's stack_snapshot: a snapshot record (CREATE_IN_PROGRESS, no data yet) answered at once, while the
   * engine snapshots the stack (SNAPSHOT_IN_PROGRESS). Refused while an action is in progress (409) and, for
   * non-admins, past NOVUM_HEAT_MAX_SNAPSHOTS_PER_STACK (400 RequestLimitExceeded).
   */
  async snapshot(auth: AuthContext, stack: HeatStackEntity, body: unknown): Promise<HeatSnapshotEntity> {
    authorize('stacks:snapshot', canActOnProject(auth, stack.projectId));
    if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body)))
      throw new BadRequestError('The request body must be a JSON object.');
    const name = ((body ?? {}) as { name?: unknown }).name ?? null;
    if (name !== null && (typeof name !== 'string' || name.length > 255))
      throw new BadRequestError('The snapshot name must be a string of at most 255 characters.');
    if (stack.deletedAt)
      throw new NotFoundError(`The Stack (${stack.name}) could not be found.`, 'EntityNotFound');
    if (stack.status === 'IN_PROGRESS' || (await this.engine.busy(stack.id))) {
      throw new ConflictError(
        `Stack ${stack.name} already has an action (${stack.action}) in progress.`,
        'ActionInProgress',
      );
    }
    const limit = this.policy.heatMaxSnapshotsPerStack;
    if (!isAdmin(auth) && limit >= 0 && (await this.store.snapshots.countBy({ stackId: stack.id })) >= limit)
      throw new BadRequestError(
        `Request limit exceeded: You have reached the maximum snapshots per stack, ${limit}. Please delete some snapshots.`,
        'RequestLimitExceeded',
      );
    const snapshot = Object.assign(new HeatSnapshotEntity(), {
      id: randomUUID(),
      stackId: stack.id,
      name,
      projectId: auth.projectId ?? stack.projectId,
      action: 'CREATE',
      status: 'IN_PROGRESS',
      statusReason: null,
      data: null,
      createdAt: nowIso(),
      updatedAt: null,
    });
    await this.store.snapshots.save(snapshot);
    await this.store.setStackState(stack, 'SNAPSHOT', 'IN_PROGRESS', 'Stack SNAPSHOT started');
    await this.engine.snapshot(stack, snapshot);
    return snapshot;
  }

  async snapshots(auth: AuthContext, stack: HeatStackEntity): Promise<HeatSnapshotEntity[]> {
    authorize('stacks:list_snapshots', canReadProject(auth, stack.projectId));
    return this.store.snapshots.find({ where: { stackId: stack.id }, order: { createdAt: 'ASC' } });
  }

  /** A snapshot of the stack, as Heat's snapshot_get_by_stack finds it (its two 404s). */
  async snapshotOf(auth: AuthContext, stack: HeatStackEntity, id: string): Promise<HeatSnapshotEntity> {
    authorize('stacks:show_snapshot', canReadProject(auth, stack.projectId));
    const snapshot = await this.store.snapshots.findOneBy({ id });
    if (!snapshot || snapshot.projectId !== stack.projectId)
      throw new NotFoundError(`Snapshot with id ${id} not found`, 'NotFound');
    if (snapshot.stackId !== stack.id)
      throw new NotFoundError(
        `The Snapshot (${id}) for Stack (${stack.name}) could not be found.`,
        'SnapshotNotFound',
      );
    return snapshot;
  }

  /**
   * Heat's delete_snapshot: what the snapshot made (servers' images) is deleted, then the record; one still
   * being taken cannot be (400 NotSupported). Done before the answer (Heat does it in the background).
   */
  async deleteSnapshot(auth: AuthContext, stack: HeatStackEntity, id: string): Promise<void> {
    const snapshot = await this.snapshotOf(auth, stack, id);
    authorize('stacks:delete_snapshot', canActOnProject(auth, stack.projectId));
    if (snapshot.action === 'CREATE' && snapshot.status === 'IN_PROGRESS')
      throw new BadRequestError('Deleting in-progress snapshot is not supported.', 'NotSupported');
    Object.assign(snapshot, {
      action: 'DELETE',
      status: 'IN_PROGRESS',
      statusReason: 'Snapshot delete started',
      updatedAt: nowIso(),
    });
    await this.store.snapshots.save(snapshot);
    try {
      await this.engine.deleteSnapshotData(stack, snapshot);
    } catch (error) {
      Object.assign(snapshot, {
        status: 'FAILED',
        statusReason: (error as Error).message,
        updatedAt: nowIso(),
      });
      await this.store.snapshots.save(snapshot);
      throw error;
    }
    await this.store.snapshots.delete({ id: snapshot.id });
  }

  /**
   * Heat's stack_restore: the stack is updated back to the snapshot's template, environment and files
   * (RESTORE_IN_PROGRESS → RESTORE_COMPLETE; servers restored from their snapshot images), never rolled back.
   * Only a COMPLETE snapshot can be restored (400 NotSupported).
   */
  async restore(auth: AuthContext, stack: HeatStackEntity, id: string): Promise<void> {
    const snapshot = await this.snapshotOf(auth, stack, id);
    authorize('stacks:restore_snapshot', canActOnProject(auth, stack.projectId));
    if (snapshot.status !== 'COMPLETE')
      throw new BadRequestError('Restoring incomplete snapshot is not supported.', 'NotSupported');
    if (stack.deletedAt)
      throw new NotFoundError(`The Stack (${stack.name}) could not be found.`, 'EntityNotFound');
    if (stack.status === 'IN_PROGRESS' || (await this.engine.busy(stack.id))) {
      throw new ConflictError(
        `Stack ${stack.name} already has an action (${stack.action}) in progress.`,
        'ActionInProgress',
      );
    }
    const { template, env, files } = this.engine.restoreInput(stack, snapshot);
    await this.checkCustomConstraints(auth, this.bindForValidation(stack, template, env, files));
    await this.store.setStackState(stack, 'RESTORE', 'IN_PROGRESS', 'Stack RESTORE started');
    await this.engine.update(stack, template, env, files, 'RESTORE');
  }

  /** The live nested stacks of a stack (its template resources', groups' and OS::Heat::Stack resources'). */
  async children(stack: HeatStackEntity): Promise<HeatStackEntity[]> {
    return this.store.stacks.findBy({ ownerId: stack.id, deletedAt: IsNull() });
  }

  async resources(stack: HeatStackEntity): Promise<HeatResourceEntity[]> {
    return this.store.resources.find({ where: { stackId: stack.id }, order: { createdAt: 'ASC' } });
  }

  async resource(stack: HeatStackEntity, name: string): Promise<HeatResourceEntity> {
    const rows = await this.store.resources.find({
      where: { stackId: stack.id, name },
      order: { createdAt: 'DESC' },
    });
    if (!rows.length)
      throw new NotFoundError(
        `The Resource (${name}) could not be found in Stack ${stack.name}.`,
        'EntityNotFound',
      );
    return rows[0];
  }

  async events(stack: HeatStackEntity, resourceName?: string): Promise<HeatEventEntity[]> {
    return this.store.events.find({
      where: { stackId: stack.id, ...(resourceName ? { resourceName } : {}) },
      order: { seq: 'ASC' },
    });
  }

  async validate(auth: AuthContext, body: StackRequest) {
    authorize('stacks:validate_template', canReadProject(auth, auth.projectId));
    const template = templateOf(body);
    const env = environmentFrom(body);
    const parsed = HotTemplate.parse(template);
    const bound = parsed.bind({
      stack: { name: 'validate', id: 'None', projectId: auth.projectId ?? '' },
      params: env.parameters,
      parameterDefaults: env.parameter_defaults,
      files: filesFrom(body),
      requireValues: false,
    });
    // With a value for every parameter the functions can be evaluated, which finds what only evaluation
    // does (a function of another version, a missing file, a reference to no resource); else the graph.
    const valued = parsed.parameterSchemas.every(
      (schema) =>
        env.parameters[schema.name] !== undefined ||
        env.parameter_defaults[schema.name] !== undefined ||
        schema.default !== undefined,
    );
    if (valued) bound.validate();
    else bound.graph();
    for (const snippet of bound.resources()) {
      if (!typeFor(env, snippet.type, bound.files))
        throw new HotError(`The Resource Type (${snippet.type}) could not be found.`, [
          'resources',
          snippet.name,
        ]);
    }
    const parameters: Record<string, unknown> = {};
    for (const schema of parsed.parameterSchemas) {
      const entry: Record<string, unknown> = {
        Type: {
          string: 'String',
          number: 'Number',
          json: 'Json',
          comma_delimited_list: 'CommaDelimitedList',
          boolean: 'Boolean',
        }[schema.type],
        Description: schema.description ?? '',
        Label: schema.label ?? schema.name,
        NoEcho: schema.hidden ? 'true' : 'false',
      };
      if (schema.default !== undefined) entry.Default = schema.default;
      if (env.parameters[schema.name] !== undefined) entry.Value = env.parameters[schema.name];
      for (const c of schema.constraints) {
        if (c.kind === 'allowed_values') entry.AllowedValues = c.definition;
        if (c.kind === 'allowed_pattern') entry.AllowedPattern = c.definition;
        if (c.kind === 'length' && isMap(c.definition)) {
          if (c.definition.min !== undefined) entry.MinLength = c.definition.min;
          if (c.definition.max !== undefined) entry.MaxLength = c.definition.max;
        }
        if (c.kind === 'range' && isMap(c.definition)) {
          if (c.definition.min !== undefined) entry.MinValue = c.definition.min;
          if (c.definition.max !== undefined) entry.MaxValue = c.definition.max;
        }
        if (c.description) entry.ConstraintDescription = c.description;
      }
      parameters[schema.name] = entry;
    }
    return {
      Description: parsed.parsed.description || 'No description',
      Parameters: parameters,
      ...(parsed.parsed.parameterGroups.length ? { ParameterGroups: parsed.parsed.parameterGroups } : {}),
      Environment: env,
    };
  }
}
