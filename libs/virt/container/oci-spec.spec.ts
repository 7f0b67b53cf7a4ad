import { describe, expect, it } from '@jest/globals';
import { blkioThrottleFiles, flavorLimits, ioThrottle, ociSpec, OciSpecInput } from './oci-spec';
import { CLONE_NAMESPACE_FLAGS, DENIED_SYSCALLS, defaultSeccompProfile } from './seccomp';

const input: OciSpecInput = {
  hostname: 'web-1',
  image: { Cmd: ['/bin/sh'] },
  uid: 0,
  gid: 0,
  limits: { memoryBytes: 1 << 28, cpuQuotaUs: 100_000, cpuPeriodUs: 100_000, pids: 1024 },
  cgroupsPath: '/novum/x',
  rootfs: 'rootfs',
};

type Spec = {
  mounts: { destination: string; type: string; source: string; options: string[] }[];
  linux: {
    namespaces: { type: string; path?: string }[];
    uidMappings?: unknown[];
    gidMappings?: unknown[];
    seccomp: ReturnType<typeof defaultSeccompProfile>;
  };
};

describe('the default seccomp profile', () => {
  const profile = defaultSeccompProfile();
  const errnoOf = (name: string) =>
    profile.syscalls.find((rule) => rule.names.includes(name) && !rule.args)?.errnoRet;

  it("refuses with EPERM what Docker's default profile refuses a container without CAP_SYS_ADMIN", () => {
    for (const name of [
      'kexec_load',
      'init_module',
      'finit_module',
      'delete_module',
      'keyctl',
      'add_key',
      'request_key',
      'bpf',
      'perf_event_open',
      'open_by_handle_at',
      'reboot',
      'swapon',
      'swapoff',
      'acct',
      'settimeofday',
      'clock_settime',
      'mount',
      'umount2',
      'unshare',
      'setns',
    ]) {
      expect({ name, errno: errnoOf(name) }).toEqual({ name, errno: 1 });
    }
    expect(new Set(DENIED_SYSCALLS).size).toBe(DENIED_SYSCALLS.length);
  });

  it('allows what Docker allows: ptrace, plain clone, everything not listed', () => {
    expect(profile.defaultAction).toBe('SCMP_ACT_ALLOW');
    expect(errnoOf('ptrace')).toBeUndefined();
    expect(errnoOf('clone')).toBeUndefined();
    expect(errnoOf('read')).toBeUndefined();
  });

  it('refuses clone with any namespace flag, and clone3 with ENOSYS so that libc falls back to clone', () => {
    const cloneRules = profile.syscalls.filter((rule) => rule.names.includes('clone'));
    const masks = cloneRules.map((rule) => rule.args![0]);
    expect(masks.reduce((all, arg) => all | arg.value, 0)).toBe(0x7e020000);
    for (const arg of masks) {
      expect(arg).toMatchObject({ index: 0, op: 'SCMP_CMP_MASKED_EQ', valueTwo: arg.value });
    }
    expect(cloneRules.map((rule) => rule.errnoRet)).toEqual(CLONE_NAMESPACE_FLAGS.map(() => 1));
    expect(errnoOf('clone3')).toBe(38);
  });
});

describe('ociSpec', () => {
  it('has the seccomp profile and no user namespace without an id map', () => {
    const spec = ociSpec(input) as unknown as Spec;
    expect(spec.linux.seccomp).toEqual(defaultSeccompProfile());
    expect(spec.linux.namespaces.map((ns) => ns.type)).not.toContain('user');
    expect(spec.linux.uidMappings).toBeUndefined();
  });

  it('maps container ids 0..size-1 onto the host range in a user namespace', () => {
    const spec = ociSpec({ ...input, idMap: { hostId: 100_000, size: 65_536 } }) as unknown as Spec;
    expect(spec.linux.namespaces.map((ns) => ns.type)).toContain('user');
    const map = [{ containerID: 0, hostID: 100_000, size: 65_536 }];
    expect(spec.linux.uidMappings).toEqual(map);
    expect(spec.linux.gidMappings).toEqual(map);
    expect(spec.mounts.find((m) => m.destination === '/sys')?.type).toBe('sysfs');
  });

  it("binds the host's /sys read-only where sysfs cannot be mounted: a user namespace in a prepared netns", () => {
    const idMap = { hostId: 100_000, size: 65_536 };
    const spec = ociSpec({ ...input, idMap, netnsPath: '/run/netns/novum-x' }) as unknown as Spec;
    expect(spec.linux.namespaces).toContainEqual({ type: 'network', path: '/run/netns/novum-x' });
    expect(spec.mounts.find((m) => m.destination === '/sys')).toEqual({
      destination: '/sys',
      type: 'bind',
      source: '/sys',
      options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'],
    });
    const own = ociSpec({ ...input, netnsPath: '/run/netns/novum-x' }) as unknown as Spec;
    expect(own.mounts.find((m) => m.destination === '/sys')?.type).toBe('sysfs');
  });

  it('binds host directories read-only unless asked', () => {
    const spec = ociSpec({
      ...input,
      binds: [
        { source: '/data/cd', destination: '/config-drive' },
        { source: '/data/rw', destination: '/rw', writable: true },
      ],
    }) as unknown as Spec;
    expect(spec.mounts.find((m) => m.destination === '/config-drive')).toMatchObject({
      type: 'bind',
      source: '/data/cd',
      options: expect.arrayContaining(['rbind', 'ro']),
    });
    expect(spec.mounts.find((m) => m.destination === '/rw')?.options).not.toContain('ro');
  });
});

