import { createReadStream, existsSync } from 'node:fs';
import {
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  statfs,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { configDriveFiles } from '../config-drive';
import { mustRun, mustRunFrom, runCommand } from '../container/host-commands';
import {
  CAPABILITY_OPERATIONS,
  ComputeDriver,
  ConsoleEndpoint,
  ConsoleUnavailable,
  CpuInfo,
  Diagnostics,
  DiskExport,
  DriverCapabilities,
  DriverError,
  DriverOperation,
  FlavorSpec,
  HostResources,
  ImageSource,
  InstanceExists,
  InstanceInfo,
  InstanceInvalidState,
  InstanceNotFound,
  InstanceRef,
  InstanceSpec,
  LiveMigrationTarget,
  MigratedDisks,
  NetworkInfo,
  NotSupportedByDriver,
  RebootType,
  SnapshotUpload,
  SpawnOptions,
  Vif,
  versionToInt,
} from '../driver';
import type { HostNetwork } from '../net/host-network';
import { POWER_STATE_NAMES, PowerState } from '../states';
import { writeConfigDriveIso } from './config-drive-iso';
import { ImageCache } from './image-cache';
import { QmpClient } from './qmp-client';
import { Accelerator, GuestPaths, probeAccelerator, qemuArgs, shellQuote } from './qemu-command';
import { lookupUser, prepareGuestDir, QemuUser, runAsArgs } from './qemu-user';

/** The part of the host network (libs/virt/net HostNetwork) a VM's ports need: taps on their bridges. */
export type TapNetwork = Pick<HostNetwork, 'plugTap' | 'unplugTap'>;

export interface KvmDriverOptions {
  /** NOVUM_DATA_DIR: everything lives under `<dataDir>/kvm`. */
  dataDir: string;
  /** The QEMU system emulator (NOVUM_QEMU_BINARY). */
  qemuBinary?: string;
  /** NOVUM_KVM_ACCEL: `kvm`, `tcg`, or `auto` (probe the host). */
  accel?: string;
  /** The console log is cut back to its newest half past this size. */
  consoleMaxBytes?: number;
  /** How long a soft reboot waits for the guest to power itself off (ACPI) before it resets the guest. */
  softRebootSeconds?: number;
  /** powerOff's grace period when the caller gives none. */
  powerOffSeconds?: number;
  /** `-sandbox on` (seccomp); on by default. */
  sandbox?: boolean;
  /** Memory the QEMU process may use beyond the guest's RAM, in its cgroup's limit. */
  memoryOverheadMb?: number;
  /**
   * NOVUM_KVM_USER: the unprivileged user each QEMU becomes once it has opened its disks, taps and sockets
   * (`-runas`); unset or empty: QEMU keeps the agent's user.
   */
  runAs?: string;
  /** Plugs each port as a tap on its network's bridge before QEMU opens it; without it, guests get no NIC. */
  network?: TapNetwork;
  /** How long a live migration (disk copy and state) may take before it is cancelled (Nova's completion timeout). */
  liveMigrationTimeoutSeconds?: number;
}

/** What the driver keeps of a guest on disk, so that a restarted agent finds it. */
interface GuestRecord {
  uuid: string;
  name: string;
  hostname: string;
  flavor: FlavorSpec;
  imageId: string;
  vifs: Vif[];
  /** The flavour from before a resize that awaits confirm or revert (its disks kept as `<disk>.resize-orig`). */
  oldFlavor?: FlavorSpec;
  /** Rescued: the rescue image boots from `disk.rescue`, the guest's own root disk second. */
  rescue?: { imageId: string };
  /** The destination of a live migration not finished yet: QEMU waits there for the state and disks. */
  incoming?: LiveMigrationTarget;
}

/** A new guest's record: what a spawn and a live migration's destination start from. */
function newRecord(instance: InstanceSpec, image: ImageSource, networkInfo: NetworkInfo): GuestRecord {
  return {
    uuid: instance.uuid,
    name: instance.name,
    hostname: instance.hostname,
    flavor: instance.flavor,
    imageId: image.id,
    vifs: [...networkInfo],
  };
}

const CAPABILITIES: DriverCapabilities = {
  pause: true,
  suspend: true,
  rescue: true,
  snapshot: true,
  resize: true,
  consoleOutput: true,
  serialConsole: true,
  attachInterface: false,
  triggerCrashDump: false,
  diagnostics: true,
  liveMigration: true,
  migrateDisks: true,
};

/**
 * The format of exported kvm disks: a sparse tar of the root overlay (`disk`, its backing file the source's
 * cached base of the image) and the ephemeral disk (`disk.eph0`), when the guest has one.
 */
export const KVM_DISKS_FORMAT = 'kvm-qcow2-tar';
const EXPORTED_DISKS = ['disk', 'disk.eph0'];
/** What a guest accepts while a resize awaits confirm or revert, and while it is rescued. */
const RESIZE_EXITS: readonly DriverOperation[] = ['confirmResize', 'revertResize', 'triggerCrashDump'];
const RESCUE_EXITS: readonly DriverOperation[] = ['unrescue', 'triggerCrashDump'];
/** The disks a resize changes, kept as `<file>.resize-orig` until confirm (or put back by a revert). */
const RESIZED_DISKS = ['disk', 'disk.eph0', 'disk.swap'] as const;
const ORIG = '.resize-orig';
const UNSUPPORTED = new Set(
  (Object.keys(CAPABILITY_OPERATIONS) as (keyof DriverCapabilities)[])
    .filter((capability) => !CAPABILITIES[capability])
    .flatMap((capability) => CAPABILITY_OPERATIONS[capability]),
);

const { NOSTATE, RUNNING, PAUSED, SHUTDOWN, CRASHED, SUSPENDED } = PowerState;
const GIB = 1024 ** 3;
const TRIM_INTERVAL_MS = 30_000;
/** How often a clean shutdown presses the guest's power button again (Nova's SHUTDOWN_RETRY_INTERVAL). */
const POWERDOWN_RETRY_MS = 10_000;
/** Unix socket paths longer than this do not fit in sockaddr_un. */
const MAX_SOCKET_PATH = 107;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** QEMU's run states (query-status) as Nova's power states. */
function powerStateOf(status: string): PowerState {
  switch (status) {
    case 'running':
      return RUNNING;
    case 'shutdown':
      return SHUTDOWN;
    case 'internal-error':
    case 'io-error':
    case 'guest-panicked':
      return CRASHED;
    case 'paused':
    case 'suspended':
    case 'prelaunch':
    case 'inmigrate':
    case 'finish-migrate':
    case 'postmigrate':
    case 'save-vm':
    case 'restore-vm':
    case 'debug':
      return PAUSED;
    default:
      return NOSTATE;
  }
}

/**
 * Servers as QEMU virtual machines, one daemonized QEMU process per running guest (its own session,
 * pidfile, QMP socket and serial log in `<dataDir>/kvm/instances/<uuid>/`), driven over QMP. Disks are
 * qcow2 overlays on bases cached per image, plus a config-2 ISO. A stopped guest has no process; a suspended
 * one has its state in a file. QEMU outlives the agent: a restarted agent re-attaches by pidfile and socket.
 * KVM acceleration where the host CPU has it, TCG elsewhere.
 */
export class KvmDriver implements ComputeDriver {
  readonly name = 'kvm' as const;
  readonly capabilities: Readonly<DriverCapabilities> = Object.freeze({ ...CAPABILITIES });

  private readonly root: string;
  private readonly qemu: string;
  private readonly images: ImageCache;
  private readonly clients = new Map<string, Promise<QmpClient>>();
  private host = '';
  private qemuVersion = '0';
  /** The account QEMU drops to (NOVUM_KVM_USER), resolved at init. */
  private qemuUser?: QemuUser;
  private accel: Accelerator = 'tcg';
  private trimTimer?: NodeJS.Timeout;

  constructor(private readonly options: KvmDriverOptions) {
    this.root = join(options.dataDir, 'kvm');
    this.qemu = options.qemuBinary ?? 'qemu-system-x86_64';
    this.images = new ImageCache(this.root);
  }

  /** The accelerator guests run with (known after init). */
  get accelerator(): Accelerator {
    return this.accel;
  }

  instanceDir(uuid: string): string {
    return this.dir(uuid);
  }

  /** The host's memory cgroup (v1) of a guest's QEMU. */
  static cgroupPath(uuid: string): string {
    return `/sys/fs/cgroup/memory/novum/${uuid}`;
  }

  async init(host: string): Promise<void> {
    this.host = host;
    await mkdir(join(this.root, 'instances'), { recursive: true });
    await this.images.init();
    const version = await runCommand(this.qemu, ['--version']);
    if (version.code !== 0) {
      throw new DriverError(`QEMU (${this.qemu}) does not run: ${version.stderr.trim().slice(0, 300)}`);
    }
    this.qemuVersion = /version\s+(\d+(?:\.\d+)*)/.exec(version.stdout)?.[1] ?? '0';
    this.accel = await probeAccelerator(this.options.accel);
    if (this.options.runAs) {
      this.qemuUser = await lookupUser(this.options.runAs);
      if (!this.qemuUser) {
        throw new DriverError(
          `QEMU's user ${this.options.runAs} does not exist (ops/install.sh makes it: useradd --system ${this.options.runAs}).`,
        );
      }
    }
    // Re-adopt the guests a previous agent started: their QEMU processes kept running.
    for (const uuid of await this.listInstances()) {
      if (await this.livePid(uuid)) await this.qmp(uuid).catch(() => undefined);
    }
    this.trimTimer = setInterval(() => void this.trimConsoles(), TRIM_INTERVAL_MS);
    this.trimTimer.unref();
  }

  async close(): Promise<void> {
    if (this.trimTimer) clearInterval(this.trimTimer);
    this.trimTimer = undefined;
    const clients = [...this.clients.values()];
    this.clients.clear();
    for (const client of clients) (await client.catch(() => undefined))?.close();
  }

  async hostResources(): Promise<HostResources> {
    const fs = await statfs(this.root);
    const used = { vcpus: 0, memoryMb: 0, localGb: 0, running: 0 };
    for (const uuid of await this.listInstances()) {
      const record = await this.record(uuid).catch(() => undefined);
      if (!record) continue;
      used.vcpus += record.flavor.vcpus;
      used.memoryMb += record.flavor.memoryMb;
      used.localGb +=
        record.flavor.rootGb + record.flavor.ephemeralGb + Math.ceil(record.flavor.swapMb / 1024);
      if (await this.livePid(uuid)) used.running += 1;
    }
    return {
      hypervisorType: 'QEMU',
      hypervisorVersion: versionToInt(this.qemuVersion),
      hypervisorHostname: this.host,
      vcpus: cpus().length,
      vcpusUsed: used.vcpus,
      memoryMb: Math.floor(totalmem() / 1024 / 1024),
      memoryMbUsed: used.memoryMb,
      localGb: Math.floor((fs.blocks * fs.bsize) / GIB),
      localGbUsed: used.localGb,
      runningVms: used.running,
      cpuInfo: await hostCpuInfo(),
    };
  }

  async listInstances(): Promise<string[]> {
    const entries = await readdir(join(this.root, 'instances')).catch(() => [] as string[]);
    return entries.filter((uuid) => existsSync(join(this.root, 'instances', uuid, 'guest.json')));
  }

  async getInfo(instance: InstanceRef): Promise<InstanceInfo> {
    await this.record(instance.uuid);
    return { state: await this.stateOf(instance.uuid) };
  }

  async spawn(
    instance: InstanceSpec,
    image: ImageSource,
    networkInfo: NetworkInfo,
    options: SpawnOptions = {},
  ): Promise<void> {
    const dir = this.dir(instance.uuid);
    const sockets = this.paths(instance.uuid);
    const migrated = options.migratedDisks;
    if (migrated && migrated.format !== KVM_DISKS_FORMAT) {
      migrated.data.destroy();
      throw new DriverError(`The kvm driver cannot import disks of format ${migrated.format}.`);
    }
    if (Math.max(sockets.qmpSocket.length, sockets.serialSocket.length) > MAX_SOCKET_PATH) {
      throw new DriverError(`The data dir ${this.options.dataDir} is too deep for QMP sockets.`);
    }
    try {
      await mkdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new InstanceExists(instance.uuid);
      throw error;
    }
    try {
      const record = newRecord(instance, image, networkInfo);
      // The disks and the config drive do not depend on each other: both at once (each a process start).
      await settleAll([
        this.createDisks(record, image).then(() => migrated && this.importDisks(record, image, migrated)),
        this.writeConfigDrive(instance, networkInfo, options),
      ]);
      await this.save(record);
      if (options.powerOn ?? true) await this.start(record);
    } catch (error) {
      migrated?.data.destroy();
      await this.remove(instance.uuid).catch(() => undefined);
      throw error;
    }
  }

  async destroy(
    instance: InstanceRef,
    _networkInfo: NetworkInfo,
    _options?: { destroyDisks?: boolean },
  ): Promise<void> {
    if (!/^[0-9a-fA-F-]{1,64}$/.test(instance.uuid)) return;
    await this.remove(instance.uuid);
  }

  async reboot(instance: InstanceSpec, type: RebootType, _networkInfo: NetworkInfo): Promise<void> {
    const record = await this.record(instance.uuid, 'reboot');
    const state = await this.stateOf(record.uuid);
    if (type === 'SOFT') {
      if (state !== RUNNING) throw new InstanceInvalidState(record.uuid, 'reboot', state);
      // As Nova's libvirt driver: ask the guest to power off (ACPI), boot it afresh once it has; a guest
      // that does not within the timeout gets a hard reboot.
      const pid = await this.livePid(record.uuid);
      await (await this.qmp(record.uuid)).execute('system_powerdown').catch(() => undefined);
      if (pid && (await waitExit(pid, (this.options.softRebootSeconds ?? 60) * 1000))) {
        await this.afterExit(record);
        await this.start(record);
        return;
      }
    }
    await this.hardReboot(record);
  }

  async powerOff(instance: InstanceRef, options: { timeoutSeconds?: number } = {}): Promise<void> {
    const record = await this.record(instance.uuid, 'powerOff');
    await this.stopProcess(record, options.timeoutSeconds ?? this.options.powerOffSeconds ?? 60);
    await rm(this.stateFile(record.uuid), { force: true });
  }

  async powerOn(instance: InstanceSpec, _networkInfo: NetworkInfo): Promise<void> {
    const record = await this.record(instance.uuid, 'powerOn');
    const state = await this.stateOf(record.uuid);
    if (state === RUNNING) return;
    if (state !== SHUTDOWN && state !== CRASHED) {
      throw new InstanceInvalidState(record.uuid, 'powerOn', state);
    }
    await this.stopProcess(record, 0);
    await this.start(record);
  }

  async pause(instance: InstanceRef): Promise<void> {
    await this.transition(instance, 'pause', RUNNING, 'stop');
  }

  async unpause(instance: InstanceRef): Promise<void> {
    await this.transition(instance, 'unpause', PAUSED, 'cont');
  }

  /** Saves the guest's state to a file with QEMU's migration (`exec:cat > file`) and ends the process. */
  async suspend(instance: InstanceRef): Promise<void> {
    const record = await this.record(instance.uuid, 'suspend');
    const state = await this.stateOf(record.uuid);
    if (state !== RUNNING) throw new InstanceInvalidState(record.uuid, 'suspend', state);
    const client = await this.qmp(record.uuid);
    const partial = `${this.stateFile(record.uuid)}.partial`;
    await client.execute('stop');
    try {
      await client.execute('migrate', { uri: `exec:cat > ${shellQuote(partial)}` });
      await this.waitMigration(client);
    } catch (error) {
      await client.execute('cont').catch(() => undefined);
      await rm(partial, { force: true });
      throw error;
    }
    await rename(partial, this.stateFile(record.uuid));
    await this.stopProcess(record, 0);
  }

  /** Starts QEMU paused on the saved state (`-incoming`), then lets the guest run on. */
  async resume(instance: InstanceSpec, _networkInfo: NetworkInfo): Promise<void> {
    const record = await this.record(instance.uuid, 'resume');
    const state = await this.stateOf(record.uuid);
    if (state !== SUSPENDED) throw new InstanceInvalidState(record.uuid, 'resume', state);
    await this.start(record, this.stateFile(record.uuid));
    await rm(this.stateFile(record.uuid), { force: true });
  }

  /**
   * Nova's libvirt rescue: the guest powered off (ACPI within powerOffSeconds), then booted from a fresh
   * overlay of the rescue image (`disk.rescue`, the first disk) with its own root disk as the second and a
   * rescue config drive (`disk.config.rescue`, the rescue password as admin_pass); ephemeral and swap disks
   * stay out. Ends RUNNING.
   */
  async rescue(
    instance: InstanceSpec,
    rescueImage: ImageSource,
    networkInfo: NetworkInfo,
    options: { rescuePassword?: string } = {},
  ): Promise<void> {
    const record = await this.record(instance.uuid, 'rescue');
    const state = await this.stateOf(record.uuid);
    if (![RUNNING, SHUTDOWN, CRASHED].includes(state)) {
      throw new InstanceInvalidState(record.uuid, 'rescue', state);
    }
    const base = await this.images.prepare(rescueImage);
    await this.stopProcess(record, this.options.powerOffSeconds ?? 60);
    const paths = this.paths(record.uuid, record.flavor, true);
    await rm(paths.rescueDisk!, { force: true });
    await mustRun('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-F',
      base.format,
      '-b',
      base.path,
      paths.rescueDisk!,
      String(base.virtualSize),
    ]);
    const files = configDriveFiles(instance, networkInfo, { adminPassword: options.rescuePassword });
    await writeConfigDriveIso(files, paths.configDrive);
    record.rescue = { imageId: rescueImage.id };
    await this.save(record);
    try {
      await this.start(record);
    } catch (error) {
      await this.stopProcess(record, 0);
      delete record.rescue;
      await this.save(record);
      await this.dropRescueDisks(record.uuid);
      throw error;
    }
  }

  /** The rescue system ends (no grace: it is disposable), its disks go, and the guest boots its own disk. */
  async unrescue(instance: InstanceRef): Promise<void> {
    const record = await this.record(instance.uuid, 'unrescue');
    if (!record.rescue) {
      throw new InstanceInvalidState(
        record.uuid,
        'unrescue',
        await this.stateOf(record.uuid),
        'Not rescued.',
      );
    }
    await this.stopProcess(record, 0);
    delete record.rescue;
    await this.save(record);
    await this.dropRescueDisks(record.uuid);
    await this.start(record);
  }

  async rebuild(
    instance: InstanceSpec,
    image: ImageSource,
    networkInfo: NetworkInfo,
    options: SpawnOptions = {},
  ): Promise<void> {
    const record = await this.record(instance.uuid, 'rebuild');
    const state = await this.stateOf(record.uuid);
    if (![RUNNING, SHUTDOWN, CRASHED].includes(state)) {
      throw new InstanceInvalidState(record.uuid, 'rebuild', state);
    }
    await this.stopProcess(record, 0);
    Object.assign(record, {
      name: instance.name,
      hostname: instance.hostname,
      flavor: instance.flavor,
      imageId: image.id,
      vifs: [...networkInfo],
    });
    await this.createDisks(record, image);
    await this.writeConfigDrive(instance, networkInfo, options);
    await this.save(record);
    if (options.powerOn ?? true) await this.start(record);
  }

  /**
   * Same-host resize, as Nova's libvirt driver: the guest powered off (ACPI within `timeoutSeconds`, then
   * `quit`), because QEMU cannot change vCPUs or RAM of a running guest without hotplug; its disks copied
   * aside for a revert (`<disk>.resize-orig`, sparse and reflinked where the file system can: an overlay holds
   * only what the guest wrote); the root overlay (and the ephemeral disk) grown with `qemu-img resize`, the
   * swap disk made afresh at the new size; a new QEMU with the new flavour's `-smp`/`-m` and memory cgroup.
   * A smaller root or ephemeral disk is refused before anything changes, with Nova's ResizeError.
   */
  async resize(
    instance: InstanceSpec,
    newFlavor: FlavorSpec,
    _networkInfo: NetworkInfo,
    options: { powerOn?: boolean; timeoutSeconds?: number } = {},
  ): Promise<void> {
    const record = await this.record(instance.uuid, 'resize');
    const state = await this.stateOf(record.uuid);
    if (![RUNNING, SHUTDOWN, CRASHED].includes(state)) {
      throw new InstanceInvalidState(record.uuid, 'resize', state);
    }
    const dir = this.dir(record.uuid);
    const rootBytes = await virtualSize(join(dir, 'disk'));
    const newRootBytes = newFlavor.rootGb > 0 ? newFlavor.rootGb * GIB : rootBytes;
    if (newRootBytes < rootBytes || newFlavor.ephemeralGb < record.flavor.ephemeralGb) {
      throw new DriverError('Resize error: Unable to resize disk down.');
    }
    await this.stopProcess(record, options.timeoutSeconds ?? this.options.powerOffSeconds ?? 60);
    const oldFlavor = record.flavor;
    try {
      for (const file of RESIZED_DISKS) {
        const path = join(dir, file);
        await rm(path + ORIG, { force: true });
        if (!existsSync(path)) continue;
        await mustRun('cp', ['--sparse=always', '--reflink=auto', path, `${path}${ORIG}.tmp`]);
        await rename(`${path}${ORIG}.tmp`, path + ORIG);
      }
      if (newRootBytes > rootBytes)
        await mustRun('qemu-img', ['resize', '-q', join(dir, 'disk'), String(newRootBytes)]);
      const eph = join(dir, 'disk.eph0');
      if (newFlavor.ephemeralGb > oldFlavor.ephemeralGb) {
        if (existsSync(eph)) await mustRun('qemu-img', ['resize', '-q', eph, `${newFlavor.ephemeralGb}G`]);
        else await mustRun('qemu-img', ['create', '-q', '-f', 'qcow2', eph, `${newFlavor.ephemeralGb}G`]);
      }
      const swap = join(dir, 'disk.swap');
      if (newFlavor.swapMb !== oldFlavor.swapMb) {
        await rm(swap, { force: true });
        if (newFlavor.swapMb > 0) {
          await mustRun('qemu-img', ['create', '-q', '-f', 'qcow2', swap, `${newFlavor.swapMb}M`]);
        }
      }
      record.oldFlavor = oldFlavor;
      record.flavor = newFlavor;
      await this.save(record);
      if (options.powerOn ?? true) await this.start(record);
    } catch (error) {
      // No resize to confirm or revert: the old flavour and disks, powered as they were asked to be.
      await this.stopProcess(record, 0).catch(() => undefined);
      await this.restoreResizedDisks(record.uuid, oldFlavor);
      record.flavor = oldFlavor;
      delete record.oldFlavor;
      await this.save(record);
      if (options.powerOn ?? true) await this.start(record).catch(() => undefined);
      throw error;
    }
  }

  /** Drops the disks kept for a revert; the guest runs on with the new flavour. */
  async confirmResize(instance: InstanceRef): Promise<void> {
    const record = await this.record(instance.uuid, 'confirmResize');
    if (!record.oldFlavor) {
      throw new InstanceInvalidState(
        record.uuid,
        'confirmResize',
        await this.stateOf(record.uuid),
        'No resize.',
      );
    }
    delete record.oldFlavor;
    await this.save(record);
    for (const file of RESIZED_DISKS) await rm(join(this.dir(record.uuid), file + ORIG), { force: true });
  }

  /**
   * Back to the old flavour and to the disks as they were when the resize began (what the guest wrote since
   * is lost, as in Nova's libvirt revert, which restores the disks from before the migration).
   */
  async revertResize(
    instance: InstanceSpec,
    _networkInfo: NetworkInfo,
    options: { powerOn?: boolean } = {},
  ): Promise<void> {
    const record = await this.record(instance.uuid, 'revertResize');
    if (!record.oldFlavor) {
      throw new InstanceInvalidState(
        record.uuid,
        'revertResize',
        await this.stateOf(record.uuid),
        'No resize.',
      );
    }
    await this.stopProcess(record, 0);
    await this.restoreResizedDisks(record.uuid, record.oldFlavor);
    record.flavor = record.oldFlavor;
    delete record.oldFlavor;
    await this.save(record);
    if (options.powerOn ?? true) await this.start(record);
  }

  /**
   * The root disk flattened (overlay and base) into one qcow2, taken while the guest is stopped for the
   * copy (QEMU flushes its disks when it stops the guest), then uploaded; the guest runs on meanwhile.
   */
  async snapshot(instance: InstanceRef, imageId: string, upload: SnapshotUpload): Promise<void> {
    const record = await this.record(instance.uuid, 'snapshot');
    const status = (await this.livePid(record.uuid)) ? await this.qemuStatus(record.uuid) : undefined;
    const file = join(this.dir(record.uuid), `snapshot-${imageId.replace(/[^0-9A-Za-z-]/g, '')}.qcow2`);
    const client = status === 'running' ? await this.qmp(record.uuid) : undefined;
    await client?.execute('stop');
    try {
      await mustRun('qemu-img', [
        'convert',
        '-U',
        '-f',
        'qcow2',
        '-O',
        'qcow2',
        this.paths(record.uuid).rootDisk,
        file,
      ]);
    } catch (error) {
      await rm(file, { force: true });
      throw error;
    } finally {
      await client?.execute('cont');
    }
    const data = createReadStream(file);
    try {
      await upload({ diskFormat: 'qcow2', containerFormat: 'bare', data });
    } finally {
      data.destroy();
      await rm(file, { force: true });
    }
  }

  async getConsoleOutput(instance: InstanceRef): Promise<string> {
    const record = await this.record(instance.uuid);
    const file = this.paths(record.uuid).consoleLog;
    await this.trimConsole(file);
    return readFile(file, 'utf8').catch(() => '');
  }

  /**
   * The serial port of a running (or paused, or rescued) guest: QEMU's unix socket, which the agent's relay
   * connects to (port 0: no network port of its own). A guest whose QEMU was started before the serial port
   * became a socket has none until its next start.
   */
  async getSerialConsole(instance: InstanceRef): Promise<ConsoleEndpoint> {
    const record = await this.record(instance.uuid);
    const state = await this.stateOf(record.uuid);
    if (state !== RUNNING && state !== PAUSED) {
      throw new InstanceInvalidState(record.uuid, 'getSerialConsole', state);
    }
    const socket = this.paths(record.uuid).serialSocket;
    const pid = await this.livePid(record.uuid);
    const cmdline = pid ? await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '') : '';
    if (!existsSync(socket) || !cmdline.includes(`path=${socket},server=on`)) {
      throw new ConsoleUnavailable(record.uuid, 'its QEMU was started without a serial socket.');
    }
    return { host: this.host, port: 0, internalAccessPath: socket };
  }

  /** A connection to QEMU's serial socket (QEMU serves one client at a time: the agent's relay shares it). */
  async connectSerialConsole(instance: InstanceRef): Promise<Duplex> {
    const { internalAccessPath } = await this.getSerialConsole(instance);
    return new Promise<Duplex>((resolve, reject) => {
      const socket = createConnection(internalAccessPath!);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(socket);
      });
      socket.once('error', reject);
    });
  }

  async attachInterface(instance: InstanceSpec, _vif: Vif): Promise<void> {
    this.unsupported('attachInterface', instance);
  }

  async detachInterface(instance: InstanceRef, _vif: Vif): Promise<void> {
    this.unsupported('detachInterface', instance);
  }

  /**
   * The root overlay as it is (the destination puts it on its own cached base of the same image, so that
   * only what the guest wrote travels) and the ephemeral disk, packed in a sparse tar beside the guest; swap
   * and the config drive are made afresh there. The guest and its disks stay for a revert.
   */
  async exportDisks(instance: InstanceRef): Promise<DiskExport> {
    const record = await this.record(instance.uuid, 'exportDisks');
    const state = await this.stateOf(record.uuid);
    if (state !== SHUTDOWN || (await this.livePid(record.uuid))) {
      throw new InstanceInvalidState(record.uuid, 'exportDisks', state);
    }
    const dir = this.dir(record.uuid);
    const file = join(dir, 'migration-export.tar');
    const names = EXPORTED_DISKS.filter((name) => existsSync(join(dir, name)));
    try {
      await mustRun('tar', ['-c', '-f', file, '--sparse', '-C', dir, ...names]);
    } catch (error) {
      await rm(file, { force: true });
      throw error;
    }
    return {
      format: KVM_DISKS_FORMAT,
      open: () => createReadStream(file),
      dispose: () => rm(file, { force: true }),
    };
  }

  async triggerCrashDump(instance: InstanceRef): Promise<void> {
    this.unsupported('triggerCrashDump', instance);
  }

  /**
   * Nova's get_instance_diagnostics from QMP and /proc: vCPU times from each vCPU thread
   * (query-cpus-fast's thread ids), disk counters from query-blockstats, NIC counters from the taps on the
   * command line (the host's tx is the guest's rx), memory used as QEMU's resident set (at most the
   * flavour's), uptime from the process's start. A guest without a process reports its state and nothing more.
   */
  async getDiagnostics(instance: InstanceRef): Promise<Diagnostics> {
    const record = await this.record(instance.uuid);
    const state = await this.stateOf(record.uuid);
    const diagnostics: Diagnostics = {
      state: POWER_STATE_NAMES[state],
      driver: this.name,
      hypervisor: this.accel === 'kvm' ? 'kvm' : 'qemu',
      hypervisorOs: 'linux',
      uptimeSeconds: 0,
      configDrive: true,
      cpus: [],
      nics: [],
      disks: [],
      memory: { maximumMb: record.flavor.memoryMb, usedMb: 0 },
    };
    const pid = await this.livePid(record.uuid);
    if (!pid) return diagnostics;
    const client = await this.qmp(record.uuid);
    const ticks = 100; // USER_HZ, the unit of /proc's times on Linux
    const procStat = async (path: string) => {
      const text = await readFile(path, 'utf8').catch(() => '');
      // The fields after the command name: state is [0], utime [11], stime [12], starttime [19].
      return text.slice(text.lastIndexOf(')') + 2).split(' ');
    };
    const uptime = Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0]);
    diagnostics.uptimeSeconds = Math.max(
      0,
      Math.round(uptime - Number((await procStat(`/proc/${pid}/stat`))[19]) / ticks),
    );
    const vcpus = await client.execute<{ 'cpu-index': number; 'thread-id': number }[]>('query-cpus-fast');
    for (const vcpu of vcpus) {
      const fields = await procStat(`/proc/${pid}/task/${vcpu['thread-id']}/stat`);
      const time = (Number(fields[11]) || 0) + (Number(fields[12]) || 0);
      diagnostics.cpus.push({
        id: vcpu['cpu-index'],
        timeNs: Math.round((time * 1e9) / ticks),
        utilisation: null,
      });
    }
    const blockstats = await client.execute<{ stats: Record<string, number> }[]>('query-blockstats');
    diagnostics.disks = blockstats.map(({ stats }) => ({
      readBytes: stats.rd_bytes ?? 0,
      readRequests: stats.rd_operations ?? 0,
      writeBytes: stats.wr_bytes ?? 0,
      writeRequests: stats.wr_operations ?? 0,
      errorsCount: (stats.failed_rd_operations ?? 0) + (stats.failed_wr_operations ?? 0),
    }));
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    const taps = args.flatMap((arg) => /^tap,id=(net\d+),ifname=([^,]+)/.exec(arg)?.slice(1, 3) ?? []);
    for (let i = 0; i < taps.length; i += 2) {
      const mac = args
        .map((arg) => new RegExp(`^virtio-net-pci,netdev=${taps[i]},mac=([^,]+)`).exec(arg)?.[1])
        .find(Boolean);
      const counter = async (name: string) =>
        Number(await readFile(`/sys/class/net/${taps[i + 1]}/statistics/${name}`, 'utf8').catch(() => '0')) ||
        0;
      diagnostics.nics.push({
        macAddress: mac ?? '',
        rxOctets: await counter('tx_bytes'),
        rxErrors: await counter('tx_errors'),
        rxDrop: await counter('tx_dropped'),
        rxPackets: await counter('tx_packets'),
        txOctets: await counter('rx_bytes'),
        txErrors: await counter('rx_errors'),
        txDrop: await counter('rx_dropped'),
        txPackets: await counter('rx_packets'),
      });
    }
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const rssKb = Number(/^VmRSS:\s*(\d+)/m.exec(status)?.[1] ?? 0);
    diagnostics.memory.usedMb = Math.min(record.flavor.memoryMb, Math.round(rssKb / 1024));
    return diagnostics;
  }

  /**
   * The destination of a live migration, as libvirt makes it for hosts without shared storage: the guest's
   * disks made as spawn makes them (an overlay on this host's copy of the image, blank ephemeral and swap
   * disks, the config drive), its ports plugged, QEMU started paused with `-incoming defer`, then listening
   * for the state (migrate-incoming) and serving its disks writable over NBD (nbd-server-start,
   * block-export-add) for the source's mirror jobs.
   */
  async preLiveMigration(
    instance: InstanceSpec,
    image: ImageSource,
    networkInfo: NetworkInfo,
    options: { listenAddress: string },
  ): Promise<LiveMigrationTarget> {
    const existing = await this.record(instance.uuid).catch(() => undefined);
    if (existing?.incoming && (await this.livePid(instance.uuid))) return existing.incoming;
    if (existing) throw new InstanceExists(instance.uuid);
    // A half-made directory of an earlier attempt (no record) goes first.
    await this.remove(instance.uuid);
    await mkdir(this.dir(instance.uuid));
    try {
      const record = newRecord(instance, image, networkInfo);
      await this.createDisks(record, image);
      await this.writeConfigDrive(instance, networkInfo, {});
      const paths = this.paths(record.uuid, record.flavor);
      const disks = ['root'];
      if (paths.ephemeralDisk) disks.push('ephemeral0');
      if (paths.swapDisk) disks.push('swap');
      const [migrationPort, nbdPort] = await freePorts(options.listenAddress, 2);
      const target: LiveMigrationTarget = { address: options.listenAddress, migrationPort, nbdPort, disks };
      record.incoming = target;
      await this.save(record);
      await this.start(record, undefined, true);
      const client = await this.qmp(record.uuid);
      await client.execute('migrate-incoming', { uri: `tcp:${uriHost(target.address)}:${migrationPort}` });
      await client.execute('nbd-server-start', {
        addr: { type: 'inet', data: { host: target.address, port: String(nbdPort) } },
      });
      for (const disk of disks) {
        await client.execute('block-export-add', {
          type: 'nbd',
          id: `migrate-${disk}`,
          'node-name': disk,
          name: disk,
          writable: true,
        });
      }
      return target;
    } catch (error) {
      await this.remove(instance.uuid).catch(() => undefined);
      throw error;
    }
  }

  /**
   * The source of a live migration, libvirt's way for non-shared storage (QEMU 7.2's `blk` migration
   * capability is deprecated and gone from 9.1): each disk mirrored into the destination's NBD export
   * (blockdev-mirror, `sync: top`: the destination has the image the root overlay is based on;
   * `write-blocking`: the guest's writes reach both once the copy is in step), then, all mirrors ready, the
   * RAM and device state sent with `migrate`; once that completes (the guest stopped here), the mirrors are
   * cancelled, which ends them in step without switching this QEMU to the copies. A failure cancels
   * everything and lets the guest run on here.
   */
  async liveMigration(instance: InstanceRef, target: LiveMigrationTarget): Promise<void> {
    const record = await this.record(instance.uuid, 'liveMigration');
    const state = await this.stateOf(record.uuid);
    if (state !== RUNNING && state !== PAUSED) {
      throw new InstanceInvalidState(record.uuid, 'liveMigration', state);
    }
    const paths = this.paths(record.uuid, record.flavor);
    const disks = ['root'];
    if (paths.ephemeralDisk) disks.push('ephemeral0');
    if (paths.swapDisk) disks.push('swap');
    if (target.nbdPort && disks.join() !== target.disks.join()) {
      throw new DriverError(
        `The destination offers the disks ${target.disks.join(', ')}; the guest has ${disks.join(', ')}.`,
      );
    }
    const client = await this.qmp(record.uuid);
    const wasRunning = (await this.qemuStatus(record.uuid)) === 'running';
    const deadline = Date.now() + (this.options.liveMigrationTimeoutSeconds ?? 800) * 1000;
    const jobs: string[] = [];
    const nodes: string[] = [];
    const jobErrors = new Map<string, string>();
    const onEvent = (event: { event: string; data?: Record<string, unknown> }) => {
      const device = event.data?.device;
      if (typeof device !== 'string') return;
      if (event.event === 'BLOCK_JOB_ERROR')
        jobErrors.set(device, `I/O error (${String(event.data?.operation)})`);
      if (event.event === 'BLOCK_JOB_COMPLETED' && typeof event.data?.error === 'string') {
        jobErrors.set(device, event.data.error);
      }
    };
    client.on('event', onEvent);
    try {
      if (target.nbdPort) {
        for (const disk of disks) {
          const node = `migrate-${disk}-target`;
          await client.execute('blockdev-add', {
            driver: 'nbd',
            'node-name': node,
            server: { type: 'inet', host: target.address, port: String(target.nbdPort) },
            export: disk,
          });
          nodes.push(node);
          await client.execute('blockdev-mirror', {
            'job-id': `migrate-${disk}`,
            device: disk,
            target: node,
            sync: 'top',
            'copy-mode': 'write-blocking',
          });
          jobs.push(`migrate-${disk}`);
        }
        await waitMirrors(client, jobs, jobErrors, deadline);
      }
      // Nova's live_migration_bandwidth 0: as fast as it goes (QEMU's default is 32 MiB/s).
      await client.execute('migrate-set-parameters', { 'max-bandwidth': 10 * GIB });
      await client.execute('migrate', { uri: `tcp:${uriHost(target.address)}:${target.migrationPort}` });
      for (;;) {
        const info = await client.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
        if (info.status === 'completed') break;
        if (info.status === 'failed' || info.status === 'cancelled') {
          throw new DriverError(`Live migration failed: ${info['error-desc'] ?? info.status}`);
        }
        if (Date.now() > deadline) throw new DriverError('Live migration did not complete in time.');
        await sleep(100);
      }
      for (const job of jobs) await client.execute('block-job-cancel', { device: job });
      await waitJobsGone(client, jobs, deadline);
      jobs.length = 0;
      for (const node of nodes)
        await client.execute('blockdev-del', { 'node-name': node }).catch(() => undefined);
    } catch (error) {
      await client.execute('migrate_cancel').catch(() => undefined);
      for (const job of jobs) {
        await client.execute('block-job-cancel', { device: job, force: true }).catch(() => undefined);
      }
      await waitJobsGone(client, jobs, Date.now() + 30_000).catch(() => undefined);
      for (const node of nodes)
        await client.execute('blockdev-del', { 'node-name': node }).catch(() => undefined);
      // A migration that failed after the switch-over left the guest stopped here: it runs on.
      if (wasRunning && (await this.qemuStatus(record.uuid).catch(() => undefined)) !== 'running') {
        await client.execute('cont').catch(() => undefined);
      }
      if (error instanceof DriverError) throw error;
      throw new DriverError(`Live migration of ${record.uuid} failed: ${(error as Error).message}`, {
        cause: error,
      });
    } finally {
      client.off('event', onEvent);
    }
  }

  /** The migrated guest runs here: the NBD server goes, the guest continues (unless it was paused). */
  async postLiveMigrationAtDestination(
    instance: InstanceRef,
    options: { paused?: boolean } = {},
  ): Promise<void> {
    const record = await this.record(instance.uuid);
    if (!record.incoming) return;
    const client = await this.qmp(record.uuid);
    await client.execute('nbd-server-stop').catch(() => undefined);
    const deadline = Date.now() + 60_000;
    while ((await this.qemuStatus(record.uuid)) === 'inmigrate') {
      if (Date.now() > deadline) throw new DriverError(`The migration of ${record.uuid} has not arrived.`);
      await sleep(50);
    }
    if (!options.paused) await client.execute('cont');
    delete record.incoming;
    await this.save(record);
  }

  /** Only a guest that migrated away (QEMU in `postmigrate`, or no QEMU) is removed: never the only copy. */
  async postLiveMigration(instance: InstanceRef, _networkInfo: NetworkInfo): Promise<void> {
    const status = await this.qemuStatus(instance.uuid).catch(() => undefined);
    if (status !== undefined && status !== 'postmigrate') {
      const record = await this.record(instance.uuid).catch(() => undefined);
      if (record) {
        throw new InstanceInvalidState(
          instance.uuid,
          'postLiveMigration',
          powerStateOf(status),
          'It has not migrated away.',
        );
      }
    }
    await this.remove(instance.uuid);
  }

  async rollbackLiveMigrationAtDestination(instance: InstanceRef, _networkInfo: NetworkInfo): Promise<void> {
    const record = await this.record(instance.uuid).catch(() => undefined);
    if (record && !record.incoming) return;
    await this.remove(instance.uuid);
  }

  private unsupported(operation: DriverOperation, _instance: InstanceRef): never {
    if (UNSUPPORTED.has(operation)) throw new NotSupportedByDriver(operation, this.name);
    throw new DriverError(`The kvm driver has no ${operation}.`);
  }

  private dir(uuid: string): string {
    if (!/^[0-9a-fA-F-]{1,64}$/.test(uuid)) throw new InstanceNotFound(uuid);
    return join(this.root, 'instances', uuid);
  }

  private paths(uuid: string, flavor?: FlavorSpec, rescued = false): GuestPaths {
    const dir = this.dir(uuid);
    return {
      pidfile: join(dir, 'qemu.pid'),
      qmpSocket: join(dir, 'qmp.sock'),
      serialSocket: join(dir, 'serial.sock'),
      consoleLog: join(dir, 'console.log'),
      rootDisk: join(dir, 'disk'),
      configDrive: join(dir, rescued ? 'disk.config.rescue' : 'disk.config'),
      ephemeralDisk: flavor && flavor.ephemeralGb > 0 ? join(dir, 'disk.eph0') : undefined,
      swapDisk: flavor && flavor.swapMb > 0 ? join(dir, 'disk.swap') : undefined,
      rescueDisk: rescued ? join(dir, 'disk.rescue') : undefined,
    };
  }

  /** A rescue's disk and config drive go. */
  private async dropRescueDisks(uuid: string): Promise<void> {
    for (const file of ['disk.rescue', 'disk.config.rescue'])
      await rm(join(this.dir(uuid), file), { force: true });
  }

  /**
   * The disks as they were before a resize, back in place: each copy kept renamed over its disk (a disk
   * without a copy was not changed yet), and a disk the old flavour did not have removed.
   */
  private async restoreResizedDisks(uuid: string, oldFlavor: FlavorSpec): Promise<void> {
    const dir = this.dir(uuid);
    const had = { disk: true, 'disk.eph0': oldFlavor.ephemeralGb > 0, 'disk.swap': oldFlavor.swapMb > 0 };
    for (const file of RESIZED_DISKS) {
      const path = join(dir, file);
      await rm(`${path}${ORIG}.tmp`, { force: true });
      if (!had[file]) await rm(path, { force: true });
      if (existsSync(path + ORIG)) await rename(path + ORIG, path);
    }
  }

  private stateFile(uuid: string): string {
    return join(this.dir(uuid), 'suspended.state');
  }

  /** The guest's record; with an operation, rejects it while a resize awaits confirm or revert or while rescued. */
  private async record(uuid: string, operation?: DriverOperation): Promise<GuestRecord> {
    const text = await readFile(join(this.dir(uuid), 'guest.json'), 'utf8').catch(() => undefined);
    if (text === undefined) throw new InstanceNotFound(uuid);
    const record = JSON.parse(text) as GuestRecord;
    if (operation && record.oldFlavor && !RESIZE_EXITS.includes(operation)) {
      const state = await this.stateOf(uuid);
      throw new InstanceInvalidState(uuid, operation, state, 'A resize awaits confirm or revert.');
    }
    if (operation && record.rescue && !RESCUE_EXITS.includes(operation)) {
      throw new InstanceInvalidState(uuid, operation, await this.stateOf(uuid), 'It is rescued.');
    }
    return record;
  }

  private async save(record: GuestRecord): Promise<void> {
    const file = join(this.dir(record.uuid), 'guest.json');
    await writeFile(`${file}.tmp`, JSON.stringify(record));
    await rename(`${file}.tmp`, file);
  }

  /** The pid of the guest's QEMU when it runs: the pidfile's process, if it is alive and is this guest's. */
  private async livePid(uuid: string): Promise<number | undefined> {
    const text = await readFile(this.paths(uuid).pidfile, 'utf8').catch(() => undefined);
    const pid = Number(text?.trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.split('\0').includes(uuid)) return undefined;
    return (await processAlive(pid)) ? pid : undefined;
  }

  /** The QMP connection of a running guest, opened once and kept (re-opened when QEMU dropped it). */
  private async qmp(uuid: string): Promise<QmpClient> {
    const existing = this.clients.get(uuid);
    if (existing) {
      const client = await existing.catch(() => undefined);
      if (client?.isOpen) return client;
    }
    const connecting = QmpClient.connect(this.paths(uuid).qmpSocket);
    this.clients.set(uuid, connecting);
    try {
      const client = await connecting;
      client.on('close', () => {
        if (this.clients.get(uuid) === connecting) this.clients.delete(uuid);
      });
      return client;
    } catch (error) {
      if (this.clients.get(uuid) === connecting) this.clients.delete(uuid);
      throw error;
    }
  }

  /** QEMU's run state, or undefined when the guest has no process. */
  private async qemuStatus(uuid: string): Promise<string | undefined> {
    if (!(await this.livePid(uuid))) return undefined;
    try {
      return (await (await this.qmp(uuid)).execute<{ status: string }>('query-status')).status;
    } catch (error) {
      if (!(await this.livePid(uuid))) return undefined;
      throw error;
    }
  }

  private async stateOf(uuid: string): Promise<PowerState> {
    const status = await this.qemuStatus(uuid);
    if (status === undefined) return existsSync(this.stateFile(uuid)) ? SUSPENDED : SHUTDOWN;
    return powerStateOf(status);
  }

  private async transition(
    instance: InstanceRef,
    operation: 'pause' | 'unpause',
    from: PowerState,
    command: 'stop' | 'cont',
  ): Promise<void> {
    const record = await this.record(instance.uuid, operation);
    const state = await this.stateOf(record.uuid);
    if (state !== from) throw new InstanceInvalidState(record.uuid, operation, state);
    await (await this.qmp(record.uuid)).execute(command);
  }

  private async hardReboot(record: GuestRecord): Promise<void> {
    const status = await this.qemuStatus(record.uuid);
    if (status === undefined || powerStateOf(status) === CRASHED || powerStateOf(status) === SHUTDOWN) {
      await this.stopProcess(record, 0);
      await rm(this.stateFile(record.uuid), { force: true });
      await this.start(record);
      return;
    }
    const client = await this.qmp(record.uuid);
    await client.execute('system_reset');
    if (status !== 'running') await client.execute('cont');
  }

  /** Polls query-migrate until the outgoing migration (a suspend's save) has completed. */
  private async waitMigration(client: QmpClient): Promise<void> {
    for (;;) {
      const info = await client.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
      if (info.status === 'completed') return;
      if (info.status === 'failed' || info.status === 'cancelled') {
        throw new DriverError(`Saving the guest state failed: ${info['error-desc'] ?? info.status}`);
      }
      await sleep(50);
    }
  }

  /** The overlay (the flavour's root size on the cached base) and blank ephemeral and swap disks. */
  private async createDisks(record: GuestRecord, image: ImageSource): Promise<void> {
    const base = await this.images.prepare(image);
    const paths = this.paths(record.uuid, record.flavor);
    const rootBytes = record.flavor.rootGb > 0 ? record.flavor.rootGb * GIB : base.virtualSize;
    if (rootBytes < base.virtualSize) {
      throw new DriverError(
        `Flavor's disk is too small for requested image. Flavor disk is ${rootBytes} bytes, image is ${base.virtualSize} bytes.`,
      );
    }
    // A rebuild starts from nothing: the old overlay, and disks the flavour may no longer have.
    const dir = this.dir(record.uuid);
    for (const file of ['disk', 'disk.eph0', 'disk.swap']) await rm(join(dir, file), { force: true });
    await mustRun('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-F',
      base.format,
      '-b',
      base.path,
      paths.rootDisk,
      String(rootBytes),
    ]);
    if (paths.ephemeralDisk) {
      await mustRun('qemu-img', [
        'create',
        '-q',
        '-f',
        'qcow2',
        paths.ephemeralDisk,
        `${record.flavor.ephemeralGb}G`,
      ]);
    }
    if (paths.swapDisk) {
      await mustRun('qemu-img', ['create', '-q', '-f', 'qcow2', paths.swapDisk, `${record.flavor.swapMb}M`]);
    }
  }

  /**
   * Puts another host's exported disks in place of the fresh ones createDisks made: the root overlay rebased
   * (unsafely: the content is the same) onto this host's cached base of the guest's image, each disk grown to
   * the flavour (never shrunk: Nova's ResizeError); swap stays the fresh one.
   */
  private async importDisks(record: GuestRecord, image: ImageSource, migrated: MigratedDisks): Promise<void> {
    const dir = this.dir(record.uuid);
    const incoming = join(dir, 'incoming');
    await mkdir(incoming);
    // --ignore-zeros: read the input to its end (see the container driver's import), not only to the end marker.
    await mustRunFrom(
      'tar',
      ['-x', '-f', '-', '--ignore-zeros', '--no-same-owner', '-C', incoming],
      migrated.data,
    );
    const names = await readdir(incoming);
    for (const name of names) {
      const info = await lstat(join(incoming, name));
      if (!EXPORTED_DISKS.includes(name) || !info.isFile()) {
        throw new DriverError(`The migrated disks of ${record.uuid} hold an unexpected ${name}.`);
      }
    }
    if (!names.includes('disk')) {
      throw new DriverError(`The migrated disks of ${record.uuid} have no root disk.`);
    }
    const root = join(incoming, 'disk');
    const info = JSON.parse(await mustRun('qemu-img', ['info', '--output=json', '-f', 'qcow2', root])) as {
      'virtual-size': number;
      'backing-filename'?: string;
    };
    if (info['backing-filename']) {
      const base = await this.images.prepare(image);
      const rebase = ['rebase', '-q', '-u', '-f', 'qcow2', '-F', base.format, '-b', base.path, root];
      await mustRun('qemu-img', rebase);
    }
    const grow = async (file: string, bytes: number) => {
      const size = await virtualSize(file);
      if (bytes < size) throw new DriverError('Resize error: Unable to resize disk down.');
      if (bytes > size) await mustRun('qemu-img', ['resize', '-q', file, String(bytes)]);
    };
    await grow(root, record.flavor.rootGb > 0 ? record.flavor.rootGb * GIB : info['virtual-size']);
    if (names.includes('disk.eph0')) await grow(join(incoming, 'disk.eph0'), record.flavor.ephemeralGb * GIB);
    for (const name of names) await rename(join(incoming, name), join(dir, name));
    await rm(incoming, { recursive: true, force: true });
  }

  private async writeConfigDrive(
    instance: InstanceSpec,
    networkInfo: NetworkInfo,
    options: SpawnOptions,
  ): Promise<void> {
    const files = configDriveFiles(instance, networkInfo, {
      adminPassword: options.adminPassword,
      injectedFiles: options.injectedFiles,
    });
    await writeConfigDriveIso(files, this.paths(instance.uuid).configDrive);
  }

  /** Starts the guest's QEMU (restoring `incomingState` when given) and waits until the guest runs. */
  private async start(record: GuestRecord, incomingState?: string, incomingMigration = false): Promise<void> {
    const paths = this.paths(record.uuid, record.flavor, record.rescue !== undefined);
    // What QEMU needs in place, all at once: the taps, its cgroup, its directory, no stale pidfile or socket.
    let vifs: Vif[] = [];
    let cgroup: string | undefined;
    await settleAll([
      rm(paths.pidfile, { force: true }),
      rm(paths.qmpSocket, { force: true }),
      rm(paths.serialSocket, { force: true }),
      this.plugVifs(record).then((plugged) => (vifs = plugged)),
      this.cgroup(record).then((path) => (cgroup = path)),
      this.qemuUser && prepareGuestDir(this.dir(record.uuid), this.qemuUser),
    ]);
    const args = qemuArgs({
      uuid: record.uuid,
      name: record.name,
      flavor: record.flavor,
      accel: this.accel,
      paths,
      vifs,
      sandbox: this.options.sandbox ?? true,
      incomingStateFile: incomingState,
      incomingMigration,
      runAs: this.qemuUser && runAsArgs(this.qemuUser.name, this.qemuVersion),
    });
    // QEMU daemonizes once it is set up: the command ends then, the guest's process lives on (in the cgroup).
    const result = cgroup
      ? await runCommand('sh', [
          '-c',
          'echo $$ > "$0" && exec "$@"',
          join(cgroup, 'cgroup.procs'),
          this.qemu,
          ...args,
        ])
      : await runCommand(this.qemu, args);
    if (result.code !== 0) {
      await this.removeCgroup(record.uuid);
      throw new DriverError(
        `QEMU could not start ${record.uuid} (${result.code}): ${result.stderr.trim().slice(-500)}`,
      );
    }
    const client = await this.qmp(record.uuid);
    if (incomingState) {
      for (;;) {
        const { status } = await client.execute<{ status: string }>('query-status');
        if (status !== 'inmigrate') break;
        await sleep(50);
      }
      await client.execute('cont');
    }
  }

  /** Each port as a tap on its bridge (idempotent), named as the host network named it; none without one. */
  private async plugVifs(record: GuestRecord): Promise<Vif[]> {
    const network = this.options.network;
    if (!network) return [];
    const vifs: Vif[] = [];
    for (const vif of record.vifs) {
      const { ifname } = await network.plugTap(record.uuid, vif);
      vifs.push({ ...vif, devname: ifname });
    }
    return vifs;
  }

  /**
   * Ends the guest's QEMU: ACPI power button first when graceSeconds > 0 and the guest runs, then `quit`,
   * then SIGKILL. Idempotent.
   */
  private async stopProcess(record: GuestRecord, graceSeconds: number): Promise<void> {
    const pid = await this.livePid(record.uuid);
    if (pid) {
      const client = await this.qmp(record.uuid).catch(() => undefined);
      let exited = false;
      if (client && graceSeconds > 0) {
        const status = await client.execute<{ status: string }>('query-status').catch(() => undefined);
        if (status?.status === 'running') {
          // As Nova's libvirt driver, the power button again every 10 s: a guest still booting misses it.
          const deadline = Date.now() + graceSeconds * 1000;
          while (!exited && Date.now() < deadline) {
            await client.execute('system_powerdown').catch(() => undefined);
            exited = await waitExit(pid, Math.min(POWERDOWN_RETRY_MS, deadline - Date.now()));
          }
        }
      }
      if (!exited && client) {
        await client.execute('quit').catch(() => undefined);
        exited = await waitExit(pid, 10_000);
      }
      if (!exited) {
        killQuietly(pid);
        if (!(await waitExit(pid, 10_000)))
          throw new DriverError(`QEMU ${pid} of ${record.uuid} does not end.`);
      }
    }
    await this.afterExit(record);
  }

  /** What goes once QEMU has ended: its connection, pidfile, socket and cgroup (the taps stay for the next start). */
  private async afterExit(record: GuestRecord): Promise<void> {
    const client = this.clients.get(record.uuid);
    this.clients.delete(record.uuid);
    (await client?.catch(() => undefined))?.close();
    const paths = this.paths(record.uuid);
    await rm(paths.pidfile, { force: true });
    await rm(paths.qmpSocket, { force: true });
    await rm(paths.serialSocket, { force: true });
    await this.removeCgroup(record.uuid);
  }

  /** Everything of the guest goes: process, socket, ports, cgroup, disks and directory. */
  private async remove(uuid: string): Promise<void> {
    const record = await this.record(uuid).catch(() => undefined);
    if (record) {
      await this.stopProcess(record, 0);
      for (const vif of record.vifs) await this.options.network?.unplugTap(vif);
    } else {
      const pid = await this.livePid(uuid);
      if (pid) {
        killQuietly(pid);
        await waitExit(pid, 10_000);
      }
      await this.removeCgroup(uuid);
    }
    await rm(this.dir(uuid), { recursive: true, force: true });
  }

  /** A memory cgroup (v1) for the guest's QEMU: the flavour's RAM plus the overhead; undefined without one. */
  private async cgroup(record: GuestRecord): Promise<string | undefined> {
    if (!existsSync('/sys/fs/cgroup/memory/cgroup.procs') || process.getuid?.() !== 0) return undefined;
    const path = KvmDriver.cgroupPath(record.uuid);
    await mkdir(path, { recursive: true });
    const limit = (record.flavor.memoryMb + (this.options.memoryOverheadMb ?? 256)) * 1024 * 1024;
    await writeFile(join(path, 'memory.limit_in_bytes'), String(limit));
    return path;
  }

  private async removeCgroup(uuid: string): Promise<void> {
    const path = KvmDriver.cgroupPath(uuid);
    for (let attempt = 0; existsSync(path) && attempt < 50; attempt++) {
      await rmdir(path).catch(() => undefined);
      if (existsSync(path)) await sleep(20);
    }
  }

  private async trimConsoles(): Promise<void> {
    for (const uuid of await this.listInstances())
      await this.trimConsole(this.paths(uuid).consoleLog).catch(() => undefined);
  }

  /** Keeps the newest half of a console log that grew past the bound (QEMU appends to it, O_APPEND). */
  private async trimConsole(file: string): Promise<void> {
    const max = this.options.consoleMaxBytes ?? 1024 * 1024;
    const size = (await stat(file).catch(() => undefined))?.size ?? 0;
    if (size <= max) return;
    const handle = await open(file, 'r');
    const keep = Buffer.alloc(Math.floor(max / 2));
    try {
      await handle.read(keep, 0, keep.length, size - keep.length);
    } finally {
      await handle.close();
    }
    await truncate(file, 0);
    await writeFile(file, keep, { flag: 'a' });
  }
}

