import {
  POWER_STATE_NAMES,
  PowerState,
  TaskState,
  VmState,
  statesFromStatus,
  statusFromState,
} from './states';

// Transcribed from openstack/nova at 00a030403f672b975364c855b7d25b40ef83e757: nova/objects/fields.py
// (InstanceState, InstanceTaskState, InstancePowerState) and nova/api/openstack/common.py (_STATE_MAP).
const NOVA_VM_STATES = [
  'active',
  'building',
  'paused',
  'suspended',
  'stopped',
  'rescued',
  'resized',
  'soft-delete',
  'deleted',
  'error',
  'shelved',
  'shelved_offloaded',
];
const NOVA_TASK_STATES = [
  'scheduling',
  'block_device_mapping',
  'networking',
  'spawning',
  'image_snapshot',
  'image_snapshot_pending',
  'image_pending_upload',
  'image_uploading',
  'image_backup',
  'updating_password',
  'resize_prep',
  'resize_migrating',
  'resize_migrated',
  'resize_finish',
  'resize_reverting',
  'resize_confirming',
  'rebooting',
  'reboot_pending',
  'reboot_started',
  'rebooting_hard',
  'reboot_pending_hard',
  'reboot_started_hard',
  'pausing',
  'unpausing',
  'suspending',
  'resuming',
  'powering-off',
  'powering-on',
  'rescuing',
  'unrescuing',
  'rebuilding',
  'rebuild_block_device_mapping',
  'rebuild_spawning',
  'migrating',
  'deleting',
  'soft-deleting',
  'restoring',
  'shelving',
  'shelving_image_pending_upload',
  'shelving_image_uploading',
  'shelving_offloading',
  'unshelving',
];
const NOVA_POWER_STATES = [
  'pending',
  'running',
  '_unused',
  'paused',
  'shutdown',
  '_unused',
  'crashed',
  'suspended',
];
const NOVA_STATE_MAP: Record<string, Record<string, string>> = {
  active: {
    default: 'ACTIVE',
    rebooting: 'REBOOT',
    reboot_pending: 'REBOOT',
    reboot_started: 'REBOOT',
    rebooting_hard: 'HARD_REBOOT',
    reboot_pending_hard: 'HARD_REBOOT',
    reboot_started_hard: 'HARD_REBOOT',
    updating_password: 'PASSWORD',
    rebuilding: 'REBUILD',
    rebuild_block_device_mapping: 'REBUILD',
    rebuild_spawning: 'REBUILD',
    migrating: 'MIGRATING',
    resize_prep: 'RESIZE',
    resize_migrating: 'RESIZE',
    resize_migrated: 'RESIZE',
    resize_finish: 'RESIZE',
  },
  building: { default: 'BUILD' },
  stopped: {
    default: 'SHUTOFF',
    resize_prep: 'RESIZE',
    resize_migrating: 'RESIZE',
    resize_migrated: 'RESIZE',
    resize_finish: 'RESIZE',
    rebuilding: 'REBUILD',
    rebuild_block_device_mapping: 'REBUILD',
    rebuild_spawning: 'REBUILD',
  },
  resized: { default: 'VERIFY_RESIZE', resize_reverting: 'REVERT_RESIZE' },
  paused: { default: 'PAUSED', migrating: 'MIGRATING' },
  suspended: { default: 'SUSPENDED' },
  rescued: { default: 'RESCUE' },
  error: {
    default: 'ERROR',
    rebuilding: 'REBUILD',
    rebuild_block_device_mapping: 'REBUILD',
    rebuild_spawning: 'REBUILD',
  },
  deleted: { default: 'DELETED' },
  'soft-delete': { default: 'SOFT_DELETED' },
  shelved: { default: 'SHELVED' },
  shelved_offloaded: { default: 'SHELVED_OFFLOADED' },
};

/** Nova's status_from_state, line for line. */
function novaStatusFromState(vmState: string, taskState: string | null): string {
  const taskMap = NOVA_STATE_MAP[vmState] ?? { default: 'UNKNOWN' };
  return (taskState !== null && taskMap[taskState]) || taskMap.default;
}

/** Nova's task_and_vm_state_from_status, with servers.py dropping the task filter when 'default' matched. */
function novaStatesFromStatus(statuses: string[]): { vmStates: string[]; taskStates?: string[] } {
  const lower = statuses.map((status) => status.toLowerCase());
  const vmStates = new Set<string>();
  const taskStates = new Set<string>();
  for (const [vmState, taskMap] of Object.entries(NOVA_STATE_MAP)) {
    for (const [taskState, status] of Object.entries(taskMap)) {
      if (!lower.includes(status.toLowerCase())) continue;
      vmStates.add(vmState);
      taskStates.add(taskState);
    }
  }
  return taskStates.has('default')
    ? { vmStates: [...vmStates].sort() }
    : { vmStates: [...vmStates].sort(), taskStates: [...taskStates].sort() };
}

