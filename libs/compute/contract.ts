/**
 * The bus contract of the compute control plane, modelled on nova/conductor/rpcapi.py and
 * nova/compute/rpcapi.py. The compute API (a later slice) writes the instance row and its action
 * (InstanceRecords.createInstances), then casts `build_instances` to the conductor; every later action
 * sets the instance's task_state on condition of its current state, records the action, and casts the
 * method to the instance's host. Payload fields are camelCase; every payload names the request whose
 * instance action the events are recorded under.
 */

import type { InstanceFlavor } from '@novum/db';

/** The conductor's work queue. */
export const CONDUCTOR_QUEUE = 'conductor';

/** The queue of one host's compute agent. */
export function computeQueue(host: string): string {
  return `compute.${host}`;
}

/** Nova's `scheduler.max_attempts`: a build is tried on at most this many hosts. */
export const MAX_BUILD_ATTEMPTS = 3;

/** Nova's NoValidHost fault message. */
export const NO_VALID_HOST = 'No valid host was found. There are not enough hosts available.';

/** Nova's service binaries, as the services table names them. */
export const Binary = {
  COMPUTE: 'nova-compute',
  CONDUCTOR: 'nova-conductor',
  SCHEDULER: 'nova-scheduler',
} as const;

/** The driver a flavor without `novum:driver` runs on: the host agent's first (NOVUM_COMPUTE_DRIVERS). */
export const DRIVER_EXTRA_SPEC = 'novum:driver';

interface RequestScoped {
  /** The request id of the instance action the events belong to (`req-<uuid>`). */
  requestId: string;
}

/**
 * `build_instances` (cast to CONDUCTOR_QUEUE). The instances must exist with vm_state `building` and
 * task_state `scheduling` and have a `create` action under `requestId`. On a reschedule the compute
 * agent sends it again with the attempt number, the hosts that failed and the last failure.
 */
export interface BuildInstancesRequest extends RequestScoped {
  instanceUuids: string[];
  /** 1 for the first try. */
  attempt?: number;
  excludedHosts?: string[];
  /** Why the previous attempt failed, for the fault when no attempt is left. */
  lastFault?: string;
  adminPassword?: string;
}

/** `build_and_run_instance` (cast to computeQueue(host)), sent by the conductor after a successful claim. */
export interface BuildAndRunInstanceRequest extends RequestScoped {
  instanceUuid: string;
  node: string;
  attempt: number;
  excludedHosts: string[];
  adminPassword?: string;
}

/** Every other compute method: the instance, and for reboot the type. */
export interface InstanceRequest extends RequestScoped {
  instanceUuid: string;
}

export interface RebootInstanceRequest extends InstanceRequest {
  rebootType: 'SOFT' | 'HARD';
}

/** `rebuild_instance`: the API has already written the new `imageRef` (and name, metadata) to the row. */
export interface RebuildInstanceRequest extends InstanceRequest {
  adminPassword?: string;
  /** Nova's preserve_ephemeral: keep the ephemeral disk (the fake driver has none to lose). */
  preserveEphemeral?: boolean;
}

/** `resize_instance` (cast by the conductor to the destination host after its claim). */
export interface ResizeInstanceRequest extends InstanceRequest {
  /** The migration's id: the key of the destination claim and `system_metadata.migration_id`. */
  migrationId: string;
}

/**
 * `evacuate_server` (cast to CONDUCTOR_QUEUE, task_state `rebuilding`, its host's service down): rebuilt
 * on another host, `host` if the admin named one.
 */
export interface EvacuateServerRequest extends InstanceRequest {
  host?: string;
  adminPassword?: string;
}

/** `migrate_server` (cast to CONDUCTOR_QUEUE): a resize with `flavor`, a cold migration without. */
export interface MigrateServerRequest extends InstanceRequest {
  flavor?: InstanceFlavor;
}