describe('disk I/O quotas', () => {
  const flavor = (extraSpecs: Record<string, string>) => ({
    vcpus: 1,
    memoryMb: 64,
    rootGb: 1,
    ephemeralGb: 0,
    swapMb: 0,
    extraSpecs,
  });

  it("turns Nova's quota:disk_* extra specs into read and write throttles, total bounding both", () => {
    expect(ioThrottle({})).toBeUndefined();
    expect(
      ioThrottle({ 'quota:disk_read_bytes_sec': '0', 'quota:disk_write_iops_sec': 'lots' }),
    ).toBeUndefined();
    expect(
      ioThrottle({
        'quota:disk_read_bytes_sec': '1048576',
        'quota:disk_write_bytes_sec': '2097152',
        'quota:disk_read_iops_sec': '100',
        'quota:disk_write_iops_sec': '50',
      }),
    ).toEqual({ readBps: 1048576, writeBps: 2097152, readIops: 100, writeIops: 50 });
    expect(
      ioThrottle({ 'quota:disk_total_bytes_sec': '3000000', 'quota:disk_write_bytes_sec': '1000000' }),
    ).toEqual({ readBps: 3000000, writeBps: 1000000 });
    expect(ioThrottle({ 'quota:disk_total_iops_sec': '200' })).toEqual({ readIops: 200, writeIops: 200 });
    expect(flavorLimits(flavor({ 'quota:disk_read_iops_sec': '10' }), false).io).toEqual({ readIops: 10 });
  });

  it('puts them in linux.resources.blockIO for the root disk device, and nothing without a device', () => {
    const limits = {
      ...input.limits,
      io: { readBps: 1048576, writeBps: 2097152, readIops: 100, writeIops: 50 },
    };
    const spec = ociSpec({ ...input, limits, rootDevice: { major: 7, minor: 3 } }) as {
      linux: { resources: { blockIO?: Record<string, unknown> } };
    };
    expect(spec.linux.resources.blockIO).toEqual({
      throttleReadBpsDevice: [{ major: 7, minor: 3, rate: 1048576 }],
      throttleWriteBpsDevice: [{ major: 7, minor: 3, rate: 2097152 }],
      throttleReadIOPSDevice: [{ major: 7, minor: 3, rate: 100 }],
      throttleWriteIOPSDevice: [{ major: 7, minor: 3, rate: 50 }],
    });
    const readOnly = ociSpec({
      ...input,
      limits: { ...input.limits, io: { readBps: 5 } },
      rootDevice: { major: 7, minor: 0 },
    }) as typeof spec;
    expect(readOnly.linux.resources.blockIO).toEqual({
      throttleReadBpsDevice: [{ major: 7, minor: 0, rate: 5 }],
    });
    const noDevice = ociSpec({ ...input, limits }) as typeof spec;
    expect(noDevice.linux.resources.blockIO).toBeUndefined();
    const noLimits = ociSpec({ ...input, rootDevice: { major: 7, minor: 3 } }) as typeof spec;
    expect(noLimits.linux.resources.blockIO).toBeUndefined();
  });

  it('writes the cgroup v1 throttle files for a live resize, 0 lifting a throttle', () => {
    expect(blkioThrottleFiles({ readBps: 10, writeIops: 5 }, { major: 7, minor: 2 })).toEqual({
      'blkio.throttle.read_bps_device': '7:2 10',
      'blkio.throttle.write_bps_device': '7:2 0',
      'blkio.throttle.read_iops_device': '7:2 0',
      'blkio.throttle.write_iops_device': '7:2 5',
    });
  });
});
