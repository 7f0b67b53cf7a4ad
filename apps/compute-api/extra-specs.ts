import { BadRequestError } from '@novum/common';

/** The virt drivers a flavor can name; flavors without `novum:driver` run on the default. */
export const DRIVERS = ['kvm', 'container'] as const;
export const DEFAULT_DRIVER = 'kvm';

const KEY = /^[a-zA-Z0-9-_:. ]{1,255}$/;

type Check = (value: string) => boolean;
const oneOf =
  (...allowed: string[]): Check =>
  (value) =>
    allowed.includes(value);
const intFrom =
  (min: number): Check =>
  (value) =>
    /^\d+$/.test(value) && Number(value) >= min && Number(value) <= 2147483647;
const bool: Check = (value) => /^(true|false|yes|no|on|off|1|0|t|f|y|n)$/i.test(value);

/** Known keys of the namespaces Novum validates (Nova's `nova/api/validation/extra_specs`). */
const KNOWN: Record<string, Check> = {
  'hw:cpu_policy': oneOf('shared', 'dedicated', 'mixed'),
  'hw:cpu_thread_policy': oneOf('prefer', 'isolate', 'require'),
  'hw:emulator_threads_policy': oneOf('share', 'isolate'),
  'hw:cpu_sockets': intFrom(1),
  'hw:cpu_cores': intFrom(1),
  'hw:cpu_threads': intFrom(1),
  'hw:max_cpu_sockets': intFrom(1),
  'hw:max_cpu_cores': intFrom(1),
  'hw:max_cpu_threads': intFrom(1),
  'hw:numa_nodes': intFrom(1),
  'hw:mem_page_size': (v) => /^(small|large|any|\d+([KMG]i?B?)?)$/i.test(v),
  'hw:cpu_realtime': bool,
  'hw:cpu_realtime_mask': (v) => /^[\^0-9,-]+$/.test(v),
  'hw:watchdog_action': oneOf('none', 'pause', 'poweroff', 'reset', 'disabled'),
  'hw:boot_menu': bool,
  'hw:vif_multiqueue_enabled': bool,
  'hw:pmu': bool,
  'hw:hide_hypervisor_id': bool,
  'hw:mem_encryption': bool,
  'hw:serial_port_count': intFrom(0),
  'hw:tpm_version': oneOf('1.2', '2.0'),
  'hw:tpm_model': oneOf('tpm-tis', 'tpm-crb'),
  'hw:machine_type': (v) => v.length > 0,
  'hw:cpu_max_sockets': intFrom(1),
  'quota:cpu_shares': intFrom(0),
  'quota:cpu_period': intFrom(0),
  'quota:cpu_quota': (v) => /^-?\d+$/.test(v),
  'quota:cpu_limit': intFrom(0),
  'quota:cpu_reservation': intFrom(0),
  'quota:memory_limit': intFrom(0),
  'quota:memory_reservation': intFrom(0),
  'quota:memory_shares_level': oneOf('custom', 'high', 'normal', 'low'),
  'quota:memory_shares_share': intFrom(0),
  'quota:disk_read_bytes_sec': intFrom(0),
  'quota:disk_write_bytes_sec': intFrom(0),
  'quota:disk_total_bytes_sec': intFrom(0),
  'quota:disk_read_iops_sec': intFrom(0),
  'quota:disk_write_iops_sec': intFrom(0),
  'quota:disk_total_iops_sec': intFrom(0),
  'quota:vif_inbound_average': intFrom(0),
  'quota:vif_inbound_peak': intFrom(0),
  'quota:vif_inbound_burst': intFrom(0),
  'quota:vif_outbound_average': intFrom(0),
  'quota:vif_outbound_peak': intFrom(0),
  'quota:vif_outbound_burst': intFrom(0),
  'novum:driver': oneOf(...DRIVERS),
};

const PATTERNS: [RegExp, Check][] = [
  [/^resources\d*:[A-Z0-9_]+$/, intFrom(0)],
  [/^trait\d*:[A-Z0-9_]+$/, oneOf('required', 'forbidden')],
];

const VALIDATED_NAMESPACES = ['hw', 'quota', 'resources', 'trait', 'novum'];

/** A spec value as Nova stores it: numbers and booleans become strings, at most 255 characters. */
export function specValue(key: string, value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') value = String(value);
  if (typeof value !== 'string' || value.length > 255) {
    throw new BadRequestError(
      `Invalid input for field/attribute ${key}. Value: ${String(value)}. must be a string of at most 255 characters`,
    );
  }
  return value;
}

/**
 * Validates extra specs (`{key: value}`) as Nova does: key and value format always; known namespaces
 * (`hw:`, `quota:`, `resources:`, `trait:`) by name and value from 2.86, and `novum:driver` always,
 * since the scheduler places flavors by it. Returns the specs with string values.
 */
export function validateExtraSpecs(specs: Record<string, unknown>, strict: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, raw] of Object.entries(specs)) {
    if (!KEY.test(key)) {
      throw new BadRequestError(
        `Invalid input for field/attribute extra_specs. Value: ${key}. '${key}' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{1,255}$'`,
      );
    }
    const value = specValue(key, raw);
    const namespace = key.includes(':') ? key.slice(0, key.indexOf(':')).replace(/\d+$/, '') : '';
    const validated = key.startsWith('novum:') || (strict && VALIDATED_NAMESPACES.includes(namespace));
    if (validated) {
      const check = KNOWN[key] ?? PATTERNS.find(([pattern]) => pattern.test(key))?.[1];
      if (!check)
        throw new BadRequestError(`Validation failed; extra spec '${key}' is not a known extra spec.`);
      if (!check(value)) {
        throw new BadRequestError(
          `Validation failed; '${value}' is not a valid value for extra spec '${key}'.`,
        );
      }
    }
    out[key] = value;
  }
  return out;
}
