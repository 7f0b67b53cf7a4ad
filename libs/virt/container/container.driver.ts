import { existsSync } from 'node:fs';
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  statfs,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { basename, join } from 'node:path';
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
import { PowerState } from '../states';
import { mustRun, runCommand, runWithOutput } from './host-commands';
import { ImageRuntimeConfig, ImageStore, PreparedImage } from './image-store';
import { flavorLimits, ociSpec, processArgs } from './oci-spec';

export interface ContainerDriverOptions {
  /** NOVUM_DATA_DIR: everything lives under `<dataDir>/containers`. */
  dataDir: string;
  /** The OCI runtime binary (NOVUM_CONTAINER_RUNTIME). */
  runtime?: string;
  /** The console log is cut back to its newest half past this size. */
  consoleMaxBytes?: number;
  /** How long a soft reboot waits for the container to end after SIGTERM. */
  softRebootSeconds?: number;
  /** powerOff's grace period when the caller gives none. */
  powerOffSeconds?: number;
}

/** What the driver keeps of a container on disk, so that a restarted agent finds it. */
interface GuestRecord {
  uuid: string;
  hostname: string;
  flavor: FlavorSpec;
  image: PreparedImage;
  /** Frozen by suspend rather than pause: both use the freezer. */
  suspended: boolean;
}

type RuntimeStatus = 'creating' | 'created' | 'running' | 'pausing' | 'paused' | 'stopped';