export interface RescueInstanceRequest extends InstanceRequest {
  /** The image to boot (2.87 `rescue_image_ref`); default the instance's own image. */
  rescueImageRef?: string;
  rescuePassword?: string;
}

/** `shelve_instance`: `imageId` is the queued Glance image the API created (`<name>-shelved`), if any. */
export interface ShelveInstanceRequest extends InstanceRequest {
  imageId?: string;
}

/** `snapshot_instance` (createImage): the queued Glance image the API created. */
export interface SnapshotInstanceRequest extends InstanceRequest {
  imageId: string;
}

export interface SetAdminPasswordRequest extends InstanceRequest {
  newPassword: string;
}

/** The calls without an action: serial console, diagnostics. */
export interface InstanceCallRequest {
  instanceUuid: string;
}

/**
 * `migration_source` (a call between agents, not for the API): what a cross-host resize needs of the
 * source host's guest. Answers the guest's power state afterwards; `export_disks` (the guest off) answers
 * the DiskOffer of its disks, or null when its driver cannot export them.
 */
export interface MigrationSourceRequest extends InstanceRequest {
  migrationId: string;
  step: 'power_off' | 'power_on' | 'destroy' | 'export_disks';
}

/** Where and how the destination of a cross-host resize fetches the guest's exported disks, once. */
export interface DiskOffer {
  /** The source agent's disk transfer listener. */
  host: string;
  port: number;
  /** Admits one fetch of these disks until it expires (sent as the first line). */
  ticket: string;
  /** The driver's export format (DiskExport.format). */
  format: string;
  sizeBytes: number;
  sha256: string;
}

/**
 * `live_migrate_instance` (a call to CONDUCTOR_QUEUE, task_state `migrating`): Nova's live migration, to
 * `host` when the admin named one (checked by the scheduler's filters unless `force`), else where the
 * scheduler picks. Answers once the destination is claimed and checked and the source's agent has the work;
 * a pre-check failure is a 400 (the migration `error`, the task ended).
 */
export interface LiveMigrateInstanceRequest extends InstanceRequest {
  host?: string;
  /** `block_migration`: null ('auto') lets the hosts decide; every host here copies the disks. */
  blockMigration?: boolean;
  force?: boolean;
}

/** `live_migration` (cast by the conductor to the source host): the migration `migrationId` to `destHost`. */
export interface LiveMigrationRequest extends InstanceRequest {
  migrationId: string;
}

/**
 * `live_migration_destination` (a call between agents and from the conductor): the destination's part of a
 * live migration. `check`: its driver can take the guest (Nova's check_can_live_migrate_destination); `pre`:
 * the guest is prepared there, waiting (answers the driver's LiveMigrationTarget); `post`: the guest has
 * arrived and runs (the task ends there); `rollback`: what `pre` made goes.
 */
export interface LiveMigrationDestinationRequest extends InstanceRequest {
  migrationId: string;
  step: 'check' | 'pre' | 'post' | 'rollback';
  /** `post`: the guest stays paused (a PAUSED server). */
  paused?: boolean;
}

export interface ConsoleOutputRequest {
  instanceUuid: string;
  /** The last `length` lines (Nova's os-getConsoleOutput); all when absent. */
  length?: number;
}

/**
 * The compute agent's methods. Casts unless noted; for each the API sets the task_state shown before
 * casting (Nova's compute/api.py), and the agent finishes the transition.
 */
