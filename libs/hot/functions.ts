import { createHash } from 'node:crypto';
import { HotError } from './errors';
import { isMap, Json, JsonMap } from './parse';
import {
  ALL_FUNCTION_NAMES,
  atLeast,
  conditionFunctionsOf,
  functionsOf,
  HotVersion,
  UNSUPPORTED_FUNCTIONS,
} from './versions';

type Path = (string | number)[];

/** What functions look up outside the template: parameters, resources and their state, files, conditions. */
export interface EvalScope {
  version: HotVersion;
  /** A parameter's value (pseudo parameters included); throws HotError when unknown. */
  param(name: string): Json;
  /** True when the template (with conditions applied) has this resource. */
  hasResource(name: string): boolean;
  /** The resource's reference (its physical id), or null before it exists. */
  resourceRef(name: string): Json;
  /**
   * One attribute with get_attr's path below it applied, or null while the resource is not created.
   * Throws Error for an unknown attribute.
   */
  resourceAttr(name: string, attribute: string, path?: Json[]): Json;
  /** Every attribute (get_attr with only a resource name, from 2015-10-15). */
  allAttributes(name: string): Json;
  /** A condition by name; throws for an unknown one. */
  condition(name: string): boolean;
  files: Record<string, string>;
}

class FunctionError extends Error {}

function fail(message: string): never {
  throw new FunctionError(message);
}

