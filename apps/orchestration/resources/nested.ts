import { createHash } from 'node:crypto';
import {
  deepEqual,
  HotError,
  HotTemplate,
  isMap,
  Json,
  JsonMap,
  ParameterSchema,
  parseTemplateText,
  selectPath,
} from '@novum/hot';
import {
  ActionContext,
  ActionResult,
  NestedStackResult,
  NestedStacks,
  NestedStackSpec,
  PropertySchema,
  PropertyType,
  ResourceActionError,
  ResourceState,
  ResourceType,
  StackAction,
} from './types';

/** Heat's rule for a type name that is a template (heat/engine/environment.py): a .yaml or .template file. */
export function isTemplateName(name: string): boolean {
  return name.endsWith('.yaml') || name.endsWith('.template');
}

function nestedOf(ctx: ActionContext): NestedStacks {
  if (!ctx.nested) throw new Error('Nested stacks are not available to this action.');
  return ctx.nested;
}

/**
 * Heat's StackResource.handle_suspend / handle_resume / handle_check: the same action on the nested stack,
 * waited for; a nested stack never made fails the resource.
 */
function nestedAction(action: StackAction) {
  return async (ctx: ActionContext, state: ResourceState): Promise<void> => {
    if (!state.physicalId)
      throw new ResourceActionError(
        'Error',
        `Cannot ${action.toLowerCase()} ${state.name}, stack not created`,
      );
    await nestedOf(ctx).act(state.physicalId, action);
  };
}

const nestedActions: Pick<ResourceType, 'nestedStack' | 'suspend' | 'resume' | 'check'> = {
  nestedStack: true,
  suspend: nestedAction('SUSPEND'),
  resume: nestedAction('RESUME'),
  check: nestedAction('CHECK'),
};

/** What a nested-stack resource keeps in its data: the child's name, ARN and outputs, its members' values. */
function dataOf(result: NestedStackResult): JsonMap {
  return {
    stackName: result.stackName,
    arn: result.arn,
    outputs: result.outputs,
    members: result.members as unknown as JsonMap,
  };
}

function outputsOf(state: ResourceState): JsonMap {
  return isMap(state.data.outputs as Json) ? (state.data.outputs as JsonMap) : {};
}

const PARAMETER_PROPERTY_TYPES: Record<string, PropertyType> = {
  string: 'string',
  number: 'number',
  boolean: 'boolean',
  comma_delimited_list: 'list',
  json: 'any',
};

/** Parameters without value are left out, so that the child's own defaults apply. */
function givenParameters(properties: JsonMap): JsonMap {
  return Object.fromEntries(Object.entries(properties).filter(([, v]) => v !== null && v !== undefined));
}

const templateTypes = new Map<string, ResourceType>();

/**
 * A template resource (heat/engine/resources/template_resource.py): a type that is a template file given
 * in `files`, directly (`type: my.yaml`) or through the environment's resource_registry. Its properties
 * are the template's parameters (required where the parameter has no default), its attributes the
 * template's outputs and `OS::stack_id`; creating it creates a nested stack.
 */
export function templateResource(
  name: string,
  text: string,
  registryKey: string | undefined,
  parameterDefaults: Record<string, Json>,
): ResourceType {
  const key = JSON.stringify([name, registryKey ?? null, Object.keys(parameterDefaults).sort(), text]);
  const cached = templateTypes.get(key);
  if (cached) return cached;
  const parsedTemplate = parseTemplateText(text, name);
  const template = HotTemplate.parse(parsedTemplate);
  const property = (schema: ParameterSchema): PropertySchema => ({
    type: PARAMETER_PROPERTY_TYPES[schema.type] ?? 'any',
    description: schema.description ?? '',
    required: schema.default === undefined && !(schema.name in parameterDefaults),
    updateAllowed: true,
  });
  const digest = createHash('sha256').update(text).digest('hex');
  const spec = (properties: JsonMap): NestedStackSpec => ({
    template: parsedTemplate,
    parameters: givenParameters(properties),
    registryKeyToDrop: registryKey,
  });
  const type: ResourceType = {
    name,
    description: String(parsedTemplate.description ?? ''),
    properties: Object.fromEntries(
      template.parameterSchemas.map((schema) => [schema.name, property(schema)]),
    ),
    attributes: Object.fromEntries([
      ...template.parsed.outputs.map((output) => [
        output.name,
        { description: output.description ?? 'No description given' },
      ]),
      ['OS::stack_id', { description: 'The ID of the nested stack.' }],
    ]),
    async create(ctx, properties): Promise<ActionResult> {
      const result = await nestedOf(ctx).create(spec(properties));
      return { physicalId: result.stackId, data: { ...dataOf(result), templateDigest: digest } };
    },
    async update(ctx, state, properties): Promise<ActionResult> {
      const result = await nestedOf(ctx).update(state.physicalId as string, spec(properties));
      return { physicalId: result.stackId, data: { ...dataOf(result), templateDigest: digest } };
    },
    outdated: (state) => state.data.templateDigest !== digest,
    async delete(ctx, state) {
      if (state.physicalId) await nestedOf(ctx).delete(state.physicalId);
    },
    ...nestedActions,
    attribute: (state, attribute) =>
      attribute === 'OS::stack_id' ? state.physicalId : (outputsOf(state)[attribute] ?? null),
    // Heat: the nested template's `OS::stack_id` output when it has one, else the nested stack's ARN.
    reference: (state) => outputsOf(state)['OS::stack_id'] ?? (state.data.arn as Json) ?? state.physicalId,
  };
  if (templateTypes.size > 500) templateTypes.clear();
  templateTypes.set(key, type);
  return type;
}

