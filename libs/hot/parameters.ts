import { HotError } from './errors';
import { isMap, Json, JsonMap } from './parse';

export const PARAMETER_TYPES = ['string', 'number', 'json', 'comma_delimited_list', 'boolean'] as const;
export type ParameterType = (typeof PARAMETER_TYPES)[number];

export interface Constraint {
  kind: 'length' | 'range' | 'allowed_values' | 'allowed_pattern' | 'custom_constraint' | 'modulo';
  definition: Json;
  description?: string;
}

export interface ParameterSchema {
  name: string;
  type: ParameterType;
  label?: string;
  description?: string;
  default?: Json;
  hidden: boolean;
  immutable: boolean;
  tags: Json[];
  constraints: Constraint[];
}

const PARAMETER_KEYS = [
  'type',
  'label',
  'description',
  'default',
  'hidden',
  'constraints',
  'immutable',
  'tags',
];
const CONSTRAINT_KINDS = [
  'length',
  'range',
  'allowed_values',
  'allowed_pattern',
  'custom_constraint',
  'modulo',
];

/** The pseudo parameters every stack offers to get_param. */
export const PSEUDO_PARAMETERS = ['OS::stack_name', 'OS::stack_id', 'OS::project_id'] as const;

/** Parses the `parameters` section into schemas (Heat's HOTParamSchema checks, with its messages). */
export function parseParameterSchemas(section: JsonMap): ParameterSchema[] {
  return Object.entries(section).map(([name, definition]) => {
    const fail = (message: string) => new HotError(message, ['parameters', name]);
    if (!isMap(definition)) throw fail(`Invalid parameter (${name}), expected a mapping`);
    for (const key of Object.keys(definition)) {
      if (!PARAMETER_KEYS.includes(key)) throw fail(`Invalid key '${key}' for parameter (${name})`);
    }
    if (!('type' in definition)) throw fail(`Missing parameter type for parameter: ${name}`);
    const type = definition.type as ParameterType;
    if (!PARAMETER_TYPES.includes(type)) throw fail(`Invalid type (${String(definition.type)})`);
    if (definition.tags !== undefined && !Array.isArray(definition.tags)) {
      throw fail(`Tags property should be a list for parameter: ${name}`);
    }
    const constraintList = definition.constraints ?? [];
    if (!Array.isArray(constraintList)) throw fail('Invalid parameter constraints, expected a list');
    const constraints = constraintList.map((item) => parseConstraint(name, type, item));
    const schema: ParameterSchema = {
      name,
      type,
      label: typeof definition.label === 'string' ? definition.label : undefined,
      description: typeof definition.description === 'string' ? definition.description : undefined,
      default: definition.default ?? undefined,
      hidden: toBoolean(definition.hidden ?? false, name),
      immutable: toBoolean(definition.immutable ?? false, name),
      tags: (definition.tags as Json[] | undefined) ?? [],
      constraints,
    };
    if (schema.default !== undefined) {
      try {
        checkValue(schema, schema.default, { skipCustom: true });
      } catch (error) {
        throw fail(`Invalid default ${display(schema.default)} (${(error as Error).message})`);
      }
    }
    return schema;
  });
}

function parseConstraint(name: string, type: ParameterType, item: Json): Constraint {
  const fail = (message: string) => new HotError(message, ['parameters', name, 'constraints']);
  if (!isMap(item)) throw fail('Invalid parameter constraints, expected a list of mappings');
  const kinds = Object.keys(item).filter((key) => key !== 'description');
  if (kinds.length !== 1 || !CONSTRAINT_KINDS.includes(kinds[0])) {
    throw fail(
      `Invalid key '${kinds.find((k) => !CONSTRAINT_KINDS.includes(k)) ?? kinds.join(', ')}' for parameter constraints`,
    );
  }
  const kind = kinds[0] as Constraint['kind'];
  const definition = item[kind];
  const applies: Record<string, ParameterType[]> = {
    length: ['string', 'comma_delimited_list', 'json'],
    range: ['number'],
    modulo: ['number'],
    allowed_values: ['string', 'number', 'comma_delimited_list', 'json', 'boolean'],
    allowed_pattern: ['string', 'comma_delimited_list'],
    custom_constraint: [...PARAMETER_TYPES],
  };
  if (!applies[kind].includes(type)) {
    throw fail(`${kind} constraint invalid for parameter type ${type}`);
  }
  if (kind === 'length' || kind === 'range') {
    if (!isMap(definition) || (definition.min === undefined && definition.max === undefined)) {
      throw fail(`A ${kind} constraint must have a min value and/or a max value specified.`);
    }
    for (const bound of [definition.min, definition.max]) {
      if (bound !== undefined && Number.isNaN(Number(bound))) throw fail('min/max must be numeric');
    }
  }
  if (kind === 'allowed_values' && !Array.isArray(definition)) throw fail('AllowedValues must be a list');
  if (kind === 'allowed_pattern') {
    if (typeof definition !== 'string') throw fail('AllowedPattern must be a string');
    try {
      new RegExp(definition);
    } catch {
      throw fail(`Invalid allowed_pattern "${definition}"`);
    }
  }
  if (kind === 'custom_constraint' && typeof definition !== 'string') {
    throw fail('custom_constraint must be a string');
  }
  return {
    kind,
    definition,
    ...(typeof item.description === 'string' ? { description: item.description } : {}),
  };
}

