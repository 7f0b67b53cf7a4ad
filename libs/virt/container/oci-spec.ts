import type { FlavorSpec } from '../driver';
import type { ImageRuntimeConfig } from './image-store';
import { defaultSeccompProfile } from './seccomp';

/** Docker's default capability set. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** Docker's masked and read-only /proc and /sys paths. */
export const MASKED_PATHS = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export const CPU_PERIOD_US = 100_000;
/** Processes (and threads) one container may have at once. */
export const PIDS_LIMIT = 1024;
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ContainerLimits {
  memoryBytes: number;
  /** Memory plus swap (cgroup v1 memsw); equal to memoryBytes: no swap. Absent where the host has no memsw. */
  memorySwapBytes?: number;
  cpuQuotaUs: number;
  cpuPeriodUs: number;
  cpuShares?: number;
  pids: number;
}

const positive = (raw: string | undefined): number | undefined => {
  const n = Number(raw);
  return raw !== undefined && Number.isInteger(n) && n > 0 ? n : undefined;
};

/** The flavour's limits: RAM (swap the same), vCPUs as CFS quota, a pids limit; Nova's `quota:cpu_*` win. */
export function flavorLimits(flavor: FlavorSpec, swapAccounting: boolean): ContainerLimits {
  const memoryBytes = flavor.memoryMb * 1024 * 1024;
  const cpuPeriodUs = positive(flavor.extraSpecs['quota:cpu_period']) ?? CPU_PERIOD_US;
  return {
    memoryBytes,
    memorySwapBytes: swapAccounting ? memoryBytes : undefined,
    cpuPeriodUs,
    cpuQuotaUs: positive(flavor.extraSpecs['quota:cpu_quota']) ?? flavor.vcpus * cpuPeriodUs,
    cpuShares: positive(flavor.extraSpecs['quota:cpu_shares']),
    pids: PIDS_LIMIT,
  };
}

export interface OciSpecInput {
  hostname: string;
  image: ImageRuntimeConfig;
  uid: number;
  gid: number;
  limits: ContainerLimits;
  cgroupsPath: string;
  /** Relative to the bundle. */
  rootfs: string;
  /** Host directories bind-mounted into the container (read-only unless `writable`). */
  binds?: { source: string; destination: string; writable?: boolean }[];
  /** A user namespace: container ids 0..size-1 are host ids hostId..hostId+size-1 (uids and gids alike). */
  idMap?: IdMap;
  /** A network namespace made beforehand (with the ports in it) to join; absent: a new one, loopback only. */
  netnsPath?: string;
}

export interface IdMap {
  hostId: number;
  size: number;
}

/** The command line: Entrypoint then Cmd, as Docker runs them. */
export function processArgs(image: ImageRuntimeConfig): string[] {
  return [...(image.Entrypoint ?? []), ...(image.Cmd ?? [])];
}

/** An OCI runtime config.json (version 1.0.2) for one container. */
export function ociSpec(input: OciSpecInput): Record<string, unknown> {
  const args = processArgs(input.image);
  const env = [...(input.image.Env ?? [])];
  if (!env.some((entry) => entry.startsWith('PATH='))) env.unshift(DEFAULT_PATH);
  env.push(`HOSTNAME=${input.hostname}`);
  const { limits } = input;
  const spec: Record<string, unknown> = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: input.uid, gid: input.gid },
      args,
      env,
      cwd: input.image.WorkingDir || '/',
      capabilities: {
        bounding: DEFAULT_CAPABILITIES,
        effective: DEFAULT_CAPABILITIES,
        permitted: DEFAULT_CAPABILITIES,
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: input.rootfs, readonly: false },
    hostname: input.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
      },
      {
        destination: '/dev/shm',
        type: 'tmpfs',
        source: 'shm',
        options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
      },
      {
        destination: '/dev/mqueue',
        type: 'mqueue',
        source: 'mqueue',
        options: ['nosuid', 'noexec', 'nodev'],
      },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      {
        destination: '/sys/fs/cgroup',
        type: 'cgroup',
        source: 'cgroup',
        options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
      },
    ],
    linux: {
      namespaces: ['pid', 'mount', 'uts', 'ipc', 'network'].map((type) =>
        type === 'network' && input.netnsPath ? { type, path: input.netnsPath } : { type },
      ),
      ...userNamespace(input.idMap),
      cgroupsPath: input.cgroupsPath,
      resources: {
        devices: [{ allow: false, access: 'rwm' }],
        memory: {
          limit: limits.memoryBytes,
          ...(limits.memorySwapBytes !== undefined ? { swap: limits.memorySwapBytes } : {}),
        },
        cpu: {
          quota: limits.cpuQuotaUs,
          period: limits.cpuPeriodUs,
          ...(limits.cpuShares !== undefined ? { shares: limits.cpuShares } : {}),
        },
        pids: { limit: limits.pids },
      },
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      seccomp: defaultSeccompProfile(),
    },
  };
  for (const bind of input.binds ?? []) {
    (spec.mounts as unknown[]).push({
      destination: bind.destination,
      type: 'bind',
      source: bind.source,
      options: ['rbind', 'nosuid', 'nodev', ...(bind.writable ? [] : ['ro'])],
    });
  }
  if (input.idMap) {
    const linux = spec.linux as { namespaces: { type: string; path?: string }[] };
    linux.namespaces.push({ type: 'user' });
    // A sysfs mount needs a network namespace the user namespace owns; one made beforehand on the host (the
    // port plugged into it) is not: then the host's /sys is bound read-only instead, as rootless runc does.
    if (linux.namespaces.some((ns) => ns.type === 'network' && ns.path)) {
      const sys = (spec.mounts as Record<string, unknown>[]).find((m) => m.destination === '/sys');
      if (sys)
        Object.assign(sys, {
          type: 'bind',
          source: '/sys',
          options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'],
        });
    }
  }
  return spec;
}

/** The uid and gid maps of a user namespace (the namespace itself joins the list in ociSpec). */
function userNamespace(idMap: IdMap | undefined): Record<string, unknown> {
  if (!idMap) return {};
  const map = [{ containerID: 0, hostID: idMap.hostId, size: idMap.size }];
  return { uidMappings: map, gidMappings: map };
}