/**
 * OS::Heat::Stack: a stack from a template given as a string, with parameters and a timeout. Heat makes
 * it through the orchestration API (possibly in another region); here it is a nested stack of its parent.
 */
export const heatStack: ResourceType = {
  name: 'OS::Heat::Stack',
  description: 'A resource representing a stack which can be created using a template.',
  properties: {
    context: {
      type: 'map',
      description: 'Context for this stack.',
      schema: {
        region_name: { type: 'string', description: 'Region name in which this stack will be created.' },
        ca_cert: { type: 'string', description: 'CA Cert for SSL.' },
        insecure: { type: 'boolean', description: 'If set, then the server cert will not be verified.' },
      },
    },
    template: {
      type: 'string',
      description: 'Template that specifies the stack to be created as a resource.',
      required: true,
      updateAllowed: true,
    },
    timeout: {
      type: 'integer',
      description: 'Number of minutes to wait for this stack creation.',
      updateAllowed: true,
    },
    parameters: {
      type: 'map',
      description: 'Set of parameters passed to this stack.',
      default: {},
      updateAllowed: true,
    },
  },
  attributes: {
    stack_name: { description: 'Name of the stack.' },
    outputs: { description: 'A dict of key-value pairs output from the stack.' },
  },
  async create(ctx, properties) {
    const result = await nestedOf(ctx).create(heatStackSpec(properties));
    return { physicalId: result.stackId, data: dataOf(result) };
  },
  async update(ctx, state, properties) {
    const result = await nestedOf(ctx).update(state.physicalId as string, heatStackSpec(properties));
    return { physicalId: result.stackId, data: dataOf(result) };
  },
  async delete(ctx, state) {
    if (state.physicalId) await nestedOf(ctx).delete(state.physicalId);
  },
  ...nestedActions,
  attribute: (state, attribute) => {
    if (attribute === 'stack_name') return (state.data.stackName as Json) ?? null;
    if (attribute === 'outputs') return outputsOf(state);
    return null;
  },
};

function heatStackSpec(properties: JsonMap): NestedStackSpec {
  return {
    template: parseTemplateText(properties.template as string, 'template'),
    parameters: (properties.parameters as JsonMap | null) ?? {},
    timeoutMins: (properties.timeout as number | null) ?? null,
  };
}

interface GroupMember {
  ref: Json;
  attributes: JsonMap;
}

function groupMembers(state: ResourceState): Record<string, GroupMember> {
  return (isMap(state.data.members as Json) ? state.data.members : {}) as unknown as Record<
    string,
    GroupMember
  >;
}

function groupNames(state: ResourceState): string[] {
  return Array.isArray(state.data.names) ? (state.data.names as string[]) : [];
}

/** `%index%` (or the index_var) replaced by the member's name in every string of a property value. */
function substituteIndex(value: Json, indexVar: string, name: string): Json {
  if (typeof value === 'string') return value.split(indexVar).join(name);
  if (Array.isArray(value)) return value.map((item) => substituteIndex(item, indexVar, name));
  if (isMap(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteIndex(v, indexVar, name)]));
  return value;
}

/** The first `count` names of 0, 1, 2, ... that were never removed by a removal policy. */
function memberNames(count: number, blacklist: Set<string>): string[] {
  const names: string[] = [];
  for (let i = 0; names.length < count; i++) if (!blacklist.has(String(i))) names.push(String(i));
  return names;
}

