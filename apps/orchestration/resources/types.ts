import { functionName, HotError, isMap, Json, JsonMap } from '@novum/hot';
import { CloudSession } from '../cloud';

export type PropertyType = 'string' | 'integer' | 'number' | 'boolean' | 'list' | 'map' | 'any';

export interface PropertySchema {
  type: PropertyType;
  description: string;
  required?: boolean;
  default?: Json;
  /** Changing it updates the resource in place; otherwise a change replaces the resource. */
  updateAllowed?: boolean;
  allowedValues?: Json[];
  /** Schema of list items or map values, when they are checked. */
  schema?: Record<string, PropertySchema>;
  item?: PropertySchema;
  /** A further check of the converted value: the message of a refusal, or null (Heat's custom validate). */
  check?: (value: Json) => string | null;
}

export interface AttributeSchema {
  description: string;
}

/** What a resource type keeps of one resource between actions (the database row's fields it uses). */
export interface ResourceState {
  name: string;
  physicalId: string | null;
  properties: JsonMap;
  data: JsonMap;
}

/** What a resource action may use: the owner's cloud session and names that follow Heat's conventions. */
export interface ActionContext {
  cloud(): Promise<CloudSession>;
  stackName: string;
  stackId: string;
  /** Heat's physical resource name: `<stack>-<resource>-<random>`. */
  physicalName: string;
  /** Sleeps, unless the action was cancelled (timeout or engine shutdown), in which case it throws. */
  sleep(ms: number): Promise<void>;
  /** The content of a software config of the owner's project by id (CloudConfig, MultipartMime), if any. */
  softwareConfig?(id: string): Promise<string | undefined>;
  /**
   * Records the physical id (and what deleting needs) as soon as the cloud has accepted the create, before
   * waiting for it to finish (Heat's resource_id_set): an engine that stops mid-create leaves it tracked.
   */
  created?(physicalId: string, data?: JsonMap): Promise<void>;
  /** Nested stacks of this resource (template resources, OS::Heat::Stack, ResourceGroup). */
  nested?: NestedStacks;
  /**
   * The resource's update_policy checked against its type's schema, defaults filled in (a group's
   * `rolling_update` and `batch_create`), on a create or update; absent for types without one, and on adopt.
   */
  updatePolicy?: JsonMap;
}

/** A nested stack as a resource asks for it: its template, parameters and how its environment differs. */
export interface NestedStackSpec {
  template: JsonMap;
  parameters: JsonMap;
  /** The resource_registry entry that led to this template (left out of the child's registry, as Heat). */
  registryKeyToDrop?: string;
  timeoutMins?: number | null;
}

/** What a resource keeps of its nested stack to answer get_attr without reading the stack again. */
export interface NestedStackResult {
  stackId: string;
  stackName: string;
  /** Heat's stack ARN, `arn:openstack:heat::<project>:stacks/<name>/<id>`. */
  arn: string;
  outputs: JsonMap;
  /** Each nested resource by name: its reference and every attribute its type declares. */
  members: Record<string, { ref: Json; attributes: JsonMap }>;
}

/** The engine's nested-stack operations, run to completion inside the parent's action. */
export interface NestedStacks {
  /** Creates the nested stack; during an adopt, the nested stack adopts the resources of its abandon data. */
  create(spec: NestedStackSpec): Promise<NestedStackResult>;
  update(stackId: string, spec: NestedStackSpec): Promise<NestedStackResult>;
  delete(stackId: string): Promise<void>;
  /** Suspends, resumes or checks the nested stack, as the parent's resource does (Heat's StackResource). */
  act(stackId: string, action: StackAction): Promise<void>;
}

/** The stack actions beyond the life cycle (Heat's actions API): suspend, resume, check. */
export type StackAction = 'SUSPEND' | 'RESUME' | 'CHECK';

/**
 * A failure a resource action reports under Heat's exception class name (`ResourceUnknownStatus`,
 * `NotFound`...), which the status reason shows before the resource path.
 */
export class ResourceActionError extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

/** A template's resource as implicit dependencies see it: its resolved type, raw properties, requirements. */
export interface TemplateResource {
  name: string;
  type: string;
  properties: JsonMap;
  /** What it refers to or names in depends_on. */
  requires: string[];
}

export interface ActionResult {
  physicalId: string | null;
  data: JsonMap;
}