/**
 * Awaits every one of `work` (none is left running behind a failure, so a clean-up after it finds nothing
 * half-written), then rejects with the first failure, if any.
 */
async function settleAll(work: readonly (Promise<unknown> | undefined)[]): Promise<void> {
  const failed = (await Promise.allSettled(work)).find(
    (r): r is PromiseRejectedResult => r.status === 'rejected',
  );
  if (failed) throw failed.reason;
}

/** A host address in a QEMU URI (`tcp:[::1]:port` for IPv6). */
function uriHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/** Ports free on `address` now (the OS picks them; QEMU takes them a moment later). */
async function freePorts(address: string, count: number): Promise<number[]> {
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, address, () => resolve());
      });
    }
    return servers.map((server) => (server.address() as { port: number }).port);
  } finally {
    for (const server of servers) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Waits until each mirror job is ready (in step with its target); a job that ended or failed rejects. */
async function waitMirrors(
  client: QmpClient,
  jobs: string[],
  errors: Map<string, string>,
  deadline: number,
): Promise<void> {
  for (;;) {
    const running =
      await client.execute<{ device: string; ready: boolean; status?: string }[]>('query-block-jobs');
    for (const job of jobs) {
      const error = errors.get(job);
      if (error) throw new DriverError(`Copying the disk ${job} to the destination failed: ${error}`);
      if (!running.some((info) => info.device === job)) {
        throw new DriverError(`Copying the disk ${job} to the destination ended early.`);
      }
    }
    if (running.filter((info) => jobs.includes(info.device)).every((info) => info.ready)) return;
    if (Date.now() > deadline) throw new DriverError('The disks did not reach the destination in time.');
    await sleep(100);
  }
}

async function waitJobsGone(client: QmpClient, jobs: string[], deadline: number): Promise<void> {
  while (jobs.length > 0) {
    const running = await client.execute<{ device: string }[]>('query-block-jobs');
    if (!running.some((info) => jobs.includes(info.device))) return;
    if (Date.now() > deadline) throw new DriverError('The disk copies did not end in time.');
    await sleep(50);
  }
}

/** A disk image's virtual size in bytes (`qemu-img info`, shared lock: QEMU may hold the image). */
async function virtualSize(file: string): Promise<number> {
  const stdout = await mustRun('qemu-img', ['info', '-U', '--output=json', file]);
  return Number((JSON.parse(stdout) as { 'virtual-size': number })['virtual-size']);
}

/** Alive: in /proc and not a zombie (a zombie left to an init that does not reap holds nothing). */
async function processAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return false;
  return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

/** SIGKILL to a process that may have ended meanwhile. */
function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

async function waitExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (await processAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

async function hostCpuInfo(): Promise<CpuInfo> {
  const text = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const first = text.split('\n\n')[0] ?? '';
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(first)?.[1]?.trim();
  const sockets = new Set([...text.matchAll(/^physical id\s*:\s*(\d+)/gm)].map((m) => m[1])).size || 1;
  const cores = Number(field('cpu cores')) || cpus().length;
  const siblings = Number(field('siblings')) || cores;
  return {
    arch: process.arch === 'x64' ? 'x86_64' : process.arch,
    model: field('model name') ?? 'unknown',
    vendor: field('vendor_id') ?? 'unknown',
    features: (field('flags') ?? '').split(/\s+/).filter(Boolean),
    topology: { sockets, cores, threads: Math.max(1, Math.round(siblings / cores)) },
  };
}
