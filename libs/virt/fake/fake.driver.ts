import { Duplex, PassThrough, Readable } from 'node:stream';
import {
  CAPABILITY_OPERATIONS,
  ComputeDriver,
  ConsoleEndpoint,
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
  NetworkInfo,
  NotSupportedByDriver,
  RebootType,
  SnapshotUpload,
  SpawnOptions,
  Vif,
  versionToInt,
} from '../driver';
import { POWER_STATE_NAMES, PowerState } from '../states';

export interface FakeDriverOptions {
  /** Reported as the hypervisor hostname; defaults to the host given to init. */
  hostname?: string;
  vcpus?: number;
  memoryMb?: number;
  localGb?: number;
  /** Turn capabilities off to test how the control plane treats a driver without them. */
  capabilities?: Partial<DriverCapabilities>;
  /** Milliseconds each operation takes; default 0. */
  delays?: Partial<Record<DriverOperation, number>>;
}

export interface FakeCall {
  operation: DriverOperation;
  uuid?: string;
}

/** What a test may read back about a guest. */
export interface FakeGuestView {
  state: PowerState;
  flavor: FlavorSpec;
  imageRef: string;
  rescued: boolean;
  resizePending: boolean;
  portIds: string[];
  /** What the guest wrote to its disk (writeDisk), carried by exportDisks to another host. */
  disk: string;
}

interface FakeGuest {
  uuid: string;
  name: string;
  hostname: string;
  flavor: FlavorSpec;
  imageRef: string;
  configDrive: boolean;
  state: PowerState;
  rescued: boolean;
  /** Set while a resize awaits confirm or revert. */
  flavorBeforeResize?: FlavorSpec;
  interfaces: Map<string, Vif>;
  /** The destination of a live migration not finished yet. */
  incoming?: LiveMigrationTarget;
  /** The source of a live migration that has completed: the guest is on the destination now. */
  migratedAway?: boolean;
  disk: string;
  console: string[];
  bootedAt: number;
}

/** The format of the fake's exported disk: the guest's disk text as UTF-8. */
export const FAKE_DISK_FORMAT = 'fake-disk';

/** Bounded like a real console ring buffer, so long benchmarks do not grow without limit. */
const CONSOLE_MAX_LINES = 200;

/** As large as Nova's fake, so that any flavour fits unless a test sizes the host itself. */
const DEFAULT_HOST = { vcpus: 1000, memoryMb: 800_000, localGb: 600_000 };

const ALL_CAPABILITIES: DriverCapabilities = {
  pause: true,
  suspend: true,
  rescue: true,
  snapshot: true,
  resize: true,
  consoleOutput: true,
  serialConsole: true,
  attachInterface: true,
  triggerCrashDump: true,
  diagnostics: true,
  liveMigration: true,
  migrateDisks: true,
};

const { RUNNING, PAUSED, SHUTDOWN, CRASHED, SUSPENDED } = PowerState;

/** Live migrations between the fakes of one process: the source's console, for the destination to go on with. */
const LIVE_MIGRATIONS = new Map<string, { console: string[] }>();

/** Operations still accepted while a guest is rescued or has a resize pending, as Nova's API allows. */
const RESCUE_EXITS: readonly DriverOperation[] = ['unrescue', 'triggerCrashDump'];
const RESIZE_EXITS: readonly DriverOperation[] = ['confirmResize', 'revertResize', 'triggerCrashDump'];

