import { createReadStream, existsSync } from 'node:fs';
import {
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
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { configDriveFiles } from '../config-drive';
import { mustRun, runCommand } from '../container/host-commands';
import {
  CAPABILITY_OPERATIONS,
  ComputeDriver,
  ConsoleEndpoint,
  CpuInfo,
  Diagnostics,
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
  NetworkInfo,
  NotSupportedByDriver,
  RebootType,
  SnapshotUpload,
  SpawnOptions,
  Vif,
  versionToInt,
} from '../driver';
import type { HostNetwork } from '../net/host-network';
import { PowerState } from '../states';
import { writeConfigDriveIso } from './config-drive-iso';
import { ImageCache } from './image-cache';
import { QmpClient } from './qmp-client';
import { Accelerator, GuestPaths, probeAccelerator, qemuArgs, shellQuote } from './qemu-command';

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
  /** Plugs each port as a tap on its network's bridge before QEMU opens it; without it, guests get no NIC. */
  network?: TapNetwork;
}

/** What the driver keeps of a guest on disk, so that a restarted agent finds it. */
interface GuestRecord {
  uuid: string;
  name: string;
  hostname: string;
  flavor: FlavorSpec;
  imageId: string;
  vifs: Vif[];
}

const CAPABILITIES: DriverCapabilities = {
  pause: true,
  suspend: true,
  rescue: false,
  snapshot: true,
  resize: false,
  consoleOutput: true,
  serialConsole: false,
  attachInterface: false,
  triggerCrashDump: false,
  diagnostics: false,
  liveMigration: false,
};
const UNSUPPORTED = new Set(
  (Object.keys(CAPABILITY_OPERATIONS) as (keyof DriverCapabilities)[])
    .filter((capability) => !CAPABILITIES[capability])
    .flatMap((capability) => CAPABILITY_OPERATIONS[capability]),
);

const { NOSTATE, RUNNING, PAUSED, SHUTDOWN, CRASHED, SUSPENDED } = PowerState;
const GIB = 1024 ** 3;
const TRIM_INTERVAL_MS = 30_000;
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
    if (this.paths(instance.uuid).qmpSocket.length > MAX_SOCKET_PATH) {
      throw new DriverError(`The data dir ${this.options.dataDir} is too deep for QMP sockets.`);
    }
    try {
      await mkdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new InstanceExists(instance.uuid);
      throw error;
    }
    try {
      const record: GuestRecord = {
        uuid: instance.uuid,
        name: instance.name,
        hostname: instance.hostname,
        flavor: instance.flavor,
        imageId: image.id,
        vifs: [...networkInfo],
      };
      await this.createDisks(record, image);
      await this.writeConfigDrive(instance, networkInfo, options);
      await this.save(record);
      if (options.powerOn ?? true) await this.start(record);
    } catch (error) {
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
    const record = await this.record(instance.uuid);
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
    const record = await this.record(instance.uuid);
    await this.stopProcess(record, options.timeoutSeconds ?? this.options.powerOffSeconds ?? 60);
    await rm(this.stateFile(record.uuid), { force: true });
  }

  async powerOn(instance: InstanceSpec, _networkInfo: NetworkInfo): Promise<void> {
    const record = await this.record(instance.uuid);
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
    const record = await this.record(instance.uuid);
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
    const record = await this.record(instance.uuid);
    const state = await this.stateOf(record.uuid);
    if (state !== SUSPENDED) throw new InstanceInvalidState(record.uuid, 'resume', state);
    await this.start(record, this.stateFile(record.uuid));
    await rm(this.stateFile(record.uuid), { force: true });
  }

  async rescue(instance: InstanceSpec): Promise<void> {
    this.unsupported('rescue', instance);
  }

  async unrescue(instance: InstanceRef): Promise<void> {
    this.unsupported('unrescue', instance);
  }

  async rebuild(
    instance: InstanceSpec,
    image: ImageSource,
    networkInfo: NetworkInfo,
    options: SpawnOptions = {},
  ): Promise<void> {
    const record = await this.record(instance.uuid);
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

  async resize(instance: InstanceSpec): Promise<void> {
    this.unsupported('resize', instance);
  }

  async confirmResize(instance: InstanceRef): Promise<void> {
    this.unsupported('confirmResize', instance);
  }

  async revertResize(instance: InstanceSpec): Promise<void> {
    this.unsupported('revertResize', instance);
  }

  /**
   * The root disk flattened (overlay and base) into one qcow2, taken while the guest is stopped for the
   * copy (QEMU flushes its disks when it stops the guest), then uploaded; the guest runs on meanwhile.
   */
  async snapshot(instance: InstanceRef, imageId: string, upload: SnapshotUpload): Promise<void> {
    const record = await this.record(instance.uuid);
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

  async getSerialConsole(instance: InstanceRef): Promise<ConsoleEndpoint> {
    this.unsupported('getSerialConsole', instance);
  }

  async attachInterface(instance: InstanceSpec, _vif: Vif): Promise<void> {
    this.unsupported('attachInterface', instance);
  }

  async detachInterface(instance: InstanceRef, _vif: Vif): Promise<void> {
    this.unsupported('detachInterface', instance);
  }

  async triggerCrashDump(instance: InstanceRef): Promise<void> {
    this.unsupported('triggerCrashDump', instance);
  }

  async getDiagnostics(instance: InstanceRef): Promise<Diagnostics> {
    this.unsupported('getDiagnostics', instance);
  }

  private unsupported(operation: DriverOperation, _instance: InstanceRef): never {
    if (UNSUPPORTED.has(operation)) throw new NotSupportedByDriver(operation, this.name);
    throw new DriverError(`The kvm driver has no ${operation}.`);
  }

  private dir(uuid: string): string {
    if (!/^[0-9a-fA-F-]{1,64}$/.test(uuid)) throw new InstanceNotFound(uuid);
    return join(this.root, 'instances', uuid);
  }

  private paths(uuid: string, flavor?: FlavorSpec): GuestPaths {
    const dir = this.dir(uuid);
    return {
      pidfile: join(dir, 'qemu.pid'),
      qmpSocket: join(dir, 'qmp.sock'),
      consoleLog: join(dir, 'console.log'),
      rootDisk: join(dir, 'disk'),
      configDrive: join(dir, 'disk.config'),
      ephemeralDisk: flavor && flavor.ephemeralGb > 0 ? join(dir, 'disk.eph0') : undefined,
      swapDisk: flavor && flavor.swapMb > 0 ? join(dir, 'disk.swap') : undefined,
    };
  }

  private stateFile(uuid: string): string {
    return join(this.dir(uuid), 'suspended.state');
  }

  private async record(uuid: string): Promise<GuestRecord> {
    const text = await readFile(join(this.dir(uuid), 'guest.json'), 'utf8').catch(() => undefined);
    if (text === undefined) throw new InstanceNotFound(uuid);
    return JSON.parse(text) as GuestRecord;
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
    const record = await this.record(instance.uuid);
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
  private async start(record: GuestRecord, incomingState?: string): Promise<void> {
    const paths = this.paths(record.uuid, record.flavor);
    await rm(paths.pidfile, { force: true });
    await rm(paths.qmpSocket, { force: true });
    const args = qemuArgs({
      uuid: record.uuid,
      name: record.name,
      flavor: record.flavor,
      accel: this.accel,
      paths,
      vifs: await this.plugVifs(record),
      sandbox: this.options.sandbox ?? true,
      incomingStateFile: incomingState,
    });
    const cgroup = await this.cgroup(record);
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
          await client.execute('system_powerdown').catch(() => undefined);
          exited = await waitExit(pid, graceSeconds * 1000);
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
