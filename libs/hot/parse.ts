import { CORE_SCHEMA, load, YAMLException } from 'js-yaml';
import { HotError } from './errors';
import { atLeast, HOT_VERSIONS, HotVersion, resolveVersion, VERSION_ALIASES } from './versions';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonMap = { [key: string]: Json };

/** One entry of the `resources` section, checked for shape but with its functions not yet evaluated. */
export interface ResourceSnippet {
  name: string;
  type: string;
  properties: Json;
  metadata: Json;
  dependsOn: string[];
  deletionPolicy: 'Delete' | 'Retain' | 'Snapshot';
  updatePolicy: Json;
  description: string;
  /** A condition name, a boolean, or (from 2017-09-01... when inline) a condition expression. */
  condition?: Json;
}

export interface OutputSnippet {
  name: string;
  description: string | null;
  value: Json;
  condition?: Json;
}

export interface ParsedTemplate {
  version: HotVersion;
  /** The template as the user gave it (GET /stacks/{..}/template shows it). */
  raw: JsonMap;
  description: string;
  parameterGroups: Json[];
  parameters: JsonMap;
  resources: ResourceSnippet[];
  outputs: OutputSnippet[];
  conditions: JsonMap;
}

export const MAX_TEMPLATE_SIZE = 524288;

const BASE_SECTIONS = [
  'heat_template_version',
  'description',
  'parameter_groups',
  'parameters',
  'resources',
  'outputs',
];
const BASE_RESOURCE_KEYS = [
  'type',
  'properties',
  'metadata',
  'depends_on',
  'deletion_policy',
  'update_policy',
  'description',
];
const DELETION_POLICIES: Record<string, ResourceSnippet['deletionPolicy']> = {
  Delete: 'Delete',
  Retain: 'Retain',
  Snapshot: 'Snapshot',
  delete: 'Delete',
  retain: 'Retain',
  snapshot: 'Snapshot',
};

/** How deep a template's values may nest (Python's recursion limit bounds Heat's the same way). */
export const MAX_NESTING = 1000;
/** How many values a template may hold once YAML aliases are expanded (512 KiB of text makes far fewer). */
const MAX_VALUES = 1_000_000;

/**
 * Refuses a document nested too deep for the recursive evaluation that follows, or one whose YAML aliases
 * expand beyond any template's size (a "billion laughs"); iterative, so it cannot overflow itself.
 */
export function checkNesting(value: unknown, what = 'The template'): void {
  const pending: [unknown, number][] = [[value, 0]];
  let values = 0;
  while (pending.length) {
    const [item, depth] = pending.pop() as [unknown, number];
    if (typeof item !== 'object' || item === null) continue;
    if (depth >= MAX_NESTING) throw new HotError(`${what} is nested deeper than ${MAX_NESTING} levels.`);
    for (const child of Array.isArray(item) ? item : Object.values(item)) {
      if (++values > MAX_VALUES) throw new HotError(`${what} expands to more than ${MAX_VALUES} values.`);
      pending.push([child, depth + 1]);
    }
  }
}

/** Parses template text as Heat does: JSON first, then YAML (dates stay strings), and it must be a mapping. */
export function parseTemplateText(text: string, url = '[root stack]'): JsonMap {
  if (text.length > MAX_TEMPLATE_SIZE) {
    throw new HotError(
      `Template size (${text.length} bytes) exceeds maximum allowed size (${MAX_TEMPLATE_SIZE} bytes).`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    try {
      parsed = load(text, { schema: CORE_SCHEMA, json: true }) ?? {};
    } catch (error) {
      const reason = error instanceof YAMLException ? error.message : String(error);
      throw new HotError(`Error parsing template ${url} ${reason}`);
    }
  }
  if (!isMap(parsed)) throw new HotError('The template is not a JSON object or YAML mapping.');
  checkNesting(parsed);
  return parsed as JsonMap;
}

export function isMap(value: unknown): value is JsonMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeName(value: unknown): string {
  if (value === null) return 'NoneType';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'string') return 'str';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (typeof value === 'boolean') return 'bool';
  return 'dict';
}

