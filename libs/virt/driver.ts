/**
 * The contract every virt driver (kvm, container, fake) fulfils for the compute agent, modelled on Nova's
 * nova/virt/driver.py ComputeDriver. The agent is the only caller; it serialises the operations on one
 * instance (as Nova's instance lock does), so a driver need not guard against two at once on one guest.
 */
import type { Duplex, Readable } from 'node:stream';
import { POWER_STATE_NAMES, PowerState, PowerStateName } from './states';
import type { PortFilter } from './net/firewall';

export type DriverName = 'kvm' | 'container' | 'fake';

export interface FlavorSpec {
  vcpus: number;
  memoryMb: number;
  rootGb: number;
  ephemeralGb: number;
  swapMb: number;
  /** Includes `novum:driver` and Nova's `quota:*`, `hw:*` keys. */
  extraSpecs: Readonly<Record<string, string>>;
}

/** The instance as the database knows it: what a driver needs to build the guest and its config drive. */
export interface InstanceSpec {
  uuid: string;
  /** Nova's internal instance name (`instance-0000002a`), never shown to users; names domains and files. */
  name: string;
  /** The guest's host name (from the server name), for the uts namespace and the metadata. */
  hostname: string;
  /** The server's name as the user gave it (the metadata's `name`); the host name stands in when absent. */
  displayName?: string;
  /** The instance's position in its multiple-create request (the metadata's `launch_index`). */
  launchIndex?: number;
  /** The multiple-create request the instance came from (EC2's `reservation-id`). */
  reservationId?: string;
  projectId: string;
  userId: string;
  flavor: FlavorSpec;
  imageRef: string;
  /** The image properties the instance was booted with (`hw_*`, `os_*`), kept as Nova's system metadata. */
  imageProperties: Readonly<Record<string, string>>;
  metadata: Readonly<Record<string, string>>;
  /** Base64, as the API received it. */
  userData?: string;
  keyName?: string;
  keyData?: string;
  availabilityZone?: string;
  configDrive: boolean;
}

/** Only the identity: operations on a guest that already exists need no more. */
export type InstanceRef = Pick<InstanceSpec, 'uuid'>;

export interface ImageMeta {
  id: string;
  name?: string;
  diskFormat: string;
  containerFormat: string;
  minDiskGb: number;
  minRamMb: number;
  properties: Readonly<Record<string, string>>;
}

/** An image a driver may need the bits of; `open` is only called on a cache miss. */
export interface ImageSource extends ImageMeta {
  sizeBytes?: number;
  /** Glance's `checksum` (MD5 of the data); a driver that downloads refuses data that does not match. */
  checksum?: string;
  /** Glance's `os_hash_algo` and `os_hash_value` (multihash), checked like the checksum. */
  osHashAlgo?: string;
  osHashValue?: string;
  open(): Promise<Readable>;
}

export interface FixedIp {
  address: string;
  version: 4 | 6;
  subnetId: string;
  cidr: string;
  gateway?: string;
  dnsNameservers: string[];
  /** The subnet's host routes (Neutron's shape); a nexthop of 0.0.0.0 or :: means on the link. */
  hostRoutes?: { destination: string; nexthop: string }[];
}

/** One port plugged into the guest (Nova's network model VIF, flattened). */
export interface Vif {
  /** The Neutron port id. */
  id: string;
  macAddress: string;
  networkId: string;
  fixedIps: FixedIp[];
  /** The host bridge the tap device joins; absent for drivers that wire the port another way. */
  bridge?: string;
  mtu?: number;
  /** The host-side device name (`tap` + the first 11 characters of the port id in Nova). */
  devname?: string;
  /** The port's security groups and port security, for the host's firewall (libs/virt/net). */
  filter?: PortFilter;
  /** The network's segment (Neutron's provider attributes): a `vxlan` one spans hosts that have a tunnel address. */
  segment?: { networkType: string; segmentationId: number | null; physicalNetwork?: string | null };
}

export type NetworkInfo = readonly Vif[];

export interface BlockDeviceInfo {
  rootDeviceName?: string;
  ephemerals: { deviceName: string; sizeGb: number; guestFormat?: string }[];
  swap?: { deviceName: string; sizeMb: number };
}

/** A file to write into the guest (personality, API before 2.57). */
export interface InjectedFile {
  path: string;
  /** Base64. */
  contents: string;
}

export interface SpawnOptions {
  adminPassword?: string;
  injectedFiles?: InjectedFile[];
  blockDeviceInfo?: BlockDeviceInfo;
  /** False leaves the guest defined but SHUTDOWN (Nova's `power_on`). Default true. */
  powerOn?: boolean;
  /**
   * The disks of the guest on another host (a cross-host cold migration or resize, Nova's
   * migrate_disk_and_power_off): the guest is made on them instead of fresh ones from the image.
   */
  migratedDisks?: MigratedDisks;
}