export const ComputeMethod = {
  BUILD_AND_RUN_INSTANCE: 'build_and_run_instance',
  /** task_state `deleting`. */
  TERMINATE_INSTANCE: 'terminate_instance',
  /** task_state `rebooting` (SOFT) or `rebooting_hard` (HARD). */
  REBOOT_INSTANCE: 'reboot_instance',
  /** task_state `powering-off`. */
  STOP_INSTANCE: 'stop_instance',
  /** task_state `powering-on`. */
  START_INSTANCE: 'start_instance',
  /** task_state `pausing` / `unpausing`. */
  PAUSE_INSTANCE: 'pause_instance',
  UNPAUSE_INSTANCE: 'unpause_instance',
  /** task_state `suspending` / `resuming`. */
  SUSPEND_INSTANCE: 'suspend_instance',
  RESUME_INSTANCE: 'resume_instance',
  /** A call: answers the console text. */
  GET_CONSOLE_OUTPUT: 'get_console_output',
  /** task_state `rebuilding` (vm_state active, stopped or error); ends as it began (stopped stays stopped). */
  REBUILD_INSTANCE: 'rebuild_instance',
  /** Sent by the conductor (`migrate_server`), task_state `resize_prep`; ends `resized`. */
  RESIZE_INSTANCE: 'resize_instance',
  /** vm_state `resized`, task_state `resize_confirming` (shown as VERIFY_RESIZE); ends active or stopped. */
  CONFIRM_RESIZE: 'confirm_resize',
  /** vm_state `resized`, task_state `resize_reverting`; ends active or stopped on the old flavor and host. */
  REVERT_RESIZE: 'revert_resize',
  /** task_state `rescuing` (active, stopped, error); ends `rescued`. */
  RESCUE_INSTANCE: 'rescue_instance',
  /** task_state `unrescuing` (rescued); ends `active`. */
  UNRESCUE_INSTANCE: 'unrescue_instance',
  /** task_state `shelving`; ends `shelved`, then `shelved_offloaded` per NOVUM_SHELVED_OFFLOAD_TIME. */
  SHELVE_INSTANCE: 'shelve_instance',
  /** vm_state `shelved`, task_state `shelving_offloading`; ends `shelved_offloaded` without host. */
  SHELVE_OFFLOAD_INSTANCE: 'shelve_offload_instance',
  /** Sent by the conductor (ConductorMethod.UNSHELVE_INSTANCE), task_state `unshelving`; ends `active`. */
  UNSHELVE_INSTANCE: 'unshelve_instance',
  /** task_state `image_snapshot_pending`; image_snapshot → image_pending_upload → image_uploading → none. */
  SNAPSHOT_INSTANCE: 'snapshot_instance',
  /** No task_state (vm_state in ALLOW_TRIGGER_CRASH_DUMP, power_state running): sends the guest an NMI. */
  TRIGGER_CRASH_DUMP: 'trigger_crash_dump',
  /** A call, no task: answers the driver's ConsoleEndpoint. */
  GET_SERIAL_CONSOLE: 'get_serial_console',
  /** A call, no task: answers the driver's Diagnostics. */
  GET_DIAGNOSTICS: 'get_diagnostics',
  /** A call, task_state `updating_password`; a driver without it answers 409 (task back to none). */
  SET_ADMIN_PASSWORD: 'set_admin_password',
  /** task_state `soft-deleting` (the API leaves `deleted_at` unset); ends `soft-delete`, guest off. */
  SOFT_DELETE_INSTANCE: 'soft_delete_instance',
  /** vm_state `soft-delete`, task_state `restoring`; ends `active`. */
  RESTORE_INSTANCE: 'restore_instance',
  /** Between agents only (cross-host resize). */
  MIGRATION_SOURCE: 'migration_source',
  /** Sent by the conductor to the source host, task_state `migrating`; ends on the destination, task none. */
  LIVE_MIGRATION: 'live_migration',
  /** A call from the conductor (`check`) and the source's agent (`pre`, `post`, `rollback`). */
  LIVE_MIGRATION_DESTINATION: 'live_migration_destination',
} as const;

