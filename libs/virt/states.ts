/**
 * The state vocabulary of the whole compute side, copied from Nova with its names and stored values
 * (nova/compute/{power_state,vm_states,task_states}.py, nova/objects/fields.py) so that database rows,
 * API fields (OS-EXT-STS:*) and notifications read exactly as Nova's do.
 */

/** What the hypervisor reports; the numbers are Nova's, stored in the database and shown by the API. */
export enum PowerState {
  NOSTATE = 0,
  RUNNING = 1,
  PAUSED = 3,
  SHUTDOWN = 4,
  CRASHED = 6,
  SUSPENDED = 7,
}

/** Nova's InstancePowerState strings, for a power state written as text (notifications, diagnostics). */
export const POWER_STATE_NAMES = {
  [PowerState.NOSTATE]: 'pending',
  [PowerState.RUNNING]: 'running',
  [PowerState.PAUSED]: 'paused',
  [PowerState.SHUTDOWN]: 'shutdown',
  [PowerState.CRASHED]: 'crashed',
  [PowerState.SUSPENDED]: 'suspended',
} as const satisfies Record<PowerState, string>;
export type PowerStateName = (typeof POWER_STATE_NAMES)[PowerState];

/** The stable state a user expects when no task runs. Note Nova's hyphenated 'soft-delete'. */
export const VmState = {
  ACTIVE: 'active',
  BUILDING: 'building',
  PAUSED: 'paused',
  SUSPENDED: 'suspended',
  STOPPED: 'stopped',
  RESCUED: 'rescued',
  RESIZED: 'resized',
  SOFT_DELETED: 'soft-delete',
  DELETED: 'deleted',
  ERROR: 'error',
  SHELVED: 'shelved',
  SHELVED_OFFLOADED: 'shelved_offloaded',
} as const;
export type VmState = (typeof VmState)[keyof typeof VmState];

/** What is happening to an instance right now; null when nothing is. Note the hyphenated power tasks. */
export const TaskState = {
  SCHEDULING: 'scheduling',
  BLOCK_DEVICE_MAPPING: 'block_device_mapping',
  NETWORKING: 'networking',
  SPAWNING: 'spawning',
  IMAGE_SNAPSHOT: 'image_snapshot',
  IMAGE_SNAPSHOT_PENDING: 'image_snapshot_pending',
  IMAGE_PENDING_UPLOAD: 'image_pending_upload',
  IMAGE_UPLOADING: 'image_uploading',
  IMAGE_BACKUP: 'image_backup',
  UPDATING_PASSWORD: 'updating_password',
  RESIZE_PREP: 'resize_prep',
  RESIZE_MIGRATING: 'resize_migrating',
  RESIZE_MIGRATED: 'resize_migrated',
  RESIZE_FINISH: 'resize_finish',
  RESIZE_REVERTING: 'resize_reverting',
  RESIZE_CONFIRMING: 'resize_confirming',
  REBOOTING: 'rebooting',
  REBOOT_PENDING: 'reboot_pending',
  REBOOT_STARTED: 'reboot_started',
  REBOOTING_HARD: 'rebooting_hard',
  REBOOT_PENDING_HARD: 'reboot_pending_hard',
  REBOOT_STARTED_HARD: 'reboot_started_hard',
  PAUSING: 'pausing',
  UNPAUSING: 'unpausing',
  SUSPENDING: 'suspending',
  RESUMING: 'resuming',
  POWERING_OFF: 'powering-off',
  POWERING_ON: 'powering-on',
  RESCUING: 'rescuing',
  UNRESCUING: 'unrescuing',
  REBUILDING: 'rebuilding',
  REBUILD_BLOCK_DEVICE_MAPPING: 'rebuild_block_device_mapping',
  REBUILD_SPAWNING: 'rebuild_spawning',
  MIGRATING: 'migrating',
  DELETING: 'deleting',
  SOFT_DELETING: 'soft-deleting',
  RESTORING: 'restoring',
  SHELVING: 'shelving',
  SHELVING_IMAGE_PENDING_UPLOAD: 'shelving_image_pending_upload',
  SHELVING_IMAGE_UPLOADING: 'shelving_image_uploading',
  SHELVING_OFFLOADING: 'shelving_offloading',
  UNSHELVING: 'unshelving',
} as const;
export type TaskState = (typeof TaskState)[keyof typeof TaskState];

