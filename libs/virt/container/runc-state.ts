import { join } from 'node:path';
import { pathExists, readSmallFile } from '../local-files';

/** The OCI runtime's status names (`runc state`). */
export type RuntimeStatus = 'creating' | 'created' | 'running' | 'pausing' | 'paused' | 'stopped';

interface RuncStateFile {
  init_process_pid?: number;
  init_process_start?: number;
  cgroup_paths?: Record<string, string>;
}

/** A process's state letter and start time (clock ticks since boot) from /proc/<pid>/stat; undefined if gone. */
export async function procStat(pid: number): Promise<{ state: string; start: number } | undefined> {
  const text = readSmallFile(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  // The command name (field 2) is in parentheses and may hold spaces or parentheses: fields resume after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0], start: Number(fields[19]) };
}

/** What runcStatus reads of the host (replaced in unit tests). */
export interface RuncStateHost {
  readText(path: string): Promise<string | undefined>;
  exists(path: string): Promise<boolean>;
  stat(pid: number): Promise<{ state: string; start: number } | undefined>;
}

const realHost: RuncStateHost = {
  readText: async (path) => readSmallFile(path),
  exists: async (path) => pathExists(path),
  stat: procStat,
};

/**
 * A runtime's JSON state file in `dir`: undefined when the runtime has no such container (no directory), null
 * when the file is missing or unreadable in a directory that exists (being written: the runtime's own answer
 * is authoritative).
 */
async function readStateFile<T>(
  host: RuncStateHost,
  dir: string,
  name: string,
): Promise<T | undefined | null> {
  const raw = await host.readText(join(dir, name));
  if (raw === undefined) return (await host.exists(dir)) ? null : undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return null;
  }
}

/** Whether a container's init process has ended: gone, a zombie, or its pid reused (another start time). */
function initEnded(proc: { state: string; start: number } | undefined, start: number): boolean {
  return !proc || proc.state === 'Z' || proc.state === 'X' || proc.start !== start;
}

/**
 * The status `runc state <id>` would print, derived as runc derives it (libcontainer's refreshState) from what
 * runc keeps under `<root>/<id>/`, without starting a runc process: paused when the freezer holds the cgroup;
 * stopped when the init process is gone, a zombie, or another process reusing its pid (start time differs);
 * created while the exec fifo still waits for `runc start`; running otherwise.
 *
 * Returns `undefined` when runc has no such container and `null` when the files are not runc's known layout,
 * so that the caller asks the runtime itself.
 */
export async function runcStatus(
  runtimeRoot: string,
  id: string,
  host: RuncStateHost = realHost,
): Promise<RuntimeStatus | undefined | null> {
  const { readText, exists, stat } = host;
  const dir = join(runtimeRoot, id);
  const state = await readStateFile<RuncStateFile>(host, dir, 'state.json');
  if (!state) return state;
  const pid = state.init_process_pid;
  if (typeof pid !== 'number' || typeof state.init_process_start !== 'number') return null;
  const paths = state.cgroup_paths ?? {};
  const freezer = paths.freezer
    ? await readText(join(paths.freezer, 'freezer.state'))
    : paths['']
      ? await readText(join(paths[''], 'cgroup.freeze'))
      : undefined;
  const frozen = freezer?.trim();
  if (frozen === 'FROZEN' || frozen === '1') return 'paused';
  if (initEnded(await stat(pid), state.init_process_start)) return 'stopped';
  // Only its existence: opening the fifo would block (or, for writing, start the container).
  if (await exists(join(dir, 'exec.fifo'))) return 'created';
  return frozen === 'FREEZING' ? 'pausing' : 'running';
}

/** The container's init process id as runc recorded it; undefined when runc's state file cannot tell. */
export async function runcInitPid(
  runtimeRoot: string,
  id: string,
  host: RuncStateHost = realHost,
): Promise<number | undefined> {
  return recordedPid(
    host,
    join(runtimeRoot, id, 'state.json'),
    (state: RuncStateFile) => state.init_process_pid,
  );
}

/** A pid a runtime's state file records (`pick` finds it), when the file reads and the pid is one. */
async function recordedPid<T>(
  host: RuncStateHost,
  file: string,
  pick: (state: T) => unknown,
): Promise<number | undefined> {
  const raw = await host.readText(file);
  try {
    const pid = pick(JSON.parse(raw ?? '') as T);
    return typeof pid === 'number' && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

interface CrunStatusFile {
  pid?: number;
  'process-start-time'?: number;
  'cgroup-path'?: string;
  'systemd-cgroup'?: boolean;
}

/**
 * The status `crun state <id>` would print, derived as crun derives it from its `<root>/<id>/status` file
 * without starting a crun process: stopped when the init process is gone, a zombie or its pid reused; created
 * while the exec fifo waits for `crun start`; paused when the cgroup's freezer holds it (cgroup v1's freezer
 * controller where it is mounted, as on a hybrid host, else cgroup v2's cgroup.freeze); running otherwise.
 * `undefined` when crun has no such container, `null` when the files are not a layout understood here
 * (systemd cgroups among them), so that the caller asks crun.
 */
export async function crunStatus(
  runtimeRoot: string,
  id: string,
  host: RuncStateHost = realHost,
  cgroupRoot = '/sys/fs/cgroup',
): Promise<RuntimeStatus | undefined | null> {
  const { readText, exists, stat } = host;
  const dir = join(runtimeRoot, id);
  const status = await readStateFile<CrunStatusFile>(host, dir, 'status');
  if (!status) return status;
  const { pid, 'process-start-time': start, 'cgroup-path': cgroup } = status;
  if (typeof pid !== 'number' || typeof start !== 'number' || typeof cgroup !== 'string') return null;
  if (status['systemd-cgroup'] || !cgroup.startsWith('/')) return null;
  if (pid <= 0 || initEnded(await stat(pid), start)) return 'stopped';
  if (await exists(join(dir, 'exec.fifo'))) return 'created';
  const v1 = await readText(join(cgroupRoot, 'freezer', cgroup, 'freezer.state'));
  const frozen = (v1 ?? (await readText(join(cgroupRoot, cgroup, 'cgroup.freeze'))))?.trim();
  if (frozen === 'FROZEN' || frozen === '1') return 'paused';
  return frozen === 'FREEZING' ? 'pausing' : 'running';
}

/** The container's init process id as crun recorded it; undefined when crun's status file cannot tell. */
export async function crunInitPid(
  runtimeRoot: string,
  id: string,
  host: RuncStateHost = realHost,
): Promise<number | undefined> {
  return recordedPid(host, join(runtimeRoot, id, 'status'), (status: CrunStatusFile) => status.pid);
}