/** The single key of a one-key mapping when it names a function, else undefined. */
export function functionName(value: Json): string | undefined {
  if (!isMap(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1) return undefined;
  return ALL_FUNCTION_NAMES.has(keys[0]) ? keys[0] : undefined;
}

/** get_attr's path below an attribute value: list indexes and map keys; null where it leads nowhere. */
export function selectPath(value: Json, path: Json[]): Json {
  let current = value;
  for (const component of path) {
    if (current === null || current === undefined) return null;
    if (Array.isArray(current)) {
      const index = Number(component);
      current = Number.isInteger(index) ? (current[index] ?? null) : null;
    } else if (isMap(current)) {
      current = current[String(component)] ?? null;
    } else {
      return null;
    }
  }
  return current ?? null;
}

/** Evaluates every intrinsic function in `value` (a snippet from a resource, output, ...); errors carry `path`. */
export function evaluate(value: Json, scope: EvalScope, path: Path): Json {
  return new Evaluator(scope, functionsOf(scope.version)).run(value, path);
}

/** Evaluates a condition expression of the `conditions` section (or an inline one) to a boolean. */
export function evaluateCondition(value: Json, scope: EvalScope, path: Path): boolean {
  return new Evaluator(scope, conditionFunctionsOf(scope.version), true).condition(value, path);
}

class Evaluator {
  private readonly allowed: Set<string>;

  constructor(
    private readonly scope: EvalScope,
    allowed: string[],
    private readonly inCondition = false,
  ) {
    this.allowed = new Set(allowed);
  }

  run(value: Json, path: Path): Json {
    if (Array.isArray(value)) return value.map((item, i) => this.run(item, [...path, i]));
    if (!isMap(value)) return value;
    const name = functionName(value);
    if (name === undefined) {
      const out: JsonMap = {};
      for (const [key, item] of Object.entries(value)) out[key] = this.run(item, [...path, key]);
      return out;
    }
    if (!this.allowed.has(name) || UNSUPPORTED_FUNCTIONS.has(name)) {
      const where = this.inCondition ? 'in conditions' : 'in this version of HOT';
      throw new HotError(`The function "${name}" is not supported ${where}.`, path);
    }
    try {
      return this.call(name, value[name], [...path, name]);
    } catch (error) {
      if (error instanceof HotError) throw error;
      throw new HotError((error as Error).message, path);
    }
  }

  condition(value: Json, path: Path): boolean {
    if (typeof value === 'boolean') return value;
    if (typeof value === 'string') {
      try {
        return this.scope.condition(value);
      } catch (error) {
        if (error instanceof HotError) throw error;
        throw new HotError((error as Error).message, path);
      }
    }
    const name = functionName(value);
    if (!name || !['equals', 'not', 'and', 'or', 'contains'].includes(name)) {
      const result = this.run(value, path);
      if (typeof result === 'boolean') return result;
      throw new HotError(`Invalid condition value: ${JSON.stringify(value)}`, path);
    }
    const result = this.run(value, path);
    return result as boolean;
  }

  private call(name: string, args: Json, path: Path): Json {
    switch (name) {
      case 'get_param':
        return this.getParam(this.run(args, path), path);
      case 'get_resource': {
        const target = this.run(args, path);
        if (typeof target !== 'string' || !this.scope.hasResource(target)) {
          fail(`The specified reference "${String(target)}" (in ${formatWhere(path)}) is incorrect.`);
        }
        return this.scope.resourceRef(target);
      }
      case 'get_attr':
        return this.getAttr(this.run(args, path), path);
      case 'get_file': {
        const file = this.run(args, path);
        if (typeof file !== 'string') fail('Argument to "get_file" must be a string');
        if (!(file in this.scope.files))
          fail(`No content found in the "files" section for get_file path: ${file}`);
        return this.scope.files[file];
      }
      case 'str_replace':
      case 'str_replace_strict':
      case 'str_replace_vstrict':
        return this.strReplace(name, this.run(args, path));
      case 'list_join':
        return this.listJoin(this.run(args, path));
      case 'list_concat':
      case 'list_concat_unique':
        return this.listConcat(name, this.run(args, path));
      case 'map_merge':
        return this.mapMerge(this.run(args, path));
      case 'map_replace':
        return this.mapReplace(this.run(args, path));
      case 'repeat':
        return this.repeat(args, path);
      case 'digest':
        return this.digest(this.run(args, path));
      case 'str_split':
        return this.strSplit(this.run(args, path));
      case 'if':
        return this.ifFunction(args, path);
      case 'equals': {
        const values = this.run(args, path);
        if (!Array.isArray(values) || values.length !== 2) {
          fail('Arguments to "equals" must be of the form: [value_1, value_2]');
        }
        return deepEqual(values[0], values[1]);
      }
      case 'not': {
        if (Array.isArray(args)) fail('Argument to "not" must be a condition');
        return !this.condition(args, path);
      }
      case 'and':
      case 'or': {
        if (!Array.isArray(args)) fail(`Arguments to "${name}" must be a list of conditions`);
        if (args.length < 2) fail(`The minimum number of condition arguments to "${name}" is 2.`);
        const results = args.map((item, i) => this.condition(item, [...path, i]));
        return name === 'and' ? results.every(Boolean) : results.some(Boolean);
      }
      case 'contains': {
        const values = this.run(args, path);
        if (!Array.isArray(values) || values.length !== 2) {
          fail('Arguments to "contains" must be of the form: [value1, [value1, value2]]');
        }
        if (!Array.isArray(values[1])) fail('"contains" should be: [value1, [value1, value2]]');
        return values[1].some((item) => deepEqual(item, values[0]));
      }
      case 'filter': {
        const values = this.run(args, path);
        if (!Array.isArray(values)) fail('Argument to "filter" must be a list');
        if (values.length !== 2) {
          fail('"filter" expected 2 arguments of the form [values_to_filter, source_list]');
        }
        const [remove, source] = values;
        if (source === null) return [];
        if (!Array.isArray(source)) fail('"filter" only works with lists');
        if (remove !== null && !Array.isArray(remove)) fail('"filter" filters a list of values');
        return source.filter((item) => !(remove ?? []).some((r) => deepEqual(r, item)));
      }
      case 'make_url':
        return makeUrl(this.run(args, path));
      default:
        fail(`The function "${name}" is not supported in this version of HOT.`);
    }
  }

  private getParam(args: Json, path: Path): Json {
    if (args === null || (Array.isArray(args) && args.length === 0))
      fail('Function "get_param" must have arguments');
    const list = Array.isArray(args) ? args : [args];
    if (!Array.isArray(args) && typeof args !== 'string')
      fail('Argument to "get_param" must be string or list');
    const [name, ...components] = list;
    if (typeof name !== 'string') fail('Parameter name in "get_param" must be string');
    let value = this.scope.param(name);
    void path;
    for (const component of components) {
      if (typeof component !== 'string' && typeof component !== 'number') {
        fail('Path components in "get_param" must be strings');
      }
      if (Array.isArray(value)) {
        const index = Number(component);
        if (!Number.isInteger(index) || index < 0 || index >= value.length) return '';
        value = value[index];
      } else if (isMap(value)) {
        if (!(String(component) in value)) return '';
        value = value[String(component)];
      } else {
        fail('"get_param" can\'t traverse path');
      }
    }
    return value;
  }

  private getAttr(args: Json, path: Path): Json {
    const allowAll = atLeast(this.scope.version, '2015-10-15');
    if (!Array.isArray(args)) fail('Argument to "get_attr" must be a list');
    if (args.length < (allowAll ? 1 : 2) || typeof args[0] !== 'string') {
      fail(
        allowAll
          ? 'Arguments to "get_attr" can be of the next forms: [resource_name] or [resource_name, attribute, (path), ...]'
          : 'Arguments to "get_attr" must be of the form [resource_name, attribute, (path), ...]',
      );
    }
    const [resource, attribute, ...components] = args as [string, ...Json[]];
    if (!this.scope.hasResource(resource)) {
      fail(`The specified reference "${resource}" (in ${formatWhere(path)}) is incorrect.`);
    }
    if (attribute === undefined) return this.scope.allAttributes(resource);
    if (typeof attribute !== 'string') fail('Argument to "get_attr" must be a list of strings');
    return this.scope.resourceAttr(resource, attribute, components);
  }

  private strReplace(name: string, args: Json): Json {
    if (!isMap(args)) fail(`Arguments to "${name}" must be a map`);
    if (!('template' in args) || !('params' in args)) {
      fail(
        `"${name}" syntax should be ${name}:\n  template: This is var1 template var2\n  params:\n    var1: a\n    var2: b`,
      );
    }
    const { template, params } = args;
    if (typeof template !== 'string') fail(`"${name}" template must be a string`);
    if (!isMap(params)) fail(`"${name}" params must be a map`);
    const json = atLeast(this.scope.version, '2015-10-15');
    const replacements: [string, string][] = [];
    for (const [key, raw] of Object.entries(params)) {
      let text: string;
      if (raw === null || raw === undefined || raw === '') {
        if (name === 'str_replace_vstrict') fail(`${name} has an undefined or empty value for param ${key}`);
        text = '';
      } else if (typeof raw === 'string') text = raw;
      else if (typeof raw === 'number' || typeof raw === 'boolean') text = String(raw);
      else if (json) text = JSON.stringify(raw);
      else fail(`"${name}" params must be strings or numbers, param ${key} is not valid`);
      replacements.push([key, text]);
    }
    if (name !== 'str_replace') {
      const missing = replacements.filter(([key]) => !template.includes(key)).map(([key]) => key);
      if (missing.length) fail(`The following params were not found in the template: ${missing.join(',')}`);
    }
    if (!replacements.length) return template;
    // One pass, longest placeholder first, so a replacement is never itself replaced (as Heat does).
    const keys = replacements.map(([key]) => key).sort((a, b) => b.length - a.length);
    const lookup = new Map(replacements);
    const pattern = new RegExp(keys.map(escapeRegExp).join('|'), 'g');
    return template.replace(pattern, (match) => lookup.get(match) as string);
  }

  private listJoin(args: Json): Json {
    const multiple = atLeast(this.scope.version, '2015-10-15');
    const usage =
      'Incorrect arguments to "list_join" should be: list_join:\n- <delim>\n- [<value>, <value>, ...]';
    if (!Array.isArray(args) || args.length < 2 || (!multiple && args.length !== 2)) fail(usage);
    const [delimiter, ...lists] = args;
    if (typeof delimiter !== 'string') fail('"list_join" delimiter must be a string');
    const items: string[] = [];
    for (const list of lists) {
      if (list === null) continue;
      if (!Array.isArray(list)) fail('"list_join" must operate on a list');
      for (const item of list) {
        if (item === null) items.push('');
        else if (typeof item === 'string') items.push(item);
        else if (multiple && (isMap(item) || Array.isArray(item))) items.push(JSON.stringify(item));
        else if (typeof item === 'number' || typeof item === 'boolean') items.push(String(item));
        else fail(`Items to join must be string, map or list not ${JSON.stringify(item)}`);
      }
    }
    return items.join(delimiter);
  }

  private listConcat(name: string, args: Json): Json {
    if (!Array.isArray(args))
      fail(`Incorrect arguments to "${name}" should be: ${name}: [<list>, <list>, ...]`);
    const out: Json[] = [];
    for (const list of args) {
      if (list === null) continue;
      if (!Array.isArray(list)) {
        fail(`Incorrect arguments to "${name}" should be: ${name}: [<list>, <list>, ...]`);
      }
      for (const item of list) {
        if (name === 'list_concat_unique' && out.some((seen) => deepEqual(seen, item))) continue;
        out.push(item);
      }
    }
    return out;
  }

  private mapMerge(args: Json): Json {
    if (!Array.isArray(args)) {
      fail(
        'Incorrect arguments to "map_merge" should be: "map_merge" : [ { "key1": "val1" }, { "key2": "val2" } ]',
      );
    }
    const out: JsonMap = {};
    for (const item of args) {
      if (item === null) continue;
      if (!isMap(item))
        fail(`Incorrect arguments: Items to merge must be maps. ${JSON.stringify(item)} is not a map`);
      Object.assign(out, item);
    }
    return out;
  }

  private mapReplace(args: Json): Json {
    const example =
      '"map_replace" : [ { "key1": "val1" }, {"keys": {"key1": "key2"}, "values": {"val1": "val2"}}]';
    if (!Array.isArray(args) || args.length !== 2 || !isMap(args[0]) || !isMap(args[1])) {
      fail(`Incorrect arguments to "map_replace" should be: ${example}`);
    }
    const [source, spec] = args as [JsonMap, JsonMap];
    for (const key of Object.keys(spec)) {
      if (key !== 'keys' && key !== 'values')
        fail(`Incorrect arguments to "map_replace" should be: ${example}`);
    }
    const keys = (spec.keys ?? {}) as JsonMap;
    const values = (spec.values ?? {}) as JsonMap;
    if (!isMap(keys) || !isMap(values)) fail(`Incorrect arguments to "map_replace" should be: ${example}`);
    const out: JsonMap = {};
    for (const [key, value] of Object.entries(source)) {
      const newKey = key in keys ? String(keys[key]) : key;
      if (newKey in out) fail(`key replacement ${newKey} collides with a key in the input map`);
      if (newKey !== key && newKey in source && !(newKey in keys)) {
        fail(`key replacement ${newKey} collides with a key in the input map`);
      }
      const replaced =
        typeof value === 'string' || typeof value === 'number' ? (values[String(value)] ?? value) : value;
      out[newKey] = replaced;
    }
    return out;
  }

  private repeat(rawArgs: Json, path: Path): Json {
    const example = "repeat:\n  template: This is %var%\n  for_each:\n    %var%: ['a', 'b', 'c']";
    if (!isMap(rawArgs)) fail('Arguments to "repeat" must be a map');
    if (!('for_each' in rawArgs) || !('template' in rawArgs)) fail(`"repeat" syntax should be ${example}`);
    const forEach = this.run(rawArgs.for_each, [...path, 'for_each']);
    if (!isMap(forEach)) fail('The "for_each" argument to "repeat" must contain a map');
    const lists = Object.entries(forEach);
    for (const [, list] of lists) {
      if (!Array.isArray(list)) fail('The values of the "for_each" argument to "repeat" must be lists');
    }
    const permutations = 'permutations' in rawArgs ? this.run(rawArgs.permutations, path) : true;
    if (typeof permutations !== 'boolean') fail('"permutations" should be boolean type for repeat function');
    const combos: [string, Json][][] = [];
    if (permutations) {
      let acc: [string, Json][][] = [[]];
      for (const [key, list] of lists) {
        acc = acc.flatMap((prefix) =>
          (list as Json[]).map((item) => [...prefix, [key, item] as [string, Json]]),
        );
      }
      combos.push(...acc);
    } else {
      const lengths = new Set(lists.map(([, list]) => (list as Json[]).length));
      if (lengths.size > 1)
        fail('For repeat, the length of for_each values should be equal if no permutations are used.');
      const length = lists.length ? (lists[0][1] as Json[]).length : 0;
      for (let i = 0; i < length; i++) combos.push(lists.map(([key, list]) => [key, (list as Json[])[i]]));
    }
    return combos.map((combo) => this.run(substitute(rawArgs.template, combo), [...path, 'template']));
  }

  private digest(args: Json): Json {
    if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) {
      fail('Argument to function "digest" must be a list of strings');
    }
    if (args.length !== 2) fail('Function "digest" usage: ["<algorithm>", "<value>"]');
    const algorithms = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'];
    const [algorithm, value] = args as string[];
    if (!algorithms.includes(algorithm.toLowerCase())) {
      fail(`Algorithm must be one of [${algorithms.map((a) => `'${a}'`).join(', ')}]`);
    }
    return createHash(algorithm.toLowerCase()).update(value).digest('hex');
  }

  private strSplit(args: Json): Json {
    const usage =
      'Incorrect arguments to "str_split" should be: str_split:\n- <delimiter>\n- <string>\n- <index>';
    if (!Array.isArray(args) || args.length < 2 || args.length > 3) fail(usage);
    const [delimiter, text, index] = args;
    if (typeof delimiter !== 'string') fail(usage);
    if (text === null) return index === undefined ? [] : '';
    if (typeof text !== 'string') fail(usage);
    const parts = text.split(delimiter);
    if (index === undefined) return parts;
    const n = Number(index);
    if (!Number.isInteger(n)) fail(`Incorrect index to "str_split" should be: ${JSON.stringify(index)}`);
    if (n < 0 || n >= parts.length)
      fail(`Incorrect index to "str_split" should be between 0 and ${parts.length - 1}`);
    return parts[n];
  }

  private ifFunction(args: Json, path: Path): Json {
    if (!Array.isArray(args) || args.length !== 3) {
      fail('Arguments to "if" must be of the form: [condition_name, value_if_true, value_if_false]');
    }
    const chosen = this.condition(args[0], [...path, 0]) ? 1 : 2;
    return this.run(args[chosen], [...path, chosen]);
  }
}