/** The groups Nova's API checks actions against (vm_states.ALLOW_*, task_states.*_states). */
export const ALLOW_SOFT_REBOOT: readonly VmState[] = [VmState.ACTIVE];
export const ALLOW_HARD_REBOOT: readonly VmState[] = [
  ...ALLOW_SOFT_REBOOT,
  VmState.STOPPED,
  VmState.PAUSED,
  VmState.SUSPENDED,
  VmState.ERROR,
];
export const ALLOW_TRIGGER_CRASH_DUMP: readonly VmState[] = [
  VmState.ACTIVE,
  VmState.PAUSED,
  VmState.RESCUED,
  VmState.RESIZED,
  VmState.ERROR,
];
/** Task states a reboot may interrupt; null is "no task". */
export const ALLOW_REBOOT_TASK_STATES: readonly (TaskState | null)[] = [
  null,
  TaskState.REBOOTING,
  TaskState.REBOOT_PENDING,
  TaskState.REBOOT_STARTED,
  TaskState.RESUMING,
  TaskState.REBOOTING_HARD,
  TaskState.UNPAUSING,
  TaskState.PAUSING,
  TaskState.SUSPENDING,
];
export const SOFT_REBOOT_TASK_STATES: readonly TaskState[] = [
  TaskState.REBOOTING,
  TaskState.REBOOT_PENDING,
  TaskState.REBOOT_STARTED,
];
export const HARD_REBOOT_TASK_STATES: readonly TaskState[] = [
  TaskState.REBOOTING_HARD,
  TaskState.REBOOT_PENDING_HARD,
  TaskState.REBOOT_STARTED_HARD,
];
export const RESIZING_TASK_STATES: readonly TaskState[] = [
  TaskState.RESIZE_PREP,
  TaskState.RESIZE_MIGRATING,
  TaskState.RESIZE_MIGRATED,
  TaskState.RESIZE_FINISH,
];
export const REBUILD_TASK_STATES: readonly TaskState[] = [
  TaskState.REBUILDING,
  TaskState.REBUILD_BLOCK_DEVICE_MAPPING,
  TaskState.REBUILD_SPAWNING,
];

export type ServerStatus =
  | 'ACTIVE'
  | 'BUILD'
  | 'REBOOT'
  | 'HARD_REBOOT'
  | 'PASSWORD'
  | 'REBUILD'
  | 'MIGRATING'
  | 'RESIZE'
  | 'VERIFY_RESIZE'
  | 'REVERT_RESIZE'
  | 'SHUTOFF'
  | 'PAUSED'
  | 'SUSPENDED'
  | 'RESCUE'
  | 'ERROR'
  | 'DELETED'
  | 'SOFT_DELETED'
  | 'SHELVED'
  | 'SHELVED_OFFLOADED'
  | 'UNKNOWN';

interface StatusByTask {
  default: ServerStatus;
  tasks?: Partial<Record<TaskState, ServerStatus>>;
}

const REBUILD: Partial<Record<TaskState, ServerStatus>> = {
  [TaskState.REBUILDING]: 'REBUILD',
  [TaskState.REBUILD_BLOCK_DEVICE_MAPPING]: 'REBUILD',
  [TaskState.REBUILD_SPAWNING]: 'REBUILD',
};
const RESIZE: Partial<Record<TaskState, ServerStatus>> = {
  [TaskState.RESIZE_PREP]: 'RESIZE',
  [TaskState.RESIZE_MIGRATING]: 'RESIZE',
  [TaskState.RESIZE_MIGRATED]: 'RESIZE',
  [TaskState.RESIZE_FINISH]: 'RESIZE',
};