/** The disk text of another fake's export; another driver's format is refused. */
async function importDisk(disks: { format: string; data: Readable }): Promise<string> {
  if (disks.format !== FAKE_DISK_FORMAT) {
    disks.data.destroy();
    throw new DriverError(`The fake driver cannot import disks of format ${disks.format}.`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of disks.data) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}

const diskGb = (flavor: FlavorSpec) => flavor.rootGb + flavor.ephemeralGb + Math.ceil(flavor.swapMb / 1024);
const isActive = (state: PowerState) => state === RUNNING || state === PAUSED;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * An in-memory hypervisor for control-plane tests and benchmarks: every operation is O(1) in the number of
 * guests, and nothing runs between calls. Each check and state change happens after the operation's delay,
 * in one synchronous step, so concurrent calls see each other's results as a real hypervisor's would.
 */
export class FakeDriver implements ComputeDriver {
  readonly name = 'fake' as const;
  readonly capabilities: Readonly<DriverCapabilities>;

  private host?: string;
  private readonly size: { vcpus: number; memoryMb: number; localGb: number };
  private readonly used = { vcpus: 0, memoryMb: 0, localGb: 0, active: 0 };
  private readonly guests = new Map<string, FakeGuest>();
  private readonly delays: Map<DriverOperation, number>;
  private readonly queuedFailures = new Map<DriverOperation, Error[]>();
  private readonly failurePredicates = new Set<(call: FakeCall) => Error | undefined>();
  private readonly unsupported: ReadonlySet<DriverOperation>;

  constructor(private readonly options: FakeDriverOptions = {}) {
    this.size = {
      vcpus: options.vcpus ?? DEFAULT_HOST.vcpus,
      memoryMb: options.memoryMb ?? DEFAULT_HOST.memoryMb,
      localGb: options.localGb ?? DEFAULT_HOST.localGb,
    };
    this.capabilities = Object.freeze({ ...ALL_CAPABILITIES, ...options.capabilities });
    this.unsupported = new Set(
      (Object.keys(CAPABILITY_OPERATIONS) as (keyof DriverCapabilities)[])
        .filter((capability) => !this.capabilities[capability])
        .flatMap((capability) => CAPABILITY_OPERATIONS[capability]),
    );
    this.delays = new Map(Object.entries(options.delays ?? {}) as [DriverOperation, number][]);
  }

  /** Makes the next call of `operation` reject with `error`; calls queue up. */
  failNext(
    operation: DriverOperation,
    error: Error = new DriverError(`Injected failure of ${operation}.`),
  ): void {
    const queue = this.queuedFailures.get(operation);
    if (queue) queue.push(error);
    else this.queuedFailures.set(operation, [error]);
  }

  /** Every call for which `predicate` returns an error rejects with it, until the returned function runs. */
  failWhen(predicate: (call: FakeCall) => Error | undefined): () => void {
    this.failurePredicates.add(predicate);
    return () => this.failurePredicates.delete(predicate);
  }

  clearFailures(): void {
    this.queuedFailures.clear();
    this.failurePredicates.clear();
  }

  setDelay(operation: DriverOperation, ms: number): void {
    this.delays.set(operation, ms);
  }

  /** What the guest does on its own (shuts down from inside, crashes), for the power-state sync to notice. */
  simulatePowerState(uuid: string, state: PowerState): void {
    const guest = this.guest(uuid);
    this.setState(guest, state);
    this.log(guest, `guest: ${POWER_STATE_NAMES[state]}`);
  }

  /** The guest disappears behind the agent's back, holding no resources any more. */
  simulateLoss(uuid: string): void {
    this.remove(this.guest(uuid));
  }

  /** What the guest writes to its disk, for a test to find again after a migration. */
  writeDisk(uuid: string, text: string): void {
    this.guest(uuid).disk += text;
  }

  inspect(uuid: string): FakeGuestView | undefined {
    const guest = this.guests.get(uuid);
    if (!guest) return undefined;
    return {
      state: guest.state,
      flavor: guest.flavor,
      imageRef: guest.imageRef,
      rescued: guest.rescued,
      resizePending: guest.flavorBeforeResize !== undefined,
      portIds: [...guest.interfaces.keys()],
      disk: guest.disk,
    };
  }

  async init(host: string): Promise<void> {
    await this.begin('init');
    this.host = host;
  }

  async close(): Promise<void> {
    await this.begin('close');
  }

  async hostResources(): Promise<HostResources> {
    await this.begin('hostResources');
    return {
      hypervisorType: 'fake',
      hypervisorVersion: versionToInt('1.0'),
      hypervisorHostname: this.hostname,
      vcpus: this.size.vcpus,
      vcpusUsed: this.used.vcpus,
      memoryMb: this.size.memoryMb,
      memoryMbUsed: this.used.memoryMb,
      localGb: this.size.localGb,
      localGbUsed: this.used.localGb,
      runningVms: this.used.active,
      cpuInfo: {
        arch: 'x86_64',
        model: 'Nehalem',
        vendor: 'Intel',
        features: ['pge', 'clflush'],
        topology: { sockets: 4, cores: 1, threads: 1 },
      },
    };
  }

  async listInstances(): Promise<string[]> {
    await this.begin('listInstances');
    return [...this.guests.keys()];
  }

  async getInfo(instance: InstanceRef): Promise<InstanceInfo> {
    await this.begin('getInfo', instance.uuid);
    return { state: this.guest(instance.uuid).state };
  }

  async spawn(
    instance: InstanceSpec,
    image: ImageSource,
    networkInfo: NetworkInfo,
    options: SpawnOptions = {},
  ): Promise<void> {
    await this.begin('spawn', instance.uuid);
    if (this.guests.has(instance.uuid)) throw new InstanceExists(instance.uuid);
    const disk = options.migratedDisks ? await importDisk(options.migratedDisks) : '';
    if (this.guests.has(instance.uuid)) throw new InstanceExists(instance.uuid);
    const guest: FakeGuest = {
      uuid: instance.uuid,
      name: instance.name,
      hostname: instance.hostname,
      flavor: instance.flavor,
      imageRef: image.id,
      configDrive: instance.configDrive,
      state: SHUTDOWN,
      rescued: false,
      interfaces: new Map(networkInfo.map((vif) => [vif.id, vif])),
      disk,
      console: [],
      bootedAt: 0,
    };
    this.guests.set(guest.uuid, guest);
    this.claim(guest.flavor);
    this.log(
      guest,
      `spawn: ${guest.name} from ${options.migratedDisks ? 'migrated disks' : 'image'} ${image.id} on ${this.hostname}`,
    );
    if (options.powerOn ?? true) this.boot(guest);
  }

  async destroy(
    instance: InstanceRef,
    _networkInfo: NetworkInfo,
    _options?: { destroyDisks?: boolean },
  ): Promise<void> {
    await this.begin('destroy', instance.uuid);
    const guest = this.guests.get(instance.uuid);
    if (guest) this.remove(guest);
  }

  async reboot(instance: InstanceSpec, type: RebootType, _networkInfo: NetworkInfo): Promise<void> {
    await this.begin('reboot', instance.uuid);
    const guest = this.guest(instance.uuid);
    this.expect(
      guest,
      'reboot',
      type === 'SOFT' ? [RUNNING] : [RUNNING, PAUSED, SUSPENDED, SHUTDOWN, CRASHED],
    );
    this.log(guest, type === 'SOFT' ? 'reboot: Restarting system' : 'reboot: hard reset');
    this.boot(guest);
  }

  async powerOff(instance: InstanceRef, _options?: { timeoutSeconds?: number }): Promise<void> {
    await this.begin('powerOff', instance.uuid);
    const guest = this.guest(instance.uuid);
    this.expect(guest, 'powerOff', [RUNNING, PAUSED, SUSPENDED, SHUTDOWN, CRASHED]);
    if (guest.state === SHUTDOWN) return;
    this.setState(guest, SHUTDOWN);
    this.log(guest, 'reboot: Power down');
  }

  async powerOn(instance: InstanceSpec, _networkInfo: NetworkInfo): Promise<void> {
    await this.begin('powerOn', instance.uuid);
    const guest = this.guest(instance.uuid);
    this.expect(guest, 'powerOn', [SHUTDOWN, CRASHED, RUNNING]);
    if (guest.state !== RUNNING) this.boot(guest);
  }

  async pause(instance: InstanceRef): Promise<void> {
    await this.transition(instance, 'pause', [RUNNING], PAUSED);
  }

  async unpause(instance: InstanceRef): Promise<void> {
    await this.transition(instance, 'unpause', [PAUSED], RUNNING);
  }

  async suspend(instance: InstanceRef): Promise<void> {
    await this.transition(instance, 'suspend', [RUNNING], SUSPENDED);
  }

  async resume(instance: InstanceSpec, _networkInfo: NetworkInfo): Promise<void> {
    await this.transition(instance, 'resume', [SUSPENDED], RUNNING);
  }

  async rescue(
    instance: InstanceSpec,
    rescueImage: ImageSource,
    _networkInfo: NetworkInfo,
    _options?: { rescuePassword?: string },
  ): Promise<void> {
    await this.begin('rescue', instance.uuid);
    const guest = this.guest(instance.uuid);
    this.expect(guest, 'rescue', [RUNNING, SHUTDOWN]);
    guest.rescued = true;
    this.log(guest, `rescue: booting rescue image ${rescueImage.id}`);
    this.boot(guest);
  }

  async unrescue(instance: InstanceRef): Promise<void> {
    await this.begin('unrescue', instance.uuid);
    const guest = this.guest(instance.uuid);
    if (!guest.rescued)
      throw new InstanceInvalidState(guest.uuid, 'unrescue', guest.state, 'It is not rescued.');
    guest.rescued = false;
    this.log(guest, 'unrescue: booting the instance disk');
    this.boot(guest);
  }

  async rebuild(
    instance: InstanceSpec,
    image: ImageSource,
    _networkInfo: NetworkInfo,
    options: SpawnOptions = {},
  ): Promise<void> {
    await this.begin('rebuild', instance.uuid);
    const guest = this.guest(instance.uuid);
    this.expect(guest, 'rebuild', [RUNNING, SHUTDOWN, CRASHED]);
    guest.imageRef = image.id;
    this.setState(guest, SHUTDOWN);
    this.log(guest, `rebuild: ${guest.name} from image ${image.id}`);
    if (options.powerOn ?? true) this.boot(guest);
  }

  async resize(
    instance: InstanceSpec,
    newFlavor: FlavorSpec,
    _networkInfo: NetworkInfo,
    options: { powerOn?: boolean; timeoutSeconds?: number } = {},
  ): Promise<void> {
    await this.begin('resize', instance.uuid);
    const guest = this.guest(instance.uuid);
    this.expect(guest, 'resize', [RUNNING, SHUTDOWN]);
    // Both flavours stay claimed until confirm or revert, as Nova keeps both allocations on the host.
    this.claim(newFlavor);
    guest.flavorBeforeResize = guest.flavor;
    guest.flavor = newFlavor;
    this.setState(guest, SHUTDOWN);
    this.log(guest, `resize: ${newFlavor.vcpus} vCPUs, ${newFlavor.memoryMb} MB`);
    if (options.powerOn ?? true) this.boot(guest);
  }

  async exportDisks(instance: InstanceRef): Promise<DiskExport> {
    await this.begin('exportDisks', instance.uuid);
    const guest = this.guest(instance.uuid);
    this.expect(guest, 'exportDisks', [SHUTDOWN, CRASHED]);
    const data = Buffer.from(guest.disk, 'utf8');
    this.log(guest, `export disks: ${data.length} bytes`);
    return { format: FAKE_DISK_FORMAT, open: () => Readable.from([data]), dispose: async () => undefined };
  }

  async confirmResize(instance: InstanceRef): Promise<void> {
    await this.begin('confirmResize', instance.uuid);
    const guest = this.guest(instance.uuid);
    const old = this.pendingResize(guest, 'confirmResize');
    guest.flavorBeforeResize = undefined;
    this.release(old);
  }

  async revertResize(
    instance: InstanceSpec,
    _networkInfo: NetworkInfo,
    options: { powerOn?: boolean } = {},
  ): Promise<void> {
    await this.begin('revertResize', instance.uuid);
    const guest = this.guest(instance.uuid);
    const old = this.pendingResize(guest, 'revertResize');
    this.release(guest.flavor);
    guest.flavor = old;
    guest.flavorBeforeResize = undefined;
    this.setState(guest, SHUTDOWN);
    this.log(guest, `revert resize: ${old.vcpus} vCPUs, ${old.memoryMb} MB`);
    if (options.powerOn ?? true) this.boot(guest);
  }

  async snapshot(instance: InstanceRef, imageId: string, upload: SnapshotUpload): Promise<void> {
    await this.begin('snapshot', instance.uuid);
    const guest = this.guest(instance.uuid);
    this.expect(guest, 'snapshot', [RUNNING, SHUTDOWN, PAUSED, SUSPENDED]);
    const { flavor } = guest;
    const content =
      `NOVUM FAKE SNAPSHOT\ninstance ${guest.uuid}\nimage ${imageId}\nbase ${guest.imageRef}\n` +
      `flavor ${flavor.vcpus} ${flavor.memoryMb} ${flavor.rootGb}\n`;
    this.log(guest, `snapshot: image ${imageId}`);
    await upload({ diskFormat: 'raw', containerFormat: 'bare', data: Readable.from([Buffer.from(content)]) });
  }

  async getConsoleOutput(instance: InstanceRef): Promise<string> {
    await this.begin('getConsoleOutput', instance.uuid);
    return this.guest(instance.uuid).console.join('\n') + '\n';
  }

  async getSerialConsole(instance: InstanceRef): Promise<ConsoleEndpoint> {
    await this.begin('getSerialConsole', instance.uuid);
    const guest = this.guest(instance.uuid);
    return { host: this.hostname, port: 6969, internalAccessPath: guest.uuid };
  }

  /** A terminal that echoes what it is sent, as a shell on a guest's serial port does. */
  async connectSerialConsole(instance: InstanceRef): Promise<Duplex> {
    await this.begin('connectSerialConsole', instance.uuid);
    const guest = this.guest(instance.uuid);
    if (!isActive(guest.state)) {
      throw new InstanceInvalidState(guest.uuid, 'connectSerialConsole', guest.state);
    }
    return new PassThrough();
  }

  async attachInterface(instance: InstanceSpec, vif: Vif): Promise<void> {
    await this.begin('attachInterface', instance.uuid);
    const guest = this.guest(instance.uuid);
    this.expect(guest, 'attachInterface', [RUNNING, PAUSED, SHUTDOWN]);
    if (guest.interfaces.has(vif.id)) return;
    guest.interfaces.set(vif.id, vif);
    this.log(guest, `attach interface ${vif.id} (${vif.macAddress})`);
  }

  async detachInterface(instance: InstanceRef, vif: Vif): Promise<void> {
    await this.begin('detachInterface', instance.uuid);
    const guest = this.guest(instance.uuid);
    this.expect(guest, 'detachInterface', [RUNNING, PAUSED, SHUTDOWN]);
    if (guest.interfaces.delete(vif.id)) this.log(guest, `detach interface ${vif.id}`);
  }

  async triggerCrashDump(instance: InstanceRef): Promise<void> {
    await this.begin('triggerCrashDump', instance.uuid);
    const guest = this.guest(instance.uuid);
    this.expect(guest, 'triggerCrashDump', [RUNNING]);
    this.log(guest, 'Kernel panic - not syncing: NMI: Not continuing');
  }

  async getDiagnostics(instance: InstanceRef): Promise<Diagnostics> {
    await this.begin('getDiagnostics', instance.uuid);
    const guest = this.guest(instance.uuid);
    const running = isActive(guest.state);
    return {
      state: POWER_STATE_NAMES[guest.state],
      driver: 'fake',
      hypervisor: 'fake',
      hypervisorOs: 'linux',
      uptimeSeconds: running ? Math.floor((Date.now() - guest.bootedAt) / 1000) : 0,
      configDrive: guest.configDrive,
      cpus: Array.from({ length: guest.flavor.vcpus }, (_, id) => ({
        id,
        timeNs: 17_300_000_000,
        utilisation: 15,
      })),
      nics: [...guest.interfaces.values()].map((vif) => ({
        macAddress: vif.macAddress,
        rxOctets: 2_070_139,
        rxErrors: 0,
        rxDrop: 0,
        rxPackets: 26_701,
        txOctets: 140_208,
        txErrors: 0,
        txDrop: 0,
        txPackets: 662,
      })),
      disks: [
        { readBytes: 262_144, readRequests: 112, writeBytes: 5_778_432, writeRequests: 488, errorsCount: 0 },
      ],
      memory: { maximumMb: guest.flavor.memoryMb, usedMb: running ? guest.flavor.memoryMb : 0 },
    };
  }

  /** The guest made as spawn makes it, stopped, waiting for the migrated one (a fake address: nothing listens). */
  async preLiveMigration(
    instance: InstanceSpec,
    image: ImageSource,
    networkInfo: NetworkInfo,
    options: { listenAddress: string },
  ): Promise<LiveMigrationTarget> {
    await this.begin('preLiveMigration', instance.uuid);
    const existing = this.guests.get(instance.uuid);
    if (existing?.incoming) return existing.incoming;
    if (existing) throw new InstanceExists(instance.uuid);
    await this.spawn(instance, image, networkInfo, { powerOn: false });
    const target: LiveMigrationTarget = {
      address: options.listenAddress,
      migrationPort: 49152,
      nbdPort: 49153,
      disks: ['root'],
    };
    this.guest(instance.uuid).incoming = target;
    return target;
  }

  async liveMigration(instance: InstanceRef, _target: LiveMigrationTarget): Promise<void> {
    await this.begin('liveMigration', instance.uuid);
    const guest = this.guest(instance.uuid);
    this.expect(guest, 'liveMigration', [RUNNING, PAUSED]);
    LIVE_MIGRATIONS.set(guest.uuid, { console: [...guest.console] });
    guest.migratedAway = true;
    this.log(guest, `live migration: left ${this.hostname}`);
  }

  async postLiveMigrationAtDestination(
    instance: InstanceRef,
    options: { paused?: boolean } = {},
  ): Promise<void> {
    await this.begin('postLiveMigrationAtDestination', instance.uuid);
    const guest = this.guest(instance.uuid);
    if (!guest.incoming) return;
    const carried = LIVE_MIGRATIONS.get(guest.uuid);
    LIVE_MIGRATIONS.delete(guest.uuid);
    if (carried) guest.console = carried.console;
    delete guest.incoming;
    this.setState(guest, options.paused ? PAUSED : RUNNING);
    guest.bootedAt = Date.now();
    this.log(guest, `live migration: arrived on ${this.hostname}`);
  }

  /** Removes the guest that migrated away; one that has not stays (InstanceInvalidState). */
  async postLiveMigration(instance: InstanceRef, _networkInfo: NetworkInfo): Promise<void> {
    await this.begin('postLiveMigration', instance.uuid);
    const guest = this.guests.get(instance.uuid);
    if (!guest) return;
    if (!guest.migratedAway) {
      throw new InstanceInvalidState(
        guest.uuid,
        'postLiveMigration',
        guest.state,
        'It has not migrated away.',
      );
    }
    this.remove(guest);
  }

  async rollbackLiveMigrationAtDestination(instance: InstanceRef, _networkInfo: NetworkInfo): Promise<void> {
    await this.begin('rollbackLiveMigrationAtDestination', instance.uuid);
    const guest = this.guests.get(instance.uuid);
    if (guest?.incoming) this.remove(guest);
  }

  private get hostname(): string {
    return this.options.hostname ?? this.host ?? 'fake-mini';
  }

  /** Refuses an unsupported operation at once, then waits the configured delay, then injects failures. */
  private async begin(operation: DriverOperation, uuid?: string): Promise<void> {
    if (this.unsupported.has(operation)) throw new NotSupportedByDriver(operation, this.name);
    const delay = this.delays.get(operation) ?? 0;
    if (delay > 0) await sleep(delay);
    const queued = this.queuedFailures.get(operation)?.shift();
    if (queued) throw queued;
    for (const predicate of this.failurePredicates) {
      const error = predicate({ operation, uuid });
      if (error) throw error;
    }
  }

  private async transition(
    instance: InstanceRef,
    operation: DriverOperation,
    from: readonly PowerState[],
    to: PowerState,
  ): Promise<void> {
    await this.begin(operation, instance.uuid);
    const guest = this.guest(instance.uuid);
    this.expect(guest, operation, from);
    this.setState(guest, to);
    this.log(guest, `${operation}: ${POWER_STATE_NAMES[to]}`);
  }

  private guest(uuid: string): FakeGuest {
    const guest = this.guests.get(uuid);
    if (!guest) throw new InstanceNotFound(uuid);
    return guest;
  }

  private expect(guest: FakeGuest, operation: DriverOperation, allowed: readonly PowerState[]): void {
    if (guest.rescued && !RESCUE_EXITS.includes(operation)) {
      throw new InstanceInvalidState(guest.uuid, operation, guest.state, 'It is in rescue mode.');
    }
    if (guest.flavorBeforeResize && !RESIZE_EXITS.includes(operation)) {
      throw new InstanceInvalidState(guest.uuid, operation, guest.state, 'A resize awaits confirmation.');
    }
    if (!allowed.includes(guest.state)) throw new InstanceInvalidState(guest.uuid, operation, guest.state);
  }

  private pendingResize(guest: FakeGuest, operation: DriverOperation): FlavorSpec {
    if (!guest.flavorBeforeResize) {
      throw new InstanceInvalidState(guest.uuid, operation, guest.state, 'No resize is pending.');
    }
    return guest.flavorBeforeResize;
  }

  private boot(guest: FakeGuest): void {
    this.setState(guest, RUNNING);
    guest.bootedAt = Date.now();
    // A short boot log, like a real guest's serial console, so console tails have lines to cut.
    this.log(guest, `[    0.000000] Linux version 6.1.0-fake (novum fake hypervisor)`);
    this.log(guest, `[    0.100000] Booting ${guest.name}`);
    this.log(guest, `Welcome to the Novum fake guest ${guest.hostname}`);
    this.log(guest, `${guest.hostname} login:`);
  }

  private setState(guest: FakeGuest, state: PowerState): void {
    this.used.active += Number(isActive(state)) - Number(isActive(guest.state));
    guest.state = state;
  }

  private remove(guest: FakeGuest): void {
    this.setState(guest, SHUTDOWN);
    this.release(guest.flavor);
    if (guest.flavorBeforeResize) this.release(guest.flavorBeforeResize);
    this.guests.delete(guest.uuid);
  }

  private claim(flavor: FlavorSpec, sign = 1): void {
    this.used.vcpus += sign * flavor.vcpus;
    this.used.memoryMb += sign * flavor.memoryMb;
    this.used.localGb += sign * diskGb(flavor);
  }

  private release(flavor: FlavorSpec): void {
    this.claim(flavor, -1);
  }

  private log(guest: FakeGuest, line: string): void {
    guest.console.push(line);
    if (guest.console.length > CONSOLE_MAX_LINES) guest.console.shift();
  }
}