/** One resource type (Heat's plugin class): schemas and the create / update / delete handlers. */
export interface ResourceType {
  name: string;
  description: string;
  properties: Record<string, PropertySchema>;
  attributes: Record<string, AttributeSchema>;
  /** The schema of the resource's update_policy (Heat's update_policy_schema), for types that have one. */
  updatePolicy?: Record<string, PropertySchema>;
  /** Any properties accepted without a schema (OS::Heat::None). */
  anyProperties?: boolean;
  /**
   * Its physical resource is a nested stack of this stack (template resources, OS::Heat::Stack, ResourceGroup):
   * abandon data gives the nested stack's own, and adopt makes the nested stack adopt its resources.
   */
  nestedStack?: boolean;
  /** Attribute names beyond the schema are valid (ResourceGroup's member attributes, `resource.N.attr`). */
  anyAttributes?: boolean;
  /** The type of the members it makes from literal properties, checked before creation (ResourceGroup). */
  memberType?(properties: JsonMap): string | undefined;
  /** A change outside the properties that an update applies in place (a template resource's file). */
  outdated?(state: ResourceState): boolean;
  /** get_attr with its path applied by the type itself (a group applies the path to each member). */
  attributeAt?(state: ResourceState, name: string, path: Json[]): Json;
  /**
   * Heat's Resource.validate beyond the schema, on the template's properties (values may still be
   * functions): the message of a refusal (a conflict between properties, a missing alternative), or null.
   */
  validate?(properties: JsonMap): string | null;
  /**
   * Heat's add_dependencies: resources of the template this one needs although it does not refer to them
   * (a floating IP needs the router interface that makes its port reachable). Names of `others`.
   */
  implicitRequirements?(self: TemplateResource, others: TemplateResource[]): string[];
  create(ctx: ActionContext, properties: JsonMap): Promise<ActionResult>;
  /** In-place update of updatable properties. Absent: every change replaces. */
  update?(ctx: ActionContext, state: ResourceState, properties: JsonMap): Promise<ActionResult>;
  /** A change that replaces the resource even though every changed property is updatable. */
  needsReplacement?(before: JsonMap, after: JsonMap): boolean;
  delete(ctx: ActionContext, state: ResourceState): Promise<void>;
  /**
   * Heat's handle_suspend / handle_resume (with their check_*_complete): the resource's data afterwards
   * (a server's refreshed view). Absent: the action only moves the resource's state.
   */
  suspend?(ctx: ActionContext, state: ResourceState): Promise<JsonMap | void>;
  resume?(ctx: ActionContext, state: ResourceState): Promise<JsonMap | void>;
  /** Heat's handle_check: throws when the physical resource is missing or not in its expected state. */
  check?(ctx: ActionContext, state: ResourceState): Promise<void>;
  /**
   * Heat's handle_snapshot (with check_snapshot_complete), in a stack snapshot: what the resource keeps of
   * its snapshot, added to its data and so to the snapshot's (a server's `snapshot_image_id`). Absent: the
   * snapshot only moves the resource's state.
   */
  snapshot?(ctx: ActionContext, state: ResourceState): Promise<JsonMap | void>;
  /** Heat's handle_delete_snapshot: removes what a snapshot made, given the resource's entry in its data. */
  deleteSnapshot?(ctx: ActionContext, entry: JsonMap): Promise<void>;
  /** Heat's handle_restore: the template properties a restore gives the resource, from its snapshot entry. */
  restore?(properties: JsonMap, entry: JsonMap): JsonMap;
  attribute(state: ResourceState, name: string): Json;
  /** get_resource: the physical id unless the type says otherwise (RandomString gives its value). */
  reference?(state: ResourceState): Json;
}

const TYPE_NAMES: Record<PropertyType, string> = {
  string: 'string',
  integer: 'integer',
  number: 'number',
  boolean: 'boolean',
  list: 'list',
  map: 'map',
  any: 'value',
};

/** Checks and completes properties against a schema (Heat's Properties.validate messages, with the path). */
export function validateProperties(type: ResourceType, given: JsonMap, path: (string | number)[]): JsonMap {
  if (type.anyProperties) return given;
  return validateMap(type.properties, given, path);
}

/** A resource's update_policy checked and completed against its type's schema (Heat's messages and path). */
export function validateUpdatePolicy(
  schema: Record<string, PropertySchema>,
  given: JsonMap,
  path: (string | number)[],
): JsonMap {
  return validateMap(schema, given, path);
}

function validateMap(
  schema: Record<string, PropertySchema>,
  given: JsonMap,
  path: (string | number)[],
): JsonMap {
  for (const key of Object.keys(given)) {
    if (!(key in schema)) throw new HotError(`Unknown Property ${key}`, path, 'Property error');
  }
  const out: JsonMap = {};
  for (const [key, prop] of Object.entries(schema)) {
    let value = given[key];
    if (value === undefined || value === null) value = prop.default ?? null;
    if (value === null) {
      if (prop.required) throw new HotError(`Property ${key} not assigned`, path, 'Property error');
      out[key] = null;
      continue;
    }
    out[key] = validateValue(prop, value, [...path, key]);
  }
  return out;
}

