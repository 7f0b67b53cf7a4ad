import { spawn as spawnProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import {
  chownSync,
  constants as fsConstants,
  createReadStream,
  existsSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import {
  chmod,
  chown,
  copyFile,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  statfs,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { configDriveFiles } from '../config-drive';
import {
  CAPABILITY_OPERATIONS,
  ComputeDriver,
  ConsoleEndpoint,
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
import { isMountPoint, readSmallFile, replaceSmallFile } from '../local-files';
import { HostNetwork } from '../net/host-network';
import { netnsName } from '../net/names';
import { PowerState } from '../states';
import {
  MountSpec,
  mustRun,
  mustRunFrom,
  mustRunSteps,
  replaceTree,
  runCommand,
  runFromSealedCopy,
  runWithOutput,
} from './host-commands';
import { ImageRuntimeConfig, ImageStore, PreparedImage } from './image-store';
import { writeLayerTar } from './layer-tar';
import { crunInitPid, crunStatus, runcInitPid, RuntimeStatus, runcStatus } from './runc-state';
import { blkioThrottleFiles, BlockDevice, flavorLimits, IdMap, ociSpec, processArgs } from './oci-spec';
import { capabilitiesAfter, RuntimeOverrides, runtimeOverrides, withOverrides } from './runtime-overrides';

export interface ContainerDriverOptions {
  /** NOVUM_DATA_DIR: everything lives under `<dataDir>/containers`. */
  dataDir: string;
  /** The OCI runtime binary (NOVUM_CONTAINER_RUNTIME); `auto` or none: see `defaultRuntime`. */
  runtime?: string;
  /** The console log is cut back to its newest half past this size. */
  consoleMaxBytes?: number;
  /** How long a soft reboot waits for the container to end after SIGTERM. */
  softRebootSeconds?: number;
  /** powerOff's grace period when the caller gives none. */
  powerOffSeconds?: number;
  /** The writable layer's size for a flavour with root_gb 0 (DEFAULT_ROOT_GB). */
  defaultRootGb?: number;
  /**
   * The host uid and gid the container's root is (ID_MAP_SIZE ids from there, one mapping for the whole
   * host; ID_MAP_BASE by default); 0 runs containers without a user namespace, their root the host's root.
   */
  idMapBase?: number;
  /** Plugs the ports (veths into the container's persistent network namespace); absent: loopback only. */
  network?: HostNetwork;
}

/** The writable layer of a flavour with root_gb 0, in GiB (Nova sizes such a disk from the image instead). */
export const DEFAULT_ROOT_GB = 1;
export const ID_MAP_BASE = 100_000;
export const ID_MAP_SIZE = 65_536;
/** Where the config drive's files are inside the container: a path cloud-init's ConfigDrive source reads. */
export const CONFIG_DRIVE_PATH = '/config-drive';
/**
 * The format of an exported writable layer: a tar of the overlay's upper directory with numeric (shifted)
 * owners, every extended attribute (overlayfs's opaque directories among them), whiteout devices and holes.
 */
export const WRITABLE_LAYER_FORMAT = 'container-upper-tar';
const TAR_KEEPING_EVERYTHING = ['--numeric-owner', '--xattrs', '--xattrs-include=*', '--acls', '--selinux'];

/** What the driver keeps of a container on disk, so that a restarted agent finds it. */
interface GuestRecord {
  uuid: string;
  hostname: string;
  flavor: FlavorSpec;
  image: PreparedImage;
  /** Frozen by suspend rather than pause: both use the freezer. */
  suspended: boolean;
  /** The size of the writable layer's file system (`disk.ext4`); absent: an unbounded layer (older guests). */
  diskBytes?: number;
  /** The flavour from before a resize that awaits confirm or revert. */
  oldFlavor?: FlavorSpec;
  /** The rescue image while rescued: it runs instead, with the server's root filesystem at /mnt. */
  rescue?: PreparedImage;
  /** The ports, plugged again at each start (the agent passes them to every start, reboot and rebuild). */
  vifs?: Vif[];
  /** What the server's `novum:*` metadata overrides of the image's config (read at spawn and rebuild). */
  overrides?: RuntimeOverrides;
}

const CAPABILITIES: DriverCapabilities = {
  pause: true,
  suspend: true,
  rescue: true,
  snapshot: true,
  resize: true,
  consoleOutput: true,
  serialConsole: false,
  attachInterface: false,
  triggerCrashDump: false,
  diagnostics: false,
  liveMigration: false,
  migrateDisks: true,
};
const UNSUPPORTED = new Set(
  (Object.keys(CAPABILITY_OPERATIONS) as (keyof DriverCapabilities)[])
    .filter((capability) => !CAPABILITIES[capability])
    .flatMap((capability) => CAPABILITY_OPERATIONS[capability]),
);

const { RUNNING, PAUSED, SHUTDOWN, CRASHED, SUSPENDED } = PowerState;
const RESIZE_EXITS: readonly DriverOperation[] = ['confirmResize', 'revertResize', 'triggerCrashDump'];
const RESCUE_EXITS: readonly DriverOperation[] = ['unrescue', 'triggerCrashDump'];
/** Where a rescue system finds the server's root filesystem. */
export const RESCUE_MOUNT_PATH = '/mnt';
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
  private readonly idMap?: IdMap;
  private host = '';
  private runtimeVersion = '0';
  private swapAccounting = false;
  private trimTimer?: NodeJS.Timeout;
  private layerTemplate?: Promise<string>;
  /** Disk templates being made, by file. */
  private readonly diskTemplates = new Map<string, Promise<string>>();
  /** Each guest's record as this process last wrote it (guest.json), so that an unchanged one is not rewritten. */
  private readonly savedRecords = new Map<string, string>();

  constructor(private readonly options: ContainerDriverOptions) {
    this.root = join(options.dataDir, 'containers');
    this.runtime = !options.runtime || options.runtime === 'auto' ? defaultRuntime() : options.runtime;
    // Without copying itself at each start (host-commands.ts says why that is as safe).
    runFromSealedCopy(this.runtime);
    const idBase = options.idMapBase ?? ID_MAP_BASE;
    if (idBase > 0) this.idMap = { hostId: idBase, size: ID_MAP_SIZE };
    this.images = new ImageStore(this.root, idBase);
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
    // The container's root (an unprivileged host uid) must reach its rootfs, as Docker's userns-remap.
    if (this.idMap) await makeTraversable(join(this.root, 'instances'));
    await this.makeLayerTemplate();
    await this.images.init();
    if (basename(this.runtime).startsWith('crun')) await prepareCgroupsForCrun();
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
    networkInfo: NetworkInfo,
    options: SpawnOptions = {},
  ): Promise<void> {
    const dir = this.dir(instance.uuid);
    const migrated = options.migratedDisks;
    if (migrated && migrated.format !== WRITABLE_LAYER_FORMAT) {
      migrated.data.destroy();
      throw new DriverError(`The container driver cannot import disks of format ${migrated.format}.`);
    }
    try {
      await mkdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new InstanceExists(instance.uuid);
      throw error;
    }
    // The ports' firewall (rules that name the veths, made later) goes in while the disks are made.
    const preparing =
      (options.powerOn ?? true) ? this.prepareFirewall(instance.uuid, networkInfo) : undefined;
    try {
      const prepared = await this.images.prepare(image);
      const record: GuestRecord = {
        uuid: instance.uuid,
        hostname: instance.hostname,
        flavor: instance.flavor,
        image: prepared,
        suspended: false,
        vifs: [...networkInfo],
        overrides: runtimeOverrides(instance.metadata),
      };
      // The rootfs is mounted with the disk, unless another host's writable layer must go in first.
      await this.freshDisks(record, instance, networkInfo, options, {
        mountRootfs: !migrated && (options.powerOn ?? true),
        fresh: true,
      });
      if (migrated) await this.importWritableLayer(record, migrated);
      await this.save(record);
      // Migrated disks have the key already.
      if (instance.keyData && !migrated) await this.authorizeKey(record, instance.keyData);
      if (options.powerOn ?? true) await this.start(record, preparing);
      else await this.unmount(record.uuid);
    } catch (error) {
      migrated?.data.destroy();
      await preparing;
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

  async reboot(instance: InstanceSpec, type: RebootType, networkInfo: NetworkInfo): Promise<void> {
    const record = await this.record(instance.uuid, 'reboot');
    record.vifs = [...networkInfo];
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
    const record = await this.record(instance.uuid, 'powerOff');
    await this.stop(record, options.timeoutSeconds ?? this.options.powerOffSeconds ?? 60);
  }

  async powerOn(instance: InstanceSpec, networkInfo: NetworkInfo): Promise<void> {
    const record = await this.record(instance.uuid, 'powerOn');
    record.vifs = [...networkInfo];
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

  /**
   * Nova's rescue: the server's container ends and the rescue image runs in its place (same cgroup, ports,
   * limits; a fresh writable layer on the root disk), with the server's root filesystem at RESCUE_MOUNT_PATH.
   */
  async rescue(
    instance: InstanceSpec,
    rescueImage: ImageSource,
    networkInfo: NetworkInfo,
    _options: { rescuePassword?: string } = {},
  ): Promise<void> {
    const record = await this.record(instance.uuid, 'rescue');
    const state = await this.stateOf(record);
    if (![RUNNING, SHUTDOWN, CRASHED].includes(state)) {
      throw new InstanceInvalidState(record.uuid, 'rescue', state);
    }
    const prepared = await this.images.prepare(rescueImage);
    await this.stop(record, 0);
    await this.dropRescueLayer(record);
    record.rescue = prepared;
    record.vifs = [...networkInfo];
    await this.save(record);
    try {
      await this.start(record);
    } catch (error) {
      await this.stop(record, 0);
      delete record.rescue;
      await this.save(record);
      throw error;
    }
  }

  async unrescue(instance: InstanceRef): Promise<void> {
    const record = await this.record(instance.uuid);
    if (!record.rescue) {
      throw new InstanceInvalidState(record.uuid, 'unrescue', await this.stateOf(record), 'Not rescued.');
    }
    await this.stop(record, 0);
    delete record.rescue;
    await this.save(record);
    await this.dropRescueLayer(record);
    await this.start(record);
  }

  async rebuild(
    instance: InstanceSpec,
    image: ImageSource,
    networkInfo: NetworkInfo,
    options: SpawnOptions = {},
  ): Promise<void> {
    const record = await this.record(instance.uuid, 'rebuild');
    const state = await this.stateOf(record);
    if (![RUNNING, SHUTDOWN, CRASHED].includes(state)) {
      throw new InstanceInvalidState(record.uuid, 'rebuild', state);
    }
    const prepared = await this.images.prepare(image);
    await this.stop(record, 0);
    record.image = prepared;
    record.hostname = instance.hostname;
    record.vifs = [...networkInfo];
    record.overrides = runtimeOverrides(instance.metadata);
    await this.freshDisks(record, instance, networkInfo, options, { mountRootfs: options.powerOn ?? true });
    await this.save(record);
    if (instance.keyData) await this.authorizeKey(record, instance.keyData);
    if (options.powerOn ?? true) await this.start(record);
    else await this.unmount(record.uuid);
  }

  /**
   * The new flavour's limits, live (`<runtime> update`) on a running container; the root disk's file system
   * grows online (it never shrinks: a smaller root disk is refused, as Nova's libvirt driver refuses it).
   */
  async resize(
    instance: InstanceSpec,
    newFlavor: FlavorSpec,
    _networkInfo: NetworkInfo,
    options: { powerOn?: boolean; timeoutSeconds?: number } = {},
  ): Promise<void> {
    const record = await this.record(instance.uuid, 'resize');
    const state = await this.stateOf(record);
    if (![RUNNING, SHUTDOWN, CRASHED].includes(state)) {
      throw new InstanceInvalidState(record.uuid, 'resize', state);
    }
    const diskBytes = rootDiskBytes(newFlavor, this.options.defaultRootGb);
    if (record.diskBytes && diskBytes < record.diskBytes) {
      throw new DriverError(`Instance ${record.uuid}: resizing the root disk down is not supported.`);
    }
    const oldFlavor = record.flavor;
    record.oldFlavor = oldFlavor;
    record.flavor = newFlavor;
    await this.save(record);
    try {
      if (record.diskBytes && diskBytes > record.diskBytes) {
        await this.growDisk(record, diskBytes, options.timeoutSeconds ?? 0);
        record.diskBytes = diskBytes;
        await this.save(record);
      }
      await this.applyFlavor(record, options.powerOn ?? true, options.timeoutSeconds ?? 0);
    } catch (error) {
      // No resize to confirm or revert: the old flavour (and a disk that may have grown) stay, and a container
      // stopped for an offline disk resize runs again, as the server is left as it was.
      record.flavor = oldFlavor;
      delete record.oldFlavor;
      await this.save(record);
      if (
        state === RUNNING &&
        (options.powerOn ?? true) &&
        (await this.runtimeStatus(record.uuid)) !== 'running'
      ) {
        const failed = await this.start(record).then(
          () => undefined,
          (e: unknown) => e,
        );
        if (failed !== undefined) {
          const said = (e: unknown) => (e instanceof Error ? e.message : String(e));
          throw new DriverError(`${said(error)} Starting the container again failed too: ${said(failed)}`);
        }
      }
      throw error;
    }
  }

  async confirmResize(instance: InstanceRef): Promise<void> {
    const record = await this.record(instance.uuid);
    if (!record.oldFlavor) {
      throw new InstanceInvalidState(record.uuid, 'confirmResize', await this.stateOf(record), 'No resize.');
    }
    delete record.oldFlavor;
    await this.save(record);
  }

  /** The old flavour's limits again; the root disk keeps the size it grew to. */
  async revertResize(
    instance: InstanceSpec,
    _networkInfo: NetworkInfo,
    options: { powerOn?: boolean } = {},
  ): Promise<void> {
    const record = await this.record(instance.uuid);
    if (!record.oldFlavor) {
      throw new InstanceInvalidState(record.uuid, 'revertResize', await this.stateOf(record), 'No resize.');
    }
    record.flavor = record.oldFlavor;
    delete record.oldFlavor;
    await this.save(record);
    await this.applyFlavor(record, options.powerOn ?? true, 0);
  }

  /**
   * Docker's commit: the writable layer (frozen meanwhile when the container runs) becomes a new top layer
   * on the image's own layers, uploaded as a `docker save` archive (container_format docker) that boots.
   */
  async snapshot(instance: InstanceRef, imageId: string, upload: SnapshotUpload): Promise<void> {
    const record = await this.record(instance.uuid, 'snapshot');
    const scratch = join(this.root, 'tmp', `snapshot-${randomUUID()}`);
    const archive = join(scratch, 'archive');
    await mkdir(archive, { recursive: true });
    try {
      const layers: string[] = [];
      const addLayer = async (tar: string, move: boolean) => {
        const digest = await sha256Of(tar);
        await mkdir(join(archive, digest), { recursive: true });
        const target = join(archive, digest, 'layer.tar');
        if (move) await rename(tar, target);
        else await link(tar, target).catch(() => copyFile(tar, target));
        layers.push(digest);
      };
      for (const digest of record.image.layers) {
        const kept = this.images.layerTarPath(digest);
        if (existsSync(kept)) {
          await addLayer(kept, false);
        } else {
          // A layer unpacked before the store kept tars: made again from its files.
          const tar = join(scratch, `parent-${digest}.tar`);
          await writeLayerTar(this.images.layerPath(digest), tar, { idBase: this.idMap?.hostId, scratch });
          await addLayer(tar, true);
        }
      }
      const top = join(scratch, 'top.tar');
      await this.commitWritableLayer(record, top, scratch);
      await addLayer(top, true);

      const config = JSON.stringify({
        architecture: process.arch === 'x64' ? 'amd64' : process.arch,
        os: 'linux',
        created: new Date().toISOString(),
        config: record.image.config,
        rootfs: { type: 'layers', diff_ids: layers.map((digest) => `sha256:${digest}`) },
        comment: `Snapshot ${imageId} of instance ${record.uuid}`,
      });
      const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
      await writeFile(join(archive, configName), config);
      const manifest = [{ Config: configName, RepoTags: null, Layers: layers.map((d) => `${d}/layer.tar`) }];
      await writeFile(join(archive, 'manifest.json'), JSON.stringify(manifest));
      await streamTar(archive, ['manifest.json', configName, ...new Set(layers)], upload);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
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

  async connectSerialConsole(instance: InstanceRef): Promise<Duplex> {
    this.unsupported('connectSerialConsole', instance);
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

  /**
   * The writable layer (the overlay's upper directory) as a tar beside the guest, for another host whose own
   * layer cache has the image's read-only layers; the guest and its root disk stay for a revert.
   */
  async exportDisks(instance: InstanceRef): Promise<DiskExport> {
    const record = await this.record(instance.uuid, 'exportDisks');
    const state = await this.stateOf(record);
    if (state !== SHUTDOWN) throw new InstanceInvalidState(record.uuid, 'exportDisks', state);
    const file = join(this.dir(record.uuid), 'migration-export.tar');
    const diskWasMounted = !record.diskBytes || (await mountedAt(this.layerDir(record)));
    await this.mountDisk(record);
    try {
      await mustRun('tar', [
        '-c',
        '-f',
        file,
        '--sparse',
        ...TAR_KEEPING_EVERYTHING,
        '-C',
        join(this.layerDir(record), 'upper'),
        '.',
      ]);
    } catch (error) {
      await rm(file, { force: true });
      throw error;
    } finally {
      if (!diskWasMounted) await unmountPath(this.layerDir(record));
    }
    return {
      format: WRITABLE_LAYER_FORMAT,
      open: () => createReadStream(file),
      dispose: () => rm(file, { force: true }),
    };
  }

  async getDiagnostics(instance: InstanceRef): Promise<Diagnostics> {
    this.unsupported('getDiagnostics', instance);
  }

  async preLiveMigration(
    instance: InstanceSpec,
    _image: ImageSource,
    _networkInfo: NetworkInfo,
    _options: { listenAddress: string },
  ): Promise<LiveMigrationTarget> {
    this.unsupported('preLiveMigration', instance);
  }

  async liveMigration(instance: InstanceRef, _target: LiveMigrationTarget): Promise<void> {
    this.unsupported('liveMigration', instance);
  }

  async postLiveMigrationAtDestination(
    instance: InstanceRef,
    _options?: { paused?: boolean },
  ): Promise<void> {
    this.unsupported('postLiveMigrationAtDestination', instance);
  }

  async postLiveMigration(instance: InstanceRef, _networkInfo: NetworkInfo): Promise<void> {
    this.unsupported('postLiveMigration', instance);
  }

  async rollbackLiveMigrationAtDestination(instance: InstanceRef, _networkInfo: NetworkInfo): Promise<void> {
    this.unsupported('rollbackLiveMigrationAtDestination', instance);
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

  /** The guest's record; with an operation, rejects it while a resize awaits confirm or revert. */
  private async record(uuid: string, operation?: DriverOperation): Promise<GuestRecord> {
    const text = readSmallFile(join(this.dir(uuid), 'guest.json'));
    if (text === undefined) throw new InstanceNotFound(uuid);
    const record = JSON.parse(text) as GuestRecord;
    if (operation && record.oldFlavor && !RESIZE_EXITS.includes(operation)) {
      const state = await this.stateOf(record);
      throw new InstanceInvalidState(uuid, operation, state, 'A resize awaits confirm or revert.');
    }
    if (operation && record.rescue && !RESCUE_EXITS.includes(operation)) {
      throw new InstanceInvalidState(uuid, operation, await this.stateOf(record), 'It is rescued.');
    }
    return record;
  }

  private async save(record: GuestRecord): Promise<void> {
    const text = JSON.stringify(record);
    // Unchanged since this process last wrote it (a start right after the spawn that saved it): not again.
    if (this.savedRecords.get(record.uuid) === text) return;
    replaceSmallFile(join(this.dir(record.uuid), 'guest.json'), text);
    this.savedRecords.set(record.uuid, text);
  }

  private runtimeArgs(...args: string[]): string[] {
    return ['--root', join(this.root, 'runtime'), ...args];
  }

  /**
   * The runtime's status of the container; undefined when the runtime does not have it. For runc and crun it
   * is read from the runtime's own state files as the runtime would (no process started: builds, power-state
   * syncs and resource reports ask for every container); any other runtime, or a layout not understood, is
   * asked.
   */
  private async runtimeStatus(uuid: string): Promise<RuntimeStatus | undefined> {
    const files = STATE_FILES[basename(this.runtime)];
    if (files) {
      const known = await files.status(join(this.root, 'runtime'), ContainerDriver.containerId(uuid));
      if (known !== null) return known;
    }
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
    const record = await this.record(instance.uuid, operation);
    const state = await this.stateOf(record);
    if (state !== RUNNING) throw new InstanceInvalidState(record.uuid, operation, state);
    record.suspended = suspended;
    await this.save(record);
    await mustRun(this.runtime, this.runtimeArgs('pause', ContainerDriver.containerId(record.uuid)));
    await this.untilFrozen(record.uuid);
  }

  /**
   * The freezer may still be FREEZING when the runtime's `pause` returns (crun does not wait for a loaded
   * machine's tasks to stop): paused means frozen, so wait for it (cgroup v1 `freezer.state`, v2 `frozen 1`).
   */
  private async untilFrozen(uuid: string, timeoutMs = 10_000): Promise<void> {
    const relative = ContainerDriver.cgroupPath(uuid);
    const v1 = join('/sys/fs/cgroup/freezer', relative, 'freezer.state');
    const v2 = join('/sys/fs/cgroup', relative, 'cgroup.events');
    const frozen = async () => {
      const state = await readFile(v1, 'utf8').catch(() => undefined);
      if (state !== undefined) return state.trim() === 'FROZEN';
      const events = await readFile(v2, 'utf8').catch(() => undefined);
      return events === undefined || /^frozen 1$/m.test(events);
    };
    const deadline = Date.now() + timeoutMs;
    while (!(await frozen())) {
      if (Date.now() > deadline) throw new DriverError(`the container of ${uuid} did not freeze`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private async thaw(instance: InstanceRef, operation: 'unpause' | 'resume', from: PowerState) {
    const record = await this.record(instance.uuid, operation);
    const state = await this.stateOf(record);
    if (state !== from) throw new InstanceInvalidState(record.uuid, operation, state);
    await mustRun(this.runtime, this.runtimeArgs('resume', ContainerDriver.containerId(record.uuid)));
    record.suspended = false;
    await this.save(record);
  }

  /**
   * A new, empty writable layer (an ext4 file system of the flavour's root disk size in a sparse file,
   * `disk.ext4`, loop-mounted at `disk/`, so that writes past the root disk fail with ENOSPC in the
   * container), then the config drive on it; the key goes in the layer after both.
   */
  private async freshDisks(
    record: GuestRecord,
    instance: InstanceSpec,
    networkInfo: NetworkInfo,
    options: SpawnOptions,
    layer: { mountRootfs?: boolean; fresh?: boolean },
  ): Promise<void> {
    await this.freshWritableLayer(record, layer);
    await this.writeConfigDrive(record, instance, networkInfo, options);
  }

  /**
   * A new root disk with an empty writable layer, in place of any previous one; `fresh` when the instance's
   * directory was just made (nothing to unmount or remove).
   */
  private async freshWritableLayer(
    record: GuestRecord,
    options: { mountRootfs?: boolean; fresh?: boolean } = {},
  ): Promise<void> {
    const dir = this.dir(record.uuid);
    if (!options.fresh) {
      await this.unmount(record.uuid);
      // (config-drive: where a guest made before 2026-12-06 has it, beside the disk rather than on it.)
      for (const sub of ['upper', 'work', 'disk.ext4', 'config-drive'])
        await rm(join(dir, sub), { recursive: true, force: true });
    }
    record.diskBytes = rootDiskBytes(record.flavor, this.options.defaultRootGb);
    const template = await this.diskTemplate(record.diskBytes);
    for (const sub of ['disk', 'rootfs']) await mkdir(join(dir, sub), { recursive: true });
    // A copy of the empty disk of its size, its loop mount (autoclearing: unmounting detaches the loop device)
    // and, when asked, the overlay on it: one request to the host spawner.
    const overlay = options.mountRootfs ? this.overlayMount(record) : undefined;
    await mustRunSteps([
      { copySparse: { source: template, target: this.diskImage(record.uuid) } },
      { mount: this.diskMount(record) },
      ...(overlay ? [{ mount: overlay }] : []),
    ]);
  }

  /**
   * An empty root disk of `bytes`, which each new root disk of that size copies (a sparse copy of its ~700 KiB
   * of data, where an mkfs.ext4 per build was a program start): ext4 with lazy init and no discard, so that the
   * file stays sparse and only what a container writes takes host space, made with the writable layer's empty
   * `upper` and `work` (owned by the container's root). Made once per size under `disk-templates`, named
   * by what makes it (the options' version, the owner, the size). Every copy has the template's file system
   * UUID; the kernel mounts any number of ext4 file systems with one UUID side by side.
   */
  private diskTemplate(bytes: number): Promise<string> {
    const owner = this.idMap?.hostId ?? 0;
    const file = join(this.root, 'disk-templates', `ext4-v1-${owner}-${bytes}.img`);
    if (existsSync(file)) return Promise.resolve(file);
    let made = this.diskTemplates.get(file);
    if (!made) {
      made = (async () => {
        const scratch = `${file}.${randomUUID()}.tmp`;
        await mkdir(dirname(file), { recursive: true });
        await writeFile(scratch, '');
        try {
          await truncate(scratch, bytes);
          await mustRun('mkfs.ext4', [
            ...['-q', '-F', '-m', '0', '-L', 'novum-root', '-d', await this.makeLayerTemplate()],
            ...['-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', scratch],
          ]);
          await rename(scratch, file);
        } catch (error) {
          await rm(scratch, { force: true });
          throw error;
        }
        return file;
      })();
      const settled = () => this.diskTemplates.delete(file);
      made.then(settled, settled);
      this.diskTemplates.set(file, made);
    }
    return made;
  }

  /**
   * An empty directory holding `upper` and `work` as a fresh writable layer has them (mode 755, owned by the
   * container's root), which mkfs.ext4 copies into each new root disk (`-d`). Made once per driver.
   */
  private makeLayerTemplate(): Promise<string> {
    this.layerTemplate ??= (async () => {
      const template = join(this.root, 'layer-template');
      const owner = this.idMap?.hostId ?? 0;
      for (const sub of ['upper', 'work']) {
        await mkdir(join(template, sub), { recursive: true });
        await chmod(join(template, sub), 0o755);
        await chown(join(template, sub), owner, owner);
      }
      return template;
    })();
    this.layerTemplate.catch(() => (this.layerTemplate = undefined));
    return this.layerTemplate;
  }

  /** Unpacks another host's exported writable layer into this guest's fresh one (mounted, empty). */
  private async importWritableLayer(record: GuestRecord, migrated: MigratedDisks): Promise<void> {
    const upper = join(this.layerDir(record), 'upper');
    // --ignore-zeros: tar reads its input to the end, not only to the archive's end marker; stopping there
    // would close the pipe on the record padding still in flight and break the stream (EPIPE), and leave
    // the transfer's own check of every byte unfinished.
    await mustRunFrom(
      'tar',
      [
        '-x',
        '-f',
        '-',
        '--ignore-zeros',
        '--same-owner',
        '--same-permissions',
        ...TAR_KEEPING_EVERYTHING,
        '-C',
        upper,
      ],
      migrated.data,
    );
  }

  private diskImage(uuid: string): string {
    return join(this.dir(uuid), 'disk.ext4');
  }

  /** Where the upper and work directories are: the root disk's mount, or the instance dir of an older guest. */
  private layerDir(record: GuestRecord): string {
    return record.diskBytes ? join(this.dir(record.uuid), 'disk') : this.dir(record.uuid);
  }

  /**
   * The config drive's files: on the root disk's file system, beside the writable layer (not in it: no
   * snapshot or migration takes them), so that its some 40 files and directories are made on a fresh file
   * system of the guest's own rather than on the host's. The host's may be slow to make files: ext4 without
   * a journal searches past every inode freed in the last minutes for each new one, and a host building and
   * deleting many containers frees thousands (a tenth of a burst's CPU went there on this project's host).
   */
  private configDriveDir(record: GuestRecord): string {
    return join(this.layerDir(record), 'config-drive');
  }

  private async mountDisk(record: GuestRecord): Promise<void> {
    if (!record.diskBytes || (await mountedAt(this.layerDir(record)))) return;
    // Not while the kernel still has the file system of an earlier mount (a stopped container's namespace lets
    // it go a moment later): a second loop device on the same file would mount it twice.
    await waitDetached(this.diskImage(record.uuid), 10_000);
    await mustRunSteps([{ mount: this.diskMount(record) }]);
  }

  /** The root disk's loop mount (autoclearing: unmounting detaches the loop device). */
  private diskMount(record: GuestRecord): MountSpec {
    const target = this.layerDir(record);
    return {
      source: this.diskImage(record.uuid),
      target,
      type: 'ext4',
      options: 'noinit_itable',
      loop: true,
    };
  }

  /**
   * Grows the root disk's file and its file system: online while the container runs when the agent may
   * (CAP_SYS_RESOURCE), else with the container stopped (within graceSeconds) and the file system checked.
   */
  private async growDisk(record: GuestRecord, bytes: number, graceSeconds: number): Promise<void> {
    const image = this.diskImage(record.uuid);
    await truncate(image, bytes);
    if (await mountedAt(this.layerDir(record))) {
      const [loop] = await loopDevicesOf(image);
      if (!loop) throw new DriverError(`No loop device for ${image}.`);
      await mustRun('losetup', ['-c', loop]);
      if ((await runCommand('resize2fs', [loop])).code === 0) return;
      // Offline, then (without CAP_SYS_RESOURCE the kernel refuses an online resize: EPERM).
      await this.stop(record, graceSeconds);
    }
    // Unmounted in the host's namespace, the file system can live on a moment longer (the container's own mount
    // namespace lets its mounts go after its processes have ended): e2fsck and resize2fs on an image the kernel
    // still has mounted through a loop device would race the kernel's own writes.
    await waitDetached(image, 10_000);
    // e2fsck -p: 1 means it corrected something, fine before a resize; more is an error.
    const check = await runCommand('e2fsck', ['-f', '-p', image]);
    if (check.code > 1) {
      // Its first line (on stderr) says what it could not do; stdout says what it found.
      const said = `${check.stderr.trim().split('\n')[0] ?? ''} ${check.stdout.trim().slice(-300)}`;
      throw new DriverError(`The root disk of ${record.uuid} has errors (e2fsck ${check.code}): ${said}`);
    }
    await mustRun('resize2fs', [image]);
  }

  private async mounted(uuid: string): Promise<boolean> {
    return mountedAt(this.rootfsPath(uuid));
  }

  private async mount(record: GuestRecord): Promise<void> {
    if (await this.mounted(record.uuid)) return;
    await this.mountDisk(record);
    await mustRunSteps([{ mount: this.overlayMount(record) }]);
  }

  /** The overlay of the image's layers and the writable layer at the rootfs. */
  private overlayMount(record: GuestRecord): MountSpec {
    const layer = this.layerDir(record);
    // overlayfs lists the lower layers top first. No redirects or metacopy: the upper dir must hold whole
    // files and plain whiteouts, as a snapshot reads it.
    const lower = [...record.image.layers].reverse().map((digest) => this.images.layerPath(digest));
    const options =
      `lowerdir=${lower.join(':')},upperdir=${join(layer, 'upper')},workdir=${join(layer, 'work')},` +
      'redirect_dir=off,metacopy=off';
    return { source: `novum-${record.uuid}`, target: this.rootfsPath(record.uuid), type: 'overlay', options };
  }

  /** The rescue rootfs, the rootfs, then the root disk under them (its loop device detaching with it). */
  private async unmount(uuid: string): Promise<void> {
    await unmountPath(join(this.dir(uuid), 'rescue-rootfs'));
    await unmountPath(this.rootfsPath(uuid));
    await unmountPath(join(this.dir(uuid), 'disk'));
  }

  /** The rescue system's rootfs: the rescue image's layers and a writable layer beside the server's. */
  private async mountRescue(record: GuestRecord, rescue: PreparedImage): Promise<void> {
    const target = join(this.dir(record.uuid), 'rescue-rootfs');
    if (await mountedAt(target)) return;
    const layer = this.layerDir(record);
    const owner = this.idMap?.hostId ?? 0;
    for (const sub of ['rescue-upper', 'rescue-work']) {
      await mkdir(join(layer, sub), { recursive: true, mode: 0o755 });
      await chown(join(layer, sub), owner, owner);
    }
    await mkdir(target, { recursive: true });
    const lower = [...rescue.layers].reverse().map((digest) => this.images.layerPath(digest));
    await mustRunSteps([
      {
        mount: {
          source: `novum-rescue-${record.uuid}`,
          target,
          type: 'overlay',
          options:
            `lowerdir=${lower.join(':')},upperdir=${join(layer, 'rescue-upper')},` +
            `workdir=${join(layer, 'rescue-work')},redirect_dir=off,metacopy=off`,
        },
      },
    ]);
  }

  /** The rescue system's writable layer goes (the container stopped). */
  private async dropRescueLayer(record: GuestRecord): Promise<void> {
    await this.mountDisk(record);
    for (const sub of ['rescue-upper', 'rescue-work']) {
      await rm(join(this.layerDir(record), sub), { recursive: true, force: true });
    }
  }

  /** The config drive's files (OpenStack's layout), bound read-only into the container. */
  private async writeConfigDrive(
    record: GuestRecord,
    instance: InstanceSpec,
    networkInfo: NetworkInfo,
    options: SpawnOptions,
  ): Promise<void> {
    // Some 30 small files in 8 directories: written by the host spawner in one request.
    await replaceTree(
      this.configDriveDir(record),
      configDriveFiles(instance, networkInfo, {
        adminPassword: options.adminPassword,
        injectedFiles: options.injectedFiles,
      }),
    );
  }

  /**
   * Appends the key to /root/.ssh/authorized_keys in the writable layer when the image has a /root
   * directory (.ssh made if missing), as cloud-init would; nothing through a symbolic link of the image.
   */
  private async authorizeKey(record: GuestRecord, key: string): Promise<void> {
    await this.mount(record);
    const home = join(this.rootfsPath(record.uuid), 'root');
    const kind = async (path: string) => {
      const info = await lstat(path).catch(() => undefined);
      return info ? (info.isDirectory() ? 'dir' : info.isFile() ? 'file' : 'other') : 'none';
    };
    if ((await kind(home)) !== 'dir') return;
    const owner = this.idMap?.hostId ?? 0;
    const ssh = join(home, '.ssh');
    const sshKind = await kind(ssh);
    if (sshKind === 'none') {
      await mkdir(ssh, { mode: 0o700 });
      await chown(ssh, owner, owner);
    } else if (sshKind !== 'dir') return;
    const file = join(ssh, 'authorized_keys');
    const fileKind = await kind(file);
    if (fileKind !== 'none' && fileKind !== 'file') return;
    const current = fileKind === 'file' ? await readFile(file, 'utf8') : '';
    const line = key.trim();
    if (current.split('\n').some((entry) => entry.trim() === line)) return;
    const flags = fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_NOFOLLOW;
    const handle = await open(file, flags, 0o600);
    try {
      await handle.write(`${current && !current.endsWith('\n') ? '\n' : ''}${line}\n`);
      if (fileKind === 'none') await handle.chown(owner, owner);
    } finally {
      await handle.close();
    }
  }

  /** Puts the record's flavour in force: live limits on a running container, or a start or stop. */
  private async applyFlavor(record: GuestRecord, powerOn: boolean, timeoutSeconds: number): Promise<void> {
    const status = await this.runtimeStatus(record.uuid);
    if (!powerOn) {
      if (status !== undefined) await this.stop(record, timeoutSeconds);
      return;
    }
    if (status !== 'running') {
      await this.start(record);
      return;
    }
    const limits = flavorLimits(record.flavor, this.swapAccounting);
    await mustRun(
      this.runtime,
      this.runtimeArgs(
        'update',
        `--memory=${limits.memoryBytes}`,
        ...(limits.memorySwapBytes !== undefined ? [`--memory-swap=${limits.memorySwapBytes}`] : []),
        `--cpu-period=${limits.cpuPeriodUs}`,
        `--cpu-quota=${limits.cpuQuotaUs}`,
        ...(limits.cpuShares !== undefined ? [`--cpu-share=${limits.cpuShares}`] : []),
        `--pids-limit=${limits.pids}`,
        ContainerDriver.containerId(record.uuid),
      ),
    );
    // `update` has no blkio throttles: on cgroup v1 the files are written directly (0 lifts a throttle).
    const blkio = join('/sys/fs/cgroup/blkio', ContainerDriver.cgroupPath(record.uuid));
    const device = await this.rootDevice(record);
    if (device && existsSync(blkio)) {
      for (const [file, line] of Object.entries(blkioThrottleFiles(limits.io, device)))
        await writeFile(join(blkio, file), line);
    }
  }

  /** The root disk's loop device (mounted), whose major:minor the I/O throttles name; none for older guests. */
  private async rootDevice(record: GuestRecord): Promise<BlockDevice | undefined> {
    if (!record.diskBytes || !(await mountedAt(this.layerDir(record)))) return undefined;
    // The device of the file system mounted there (Linux's dev_t encoding), if it is the loop device of this
    // server's disk file: no `losetup` process for it.
    const { dev } = statSync(this.layerDir(record), { bigint: true });
    const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
    const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
    const backing = readSmallFile(`/sys/dev/block/${major}:${minor}/loop/backing_file`) ?? '';
    const image = await realpath(this.diskImage(record.uuid)).catch(() => '');
    return image && backing.trim() === image ? { major, minor } : undefined;
  }

  /** The writable layer as a layer tar; a running container is frozen while it is read. */
  private async commitWritableLayer(record: GuestRecord, out: string, scratch: string): Promise<void> {
    const id = ContainerDriver.containerId(record.uuid);
    const freeze = (await this.runtimeStatus(record.uuid)) === 'running';
    const diskWasMounted = !record.diskBytes || (await mountedAt(this.layerDir(record)));
    await this.mountDisk(record);
    if (freeze) await mustRun(this.runtime, this.runtimeArgs('pause', id));
    try {
      await writeLayerTar(join(this.layerDir(record), 'upper'), out, {
        idBase: this.idMap?.hostId,
        scratch,
        skipEmptyDirs: [CONFIG_DRIVE_PATH.slice(1)],
      });
    } finally {
      if (freeze) await mustRun(this.runtime, this.runtimeArgs('resume', id));
      if (!diskWasMounted && !(await this.mounted(record.uuid))) await unmountPath(this.layerDir(record));
    }
  }

  /**
   * Where the container's network namespace is made late (a user namespace with ports): the ports' firewall
   * loaded on the host, settled either way (the error, if any, is the value); undefined where nothing is to load.
   */
  private prepareFirewall(uuid: string, vifs: readonly Vif[]): Promise<unknown> | undefined {
    if (this.idMap === undefined || this.options.network === undefined) return undefined;
    return this.options.network.prepareContainer(uuid, vifs).then(
      () => undefined,
      (error: unknown) => error ?? new Error('the ports could not be prepared'),
    );
  }

  /**
   * Mounts the rootfs, writes the bundle's config.json and runs the container detached (`preparing`: what
   * prepareFirewall started for it already).
   */
  private async start(record: GuestRecord, preparing?: Promise<unknown>): Promise<void> {
    const id = ContainerDriver.containerId(record.uuid);
    if ((await this.runtimeStatus(record.uuid)) !== undefined) {
      await mustRun(this.runtime, this.runtimeArgs('delete', '--force', id));
    }
    // Rescued: the rescue image runs (as root) in the server's place, the server's rootfs bound into it.
    const rescue = record.rescue;
    const image = rescue ?? record.image;
    const config = rescue ? rescue.config : withOverrides(record.image.config, record.overrides);
    if (processArgs(config).length === 0) {
      throw new DriverError(`Image ${image.imageId} has neither Entrypoint nor Cmd.`);
    }
    await this.mount(record);
    if (rescue) await this.mountRescue(record, rescue);
    const { uid, gid } = rescue ? { uid: 0, gid: 0 } : await this.user(record);
    // In a user namespace the container makes its own network namespace, which then belongs to that user
    // namespace (so that `runc exec` can join both, and sysfs mounts): the ports are plugged into it between
    // create and start, and it is pinned where a prepared one would be (`ip netns attach`); a stale one from
    // the previous run goes first, with its veths.
    const lateNetns = this.idMap !== undefined && this.options.network !== undefined;
    const network = await this.plug(record, !lateNetns);
    if (lateNetns && existsSync(HostNetwork.netnsPath(record.uuid))) {
      await runCommand('ip', ['netns', 'delete', netnsName(record.uuid)]);
    }
    const spec = ociSpec({
      hostname: record.hostname,
      image: config,
      uid,
      gid,
      limits: flavorLimits(record.flavor, this.swapAccounting),
      cgroupsPath: ContainerDriver.cgroupPath(record.uuid),
      rootfs: rescue ? 'rescue-rootfs' : 'rootfs',
      binds: [
        ...(existsSync(this.configDriveDir(record))
          ? [{ source: this.configDriveDir(record), destination: CONFIG_DRIVE_PATH }]
          : []),
        ...network.binds,
        ...(rescue
          ? [{ source: this.rootfsPath(record.uuid), destination: RESCUE_MOUNT_PATH, writable: true }]
          : []),
      ],
      idMap: this.idMap,
      netnsPath: network.netnsPath,
      rootDevice: await this.rootDevice(record),
      ...(rescue
        ? {}
        : { capabilities: capabilitiesAfter(record.overrides), readonlyRoot: record.overrides?.readOnly }),
    });
    const dir = this.dir(record.uuid);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 1));
    record.suspended = false;
    await this.save(record);
    // The ports' firewall goes in while the runtime creates the container, unless it went in already (settled
    // either way, seen below).
    preparing = lateNetns ? (preparing ?? this.prepareFirewall(record.uuid, record.vifs ?? [])) : undefined;
    const consoleLog = this.consoleFile(record.uuid);
    let code: number;
    const before = (await stat(consoleLog).catch(() => undefined))?.size ?? 0;
    try {
      code = await runWithOutput(
        this.runtime,
        // Without ports to plug between the two, create and start are one `run`.
        this.runtimeArgs(...(lateNetns ? ['create'] : ['run', '--detach']), '--bundle', dir, id),
        consoleLog,
      );
    } finally {
      await preparing;
    }
    if (code !== 0) {
      const output = (await readFile(this.consoleFile(record.uuid), 'utf8').catch(() => '')).slice(before);
      await runCommand(this.runtime, this.runtimeArgs('delete', '--force', id));
      throw new DriverError(`${this.runtime} could not start ${id} (${code}): ${output.trim().slice(-500)}`);
    }
    if (!lateNetns) return;
    try {
      const unprepared = await preparing;
      if (unprepared) throw unprepared;
      const pid =
        (await STATE_FILES[basename(this.runtime)]?.initPid(join(this.root, 'runtime'), id)) ??
        (JSON.parse(await mustRun(this.runtime, this.runtimeArgs('state', id))) as { pid: number }).pid;
      await this.options.network!.plugContainer(record.uuid, record.vifs ?? [], { attachPid: pid });
      await mustRun(this.runtime, this.runtimeArgs('start', id));
    } catch (error) {
      await runCommand(this.runtime, this.runtimeArgs('delete', '--force', id));
      throw error;
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
    await this.options.network?.unplugInstance(uuid);
    this.savedRecords.delete(uuid);
    await rm(dir, { recursive: true, force: true });
  }

  /**
   * The ports in the container's persistent network namespace (made on the first start, kept across stops
   * until destroy), and its /etc/hosts and /etc/resolv.conf, bound from files as Docker does. The files are
   * made at every start, on the root disk's file system (mounted by then) rather than the host's, as the config
   * drive is (see configDriveDir).
   */
  private async plug(
    record: GuestRecord,
    ports = true,
  ): Promise<{ netnsPath?: string; binds: { source: string; destination: string; writable: boolean }[] }> {
    const network = this.options.network;
    if (!network) return { binds: [] };
    const vifs = record.vifs ?? [];
    const netnsPath = ports ? await network.plugContainer(record.uuid, vifs) : undefined;
    const owner = this.idMap?.hostId ?? 0;
    const binds = [];
    for (const [name, content] of [
      ['hosts', HostNetwork.hostsFile(record.hostname, vifs)],
      ['resolv.conf', HostNetwork.resolvConf(vifs)],
    ]) {
      const file = join(this.layerDir(record), name);
      writeFileSync(file, content, { mode: 0o644 });
      chownSync(file, owner, owner);
      binds.push({ source: file, destination: `/etc/${name}`, writable: true });
    }
    return { netnsPath, binds };
  }

  /** The image's User (`uid[:gid]` or names from the image's /etc/passwd and /etc/group); root by default. */
  private async user(record: GuestRecord): Promise<{ uid: number; gid: number }> {
    const spec = withOverrides(record.image.config as ImageRuntimeConfig, record.overrides).User?.trim();
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

/** The writable layer's size: the flavour's root disk, or the default for root_gb 0. */
export function rootDiskBytes(flavor: FlavorSpec, defaultRootGb = DEFAULT_ROOT_GB): number {
  return Math.floor((flavor.rootGb > 0 ? flavor.rootGb : defaultRootGb) * 1024 ** 3);
}

/** Adds the others' search bit to `dir` and each directory above it that lacks it (nothing else changes). */
async function makeTraversable(dir: string): Promise<void> {
  for (let path = dir; ; path = dirname(path)) {
    const info = await stat(path);
    if (!(info.mode & 0o001)) await chmod(path, (info.mode & 0o7777) | 0o001);
    if (dirname(path) === path) return;
  }
}

/**
 * crun (1.8) refuses a hybrid cgroup layout (v1 controllers beside a cgroup2 mount at /sys/fs/cgroup/unified)
 * with "cgroups in hybrid mode not supported" while a controller the kernel has, hugetlb here, is mounted on
 * no v1 hierarchy: it then takes the controller to be on cgroup v2. Mounting that controller as cgroup v1
 * (`mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb`, as systemd does on such hosts) satisfies it.
 * Idempotent; nothing on a pure v2 host or when the controller is mounted already. runc needs none of this.
 */
export async function prepareCgroupsForCrun(cgroupRoot = '/sys/fs/cgroup'): Promise<string[]> {
  // A pure v2 host has cgroup.controllers at the root; a v1 or hybrid one has a directory per controller.
  if (existsSync(join(cgroupRoot, 'cgroup.controllers'))) return [];
  const table = await readFile('/proc/cgroups', 'utf8').catch(() => '');
  const mounted: string[] = [];
  for (const line of table.split('\n')) {
    const [controller, hierarchy, , enabled] = line.split('\t');
    // Only hugetlb is known to be left unmounted on these hosts; other controllers are the init system's.
    if (controller !== 'hugetlb' || hierarchy !== '0' || enabled !== '1') continue;
    const target = join(cgroupRoot, controller);
    if (await mountedAt(target)) continue;
    await mkdir(target, { recursive: true });
    const result = await runCommand('mount', ['-t', 'cgroup', '-o', controller, 'cgroup', target]);
    // Another agent mounted it meanwhile: fine.
    if (result.code !== 0 && !(await mountedAt(target))) {
      throw new DriverError(
        `crun needs the ${controller} cgroup controller mounted at ${target}: ${result.stderr.trim()}`,
      );
    }
    mounted.push(target);
  }
  return mounted;
}

/**
 * The runtime a driver uses unless told: crun where it is installed, runc otherwise. crun starts a container
 * with half of runc's CPU (test/bench/README.md, ## container: 5.7 against 11.3 ms of CPU per create or start
 * when 100 are built at once), on a host that builds many side by side the larger part of the runtime's cost.
 */
export function defaultRuntime(path = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'): 'crun' | 'runc' {
  return path.split(':').some((dir) => dir && existsSync(join(dir, 'crun'))) ? 'crun' : 'runc';
}

/** The runtimes whose state files the driver reads itself, by binary name. */
const STATE_FILES: Record<
  string,
  {
    status: (root: string, id: string) => Promise<RuntimeStatus | undefined | null>;
    initPid: (root: string, id: string) => Promise<number | undefined>;
  }
> = {
  runc: { status: (root, id) => runcStatus(root, id), initPid: (root, id) => runcInitPid(root, id) },
  crun: { status: (root, id) => crunStatus(root, id), initPid: (root, id) => crunInitPid(root, id) },
};

/** The loop devices whose backing file is `image` (none once the kernel has let go of its file system). */
async function loopDevicesOf(image: string): Promise<string[]> {
  const path = await realpath(image).catch(() => image);
  const devices = (await readdir('/sys/block').catch(() => [] as string[])).filter((d) =>
    d.startsWith('loop'),
  );
  const backing = await Promise.all(
    devices.map((d) => readFile(`/sys/block/${d}/loop/backing_file`, 'utf8').catch(() => '')),
  );
  return devices.filter((_, i) => backing[i].trim() === path).map((d) => `/dev/${d}`);
}

/** Waits (polling every 25 ms) until no loop device is backed by `image`; fails after `timeoutMs`. */
export async function waitDetached(image: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const devices = await loopDevicesOf(image);
    if (devices.length === 0) return;
    if (Date.now() >= deadline) {
      throw new DriverError(`${image} is still in use by ${devices.join(', ')} after ${timeoutMs / 1000} s.`);
    }
    await sleep(25);
  }
}

/** Whether a file system is mounted at `target` (isMountPoint). */
export async function mountedAt(target: string): Promise<boolean> {
  return isMountPoint(target);
}

/** Unmounts what is mounted at `target` (retrying while busy, lazily at last); nothing mounted is fine. */
async function unmountPath(target: string): Promise<void> {
  for (let attempt = 0; (await mountedAt(target)) && attempt < 20; attempt++) {
    const result = await runCommand('umount', [target]);
    if (result.code !== 0) await sleep(50);
  }
  if (await mountedAt(target)) await mustRun('umount', ['-l', target]);
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/**
 * Hands `upload` a tar of `names` under `dir`, made as it is read; rejects with the upload's own error when
 * it fails (the tar ended), or with a DriverError when tar does.
 */
async function streamTar(dir: string, names: string[], upload: SnapshotUpload): Promise<void> {
  const child = spawnProcess('tar', ['-c', '-f', '-', '--numeric-owner', '-C', dir, ...names], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number>((done) => {
    child.on('error', () => done(127));
    child.on('close', (code) => done(code ?? 1));
  });
  try {
    await upload({ diskFormat: 'raw', containerFormat: 'docker', data: child.stdout as Readable });
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
  // An upload that stopped reading must not leave tar blocked on a full pipe.
  child.stdout.resume();
  const code = await exited;
  if (code !== 0)
    throw new DriverError(`The snapshot archive could not be made: ${stderr.trim().slice(0, 300)}`);
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