export const ConductorMethod = {
  BUILD_INSTANCES: 'build_instances',
  /** task_state `resize_prep`: resize (with `flavor`) or cold migration (without). */
  MIGRATE_SERVER: 'migrate_server',
  /** task_state `unshelving` (vm_state shelved or shelved_offloaded). */
  UNSHELVE_INSTANCE: 'unshelve_instance',
  /** task_state `rebuilding`, the instance's host down: Nova's rebuild_instance with a recreate. */
  EVACUATE_SERVER: 'evacuate_server',
  /** A call, task_state `migrating` (vm_state active or paused): os-migrateLive. */
  LIVE_MIGRATE_INSTANCE: 'live_migrate_instance',
} as const;

type Kind = 'uuid' | 'string' | 'number' | 'string[]' | 'uuid[]' | 'boolean' | 'flavor';
type Shape = Record<string, Kind | `?${Kind}`>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A short text without NUL (which PostgreSQL refuses): names, request ids, host names, messages. */
const isText = (value: unknown): value is string =>
  typeof value === 'string' && value.length > 0 && value.length <= 4096 && !value.includes('\u0000');

const VALID: Record<Kind, (value: unknown) => boolean> = {
  uuid: (value) => typeof value === 'string' && UUID.test(value),
  string: isText,
  number: (value) => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0,
  'string[]': (value) => Array.isArray(value) && value.length <= 1000 && value.every(isText),
  'uuid[]': (value) => Array.isArray(value) && value.length <= 1000 && value.every((v) => VALID.uuid(v)),
  boolean: (value) => typeof value === 'boolean',
  flavor: (value) => isFlavor(value),
};

const DESCRIBE: Record<Kind, string> = {
  uuid: 'a UUID',
  string: 'a non-empty string without NUL of at most 4096 characters',
  number: 'a whole number >= 0',
  'string[]': 'a list of such strings',
  'uuid[]': 'a list of UUIDs',
  boolean: 'true or false',
  flavor: 'a flavor (id, name, vcpus, memory_mb, root_gb, ephemeral_gb, swap, extra_specs)',
};

/** An instance's flavor snapshot as the row keeps it. */
function isFlavor(value: unknown): value is InstanceFlavor {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const f = value as Record<string, unknown>;
  const whole = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const specs = f.extra_specs;
  return (
    isText(f.id) &&
    isText(f.name) &&
    whole(f.vcpus) &&
    (f.vcpus as number) > 0 &&
    whole(f.memory_mb) &&
    (f.memory_mb as number) > 0 &&
    whole(f.root_gb) &&
    whole(f.ephemeral_gb) &&
    whole(f.swap) &&
    typeof specs === 'object' &&
    specs !== null &&
    !Array.isArray(specs) &&
    Object.entries(specs).every(([k, v]) => isText(k) && typeof v === 'string')
  );
}

/** A message whose payload does not have the contract's shape: refused before any work, never half-done. */
export class MalformedRequestError extends Error {
  override name = 'MalformedRequestError';
  readonly status = 400;
}

function check<T>(payload: unknown, method: string, shape: Shape): T {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new MalformedRequestError(`${method}: the payload must be an object`);
  }
  const record = payload as Record<string, unknown>;
  for (const [field, kind] of Object.entries(shape)) {
    const value = record[field];
    const optional = kind.startsWith('?');
    if (value === undefined && optional) continue;
    const type = (optional ? kind.slice(1) : kind) as Kind;
    if (!VALID[type](value)) throw new MalformedRequestError(`${method}: ${field} must be ${DESCRIBE[type]}`);
  }
  return payload as T;
}

const INSTANCE: Shape = { instanceUuid: 'uuid', requestId: 'string' };