/** The names removal_policies remove: given by name or by reference, among the current members. */
function blacklistOf(state: ResourceState | undefined, properties: JsonMap): Set<string> {
  const blacklist = new Set<string>(
    state && Array.isArray(state.data.blacklist) ? (state.data.blacklist as string[]) : [],
  );
  if (!state) return blacklist;
  const members = groupMembers(state);
  for (const policy of (properties.removal_policies as JsonMap[] | null) ?? []) {
    for (const entry of (policy.resource_list as Json[] | null) ?? []) {
      const wanted = String(entry);
      if (wanted in members) blacklist.add(wanted);
      else {
        const byRef = Object.entries(members).find(([, member]) => String(member.ref) === wanted);
        if (byRef) blacklist.add(byRef[0]);
      }
    }
  }
  return blacklist;
}

function groupTemplate(properties: JsonMap, names: string[]): JsonMap {
  const definition = properties.resource_def as JsonMap;
  const indexVar = properties.index_var as string;
  const given = (definition.properties as JsonMap | null) ?? {};
  const cleaned = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== null));
  const resources: JsonMap = {};
  for (const name of names) {
    resources[name] = {
      type: definition.type as string,
      properties: substituteIndex(cleaned, indexVar, name),
      ...(isMap(definition.metadata as Json) ? { metadata: definition.metadata as JsonMap } : {}),
    };
  }
  return { heat_template_version: '2015-04-30', resources };
}

/** One member's definition in the group's nested template (its index substituted). */
function memberDefinition(properties: JsonMap, name: string): JsonMap {
  return (groupTemplate(properties, [name]).resources as JsonMap)[name] as JsonMap;
}

/** Member names in the order of their index (the order they were made). */
function byIndex(names: string[]): string[] {
  return [...names].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
}

/**
 * Heat's rolling_update.next_batch, as ResourceGroup._get_batches runs it: for each batch the group's size
 * during it and how many members get the new definition, until every member of the target size has it;
 * with min_in_service the group grows above its size first so that as many stay in service.
 */
export function groupBatches(
  target: number,
  current: number,
  batchSize: number,
  minInService: number,
): [number, number][] {
  const batches: [number, number][] = [];
  let updated = 0;
  while (!(updated >= current && current === target) && batches.length < 10_000) {
    const effectiveMin = Math.min(minInService, target, current);
    const effectiveBatch = Math.min(batchSize, Math.max(target - updated, 0));
    const capacity = effectiveBatch + Math.max(Math.min(current, target - effectiveBatch), effectiveMin);
    batches.push([capacity, effectiveBatch]);
    updated += effectiveBatch - Math.max(capacity - Math.max(current, target), 0);
    current = capacity;
  }
  return batches;
}

/**
 * Heat's ResourceGroup._assemble_for_rolling_update with scaling member_definitions: the nested template of
 * one batch, `capacity` members of which at most `updates` get the new definition (new members first, then
 * existing ones from the highest index down); members beyond the size, or removed, go first.
 */
function batchTemplate(
  properties: JsonMap,
  blacklist: Set<string>,
  current: Map<string, JsonMap>,
  capacity: number,
  updates: number,
): JsonMap {
  const target = properties.count as number;
  const names = memberNames(capacity, blacklist);
  const priority = (name: string) => {
    const index = names.indexOf(name);
    if (index < 0) return 0;
    return index < target ? target - index : capacity;
  };
  const ordered = [...current.entries()].sort(([a], [b]) => priority(a) - priority(b));
  const old = capacity > 0 ? ordered.slice(-capacity) : [];
  const fresh = names.filter((name) => !current.has(name));
  let replace = updates - (capacity - Math.min(old.length, capacity));
  const resources: JsonMap = {};
  for (let i = 0; i < capacity; i++) {
    if (i < old.length) {
      const [name, definition] = old[i];
      const wanted = memberDefinition(properties, name);
      if (replace > 0 && !deepEqual(definition, wanted)) {
        replace--;
        resources[name] = wanted;
      } else resources[name] = definition;
    } else {
      const name = fresh.shift();
      if (name === undefined) break;
      resources[name] = memberDefinition(properties, name);
    }
  }
  return { heat_template_version: '2015-04-30', resources };
}

/**
 * Heat's ResourceGroup._replace: the group's nested stack created or updated batch by batch (groupBatches),
 * with `pauseSeconds` between batches; `current` holds the members' definitions before it. The outcome of the
 * last batch, and the member names it left, or undefined when there was no batch to run.
 */
