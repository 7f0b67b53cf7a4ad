/**
 * The bus contract of the compute control plane, modelled on nova/conductor/rpcapi.py and
 * nova/compute/rpcapi.py. The compute API (a later slice) writes the instance row and its action
 * (InstanceRecords.createInstances), then casts `build_instances` to the conductor; every later action
 * sets the instance's task_state on condition of its current state, records the action, and casts the
 * method to the instance's host. Payload fields are camelCase; every payload names the request whose
 * instance action the events are recorded under.
 */

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
} as const;

export const ConductorMethod = {
  BUILD_INSTANCES: 'build_instances',
} as const;

type Kind = 'uuid' | 'string' | 'number' | 'string[]' | 'uuid[]';
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
};

const DESCRIBE: Record<Kind, string> = {
  uuid: 'a UUID',
  string: 'a non-empty string without NUL of at most 4096 characters',
  number: 'a whole number >= 0',
  'string[]': 'a list of such strings',
  'uuid[]': 'a list of UUIDs',
};

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
};