/** True when a property value holds no intrinsic function, so it can be checked before creation. */
function isLiteral(value: Json): boolean {
  if (Array.isArray(value)) return value.every(isLiteral);
  if (isMap(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && functionName(value)) return false;
    return Object.values(value).every(isLiteral);
  }
  return true;
}

/** Checks the properties given literally in the template (functions are checked once evaluated, at create). */
export function validateLiteralProperties(type: ResourceType, raw: JsonMap, path: (string | number)[]): void {
  if (type.anyProperties) return;
  for (const [key, value] of Object.entries(raw)) {
    const prop = type.properties[key];
    if (prop && value !== null && isLiteral(value)) validateValue(prop, value, [...path, key]);
  }
}

function validateValue(prop: PropertySchema, value: Json, path: (string | number)[]): Json {
  const bad = (message: string) => new HotError(message, path, 'Property error');
  let converted: Json = value;
  switch (prop.type) {
    case 'string':
      if (isMap(value) || Array.isArray(value))
        throw bad(`Value must be a string; got ${JSON.stringify(value)}`);
      converted = typeof value === 'string' ? value : String(value);
      break;
    case 'integer': {
      const n = Number(value);
      if (typeof value === 'boolean' || value === '' || !Number.isInteger(n))
        throw bad(`Value '${String(value)}' is not an integer`);
      converted = n;
      break;
    }
    case 'number': {
      const n = Number(value);
      if (typeof value === 'boolean' || value === '' || !Number.isFinite(n))
        throw bad(`Value '${String(value)}' is not a number`);
      converted = n;
      break;
    }
    case 'boolean': {
      const text = String(value).toLowerCase();
      if (typeof value === 'boolean') converted = value;
      else if (['true', 't', 'yes', 'y', 'on', '1'].includes(text)) converted = true;
      else if (['false', 'f', 'no', 'n', 'off', '0'].includes(text)) converted = false;
      else throw bad(`Unrecognized value "${String(value)}", acceptable values are: true, false`);
      break;
    }
    case 'list':
      if (typeof value === 'string') converted = value.split(',');
      else if (!Array.isArray(value)) throw bad(`Value must be a list; got ${JSON.stringify(value)}`);
      if (prop.item)
        converted = (converted as Json[]).map((item, i) =>
          validateValue(prop.item as PropertySchema, item, [...path, i]),
        );
      break;
    case 'map':
      if (!isMap(value)) throw bad(`Value must be a map; got ${JSON.stringify(value)}`);
      if (prop.schema) converted = validateMap(prop.schema, value, path);
      break;
    case 'any':
      break;
  }
  if (prop.allowedValues && !prop.allowedValues.includes(converted)) {
    throw bad(
      `"${String(converted)}" is not an allowed value [${prop.allowedValues.map((v) => JSON.stringify(v)).join(', ')}]`,
    );
  }
  const refusal = prop.check?.(converted);
  if (refusal) throw bad(refusal);
  return converted;
}

/** The resource_types/{type} document: Heat's schema view of properties and attributes. */
export function typeSchema(type: ResourceType): JsonMap {
  const property = (prop: PropertySchema): JsonMap => ({
    type: TYPE_NAMES[prop.type],
    description: prop.description,
    required: prop.required ?? false,
    update_allowed: prop.updateAllowed ?? false,
    immutable: false,
    ...(prop.default !== undefined ? { default: prop.default } : {}),
    ...(prop.allowedValues ? { constraints: [{ allowed_values: prop.allowedValues }] } : {}),
    ...(prop.schema
      ? { schema: Object.fromEntries(Object.entries(prop.schema).map(([k, v]) => [k, property(v)])) }
      : {}),
    ...(prop.item ? { schema: { '*': property(prop.item) } } : {}),
  });
  return {
    resource_type: type.name,
    description: type.description,
    support_status: { status: 'SUPPORTED', version: null, message: null, previous_status: null },
    properties: Object.fromEntries(Object.entries(type.properties).map(([k, v]) => [k, property(v)])),
    attributes: {
      ...Object.fromEntries(
        Object.entries(type.attributes).map(([k, v]) => [k, { description: v.description, type: 'string' }]),
      ),
      show: { description: 'Detailed information about resource.', type: 'map' },
    },
  };
}

/** Property names whose values differ between two property sets. */
export function changedProperties(before: JsonMap, after: JsonMap): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => JSON.stringify(before[k] ?? null) !== JSON.stringify(after[k] ?? null));
}