async function inBatches(
  ctx: ActionContext,
  stackId: string | null,
  properties: JsonMap,
  blacklist: Set<string>,
  current: Map<string, JsonMap>,
  policy: { minInService: number; batchSize: number; pauseSeconds: number },
): Promise<{ result: NestedStackResult; names: string[] } | undefined> {
  const batches = groupBatches(
    properties.count as number,
    current.size,
    policy.batchSize,
    policy.minInService,
  );
  let outcome: { result: NestedStackResult; names: string[] } | undefined;
  for (const [index, [capacity, updates]] of batches.entries()) {
    const template = batchTemplate(properties, blacklist, current, capacity, updates);
    const spec = { template, parameters: {} };
    const result = stackId ? await nestedOf(ctx).update(stackId, spec) : await nestedOf(ctx).create(spec);
    stackId = result.stackId;
    current = new Map(Object.entries(template.resources as Record<string, JsonMap>));
    outcome = { result, names: byIndex([...current.keys()]) };
    if (index < batches.length - 1 && policy.pauseSeconds > 0) await ctx.sleep(policy.pauseSeconds * 1000);
  }
  return outcome;
}

const nonNegative = (value: Json) =>
  (value as number) < 0 ? `${String(value)} is out of range (min: 0, max: None)` : null;
const positive = (value: Json) =>
  (value as number) < 1 ? `${String(value)} is out of range (min: 1, max: None)` : null;

function groupData(result: NestedStackResult, names: string[], blacklist: Set<string>): JsonMap {
  return {
    ...dataOf(result),
    names,
    blacklist: [...blacklist].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b)),
  };
}

function groupAttribute(state: ResourceState, key: string, path: Json[]): Json {
  const members = groupMembers(state);
  const names = groupNames(state).filter((name) => name in members);
  if (key.startsWith('resource.')) {
    const [, index, ...rest] = key.split('.');
    const member = members[index];
    if (!member) throw new Error(`Member '${index}' not found in group resource '${state.name}'.`);
    // As Heat's grouputils.get_nested_attrs: `[group, resource.N, attr, ...]` is `[group, resource.N.attr, ...]`.
    const [attribute, ...below] = rest.length ? [rest.join('.'), ...path] : path;
    if (attribute === undefined) return member.ref;
    return selectPath(member.attributes[String(attribute)] ?? null, below);
  }
  switch (key) {
    case 'refs':
      return selectPath(
        names.map((name) => members[name].ref),
        path,
      );
    case 'refs_map':
      return selectPath(Object.fromEntries(names.map((name) => [name, members[name].ref])), path);
    case 'removed_rsrc_list':
      return selectPath((state.data.blacklist as Json) ?? [], path);
    case 'attributes': {
      if (!path.length)
        throw new HotError(`The Referenced Attribute (${state.name} attributes) is incorrect.`);
      const [attribute, ...below] = path;
      return Object.fromEntries(
        names.map((name) => [name, selectPath(members[name].attributes[String(attribute)] ?? null, below)]),
      );
    }
    default:
      return names.map((name) => selectPath(members[name].attributes[key] ?? null, path));
  }
}

/**
 * OS::Heat::ResourceGroup (heat/engine/resources/openstack/heat/resource_group.py): `count` copies of
 * `resource_def` in a nested stack, named 0, 1, 2, ... with the index_var replaced by the name; members
 * named by removal_policies are removed and their names never reused; get_attr gives lists of the
 * members' attributes, `attributes/<name>` a map, `resource.N[.attr]` one member.
 */