/**
 * A stopped guest's disks packed for another host of the same driver (exportDisks): what the guest wrote
 * (the kvm root overlay and ephemeral disk, the container's writable layer), not what the destination makes
 * again from the image or the flavour (base image, image layers, swap, config drive).
 */
export interface DiskExport {
  /** What the data is (`<driver>-...`); a driver refuses to import a format of another. */
  format: string;
  /** The packed disks; may be opened more than once (to hash them, then to send them). */
  open(): Readable;
  /** Removes the packed copy; the guest and its own disks stay (a revert boots them again). */
  dispose(): Promise<void>;
}

/** Disks exported on another host, arriving as a stream (checked by the caller for size and digest). */
export interface MigratedDisks {
  format: string;
  data: Readable;
}

export type RebootType = 'SOFT' | 'HARD';

export interface CpuInfo {
  arch: string;
  model: string;
  vendor: string;
  features: string[];
  topology: { sockets: number; cores: number; threads: number };
}

/** Nova's get_available_resource: what the hypervisors API and the resource tracker show for the host. */
export interface HostResources {
  hypervisorType: string;
  /** Nova's integer encoding: 1.2.3 is 1002003. */
  hypervisorVersion: number;
  hypervisorHostname: string;
  vcpus: number;
  vcpusUsed: number;
  memoryMb: number;
  memoryMbUsed: number;
  localGb: number;
  localGbUsed: number;
  runningVms: number;
  cpuInfo: CpuInfo;
}

export interface InstanceInfo {
  state: PowerState;
}

/**
 * Where a console proxy connects to reach a guest's serial port. A driver whose console has no network
 * port of its own answers port 0: the agent's relay reaches it through connectSerialConsole and answers
 * with its own endpoint instead.
 */
export interface ConsoleEndpoint {
  host: string;
  port: number;
  internalAccessPath?: string;
}

/** The data a snapshot produces; the driver picks the formats (qcow2/bare, raw/docker, ...). */
export interface SnapshotData {
  diskFormat: string;
  containerFormat: string;
  data: Readable;
}

/** Stores the snapshot in the image service; the snapshot fails if it rejects. */
export type SnapshotUpload = (snapshot: SnapshotData) => Promise<void>;

/** The instance diagnostics of the API from microversion 2.48, in this codebase's casing. */
export interface Diagnostics {
  state: PowerStateName;
  driver: DriverName;
  hypervisor: string;
  hypervisorOs: string;
  uptimeSeconds: number;
  configDrive: boolean;
  cpus: { id: number; timeNs: number; utilisation: number | null }[];
  nics: {
    macAddress: string;
    rxOctets: number;
    rxErrors: number;
    rxDrop: number;
    rxPackets: number;
    txOctets: number;
    txErrors: number;
    txDrop: number;
    txPackets: number;
  }[];
  disks: {
    readBytes: number;
    readRequests: number;
    writeBytes: number;
    writeRequests: number;
    errorsCount: number;
  }[];
  memory: { maximumMb: number; usedMb: number };
}

/**
 * Where the destination of a live migration waits (preLiveMigration's answer, handed to the source's
 * liveMigration): QEMU's incoming migration on `address:migrationPort` and, for the disks of a host without
 * shared storage, an NBD server on `address:nbdPort` exporting each disk (by the source's node name) writable.
 */
export interface LiveMigrationTarget {
  address: string;
  migrationPort: number;
  nbdPort?: number;
  /** The disks the destination exports for the source to copy into (root, ephemeral, swap). */
  disks: string[];
}

/**
 * What a driver can do beyond the operations every driver has. An operation whose capability is false
 * rejects with NotSupportedByDriver; the API checks first so that users get Nova's fault instead.
 */
export interface DriverCapabilities {
  pause: boolean;
  suspend: boolean;
  rescue: boolean;
  snapshot: boolean;
  /** Same-host resize with confirm and revert. */
  resize: boolean;
  consoleOutput: boolean;
  serialConsole: boolean;
  attachInterface: boolean;
  triggerCrashDump: boolean;
  diagnostics: boolean;
  /** Live migration between hosts of the same driver (os-migrateLive), disks copied (block migration). */
  liveMigration: boolean;
  /** exportDisks and spawn's migratedDisks: a cross-host cold migration or resize carries the disks. */
  migrateDisks: boolean;
}

/**
 * Every method on a guest rejects with InstanceNotFound when the driver does not have it (destroy excepted)
 * and with InstanceInvalidState when the guest's state does not allow the operation: while a guest is
 * rescued, or a resize awaits confirm or revert, only the way out, destroy and triggerCrashDump are
 * accepted, as Nova's API allows. A method resolves once the guest has reached the state it promises.
 */