/** Checks a template's structure (sections, version, resource and output shapes) as Heat's Template.validate. */
export function parseTemplate(input: string | JsonMap): ParsedTemplate {
  const raw = typeof input === 'string' ? parseTemplateText(input) : input;
  if (!isMap(raw)) throw new HotError('The template is not a JSON object or YAML mapping.');
  if (typeof input !== 'string') checkNesting(raw);
  if (!('heat_template_version' in raw)) {
    if ('HeatTemplateFormatVersion' in raw || 'AWSTemplateFormatVersion' in raw) {
      throw new HotError(
        'The template version is invalid: CloudFormation-compatible templates are not supported; use heat_template_version.',
      );
    }
    throw new HotError('Template format version not found.');
  }
  const version = resolveVersion(raw.heat_template_version);
  if (!version) {
    const available = [...HOT_VERSIONS, ...Object.keys(VERSION_ALIASES)].sort().join(', ');
    throw new HotError(
      `The template version is invalid: "heat_template_version: ${String(raw.heat_template_version)}". "heat_template_version" should be one of: ${available}`,
    );
  }
  const sections = atLeast(version, '2016-10-14') ? [...BASE_SECTIONS, 'conditions'] : BASE_SECTIONS;
  for (const key of Object.keys(raw)) {
    if (!sections.includes(key)) throw new HotError(`The template section is invalid: ${key}`);
  }
  const section = (name: string): JsonMap => {
    const value = raw[name];
    if (value === null || value === undefined) return {};
    if (!isMap(value)) {
      throw new HotError(`The ${name} section must be a map. Found a ${typeName(value)} instead`, [name]);
    }
    return value;
  };
  const description = raw.description === undefined || raw.description === null ? '' : raw.description;
  if (typeof description !== 'string') {
    throw new HotError('The description must be a string.', ['description']);
  }
  const groups = raw.parameter_groups ?? [];
  if (!Array.isArray(groups)) {
    throw new HotError('The parameter_groups should be a list.', ['parameter_groups']);
  }
  const resourceKeys = atLeast(version, '2016-10-14')
    ? [...BASE_RESOURCE_KEYS, 'condition', 'external_id']
    : BASE_RESOURCE_KEYS;
  const resources = Object.entries(section('resources')).map(([name, snippet]) =>
    parseResource(name, snippet, resourceKeys),
  );
  const outputs = Object.entries(section('outputs')).map(([name, snippet]): OutputSnippet => {
    if (!isMap(snippet)) {
      throw new HotError(
        `Output definitions must be a map. Found a ${typeName(snippet)} instead`,
        ['outputs', name],
        'Output validation error',
      );
    }
    if (!('value' in snippet)) {
      throw new HotError(
        'Each output definition must contain a value key.',
        ['outputs', name],
        'Output validation error',
      );
    }
    const desc = snippet.description;
    return {
      name,
      description: typeof desc === 'string' ? desc : null,
      value: snippet.value,
      ...('condition' in snippet ? { condition: snippet.condition } : {}),
    };
  });
  return {
    version,
    raw,
    description,
    parameterGroups: groups,
    parameters: section('parameters'),
    resources,
    outputs,
    conditions: section('conditions'),
  };
}

function parseResource(name: string, snippet: Json, validKeys: string[]): ResourceSnippet {
  const path = ['resources', name];
  if (!isMap(snippet)) {
    throw new HotError(`Resources must contain Resource. Found a [${typeName(snippet)}] instead`, path);
  }
  const invalid = Object.keys(snippet).filter((key) => !validKeys.includes(key));
  if (invalid.length) {
    throw new HotError(`Invalid keyword(s) inside a resource definition: ${invalid.join(', ')}`, path);
  }
  if (!('type' in snippet)) throw new HotError(`Resource ${name} is missing "type"`, path);
  const must = (key: string, ok: (v: Json) => boolean, typename: string) => {
    if (key in snippet && snippet[key] !== null && !ok(snippet[key])) {
      throw new HotError(`Resource ${name} ${key} type must be ${typename}`, path);
    }
  };
  // A null type is no type (Heat: "Resource x type type must be string"); other null keys count as absent.
  if (typeof snippet.type !== 'string') throw new HotError(`Resource ${name} type type must be string`, path);
  must('properties', isMap, 'object');
  must('metadata', isMap, 'object');
  must('update_policy', isMap, 'object');
  must('description', (v) => typeof v === 'string', 'string');
  must('depends_on', (v) => typeof v === 'string' || Array.isArray(v), 'list or string');
  let dependsOn: string[] = [];
  const depends = snippet.depends_on;
  if (typeof depends === 'string') dependsOn = [depends];
  else if (Array.isArray(depends)) {
    if (depends.some((d) => typeof d !== 'string')) {
      throw new HotError(`Resource ${name} depends_on must be a list of strings`, path);
    }
    dependsOn = depends as string[];
  }
  let deletionPolicy: ResourceSnippet['deletionPolicy'] = 'Delete';
  if (snippet.deletion_policy !== undefined && snippet.deletion_policy !== null) {
    const policy = DELETION_POLICIES[String(snippet.deletion_policy)];
    if (!policy) {
      throw new HotError(`Invalid deletion policy "${String(snippet.deletion_policy)}"`, path);
    }
    deletionPolicy = policy;
  }
  return {
    name,
    type: snippet.type as string,
    properties: snippet.properties ?? {},
    metadata: snippet.metadata ?? {},
    dependsOn,
    deletionPolicy,
    updatePolicy: snippet.update_policy ?? {},
    description: (snippet.description as string | undefined) ?? '',
    ...('condition' in snippet ? { condition: snippet.condition } : {}),
  };
}