export const resourceGroup: ResourceType = {
  name: 'OS::Heat::ResourceGroup',
  description: 'Creates one or more identically configured nested resources.',
  properties: {
    count: {
      type: 'integer',
      description: 'The number of resources to create.',
      default: 1,
      updateAllowed: true,
      check: (value) =>
        (value as number) < 0 ? `${String(value)} is out of range (min: 0, max: None)` : null,
    },
    index_var: {
      type: 'string',
      description:
        'A variable that this resource will use to replace with the current index of a given resource in the group.',
      default: '%index%',
      check: (value) =>
        (value as string).length < 3
          ? `length (${(value as string).length}) is out of range (min: 3, max: None)`
          : null,
    },
    resource_def: {
      type: 'map',
      description: 'Resource definition for the resources in the group.',
      required: true,
      updateAllowed: true,
      schema: {
        type: { type: 'string', description: 'The type of the resources in the group.', required: true },
        properties: { type: 'map', description: 'Property values for the resources in the group.' },
        metadata: { type: 'map', description: 'Supplied metadata for the resources in the group.' },
      },
    },
    removal_policies: {
      type: 'list',
      description: 'Policies for removal of resources on update.',
      default: [],
      updateAllowed: true,
      item: {
        type: 'map',
        description:
          'Policy to be processed when doing an update which requires removal of specific resources.',
        schema: {
          resource_list: {
            type: 'list',
            description: 'List of resources to be removed when doing an update.',
            default: [],
          },
        },
      },
    },
    removal_policies_mode: {
      type: 'string',
      description: 'How to handle changes to removal_policies on update.',
      default: 'append',
      allowedValues: ['append', 'update'],
      updateAllowed: true,
    },
  },
  attributes: {
    refs: { description: 'A list of resource IDs for the resources in the group.' },
    refs_map: { description: 'A map of resource names to IDs for the resources in the group.' },
    attributes: {
      description: 'A map of resource names to the specified attribute of each individual resource.',
    },
    removed_rsrc_list: { description: 'A list of removed resource names.' },
  },
  updatePolicy: {
    rolling_update: {
      type: 'map',
      description: 'Rolling update of the members when resource_def changes.',
      schema: {
        min_in_service: {
          type: 'integer',
          description: 'The minimum number of resources in service while rolling updates are being executed.',
          default: 0,
          check: nonNegative,
        },
        max_batch_size: {
          type: 'integer',
          description: 'The maximum number of resources to replace at once.',
          default: 1,
          check: positive,
        },
        pause_time: {
          type: 'number',
          description: 'The number of seconds to wait between batches of updates.',
          default: 0,
          check: nonNegative,
        },
      },
    },
    batch_create: {
      type: 'map',
      description: 'Creation of the members in batches.',
      schema: {
        max_batch_size: {
          type: 'integer',
          description: 'The maximum number of resources to create at once.',
          default: 1,
          check: positive,
        },
        pause_time: {
          type: 'number',
          description: 'The number of seconds to wait between batches.',
          default: 0,
          check: nonNegative,
        },
      },
    },
  },
  anyAttributes: true,
  memberType: (properties) => {
    const definition = properties.resource_def;
    return isMap(definition as Json) && typeof (definition as JsonMap).type === 'string'
      ? ((definition as JsonMap).type as string)
      : undefined;
  },
  async create(ctx, properties) {
    const blacklist = blacklistOf(undefined, properties);
    const batch = ctx.updatePolicy?.batch_create as JsonMap | null | undefined;
    if (batch && (properties.count as number) > 0) {
      // Heat's batch_create: the nested stack grows by max_batch_size members at a time.
      const batched = await inBatches(ctx, null, properties, blacklist, new Map(), {
        minInService: 0,
        batchSize: batch.max_batch_size as number,
        pauseSeconds: batch.pause_time as number,
      });
      if (batched)
        return {
          physicalId: batched.result.stackId,
          data: groupData(batched.result, batched.names, blacklist),
        };
    }
    const names = memberNames(properties.count as number, blacklist);
    const result = await nestedOf(ctx).create({ template: groupTemplate(properties, names), parameters: {} });
    return { physicalId: result.stackId, data: groupData(result, names, blacklist) };
  },
  async update(ctx, state, properties) {
    const blacklist =
      properties.removal_policies_mode === 'update'
        ? blacklistOf({ ...state, data: { ...state.data, blacklist: [] } }, properties)
        : blacklistOf(state, properties);
    const rolling = ctx.updatePolicy?.rolling_update as JsonMap | null | undefined;
    if (rolling && !deepEqual(state.properties.resource_def ?? null, properties.resource_def ?? null)) {
      // Heat's rolling_update, only when resource_def changes: members replaced max_batch_size at a time.
      const current = byIndex(groupNames(state).filter((name) => !blacklist.has(name)));
      const batched = await inBatches(
        ctx,
        state.physicalId,
        properties,
        blacklist,
        new Map(current.map((name) => [name, memberDefinition(state.properties, name)])),
        {
          minInService: rolling.min_in_service as number,
          batchSize: rolling.max_batch_size as number,
          pauseSeconds: rolling.pause_time as number,
        },
      );
      if (batched)
        return {
          physicalId: batched.result.stackId,
          data: groupData(batched.result, batched.names, blacklist),
        };
    }
    const names = memberNames(properties.count as number, blacklist);
    const result = await nestedOf(ctx).update(state.physicalId as string, {
      template: groupTemplate(properties, names),
      parameters: {},
    });
    return { physicalId: result.stackId, data: groupData(result, names, blacklist) };
  },
  async delete(ctx, state) {
    if (state.physicalId) await nestedOf(ctx).delete(state.physicalId);
  },
  ...nestedActions,
  attribute: (state, attribute) => groupAttribute(state, attribute, []),
  attributeAt: (state, attribute, path) => groupAttribute(state, attribute, path),
};
