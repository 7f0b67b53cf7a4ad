import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import type { FlavorSpec, Vif } from '../driver';

export type Accelerator = 'kvm' | 'tcg';

/** MiB of translated code TCG keeps; part of the QEMU overhead a guest's memory cgroup allows for. */
export const TCG_TB_SIZE_MB = 128;

/** The files of one guest in its instance directory. */
export interface GuestPaths {
  pidfile: string;
  qmpSocket: string;
  /** The serial port's unix socket (QEMU listens; one client at a time: the agent's console relay). */
  serialSocket: string;
  /** Everything the guest writes to its serial port, whether or not a client is connected. */
  consoleLog: string;
  rootDisk: string;
  configDrive: string;
  ephemeralDisk?: string;
  swapDisk?: string;
  /**
   * Rescued: an overlay of the rescue image, the first disk and the one that boots; the root disk follows as
   * the second (no ephemeral or swap disk, as Nova's libvirt rescue), and configDrive is the rescue's.
   */
  rescueDisk?: string;
}

export interface QemuCommandInput {
  uuid: string;
  /** Nova's instance name (`instance-…`), QEMU's `-name`. */
  name: string;
  flavor: Pick<FlavorSpec, 'vcpus' | 'memoryMb'>;
  accel: Accelerator;
  paths: GuestPaths;
  vifs: readonly Vif[];
  /**
   * `-sandbox on` with QEMU's obsolete and resource-control system calls denied (not `elevateprivileges`,
   * which stops `-daemonize`, nor `spawn`, which a suspend's `exec:` migration needs).
   */
  sandbox: boolean;
  /** Starts paused, restoring the state a suspend saved in this file (`-incoming`). */
  incomingStateFile?: string;
  /** Starts paused, waiting for a live migration's state (`-incoming defer`: migrate-incoming names the address). */
  incomingMigration?: boolean;
  /** QEMU's arguments to drop to an unprivileged user once set up (`runAsArgs`); none: it stays as it is. */
  runAs?: string[];
}

/**
 * The QEMU arguments of one network port: the tap device `vif.devname` (the host network made it and put it
 * on the port's bridge; QEMU opens it by name) and a virtio NIC with the port's MAC. A port without a device
 * gets no NIC.
 */
export function vifNetdevArgs(vif: Vif, index: number): string[] {
  if (!vif.devname) return [];
  const netdev = `net${index}`;
  return [
    '-netdev',
    `tap,id=${netdev},ifname=${vif.devname},script=no,downscript=no`,
    '-device',
    `virtio-net-pci,netdev=${netdev},mac=${vif.macAddress}${vif.mtu ? `,host_mtu=${vif.mtu}` : ''}`,
  ];
}

/** A path as a QEMU option value: commas doubled, as QEMU's option parser wants. */
function optionValue(path: string): string {
  return path.replace(/,/g, ',,');
}

function diskArgs(
  id: string,
  file: string,
  format: 'qcow2' | 'raw',
  options: { readOnly?: boolean; bootIndex?: number } = {},
): string[] {
  const readOnly = options.readOnly ? ['read-only=on', 'file.read-only=on'] : [];
  const boot = options.bootIndex === undefined ? [] : [`bootindex=${options.bootIndex}`];
  return [
    '-blockdev',
    [
      `driver=${format}`,
      `node-name=${id}`,
      'file.driver=file',
      `file.filename=${optionValue(file)}`,
      ...readOnly,
    ].join(','),
    '-device',
    ['virtio-blk-pci', `drive=${id}`, `id=${id}-disk`, ...boot].join(','),
  ];
}

/**
 * The command line of a guest: a daemonized QEMU (its own session, a pidfile) on the `pc` machine, with the
 * QMP socket, the serial console on a unix socket and appended to a file, virtio disks (root, ephemeral, swap, then the config
 * drive; rescued: the rescue disk, root, config drive) and one virtio NIC per port (none without ports).
 */
export function qemuArgs(input: QemuCommandInput): string[] {
  const { paths } = input;
  const args = [
    '-name',
    `guest=${input.name},debug-threads=on`,
    '-uuid',
    input.uuid,
    '-machine',
    'pc',
    '-accel',
    // TCG's translation cache (1 GiB by default) bounded, so that QEMU fits its memory cgroup.
    input.accel === 'kvm' ? 'kvm' : `tcg,tb-size=${TCG_TB_SIZE_MB}`,
    '-cpu',
    input.accel === 'kvm' ? 'host' : 'qemu64',
    '-smp',
    String(Math.max(1, input.flavor.vcpus)),
    '-m',
    `${Math.max(16, input.flavor.memoryMb)}M`,
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-daemonize',
    '-pidfile',
    paths.pidfile,
    '-qmp',
    `unix:${optionValue(paths.qmpSocket)},server=on,wait=off`,
    // The serial port as a listening socket for interactive clients, its output also appended to the log
    // (QEMU writes the log itself, so it is captured while no client is connected and while the agent is
    // down).
    '-chardev',
    [
      `socket,id=console,path=${optionValue(paths.serialSocket)},server=on,wait=off`,
      `logfile=${optionValue(paths.consoleLog)},logappend=on`,
    ].join(','),
    '-serial',
    'chardev:console',
  ];
  if (paths.rescueDisk) {
    args.push(...diskArgs('rescue', paths.rescueDisk, 'qcow2', { bootIndex: 1 }));
    args.push(...diskArgs('root', paths.rootDisk, 'qcow2'));
  } else {
    args.push(...diskArgs('root', paths.rootDisk, 'qcow2', { bootIndex: 1 }));
    if (paths.ephemeralDisk) args.push(...diskArgs('ephemeral0', paths.ephemeralDisk, 'qcow2'));
    if (paths.swapDisk) args.push(...diskArgs('swap', paths.swapDisk, 'qcow2'));
  }
  args.push(...diskArgs('config', paths.configDrive, 'raw', { readOnly: true }));
  const nics = input.vifs.flatMap((vif, index) => vifNetdevArgs(vif, index));
  args.push(...(nics.length > 0 ? nics : ['-nic', 'none']));
  if (input.sandbox) {
    args.push('-sandbox', 'on,obsolete=deny,resourcecontrol=deny');
  }
  if (input.runAs) args.push(...input.runAs);
  if (input.incomingStateFile) {
    args.push('-S', '-incoming', `exec:cat ${shellQuote(input.incomingStateFile)}`);
  } else if (input.incomingMigration) {
    args.push('-S', '-incoming', 'defer');
  }
  return args;
}

/** A word for /bin/sh, in single quotes. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Hardware KVM where the CPU really has it (vmx or svm in /proc/cpuinfo) and /dev/kvm opens for writing,
 * TCG everywhere else; `override` (NOVUM_KVM_ACCEL) wins when it names one.
 */
export async function probeAccelerator(
  override?: string,
  files: { cpuinfo: string; kvm: string } = { cpuinfo: '/proc/cpuinfo', kvm: '/dev/kvm' },
): Promise<Accelerator> {
  if (override === 'kvm' || override === 'tcg') return override;
  const cpuinfo = await readFile(files.cpuinfo, 'utf8').catch(() => '');
  const flags = /^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.split(/\s+/) ?? [];
  if (!flags.includes('vmx') && !flags.includes('svm')) return 'tcg';
  try {
    await access(files.kvm, constants.R_OK | constants.W_OK);
    return 'kvm';
  } catch {
    return 'tcg';
  }
}