function display(value: Json): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

const TRUE_WORDS = ['t', 'true', 'on', 'y', 'yes', '1'];
const FALSE_WORDS = ['f', 'false', 'off', 'n', 'no', '0'];

function toBoolean(value: Json, name: string): boolean {
  if (typeof value === 'boolean') return value;
  const text = String(value).toLowerCase();
  if (TRUE_WORDS.includes(text)) return true;
  if (FALSE_WORDS.includes(text)) return false;
  throw new HotError(`Value "${String(value)}" is invalid for data type "boolean".`, ['parameters', name]);
}

/** Converts a given value to the parameter's type, as Heat's Parameter classes parse them. */
export function convertValue(type: ParameterType, value: Json): Json {
  switch (type) {
    case 'string':
      if (isMap(value) || Array.isArray(value)) {
        throw new Error(`Value must be a string; got ${JSON.stringify(value)}`);
      }
      return value === null ? '' : String(value);
    case 'number': {
      const text = String(value).trim();
      const number = text === '' || typeof value === 'boolean' ? NaN : Number(text);
      if (typeof value === 'object' || !Number.isFinite(number)) {
        throw new Error(`Value "${display(value)}" is invalid for data type "number".`);
      }
      return number;
    }
    case 'boolean': {
      if (typeof value === 'boolean') return value;
      const text = String(value).toLowerCase();
      if (TRUE_WORDS.includes(text)) return true;
      if (FALSE_WORDS.includes(text)) return false;
      throw new Error(
        `Unrecognized value '${display(value)}', acceptable values are: ${[...TRUE_WORDS, ...FALSE_WORDS].map((w) => `'${w}'`).join(', ')}`,
      );
    }
    case 'comma_delimited_list':
      if (Array.isArray(value)) return value.map((item) => (typeof item === 'string' ? item : display(item)));
      if (isMap(value))
        throw new Error(`Value must be a comma-delimited list string: ${JSON.stringify(value)}`);
      return value === null || value === '' ? [] : String(value).split(',');
    case 'json':
      if (typeof value === 'string') {
        if (value === '') return {};
        try {
          return JSON.parse(value) as Json;
        } catch (error) {
          throw new Error(`Value must be valid JSON: ${(error as Error).message}`);
        }
      }
      return value;
  }
}