function formatWhere(path: Path): string {
  const keep = path.filter((p) => p !== 'get_resource' && p !== 'get_attr');
  return keep.map(String).join('.');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Replaces repeat's placeholders in every key and string of a template snippet. */
function substitute(template: Json, combo: [string, Json][]): Json {
  const replace = (text: string) => {
    let out = text;
    for (const [key, value] of combo) {
      out = out.split(key).join(typeof value === 'string' ? value : JSON.stringify(value));
    }
    return out;
  };
  if (typeof template === 'string') {
    const whole = combo.find(([key]) => key === template);
    return whole ? whole[1] : replace(template);
  }
  if (Array.isArray(template)) return template.map((item) => substitute(item, combo));
  if (isMap(template)) {
    const out: JsonMap = {};
    for (const [key, value] of Object.entries(template)) out[replace(key)] = substitute(value, combo);
    return out;
  }
  return template;
}

export function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null) return false;
  if (Array.isArray(a))
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isMap(a) && isMap(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

function makeUrl(args: Json): Json {
  if (!isMap(args)) fail('The arguments to "make_url" must be a map');
  const known = ['scheme', 'username', 'password', 'host', 'port', 'path', 'query', 'fragment'];
  const invalid = Object.keys(args).filter((k) => !known.includes(k));
  if (invalid.length) fail(`Invalid arguments to "make_url": ${invalid.join(', ')}`);
  for (const key of ['scheme', 'username', 'password', 'host', 'path', 'fragment']) {
    if (args[key] !== undefined && args[key] !== null && typeof args[key] !== 'string') {
      fail(`The "${key}" argument to "make_url" must be a string`);
    }
  }
  const scheme = (args.scheme as string | undefined) ?? '';
  if (scheme.includes(':')) fail(`URL "${scheme}" should not contain ':'`);
  let host = (args.host as string | undefined) ?? '';
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  let port = '';
  if (args.port !== undefined && args.port !== null && args.port !== '') {
    const n = Number(args.port);
    if (!Number.isInteger(n)) fail(`Invalid URL port "${String(args.port)}"`);
    if (n < 1 || n > 65535) fail(`Invalid URL port ${n}, must be in range 1-65535`);
    port = `:${n}`;
  }
  const user = args.username
    ? `${encodeURIComponent(args.username as string)}${args.password ? `:${encodeURIComponent(args.password as string)}` : ''}@`
    : '';
  let path = (args.path as string | undefined) ?? '';
  if (path && !path.startsWith('/')) path = `/${path}`;
  let query = '';
  if (args.query !== undefined && args.query !== null) {
    if (!isMap(args.query)) fail('The "query" argument to "make_url" must be a map');
    query = `?${Object.entries(args.query)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join('&')}`;
  }
  const fragment = args.fragment ? `#${encodeURIComponent(args.fragment as string)}` : '';
  return `${scheme ? `${scheme}://` : ''}${user}${host}${port}${encodeURI(path)}${query}${fragment}`;
}

/**
 * The resources a snippet refers to through get_resource and get_attr (names given literally), which
 * make it depend on them. Names inside functions that compute the name are not followed (as Heat).
 */
export function referencedResources(value: Json, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const item of value) referencedResources(item, into);
  } else if (isMap(value)) {
    const name = functionName(value);
    if (name === 'get_resource' && typeof value.get_resource === 'string') into.add(value.get_resource);
    else if (name === 'get_attr' && Array.isArray(value.get_attr) && typeof value.get_attr[0] === 'string') {
      into.add(value.get_attr[0]);
      for (const item of value.get_attr.slice(1)) referencedResources(item, into);
    } else {
      for (const item of Object.values(value)) referencedResources(item, into);
    }
  }
  return into;
}