describe('state vocabulary', () => {
  it("stores Nova's vm_state, task_state and power_state values", () => {
    expect(Object.values(VmState)).toEqual(NOVA_VM_STATES);
    expect(Object.values(TaskState)).toEqual(NOVA_TASK_STATES);
    expect(Object.entries(POWER_STATE_NAMES)).toEqual(
      NOVA_POWER_STATES.flatMap((name, index) => (name === '_unused' ? [] : [[String(index), name]])),
    );
    const { NOSTATE, RUNNING, PAUSED, SHUTDOWN, CRASHED, SUSPENDED } = PowerState;
    expect(
      [NOSTATE, RUNNING, PAUSED, SHUTDOWN, CRASHED, SUSPENDED].map((state) => NOVA_POWER_STATES[state]),
    ).toEqual(['pending', 'running', 'paused', 'shutdown', 'crashed', 'suspended']);
  });
});

describe('statusFromState', () => {
  const taskStates: (string | null)[] = [null, ...NOVA_TASK_STATES];

  it("gives Nova's status for every vm_state and task_state pair", () => {
    for (const vmState of [...NOVA_VM_STATES, 'no-such-state']) {
      for (const taskState of taskStates) {
        expect([vmState, taskState, statusFromState(vmState, taskState)]).toEqual([
          vmState,
          taskState,
          novaStatusFromState(vmState, taskState),
        ]);
      }
    }
  });

  it.each([
    [VmState.ACTIVE, null, 'ACTIVE'],
    [VmState.ACTIVE, TaskState.REBOOT_STARTED_HARD, 'HARD_REBOOT'],
    [VmState.ACTIVE, TaskState.POWERING_OFF, 'ACTIVE'],
    [VmState.BUILDING, TaskState.SPAWNING, 'BUILD'],
    [VmState.STOPPED, TaskState.RESIZE_PREP, 'RESIZE'],
    [VmState.RESIZED, TaskState.RESIZE_CONFIRMING, 'VERIFY_RESIZE'],
    [VmState.RESIZED, TaskState.RESIZE_REVERTING, 'REVERT_RESIZE'],
    [VmState.ERROR, TaskState.REBUILD_SPAWNING, 'REBUILD'],
    [VmState.SOFT_DELETED, null, 'SOFT_DELETED'],
    ['soft_deleted', null, 'UNKNOWN'],
  ])('maps %s with task %s to %s', (vmState, taskState, status) => {
    expect(statusFromState(vmState, taskState)).toBe(status);
  });

  it('treats a missing task state as none', () => {
    expect(statusFromState(VmState.PAUSED)).toBe('PAUSED');
    expect(statusFromState(VmState.PAUSED, undefined)).toBe('PAUSED');
  });
});

describe('statesFromStatus', () => {
  const allStatuses = [
    ...new Set(Object.values(NOVA_STATE_MAP).flatMap((taskMap) => Object.values(taskMap))),
  ];

  it("matches Nova's filter for each status alone, in pairs, and for unknown ones", () => {
    const queries = [
      ...allStatuses.map((status) => [status]),
      ...allStatuses.flatMap((first) => allStatuses.map((second) => [first, second])),
      ['NO_SUCH_STATUS'],
      [],
    ];
    for (const query of queries)
      expect([query, statesFromStatus(query)]).toEqual([query, novaStatesFromStatus(query)]);
  });

  it('filters on task state only when no status was a default one, ignoring case', () => {
    expect(statesFromStatus(['reboot'])).toEqual({
      vmStates: [VmState.ACTIVE],
      taskStates: [TaskState.REBOOT_PENDING, TaskState.REBOOT_STARTED, TaskState.REBOOTING],
    });
    expect(statesFromStatus(['RESIZE'])).toEqual({
      vmStates: [VmState.ACTIVE, VmState.STOPPED],
      taskStates: [
        TaskState.RESIZE_FINISH,
        TaskState.RESIZE_MIGRATED,
        TaskState.RESIZE_MIGRATING,
        TaskState.RESIZE_PREP,
      ],
    });
    expect(statesFromStatus(['ACTIVE', 'REBOOT'])).toEqual({ vmStates: [VmState.ACTIVE] });
    expect(statesFromStatus(['SHUTOFF'])).toEqual({ vmStates: [VmState.STOPPED] });
    expect(statesFromStatus(['BOGUS'])).toEqual({ vmStates: [], taskStates: [] });
  });
});