export interface ComputeDriver {
  readonly name: DriverName;
  readonly capabilities: Readonly<DriverCapabilities>;

  /** Called once, before anything else, with this agent's host name. */
  init(host: string): Promise<void>;
  /** Releases host-side handles (sockets, watchers); guests keep running for the next agent to re-adopt. */
  close(): Promise<void>;
  hostResources(): Promise<HostResources>;
  /** Every guest defined on this host, whatever its power state: what the agent reconciles at start. */
  listInstances(): Promise<string[]>;
  getInfo(instance: InstanceRef): Promise<InstanceInfo>;

  /** Ends RUNNING (SHUTDOWN with powerOn false); a failure leaves nothing behind. */
  spawn(
    instance: InstanceSpec,
    image: ImageSource,
    networkInfo: NetworkInfo,
    options?: SpawnOptions,
  ): Promise<void>;
  /** Succeeds for a guest that does not exist, so that deleting a half-built instance always works. */
  destroy(
    instance: InstanceRef,
    networkInfo: NetworkInfo,
    options?: { destroyDisks?: boolean },
  ): Promise<void>;
  /** SOFT needs a RUNNING guest; HARD restarts from any state but rescue. Ends RUNNING. */
  reboot(instance: InstanceSpec, type: RebootType, networkInfo: NetworkInfo): Promise<void>;
  /** Asks the guest to shut down, forcing it after timeoutSeconds (0: at once). Idempotent. Ends SHUTDOWN. */
  powerOff(instance: InstanceRef, options?: { timeoutSeconds?: number }): Promise<void>;
  /** From SHUTDOWN or CRASHED; idempotent on a RUNNING guest. Ends RUNNING. */
  powerOn(instance: InstanceSpec, networkInfo: NetworkInfo): Promise<void>;
  pause(instance: InstanceRef): Promise<void>;
  unpause(instance: InstanceRef): Promise<void>;
  suspend(instance: InstanceRef): Promise<void>;
  resume(instance: InstanceSpec, networkInfo: NetworkInfo): Promise<void>;
  /** Boots the rescue image with the guest's disk attached; from RUNNING or SHUTDOWN. */
  rescue(
    instance: InstanceSpec,
    rescueImage: ImageSource,
    networkInfo: NetworkInfo,
    options?: { rescuePassword?: string },
  ): Promise<void>;
  unrescue(instance: InstanceRef): Promise<void>;
  /** Re-creates the root disk from `image`, keeping ports and flavour. From RUNNING, SHUTDOWN, CRASHED. */
  rebuild(
    instance: InstanceSpec,
    image: ImageSource,
    networkInfo: NetworkInfo,
    options?: SpawnOptions,
  ): Promise<void>;
  /** Same-host resize: the guest runs with `newFlavor` (unless powerOn is false); revert restores the old. */
  resize(
    instance: InstanceSpec,
    newFlavor: FlavorSpec,
    networkInfo: NetworkInfo,
    options?: { powerOn?: boolean; timeoutSeconds?: number },
  ): Promise<void>;
  /**
   * Packs the disks of a SHUTDOWN guest for spawn's `migratedDisks` on another host; the guest stays as
   * it is. InstanceInvalidState for a guest that runs, is rescued or has a resize pending.
   */
  exportDisks(instance: InstanceRef): Promise<DiskExport>;
  /** Drops what revert needs; the new flavour stays. */
  confirmResize(instance: InstanceRef): Promise<void>;
  /** Back to the flavour and disk from before the resize. */
  revertResize(
    instance: InstanceSpec,
    networkInfo: NetworkInfo,
    options?: { powerOn?: boolean },
  ): Promise<void>;
  /**
   * Leaves the power state as it was. Rejects with the upload's own error when `upload` fails, so that the
   * caller can tell an image service fault from a driver one.
   */
  snapshot(instance: InstanceRef, imageId: string, upload: SnapshotUpload): Promise<void>;
  getConsoleOutput(instance: InstanceRef): Promise<string>;
  /**
   * Where the serial console of a RUNNING (or PAUSED) guest is; ConsoleUnavailable when the guest has
   * none (e.g. started before the driver offered one).
   */
  getSerialConsole(instance: InstanceRef): Promise<ConsoleEndpoint>;
  /**
   * A byte stream to the guest's serial port: what the guest writes comes out, what is written goes to
   * the guest. Closing it leaves the guest running (and its console log written).
   */
  connectSerialConsole(instance: InstanceRef): Promise<Duplex>;
  /** Idempotent by port id, so that a redelivered request does no harm. */
  attachInterface(instance: InstanceSpec, vif: Vif): Promise<void>;
  /** Succeeds when the port is not attached, as Nova's libvirt driver does. */
  detachInterface(instance: InstanceRef, vif: Vif): Promise<void>;
  /** Sends an NMI to a RUNNING guest. */
  triggerCrashDump(instance: InstanceRef): Promise<void>;
  getDiagnostics(instance: InstanceRef): Promise<Diagnostics>;
  /**
   * On the destination (Nova's pre_live_migration): the guest made as spawn makes it (image, disks, config
   * drive, ports), its hypervisor waiting for the incoming state and disks at an address on `listenAddress`.
   * Idempotent while the migration is pending: a second call answers the same target.
   */
  preLiveMigration(
    instance: InstanceSpec,
    image: ImageSource,
    networkInfo: NetworkInfo,
    options: { listenAddress: string },
  ): Promise<LiveMigrationTarget>;
  /**
   * On the source (Nova's live_migration): copies the disks and the running state to the target; resolves
   * once the destination has all of it, the guest stopped here (not yet removed: postLiveMigration). On a
   * failure the guest runs on here as before and the promise rejects.
   */
  liveMigration(instance: InstanceRef, target: LiveMigrationTarget): Promise<void>;
  /** On the destination once the source is done: the guest runs (stays paused with `paused`). */
  postLiveMigrationAtDestination(instance: InstanceRef, options?: { paused?: boolean }): Promise<void>;
  /** On the source after a migration: everything of the guest goes (process, ports, cgroup, files). */
  postLiveMigration(instance: InstanceRef, networkInfo: NetworkInfo): Promise<void>;
  /**
   * On the destination after a failed migration: what preLiveMigration made goes; a guest that is not an
   * incoming migration's is left alone.
   */
  rollbackLiveMigrationAtDestination(instance: InstanceRef, networkInfo: NetworkInfo): Promise<void>;
}

