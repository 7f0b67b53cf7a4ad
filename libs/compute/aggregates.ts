import { DataSource, In } from 'typeorm';
import { AggregateHostEntity, AggregateMetadataEntity } from '@novum/db';

/** Nova's `default_availability_zone`: the zone of a compute host that no aggregate puts elsewhere. */
export const DEFAULT_AVAILABILITY_ZONE = 'nova';
/** Nova's `internal_service_availability_zone`: the zone of every service but nova-compute. */
export const INTERNAL_AVAILABILITY_ZONE = 'internal';
export const AZ_METADATA_KEY = 'availability_zone';
/** The flavor extra spec scope the AggregateInstanceExtraSpecsFilter reads. */
export const AGGREGATE_EXTRA_SPECS_SCOPE = 'aggregate_instance_extra_specs';

/** Aggregate metadata of a host: every key with the set of its values over the host's aggregates. */
export type HostAggregateMetadata = Map<string, Set<string>>;

/**
 * The metadata of the aggregates of each host, as Nova's `aggregate_metadata_get_by_host`: values are
 * comma-separated lists, merged over aggregates. `hosts` limits the lookup; absent: every host.
 */
export async function aggregateMetadataByHost(
  dataSource: DataSource,
  hosts?: readonly string[],
): Promise<Map<string, HostAggregateMetadata>> {
  const memberships = await dataSource
    .getRepository(AggregateHostEntity)
    .find(hosts ? { where: { host: In([...hosts]) } } : {});
  const result = new Map<string, HostAggregateMetadata>();
  if (!memberships.length) return result;
  const ids = [...new Set(memberships.map((m) => m.aggregateId))];
  const items = await dataSource.getRepository(AggregateMetadataEntity).findBy({ aggregateId: In(ids) });
  const byAggregate = new Map<number, AggregateMetadataEntity[]>();
  for (const item of items)
    byAggregate.set(item.aggregateId, [...(byAggregate.get(item.aggregateId) ?? []), item]);
  for (const { host, aggregateId } of memberships) {
    const metadata = result.get(host) ?? new Map<string, Set<string>>();
    for (const { key, value } of byAggregate.get(aggregateId) ?? []) {
      const values = metadata.get(key) ?? new Set<string>();
      for (const v of value.split(',')) values.add(v.trim());
      metadata.set(key, values);
    }
    result.set(host, metadata);
  }
  return result;
}

/** A host's availability zone from its aggregate metadata (Nova joins several with commas; the API forbids it). */
export function zoneFromMetadata(metadata: HostAggregateMetadata | undefined): string {
  const zones = metadata?.get(AZ_METADATA_KEY);
  return zones?.size ? [...zones].sort().join(',') : DEFAULT_AVAILABILITY_ZONE;
}

/** The availability zone of each given compute host: its aggregates' `availability_zone`, else `nova`. */
export async function hostAvailabilityZones(
  dataSource: DataSource,
  hosts?: readonly string[],
): Promise<Map<string, string>> {
  const metadata = await aggregateMetadataByHost(dataSource, hosts);
  const zones = new Map<string, string>();
  for (const host of hosts ?? metadata.keys()) zones.set(host, zoneFromMetadata(metadata.get(host)));
  return zones;
}

const NUMERIC: Record<string, (a: number, b: number) => boolean> = {
  '=': (a, b) => a >= b,
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '>=': (a, b) => a >= b,
  '<=': (a, b) => a <= b,
};
const STRING: Record<string, (a: string, b: string) => boolean> = {
  's==': (a, b) => a === b,
  's!=': (a, b) => a !== b,
  's<': (a, b) => a < b,
  's<=': (a, b) => a <= b,
  's>': (a, b) => a > b,
  's>=': (a, b) => a >= b,
};

/** Nova's `extra_specs_ops.match`: an extra spec requirement (`<in> ssd`, `>= 2`, `<or> a <or> b`, plain) against a value. */
export function extraSpecMatches(value: string, requirement: string): boolean {
  const words = requirement.split(/\s+/).filter(Boolean);
  const op = words.shift();
  const known = op !== undefined && (op in NUMERIC || op in STRING || op === '<in>' || op === '<all-in>');
  if (op !== '<or>' && !known) return value === requirement;
  if (op === '<or>') {
    for (let i = 0; i < words.length; i += 2) if (words[i] === value) return true;
    return false;
  }
  if (!words.length) return false;
  if (op === '<in>') return value.includes(words[0]);
  if (op === '<all-in>') return words.every((w) => value.includes(w));
  if (op! in STRING) return STRING[op!](value, words[0]);
  const a = Number(value);
  const b = Number(words[0]);
  if (value.trim() === '' || Number.isNaN(a) || Number.isNaN(b)) return false;
  return NUMERIC[op!](a, b);
}

/**
 * Nova's AggregateInstanceExtraSpecsFilter: every extra spec that is unscoped or scoped
 * `aggregate_instance_extra_specs:` must be met by one of the host's aggregate values for that key.
 */
export function aggregateExtraSpecsPass(
  extraSpecs: Record<string, string> | undefined,
  metadata: HostAggregateMetadata | undefined,
): boolean {
  for (const [fullKey, requirement] of Object.entries(extraSpecs ?? {})) {
    const scope = fullKey.split(':');
    if (scope.length > 1 && scope[0] !== AGGREGATE_EXTRA_SPECS_SCOPE) continue;
    const key = scope.length > 1 ? scope[1] : fullKey;
    const values = metadata?.get(key);
    if (!values?.size) return false;
    if (![...values].some((value) => extraSpecMatches(value, requirement))) return false;
  }
  return true;
}