const CAPABILITIES: DriverCapabilities = {
  pause: true,
  suspend: true,
  rescue: false,
  snapshot: false,
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

const { RUNNING, PAUSED, SHUTDOWN, CRASHED, SUSPENDED } = PowerState;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const TRIM_INTERVAL_MS = 30_000;

/**
 * Servers as Linux containers run by an OCI runtime (runc, crun): the image's layers shared read-only under
 * an overlayfs with a writable layer per container, namespaces pid/mount/uts/ipc/net, the flavour's limits
 * in the cgroup `/novum/<uuid>`, stdout and stderr in a size-bounded console log. All state is on disk
 * (`<dataDir>/containers`) and in the runtime's root, so a restarted agent re-adopts its containers.
 */
export class ContainerDriver implements ComputeDriver {
  readonly name = 'container' as const;
  readonly capabilities: Readonly<DriverCapabilities> = Object.freeze({ ...CAPABILITIES });

  private readonly root: string;
  private readonly runtime: string;
  private readonly images: ImageStore;
  private host = '';
  private runtimeVersion = '0';
  private swapAccounting = false;
  private trimTimer?: NodeJS.Timeout;

  constructor(private readonly options: ContainerDriverOptions) {
    this.root = join(options.dataDir, 'containers');
    this.runtime = options.runtime ?? 'runc';
    this.images = new ImageStore(this.root);
  }

  /** The host's cgroup of a container, relative to each v1 controller's mount (or the v2 root). */
  static cgroupPath(uuid: string): string {
    return `/novum/${uuid}`;
  }

  static containerId(uuid: string): string {
    return `novum-${uuid}`;
  }

  /** Where the container's root filesystem (the overlay) is mounted on the host. */
  rootfsPath(uuid: string): string {
    return join(this.dir(uuid), 'rootfs');
  }

  instanceDir(uuid: string): string {
    return this.dir(uuid);
  }

  async init(host: string): Promise<void> {
    this.host = host;
    await mkdir(join(this.root, 'instances'), { recursive: true });
    await mkdir(join(this.root, 'runtime'), { recursive: true });
    await this.images.init();
    const version = await runCommand(this.runtime, ['--version']);
    if (version.code !== 0) {
      throw new DriverError(`The OCI runtime ${this.runtime} does not run: ${version.stderr.trim()}`);
    }
    this.runtimeVersion = /version\s+(\d+(?:\.\d+)*)/.exec(version.stdout)?.[1] ?? '0';
    this.swapAccounting = existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes');
    this.trimTimer = setInterval(() => void this.trimConsoles(), TRIM_INTERVAL_MS);
    this.trimTimer.unref();
  }

  async close(): Promise<void> {
    if (this.trimTimer) clearInterval(this.trimTimer);
    this.trimTimer = undefined;
  }

  async hostResources(): Promise<HostResources> {
    const fs = await statfs(this.root);
    const used = { vcpus: 0, memoryMb: 0, localGb: 0, running: 0 };
    for (const uuid of await this.listInstances()) {
      const record = await this.record(uuid).catch(() => undefined);
      if (!record) continue;
      used.vcpus += record.flavor.vcpus;
      used.memoryMb += record.flavor.memoryMb;
      used.localGb += record.flavor.rootGb + record.flavor.ephemeralGb;
      const state = await this.stateOf(record).catch(() => SHUTDOWN);
      if (state === RUNNING || state === PAUSED) used.running += 1;
    }
    return {
      hypervisorType: basename(this.runtime),
      hypervisorVersion: versionToInt(this.runtimeVersion),
      hypervisorHostname: this.host,
      vcpus: cpus().length,
      vcpusUsed: used.vcpus,
      memoryMb: Math.floor(totalmem() / 1024 / 1024),
      memoryMbUsed: used.memoryMb,
      localGb: Math.floor((fs.blocks * fs.bsize) / 1024 ** 3),
      localGbUsed: used.localGb,
      runningVms: used.running,
      cpuInfo: await hostCpuInfo(),
    };
  }

  async listInstances(): Promise<string[]> {
    const entries = await readdir(join(this.root, 'instances')).catch(() => [] as string[]);
    const uuids: string[] = [];
    for (const uuid of entries) {
      if (existsSync(join(this.dir(uuid), 'guest.json'))) uuids.push(uuid);
    }
    return uuids;
  }

  async getInfo(instance: InstanceRef): Promise<InstanceInfo> {
    return { state: await this.stateOf(await this.record(instance.uuid)) };
  }

  async spawn(
    instance: InstanceSpec,
    image: ImageSource,
    _networkInfo: NetworkInfo,
    options: SpawnOptions = {},
  ): Promise<void> {
    const dir = this.dir(instance.uuid);
    try {
      await mkdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new InstanceExists(instance.uuid);
      throw error;
    }
    try {
      const prepared = await this.images.prepare(image);
      const record: GuestRecord = {
        uuid: instance.uuid,
        hostname: instance.hostname,
        flavor: instance.flavor,
        image: prepared,
        suspended: false,
      };
      await this.freshWritableLayer(record);
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
    await this.remove(instance.uuid);
  }

  async reboot(instance: InstanceSpec, type: RebootType, _networkInfo: NetworkInfo): Promise<void> {
    const record = await this.record(instance.uuid);
    const state = await this.stateOf(record);
    if (type === 'SOFT') {
      if (state !== RUNNING) throw new InstanceInvalidState(record.uuid, 'reboot', state);
      await this.stop(record, this.options.softRebootSeconds ?? 30);
    } else {
      await this.stop(record, 0);
    }
    await this.start(record);
  }

  async powerOff(instance: InstanceRef, options: { timeoutSeconds?: number } = {}): Promise<void> {
    const record = await this.record(instance.uuid);
    await this.stop(record, options.timeoutSeconds ?? this.options.powerOffSeconds ?? 60);
  }

  async powerOn(instance: InstanceSpec, _networkInfo: NetworkInfo): Promise<void> {
    const record = await this.record(instance.uuid);
    const state = await this.stateOf(record);
    if (state === RUNNING) return;
    if (state !== SHUTDOWN && state !== CRASHED)
      throw new InstanceInvalidState(record.uuid, 'powerOn', state);
    await this.start(record);
  }

  async pause(instance: InstanceRef): Promise<void> {
    await this.freeze(instance, 'pause', false);
  }

  async unpause(instance: InstanceRef): Promise<void> {
    await this.thaw(instance, 'unpause', PAUSED);
  }

  async suspend(instance: InstanceRef): Promise<void> {
    await this.freeze(instance, 'suspend', true);
  }

  async resume(instance: InstanceSpec, _networkInfo: NetworkInfo): Promise<void> {
    await this.thaw(instance, 'resume', SUSPENDED);
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
    _networkInfo: NetworkInfo,
    options: SpawnOptions = {},
  ): Promise<void> {
    const record = await this.record(instance.uuid);
    const state = await this.stateOf(record);
    if (![RUNNING, SHUTDOWN, CRASHED].includes(state)) {
      throw new InstanceInvalidState(record.uuid, 'rebuild', state);
    }
    const prepared = await this.images.prepare(image);
    await this.stop(record, 0);
    record.image = prepared;
    record.hostname = instance.hostname;
    await this.freshWritableLayer(record);
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

  async snapshot(instance: InstanceRef, _imageId: string, _upload: SnapshotUpload): Promise<void> {
    this.unsupported('snapshot', instance);
  }

  async getConsoleOutput(instance: InstanceRef): Promise<string> {
    const record = await this.record(instance.uuid);
    const file = this.consoleFile(record.uuid);
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
    throw new DriverError(`The container driver has no ${operation}.`);
  }

  private dir(uuid: string): string {
    if (!/^[0-9a-fA-F-]{1,64}$/.test(uuid)) throw new InstanceNotFound(uuid);
    return join(this.root, 'instances', uuid);
  }

  private consoleFile(uuid: string): string {
    return join(this.dir(uuid), 'console.log');
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

  private runtimeArgs(...args: string[]): string[] {
    return ['--root', join(this.root, 'runtime'), ...args];
  }

  /** The runtime's status of the container; undefined when the runtime does not have it. */
  private async runtimeStatus(uuid: string): Promise<RuntimeStatus | undefined> {
    const result = await runCommand(
      this.runtime,
      this.runtimeArgs('state', ContainerDriver.containerId(uuid)),
    );
    if (result.code === 0) return (JSON.parse(result.stdout) as { status: RuntimeStatus }).status;
    if (/does not exist|not exist|no such/i.test(result.stderr)) return undefined;
    throw new DriverError(`${this.runtime} state failed: ${result.stderr.trim().slice(0, 300)}`);
  }

  private async stateOf(record: GuestRecord): Promise<PowerState> {
    const status = await this.runtimeStatus(record.uuid);
    if (status === 'running') return RUNNING;
    if (status === 'paused' || status === 'pausing') return record.suspended ? SUSPENDED : PAUSED;
    // Never started, stopped by us, or its init ended on its own: a powered-off server.
    return SHUTDOWN;
  }

  private async freeze(instance: InstanceRef, operation: 'pause' | 'suspend', suspended: boolean) {
    const record = await this.record(instance.uuid);
    const state = await this.stateOf(record);
    if (state !== RUNNING) throw new InstanceInvalidState(record.uuid, operation, state);
    record.suspended = suspended;
    await this.save(record);
    await mustRun(this.runtime, this.runtimeArgs('pause', ContainerDriver.containerId(record.uuid)));
  }

  private async thaw(instance: InstanceRef, operation: 'unpause' | 'resume', from: PowerState) {
    const record = await this.record(instance.uuid);
    const state = await this.stateOf(record);
    if (state !== from) throw new InstanceInvalidState(record.uuid, operation, state);
    await mustRun(this.runtime, this.runtimeArgs('resume', ContainerDriver.containerId(record.uuid)));
    record.suspended = false;
    await this.save(record);
  }

  private async freshWritableLayer(record: GuestRecord): Promise<void> {
    const dir = this.dir(record.uuid);
    await this.unmount(record.uuid);
    for (const sub of ['upper', 'work']) await rm(join(dir, sub), { recursive: true, force: true });
    for (const sub of ['upper', 'work', 'rootfs']) await mkdir(join(dir, sub), { recursive: true });
  }

  private async mounted(uuid: string): Promise<boolean> {
    const target = this.rootfsPath(uuid);
    const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
    return mountinfo.split('\n').some((line) => line.split(' ')[4] === target);
  }

  private async mount(record: GuestRecord): Promise<void> {
    if (await this.mounted(record.uuid)) return;
    const dir = this.dir(record.uuid);
    // overlayfs lists the lower layers top first.
    const lower = [...record.image.layers].reverse().map((digest) => this.images.layerPath(digest));
    const options = `lowerdir=${lower.join(':')},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`;
    await mustRun('mount', [
      '-t',
      'overlay',
      `novum-${record.uuid}`,
      '-o',
      options,
      this.rootfsPath(record.uuid),
    ]);
  }

  private async unmount(uuid: string): Promise<void> {
    for (let attempt = 0; (await this.mounted(uuid)) && attempt < 20; attempt++) {
      const result = await runCommand('umount', [this.rootfsPath(uuid)]);
      if (result.code !== 0) await sleep(50);
    }
    if (await this.mounted(uuid)) await mustRun('umount', ['-l', this.rootfsPath(uuid)]);
  }

  /** Mounts the rootfs, writes the bundle's config.json and runs the container detached. */
  private async start(record: GuestRecord): Promise<void> {
    const id = ContainerDriver.containerId(record.uuid);
    if ((await this.runtimeStatus(record.uuid)) !== undefined) {
      await mustRun(this.runtime, this.runtimeArgs('delete', '--force', id));
    }
    if (processArgs(record.image.config).length === 0) {
      throw new DriverError(`Image ${record.image.imageId} has neither Entrypoint nor Cmd.`);
    }
    await this.mount(record);
    const { uid, gid } = await this.user(record);
    const spec = ociSpec({
      hostname: record.hostname,
      image: record.image.config,
      uid,
      gid,
      limits: flavorLimits(record.flavor, this.swapAccounting),
      cgroupsPath: ContainerDriver.cgroupPath(record.uuid),
      rootfs: 'rootfs',
    });
    const dir = this.dir(record.uuid);
    await writeFile(join(dir, 'config.json'), JSON.stringify(spec, null, 1));
    record.suspended = false;
    await this.save(record);
    const consoleLog = await open(this.consoleFile(record.uuid), 'a');
    let code: number;
    const before = (await consoleLog.stat()).size;
    try {
      code = await runWithOutput(
        this.runtime,
        this.runtimeArgs('run', '--detach', '--bundle', dir, id),
        consoleLog.fd,
      );
    } finally {
      await consoleLog.close();
    }
    if (code !== 0) {
      const output = (await readFile(this.consoleFile(record.uuid), 'utf8').catch(() => '')).slice(before);
      await runCommand(this.runtime, this.runtimeArgs('delete', '--force', id));
      throw new DriverError(`${this.runtime} could not start ${id} (${code}): ${output.trim().slice(-500)}`);
    }
  }

  /** Ends the container: SIGTERM, up to graceSeconds, then SIGKILL; the runtime removes its cgroup. */
  private async stop(record: GuestRecord, graceSeconds: number): Promise<void> {
    const id = ContainerDriver.containerId(record.uuid);
    const status = await this.runtimeStatus(record.uuid);
    if (status === 'running' && graceSeconds > 0) {
      await runCommand(this.runtime, this.runtimeArgs('kill', id, 'TERM'));
      const deadline = Date.now() + graceSeconds * 1000;
      while (Date.now() < deadline && (await this.runtimeStatus(record.uuid)) === 'running') await sleep(25);
    }
    if (status !== undefined) await mustRun(this.runtime, this.runtimeArgs('delete', '--force', id));
    if (record.suspended) {
      record.suspended = false;
      await this.save(record);
    }
    await this.unmount(record.uuid);
  }

  /** Everything of the container goes: process, cgroup (with the runtime's state), mount, directory. */
  private async remove(uuid: string): Promise<void> {
    const dir = this.dir(uuid);
    if ((await this.runtimeStatus(uuid)) !== undefined) {
      await mustRun(this.runtime, this.runtimeArgs('delete', '--force', ContainerDriver.containerId(uuid)));
    }
    await this.unmount(uuid);
    await rm(dir, { recursive: true, force: true });
  }

  /** The image's User (`uid[:gid]` or names from the image's /etc/passwd and /etc/group); root by default. */
  private async user(record: GuestRecord): Promise<{ uid: number; gid: number }> {
    const spec = (record.image.config as ImageRuntimeConfig).User?.trim();
    if (!spec) return { uid: 0, gid: 0 };
    const [userPart, groupPart] = spec.split(':');
    const rootfs = this.rootfsPath(record.uuid);
    const table = async (file: string) =>
      (await readFile(join(rootfs, 'etc', file), 'utf8').catch(() => ''))
        .split('\n')
        .map((line) => line.split(':'));
    let uid = Number(userPart);
    let gid = 0;
    const passwd = await table('passwd');
    const entry = passwd.find((fields) =>
      Number.isInteger(uid) ? Number(fields[2]) === uid : fields[0] === userPart,
    );
    if (!Number.isInteger(uid)) {
      if (!entry) throw new DriverError(`Image user ${userPart} is not in the image's /etc/passwd.`);
      uid = Number(entry[2]);
    }
    if (entry) gid = Number(entry[3]);
    if (groupPart !== undefined) {
      gid = Number(groupPart);
      if (!Number.isInteger(gid)) {
        const group = (await table('group')).find((fields) => fields[0] === groupPart);
        if (!group) throw new DriverError(`Image group ${groupPart} is not in the image's /etc/group.`);
        gid = Number(group[2]);
      }
    }
    return { uid, gid };
  }

  private async trimConsoles(): Promise<void> {
    for (const uuid of await this.listInstances())
      await this.trimConsole(this.consoleFile(uuid)).catch(() => undefined);
  }

  /** Keeps the newest half of a console log that grew past the bound (the container appends to it). */
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