export const checkRequest = {
  buildInstances: (p: unknown) =>
    check<BuildInstancesRequest>(p, 'build_instances', {
      instanceUuids: 'uuid[]',
      requestId: 'string',
      attempt: '?number',
      excludedHosts: '?string[]',
      lastFault: '?string',
      adminPassword: '?string',
    }),
  buildAndRunInstance: (p: unknown) =>
    check<BuildAndRunInstanceRequest>(p, 'build_and_run_instance', {
      instanceUuid: 'uuid',
      requestId: 'string',
      node: 'string',
      attempt: 'number',
      excludedHosts: 'string[]',
      adminPassword: '?string',
    }),
  instance: (p: unknown, method: string) =>
    check<InstanceRequest>(p, method, { instanceUuid: 'uuid', requestId: 'string' }),
  reboot: (p: unknown) => {
    const request = check<RebootInstanceRequest>(p, 'reboot_instance', {
      instanceUuid: 'uuid',
      requestId: 'string',
      rebootType: 'string',
    });
    if (request.rebootType !== 'SOFT' && request.rebootType !== 'HARD') {
      throw new MalformedRequestError('reboot_instance: rebootType must be SOFT or HARD');
    }
    return request;
  },
  consoleOutput: (p: unknown) =>
    check<ConsoleOutputRequest>(p, 'get_console_output', { instanceUuid: 'uuid', length: '?number' }),
  rebuild: (p: unknown) =>
    check<RebuildInstanceRequest>(p, 'rebuild_instance', {
      ...INSTANCE,
      adminPassword: '?string',
      preserveEphemeral: '?boolean',
    }),
  resize: (p: unknown) =>
    check<ResizeInstanceRequest>(p, 'resize_instance', { ...INSTANCE, migrationId: 'uuid' }),
  migrateServer: (p: unknown) =>
    check<MigrateServerRequest>(p, 'migrate_server', { ...INSTANCE, flavor: '?flavor' }),
  evacuateServer: (p: unknown) =>
    check<EvacuateServerRequest>(p, 'evacuate_server', {
      ...INSTANCE,
      host: '?string',
      adminPassword: '?string',
    }),
  rescue: (p: unknown) =>
    check<RescueInstanceRequest>(p, 'rescue_instance', {
      ...INSTANCE,
      rescueImageRef: '?string',
      rescuePassword: '?string',
    }),
  shelve: (p: unknown) =>
    check<ShelveInstanceRequest>(p, 'shelve_instance', { ...INSTANCE, imageId: '?uuid' }),
  snapshot: (p: unknown) =>
    check<SnapshotInstanceRequest>(p, 'snapshot_instance', { ...INSTANCE, imageId: 'uuid' }),
  setAdminPassword: (p: unknown) =>
    check<SetAdminPasswordRequest>(p, 'set_admin_password', { ...INSTANCE, newPassword: 'string' }),
  instanceCall: (p: unknown, method: string) =>
    check<InstanceCallRequest>(p, method, { instanceUuid: 'uuid' }),
  liveMigrateInstance: (p: unknown) =>
    check<LiveMigrateInstanceRequest>(p, 'live_migrate_instance', {
      ...INSTANCE,
      host: '?string',
      blockMigration: '?boolean',
      force: '?boolean',
    }),
  liveMigration: (p: unknown) =>
    check<LiveMigrationRequest>(p, 'live_migration', { ...INSTANCE, migrationId: 'uuid' }),
  liveMigrationDestination: (p: unknown) => {
    const request = check<LiveMigrationDestinationRequest>(p, 'live_migration_destination', {
      ...INSTANCE,
      migrationId: 'uuid',
      step: 'string',
      paused: '?boolean',
    });
    if (!['check', 'pre', 'post', 'rollback'].includes(request.step)) {
      throw new MalformedRequestError(
        'live_migration_destination: step must be check, pre, post or rollback',
      );
    }
    return request;
  },
  migrationSource: (p: unknown) => {
    const request = check<MigrationSourceRequest>(p, 'migration_source', {
      ...INSTANCE,
      migrationId: 'uuid',
      step: 'string',
    });
    if (!['power_off', 'power_on', 'destroy', 'export_disks'].includes(request.step)) {
      throw new MalformedRequestError(
        'migration_source: step must be power_off, power_on, destroy or export_disks',
      );
    }
    return request;
  },
};
