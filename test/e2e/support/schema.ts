import { execFileSync } from 'node:child_process';
import { isIPv4, isIPv6 } from 'node:net';

/**
 * Tempest's compute response schemas (the installed python3-tempest), loaded as JSON, and a small
 * JSON-schema check of the keywords they use (of the formats, only ipv4, ipv6 and uuid).
 */
export function tempestSchemas(picks: Record<string, string>): Record<string, any> {
  const script = [
    'import importlib, json, sys',
    'picks = json.loads(sys.argv[1])',
    'out = {}',
    'for name, ref in picks.items():',
    '    module, attr = ref.rsplit(".", 1)',
    '    out[name] = getattr(importlib.import_module("tempest.lib.api_schema.response.compute." + module), attr)',
    'print(json.dumps(out))',
  ].join('\n');
  // Debian's python3, where python3-tempest lives (not a pyenv copy).
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'PYTHONPATH'));
  return JSON.parse(
    execFileSync('/usr/bin/python3', ['-c', script, JSON.stringify(picks)], { encoding: 'utf8', env }),
  );
}

const typeOf = (value: unknown): string[] => {
  if (value === null) return ['null'];
  if (Array.isArray(value)) return ['array'];
  if (typeof value === 'number') return Number.isInteger(value) ? ['integer', 'number'] : ['number'];
  return [typeof value];
};

const FORMATS: Record<string, (value: string) => boolean> = {
  ipv4: isIPv4,
  ipv6: isIPv6,
  uuid: (value) => /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(value),
};

/** The places where `value` breaks `schema`, as `path: problem` lines (empty: it conforms). */
export function schemaErrors(schema: any, value: unknown, path = '$'): string[] {
  if (schema === true || schema === undefined) return [];
  if (schema === false) return [`${path}: not allowed`];
  const errors: string[] = [];
  if (schema.type !== undefined) {
    const allowed: string[] = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!typeOf(value).some((t) => allowed.includes(t)))
      return [`${path}: ${JSON.stringify(value)} is not of type ${allowed.join('|')}`];
  }
  if (schema.enum && !schema.enum.some((e: unknown) => JSON.stringify(e) === JSON.stringify(value)))
    errors.push(`${path}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`);
  const format = FORMATS[schema.format];
  if (format && typeof value === 'string' && !format(value))
    errors.push(`${path}: ${JSON.stringify(value)} is not a ${schema.format}`);
  if (schema.pattern && typeof value === 'string' && !new RegExp(schema.pattern).test(value))
    errors.push(`${path}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
  for (const key of ['oneOf', 'anyOf'] as const) {
    if (!schema[key]) continue;
    const passing = schema[key].filter((s: any) => schemaErrors(s, value, path).length === 0).length;
    if (key === 'oneOf' ? passing !== 1 : passing === 0)
      errors.push(`${path}: matches ${passing} of the ${key} schemas`);
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const object = value as Record<string, unknown>;
    for (const key of schema.required ?? [])
      if (!(key in object)) errors.push(`${path}: missing required ${key}`);
    for (const [key, child] of Object.entries(object)) {
      const direct = schema.properties?.[key];
      const byPattern = Object.entries(schema.patternProperties ?? {})
        .filter(([pattern]) => new RegExp(pattern).test(key))
        .map(([, s]) => s);
      if (direct !== undefined) errors.push(...schemaErrors(direct, child, `${path}.${key}`));
      for (const s of byPattern) errors.push(...schemaErrors(s, child, `${path}.${key}`));
      if (direct === undefined && byPattern.length === 0 && schema.additionalProperties !== undefined)
        errors.push(...schemaErrors(schema.additionalProperties, child, `${path}.${key}`));
    }
  }
  if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => errors.push(...schemaErrors(schema.items, item, `${path}[${i}]`)));
    if (schema.minItems !== undefined && value.length < schema.minItems)
      errors.push(`${path}: fewer than ${schema.minItems} items`);
  }
  return errors;
}