function constraintMessage(constraint: Constraint, value: Json): string | undefined {
  const def = constraint.definition as JsonMap;
  switch (constraint.kind) {
    case 'length': {
      const length = Array.isArray(value)
        ? value.length
        : isMap(value)
          ? Object.keys(value).length
          : String(value).length;
      const min = def.min === undefined ? undefined : Number(def.min);
      const max = def.max === undefined ? undefined : Number(def.max);
      if ((min !== undefined && length < min) || (max !== undefined && length > max)) {
        return `length (${length}) is out of range (min: ${def.min ?? 'None'}, max: ${def.max ?? 'None'})`;
      }
      return undefined;
    }
    case 'range': {
      const n = Number(value);
      if ((def.min !== undefined && n < Number(def.min)) || (def.max !== undefined && n > Number(def.max))) {
        return `${display(value)} is out of range (min: ${def.min ?? 'None'}, max: ${def.max ?? 'None'})`;
      }
      return undefined;
    }
    case 'modulo': {
      const step = Number(def.step);
      const offset = Number(def.offset ?? 0);
      if (step && (((Number(value) - offset) % step) + step) % step !== 0) {
        return `${display(value)} is not a multiple of ${step} with an offset of ${offset})`;
      }
      return undefined;
    }
    case 'allowed_values': {
      const allowed = constraint.definition as Json[];
      const matches = (v: Json) =>
        allowed.some((a) => JSON.stringify(a) === JSON.stringify(v) || String(a) === String(v));
      const ok = Array.isArray(value) && !Array.isArray(allowed[0]) ? value.every(matches) : matches(value);
      if (!ok) {
        return `${JSON.stringify(value)} is not an allowed value [${allowed.map((a) => JSON.stringify(a)).join(', ')}]`;
      }
      return undefined;
    }
    case 'allowed_pattern': {
      const pattern = constraint.definition as string;
      // Python's re.match anchors at the start; Heat also requires the match to cover the whole value.
      const anchored = new RegExp(`^(?:${pattern})$`);
      const items = Array.isArray(value) ? value : [value];
      const bad = items.find((item) => !anchored.test(String(item)));
      return bad === undefined ? undefined : `"${String(bad)}" does not match pattern "${pattern}"`;
    }
    case 'custom_constraint':
      return undefined;
  }
}

/** Converts a value and checks the schema's constraints; throws an Error with Heat's constraint message. */
export function checkValue(
  schema: ParameterSchema,
  value: Json,
  options: { skipCustom?: boolean } = {},
): Json {
  const converted = convertValue(schema.type, value);
  for (const constraint of schema.constraints) {
    if (constraint.kind === 'custom_constraint' && options.skipCustom) continue;
    const message = constraintMessage(constraint, converted);
    if (message) throw new Error(constraint.description ?? message);
  }
  return converted;
}

/** A custom constraint (`nova.flavor`, `glance.image`, ...) checked against the cloud; resolves to an error message or null. */
export type CustomConstraintCheck = (constraint: string, value: Json) => Promise<string | null>;

export interface ResolvedParameters {
  schemas: ParameterSchema[];
  values: Record<string, Json>;
}

/**
 * The stack's parameter values: the user's (which must be declared), else the environment's
 * parameter_defaults, else the template default; each converted and checked. Throws Heat's messages.
 */
export function resolveParameters(
  schemas: ParameterSchema[],
  userParams: Record<string, Json>,
  parameterDefaults: Record<string, Json> = {},
  options: { requireValues?: boolean } = {},
): ResolvedParameters {
  const known = new Set(schemas.map((s) => s.name));
  for (const name of Object.keys(userParams)) {
    if (!known.has(name)) throw new HotError(`The Parameter (${name}) was not defined in template.`);
  }
  const values: Record<string, Json> = {};
  for (const schema of schemas) {
    const given = userParams[schema.name] ?? parameterDefaults[schema.name] ?? schema.default;
    if (given === undefined || given === null) {
      if (options.requireValues !== false) {
        throw new HotError(`The Parameter (${schema.name}) was not provided.`);
      }
      continue;
    }
    try {
      values[schema.name] = checkValue(schema, given, { skipCustom: true });
    } catch (error) {
      throw new HotError(`Parameter '${schema.name}' is invalid: ${(error as Error).message}`);
    }
  }
  return { schemas, values };
}

/** Runs the custom constraints of the given values through `check` (the engine's cloud lookups). */
export async function checkCustomConstraints(
  resolved: ResolvedParameters,
  check: CustomConstraintCheck,
): Promise<void> {
  for (const schema of resolved.schemas) {
    const value = resolved.values[schema.name];
    if (value === undefined) continue;
    for (const constraint of schema.constraints) {
      if (constraint.kind !== 'custom_constraint') continue;
      const items = Array.isArray(value) ? value : [value];
      for (const item of items) {
        const message = await check(constraint.definition as string, item);
        if (message) {
          throw new HotError(
            `Parameter '${schema.name}' is invalid: ${constraint.description ?? `Error validating value '${display(item)}': ${message}`}`,
          );
        }
      }
    }
  }
}

/** The value a stack shows for a parameter: hidden ones as asterisks, lists joined, JSON as text. */
export function displayParameter(schema: ParameterSchema | undefined, value: Json): string {
  if (schema?.hidden) return '******';
  if (Array.isArray(value) && schema?.type === 'comma_delimited_list') return value.join(',');
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return JSON.stringify(value);
}