export type DriverOperation = {
  [K in keyof ComputeDriver]: ComputeDriver[K] extends (...args: never[]) => unknown ? K : never;
}[keyof ComputeDriver];

/** The operations each capability gates. */
export const CAPABILITY_OPERATIONS: Readonly<Record<keyof DriverCapabilities, readonly DriverOperation[]>> = {
  pause: ['pause', 'unpause'],
  suspend: ['suspend', 'resume'],
  rescue: ['rescue', 'unrescue'],
  snapshot: ['snapshot'],
  resize: ['resize', 'confirmResize', 'revertResize'],
  consoleOutput: ['getConsoleOutput'],
  serialConsole: ['getSerialConsole', 'connectSerialConsole'],
  attachInterface: ['attachInterface', 'detachInterface'],
  triggerCrashDump: ['triggerCrashDump'],
  diagnostics: ['getDiagnostics'],
  liveMigration: [
    'preLiveMigration',
    'liveMigration',
    'postLiveMigrationAtDestination',
    'postLiveMigration',
    'rollbackLiveMigrationAtDestination',
  ],
  migrateDisks: ['exportDisks'],
};

/** Nova's `convert_version_to_int`: each dotted part in its own thousand. */
export function versionToInt(version: string): number {
  return version.split('.').reduce((total, part) => total * 1000 + Number.parseInt(part, 10), 0);
}

/** Base of the errors a driver throws; anything else from a driver is a bug. */
export class DriverError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class InstanceNotFound extends DriverError {
  constructor(readonly instanceUuid: string) {
    super(`Instance ${instanceUuid} could not be found.`);
  }
}

/** A spawn of a uuid the driver already has, so that a redelivered build never makes a second guest. */
export class InstanceExists extends DriverError {
  constructor(readonly instanceUuid: string) {
    super(`Instance ${instanceUuid} already exists.`);
  }
}

/** Nova's InstanceInvalidState message, which the API shows in a 409. */
export class InstanceInvalidState extends DriverError {
  constructor(
    readonly instanceUuid: string,
    readonly operation: DriverOperation,
    readonly powerState: PowerState,
    reason?: string,
  ) {
    super(
      `Instance ${instanceUuid} in power_state ${POWER_STATE_NAMES[powerState]}. ` +
        `Cannot ${operation} while the instance is in this state.` +
        (reason ? ` ${reason}` : ''),
    );
  }
}

/** The guest has no serial console to offer (Nova's ConsoleTypeUnavailable). */
export class ConsoleUnavailable extends DriverError {
  constructor(
    readonly instanceUuid: string,
    reason: string,
  ) {
    super(`Instance ${instanceUuid} has no serial console: ${reason}`);
  }
}

export class NotSupportedByDriver extends DriverError {
  constructor(
    readonly operation: DriverOperation,
    readonly driver: DriverName,
  ) {
    super(`The ${driver} driver does not support ${operation}.`);
  }
}
