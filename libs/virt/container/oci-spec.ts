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
  /** Nova's `quota:disk_*` extra specs: throttles on the root disk's block device (absent: none). */
  io?: IoThrottle;
}

/** Bytes and operations per second, each absent when unlimited. */
export interface IoThrottle {
  readBps?: number;
  writeBps?: number;
  readIops?: number;
  writeIops?: number;
}

/** A block device by its numbers, as `/sys/block/<name>/dev` gives them. */
export interface BlockDevice {
  major: number;
  minor: number;
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
    io: ioThrottle(flavor.extraSpecs),
  };
}

/**
 * Nova's disk I/O extra specs (`quota:disk_{read,write,total}_{bytes,iops}_sec`, libvirt's iotune) as blkio
 * throttles. The cgroup throttles reads and writes apart, so a `total` limit bounds each direction (the
 * tighter of it and the direction's own limit wins); a combined cap is not expressible.
 */
export function ioThrottle(specs: Record<string, string>): IoThrottle | undefined {
  const pick = (direction: 'read' | 'write', unit: 'bytes' | 'iops') => {
    const values = [specs[`quota:disk_${direction}_${unit}_sec`], specs[`quota:disk_total_${unit}_sec`]]
      .map(positive)
      .filter((value): value is number => value !== undefined);
    return values.length > 0 ? Math.min(...values) : undefined;
  };
  const io: IoThrottle = {
    readBps: pick('read', 'bytes'),
    writeBps: pick('write', 'bytes'),
    readIops: pick('read', 'iops'),
    writeIops: pick('write', 'iops'),
  };
  for (const key of Object.keys(io) as (keyof IoThrottle)[]) if (io[key] === undefined) delete io[key];
  return Object.keys(io).length > 0 ? io : undefined;
}

/** The blkio throttle files of cgroup v1 and their lines for the device (what `runc update` cannot change). */
export function blkioThrottleFiles(io: IoThrottle | undefined, device: BlockDevice): Record<string, string> {
  const line = (value: number | undefined) => `${device.major}:${device.minor} ${value ?? 0}`;
  // 0 removes a device's throttle.
  return {
    'blkio.throttle.read_bps_device': line(io?.readBps),
    'blkio.throttle.write_bps_device': line(io?.writeBps),
    'blkio.throttle.read_iops_device': line(io?.readIops),
    'blkio.throttle.write_iops_device': line(io?.writeIops),
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
  /** The root disk's block device (its loop device), which the limits' I/O throttles apply to. */
  rootDevice?: BlockDevice;
  /** The process's capabilities: Docker's default set or fewer (absent: the default set). */
  capabilities?: string[];
  /** The root filesystem mounted read-only (`docker run --read-only`). */
  readonlyRoot?: boolean;
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
        bounding: input.capabilities ?? DEFAULT_CAPABILITIES,
        effective: input.capabilities ?? DEFAULT_CAPABILITIES,
        permitted: input.capabilities ?? DEFAULT_CAPABILITIES,
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: input.rootfs, readonly: input.readonlyRoot ?? false },
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
        ...blockIO(limits.io, input.rootDevice),
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

/** linux.resources.blockIO: the throttles on the root disk's device; nothing without a device or limits. */
function blockIO(io: IoThrottle | undefined, device: BlockDevice | undefined): Record<string, unknown> {
  if (!io || !device) return {};
  const rate = (value: number | undefined) =>
    value === undefined ? undefined : [{ major: device.major, minor: device.minor, rate: value }];
  const blockIO: Record<string, unknown> = {
    throttleReadBpsDevice: rate(io.readBps),
    throttleWriteBpsDevice: rate(io.writeBps),
    throttleReadIOPSDevice: rate(io.readIops),
    throttleWriteIOPSDevice: rate(io.writeIops),
  };
  for (const key of Object.keys(blockIO)) if (blockIO[key] === undefined) delete blockIO[key];
  return { blockIO };
}

/** The uid and gid maps of a user namespace (the namespace itself joins the list in ociSpec). */
function userNamespace(idMap: IdMap | undefined): Record<string, unknown> {
  if (!idMap) return {};
  const map = [{ containerID: 0, hostID: idMap.hostId, size: idMap.size }];
  return { uidMappings: map, gidMappings: map };
}
