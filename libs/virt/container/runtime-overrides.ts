import { DriverError } from '../driver';
import type { ImageRuntimeConfig } from './image-store';
import { DEFAULT_CAPABILITIES } from './oci-spec';

/**
 * Server metadata keys the container driver reads at spawn and rebuild, as `docker run` flags override an
 * image's config (Heat's container resources set them; any user may, with `openstack server create --property`):
 * - `novum:cmd`: JSON array of strings, replaces the image's Cmd (its Entrypoint stays, as with `docker run`);
 * - `novum:env`: JSON array of `NAME=value` strings, added after the image's Env (a name given again wins);
 * - `novum:workdir`: the working directory, instead of the image's WorkingDir;
 * - `novum:user`: `uid[:gid]` or names from the image's /etc/passwd and /etc/group, instead of the image's User;
 * - `novum:read_only`: `true` mounts the root filesystem read-only;
 * - `novum:cap_drop`: JSON array of capability names (`NET_RAW`, or `ALL`) removed from Docker's default set.
 * Nothing here can widen the container's rights: capabilities are only ever dropped.
 */
export const RUNTIME_METADATA_KEYS = {
  cmd: 'novum:cmd',
  env: 'novum:env',
  workdir: 'novum:workdir',
  user: 'novum:user',
  readOnly: 'novum:read_only',
  capDrop: 'novum:cap_drop',
} as const;

/** What a server's metadata changes in how its container runs. */
export interface RuntimeOverrides {
  cmd?: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  readOnly?: boolean;
  /** Capabilities dropped (CAP_-prefixed). */
  capDrop?: string[];
}

const ENV_ENTRY = /^[^=\s]+=/;

function stringList(key: string, raw: string, check?: (item: string) => boolean): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new DriverError(`Server metadata ${key} is not a JSON array of strings.`);
  }
  if (
    !Array.isArray(parsed) ||
    !parsed.every((item) => typeof item === 'string' && (!check || check(item)))
  ) {
    throw new DriverError(`Server metadata ${key} is not a JSON array of valid strings.`);
  }
  return parsed as string[];
}

/** The overrides a server's metadata asks for; a malformed value fails the build with a fault naming the key. */
export function runtimeOverrides(metadata: Readonly<Record<string, string>>): RuntimeOverrides {
  const keys = RUNTIME_METADATA_KEYS;
  const out: RuntimeOverrides = {};
  if (metadata[keys.cmd] !== undefined) out.cmd = stringList(keys.cmd, metadata[keys.cmd]);
  if (metadata[keys.env] !== undefined)
    out.env = stringList(keys.env, metadata[keys.env], (item) => ENV_ENTRY.test(item));
  if (metadata[keys.workdir]) {
    if (!metadata[keys.workdir].startsWith('/'))
      throw new DriverError(`Server metadata ${keys.workdir} must be an absolute path.`);
    out.workdir = metadata[keys.workdir];
  }
  if (metadata[keys.user]) out.user = metadata[keys.user];
  if (metadata[keys.readOnly] !== undefined) {
    const value = metadata[keys.readOnly].toLowerCase();
    if (value !== 'true' && value !== 'false')
      throw new DriverError(`Server metadata ${keys.readOnly} must be true or false.`);
    out.readOnly = value === 'true';
  }
  if (metadata[keys.capDrop] !== undefined) {
    const names = stringList(keys.capDrop, metadata[keys.capDrop]).map((name) => {
      const upper = name.toUpperCase();
      return upper === 'ALL' || upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
    });
    out.capDrop = names.includes('ALL') ? [...DEFAULT_CAPABILITIES] : names;
  }
  return out;
}

/** The image's config as the container runs it: Cmd, Env, WorkingDir and User overridden. */
export function withOverrides(
  config: ImageRuntimeConfig,
  overrides: RuntimeOverrides = {},
): ImageRuntimeConfig {
  const merged: ImageRuntimeConfig = { ...config };
  if (overrides.cmd) merged.Cmd = overrides.cmd;
  if (overrides.env) {
    const names = new Set(overrides.env.map((entry) => entry.slice(0, entry.indexOf('='))));
    merged.Env = [
      ...(config.Env ?? []).filter((entry) => !names.has(entry.slice(0, entry.indexOf('=')))),
      ...overrides.env,
    ];
  }
  if (overrides.workdir) merged.WorkingDir = overrides.workdir;
  if (overrides.user) merged.User = overrides.user;
  return merged;
}

/** Docker's default capabilities less the dropped ones. */
export function capabilitiesAfter(overrides: RuntimeOverrides = {}): string[] {
  const dropped = new Set(overrides.capDrop ?? []);
  return DEFAULT_CAPABILITIES.filter((capability) => !dropped.has(capability));
}