/** nova/api/openstack/common.py `_STATE_MAP`; RESIZE_CONFIRMING is left out on purpose (VERIFY_RESIZE). */
const STATE_MAP: Readonly<Record<VmState, StatusByTask>> = {
  [VmState.ACTIVE]: {
    default: 'ACTIVE',
    tasks: {
      [TaskState.REBOOTING]: 'REBOOT',
      [TaskState.REBOOT_PENDING]: 'REBOOT',
      [TaskState.REBOOT_STARTED]: 'REBOOT',
      [TaskState.REBOOTING_HARD]: 'HARD_REBOOT',
      [TaskState.REBOOT_PENDING_HARD]: 'HARD_REBOOT',
      [TaskState.REBOOT_STARTED_HARD]: 'HARD_REBOOT',
      [TaskState.UPDATING_PASSWORD]: 'PASSWORD',
      ...REBUILD,
      [TaskState.MIGRATING]: 'MIGRATING',
      ...RESIZE,
    },
  },
  [VmState.BUILDING]: { default: 'BUILD' },
  [VmState.STOPPED]: { default: 'SHUTOFF', tasks: { ...RESIZE, ...REBUILD } },
  [VmState.RESIZED]: { default: 'VERIFY_RESIZE', tasks: { [TaskState.RESIZE_REVERTING]: 'REVERT_RESIZE' } },
  [VmState.PAUSED]: { default: 'PAUSED', tasks: { [TaskState.MIGRATING]: 'MIGRATING' } },
  [VmState.SUSPENDED]: { default: 'SUSPENDED' },
  [VmState.RESCUED]: { default: 'RESCUE' },
  [VmState.ERROR]: { default: 'ERROR', tasks: { ...REBUILD } },
  [VmState.DELETED]: { default: 'DELETED' },
  [VmState.SOFT_DELETED]: { default: 'SOFT_DELETED' },
  [VmState.SHELVED]: { default: 'SHELVED' },
  [VmState.SHELVED_OFFLOADED]: { default: 'SHELVED_OFFLOADED' },
};

const has = <T extends object>(object: T, key: PropertyKey): key is keyof T =>
  Object.prototype.hasOwnProperty.call(object, key);

/**
 * The server `status` the API shows (Nova's `status_from_state`). Takes plain strings because that is what
 * the database holds; an unknown vm_state gives UNKNOWN, which in Nova means a bad upgrade or a corrupt row.
 */
export function statusFromState(vmState: string, taskState?: string | null): ServerStatus {
  if (!has(STATE_MAP, vmState)) return 'UNKNOWN';
  const byTask = STATE_MAP[vmState];
  if (taskState && byTask.tasks && has(byTask.tasks, taskState)) return byTask.tasks[taskState]!;
  return byTask.default;
}

/**
 * The database filter for `GET /servers?status=...` (Nova's `task_and_vm_state_from_status`), matched
 * case-insensitively. `taskStates` is undefined when a status matched a vm_state's default, because Nova
 * then filters on vm_state alone. No vmStates means no status matched (400 from microversion 2.38).
 */
export function statesFromStatus(statuses: readonly string[]): {
  vmStates: VmState[];
  taskStates?: TaskState[];
} {
  const wanted = new Set(statuses.map((status) => status.toUpperCase()));
  const vmStates = new Set<VmState>();
  const taskStates = new Set<TaskState>();
  let matchedDefault = false;
  for (const [vmState, byTask] of Object.entries(STATE_MAP) as [VmState, StatusByTask][]) {
    if (wanted.has(byTask.default)) {
      vmStates.add(vmState);
      matchedDefault = true;
    }
    for (const [taskState, status] of Object.entries(byTask.tasks ?? {}) as [TaskState, ServerStatus][]) {
      if (!wanted.has(status)) continue;
      vmStates.add(vmState);
      taskStates.add(taskState);
    }
  }
  return {
    vmStates: [...vmStates].sort(),
    ...(matchedDefault ? {} : { taskStates: [...taskStates].sort() }),
  };
}
