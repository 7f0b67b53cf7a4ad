import { MessageBus, RemoteError } from '@novum/bus';
import { ApiError } from '@novum/common';
import {
  BuildAndRunInstanceRequest,
  BuildInstancesRequest,
  ComputeMethod,
  computeQueue,
  ConductorMethod,
  CONDUCTOR_QUEUE,
  ConsoleOutputRequest,
  DiskOffer,
  InstanceCallRequest,
  InstanceRequest,
  LiveMigrateInstanceRequest,
  LiveMigrationDestinationRequest,
  LiveMigrationRequest,
  MigrateServerRequest,
  EvacuateServerRequest,
  MigrationSourceRequest,
  RebootInstanceRequest,
  RebuildInstanceRequest,
  RescueInstanceRequest,
  ResizeInstanceRequest,
  SetAdminPasswordRequest,
  ShelveInstanceRequest,
  SnapshotInstanceRequest,
} from './contract';
import type { ConsoleEndpoint, Diagnostics } from '@novum/virt';

/** The casts whose payload is only `{ instanceUuid, requestId }`. */
type InstanceMethod =
  | 'terminate_instance'
  | 'stop_instance'
  | 'start_instance'
  | 'pause_instance'
  | 'unpause_instance'
  | 'suspend_instance'
  | 'resume_instance';

/** The statuses an agent's call refuses with that the caller's API passes on. */
const AGENT_REFUSALS = [400, 404, 409, 501];

/** Typed sends of the contract in contract.ts, for the compute API, the conductor and the agent. */
export class ComputeRpcClient {
  constructor(private readonly bus: MessageBus) {}

  buildInstances(request: BuildInstancesRequest): Promise<void> {
    return this.bus.cast(CONDUCTOR_QUEUE, ConductorMethod.BUILD_INSTANCES, request);
  }

  buildAndRunInstance(host: string, request: BuildAndRunInstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.BUILD_AND_RUN_INSTANCE, request);
  }

  rebootInstance(host: string, request: RebootInstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.REBOOT_INSTANCE, request);
  }

  /** terminate, stop, start, pause, unpause, suspend, resume. */
  instanceAction(host: string, method: InstanceMethod, request: InstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), method, request);
  }

  getConsoleOutput(host: string, request: ConsoleOutputRequest, timeoutMs = 30_000): Promise<string> {
    return this.agentCall<string>(host, ComputeMethod.GET_CONSOLE_OUTPUT, request, timeoutMs);
  }

  /** Set task_state `rebuilding` (vm_state active, stopped or error) and write the new image_ref first. */
  rebuildInstance(host: string, request: RebuildInstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.REBUILD_INSTANCE, request);
  }

  /**
   * Resize (with `flavor`) or cold migration, a call to the conductor as in Nova: set task_state
   * `resize_prep` first. Resolves once the destination is claimed (the resize goes on there; null when the
   * instance changed meanwhile); rejects with status 400 and Nova's No valid host message otherwise (the
   * task is then back to none with a fault).
   */
  migrateServer(request: MigrateServerRequest, timeoutMs = 60_000): Promise<{ migrationId: string } | null> {
    return this.bus.call<{ migrationId: string } | null>(
      CONDUCTOR_QUEUE,
      ConductorMethod.MIGRATE_SERVER,
      request,
      timeoutMs,
    );
  }

  /** Evacuate: set task_state `rebuilding` first; the conductor picks the host and hands the rebuild over. */
  evacuateServer(request: EvacuateServerRequest): Promise<void> {
    return this.bus.cast(CONDUCTOR_QUEUE, ConductorMethod.EVACUATE_SERVER, request);
  }

  /** The conductor's hand-over to the destination after its claim (not for the API). */
  resizeInstance(host: string, request: ResizeInstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.RESIZE_INSTANCE, request);
  }

  /** vm_state `resized`: set task_state `resize_confirming` first; to `instance.host`. */
  confirmResize(host: string, request: InstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.CONFIRM_RESIZE, request);
  }

  /** vm_state `resized`: set task_state `resize_reverting` first; to `instance.host`. */
  revertResize(host: string, request: InstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.REVERT_RESIZE, request);
  }

  /** Set task_state `rescuing` (vm_state active, stopped or error) first. */
  rescueInstance(host: string, request: RescueInstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.RESCUE_INSTANCE, request);
  }

  /** vm_state `rescued`: set task_state `unrescuing` first. */
  unrescueInstance(host: string, request: InstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.UNRESCUE_INSTANCE, request);
  }

  /** Set task_state `shelving` (active, stopped, paused, suspended) first. */
  shelveInstance(host: string, request: ShelveInstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.SHELVE_INSTANCE, request);
  }

  /** vm_state `shelved`: set task_state `shelving_offloading` first. */
  shelveOffloadInstance(host: string, request: InstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.SHELVE_OFFLOAD_INSTANCE, request);
  }

  /** vm_state `shelved` or `shelved_offloaded`: set task_state `unshelving` first. To the conductor. */
  unshelveInstance(request: InstanceRequest): Promise<void> {
    return this.bus.cast(CONDUCTOR_QUEUE, ConductorMethod.UNSHELVE_INSTANCE, request);
  }

  /** The conductor's hand-over of an offloaded instance after its claim (not for the API). */
  unshelveOnHost(host: string, request: InstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.UNSHELVE_INSTANCE, request);
  }

  /** createImage: set task_state `image_snapshot_pending` first, after creating the queued image. */
  snapshotInstance(host: string, request: SnapshotInstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.SNAPSHOT_INSTANCE, request);
  }

  /** No task_state; record the `trigger_crash_dump` action first. */
  triggerCrashDump(host: string, request: InstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.TRIGGER_CRASH_DUMP, request);
  }

  /** Set task_state `soft-deleting` first (leave `deleted_at` unset). */
  softDeleteInstance(host: string, request: InstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.SOFT_DELETE_INSTANCE, request);
  }

  /** vm_state `soft-delete`: set task_state `restoring` first. */
  restoreInstance(host: string, request: InstanceRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.RESTORE_INSTANCE, request);
  }

  /** A call, no task_state: 404 when the instance is not on the host, 409 when the driver cannot. */
  getSerialConsole(host: string, request: InstanceCallRequest, timeoutMs = 30_000): Promise<ConsoleEndpoint> {
    return this.agentCall<ConsoleEndpoint>(host, ComputeMethod.GET_SERIAL_CONSOLE, request, timeoutMs);
  }

  /** A call, no task_state: the 2.48 diagnostics (in this codebase's casing). */
  getDiagnostics(host: string, request: InstanceCallRequest, timeoutMs = 30_000): Promise<Diagnostics> {
    return this.agentCall<Diagnostics>(host, ComputeMethod.GET_DIAGNOSTICS, request, timeoutMs);
  }

  /** A call: set task_state `updating_password` first; 409 when the driver cannot (task back to none). */
  setAdminPassword(host: string, request: SetAdminPasswordRequest, timeoutMs = 30_000): Promise<void> {
    return this.agentCall<void>(host, ComputeMethod.SET_ADMIN_PASSWORD, request, timeoutMs);
  }

  /**
   * A call the compute API answers with: the agent's refusal (the instance is not there, its state or its
   * driver does not allow it) comes back as a RemoteError with that status and is rethrown as the API
   * error Nova answers (InstanceNotFound 404, InstanceInvalidState 409, NotImplementedError 501); anything
   * else stays as it came.
   */
  private async agentCall<T>(host: string, method: string, request: object, timeoutMs: number): Promise<T> {
    try {
      return await this.bus.call<T>(computeQueue(host), method, request, timeoutMs);
    } catch (error) {
      if (error instanceof RemoteError && error.status && AGENT_REFUSALS.includes(error.status)) {
        throw new ApiError(error.status, error.message);
      }
      throw error;
    }
  }

  /**
   * os-migrateLive: a call to the conductor (task_state `migrating` set first); resolves with the migration
   * once the destination is claimed and checked and the source's agent has the work, rejects with the
   * pre-check's 400 otherwise.
   */
  liveMigrateInstance(
    request: LiveMigrateInstanceRequest,
    timeoutMs = 120_000,
  ): Promise<{ migrationId: string }> {
    return this.bus.call<{ migrationId: string }>(
      CONDUCTOR_QUEUE,
      ConductorMethod.LIVE_MIGRATE_INSTANCE,
      request,
      timeoutMs,
    );
  }

  /** The conductor to the source host: run the live migration. */
  liveMigration(host: string, request: LiveMigrationRequest): Promise<void> {
    return this.bus.cast(computeQueue(host), ComputeMethod.LIVE_MIGRATION, request);
  }

  /** The destination's part of a live migration (a call); `pre` answers where the guest is awaited. */
  liveMigrationDestination<T = null>(
    host: string,
    request: LiveMigrationDestinationRequest,
    timeoutMs = 600_000,
  ): Promise<T> {
    return this.bus.call<T>(computeQueue(host), ComputeMethod.LIVE_MIGRATION_DESTINATION, request, timeoutMs);
  }

  /** Between agents: the source host's part of a cross-host resize; answers the guest's power state. */
  migrationSource(host: string, request: MigrationSourceRequest, timeoutMs = 120_000): Promise<number> {
    return this.bus.call<number>(computeQueue(host), ComputeMethod.MIGRATION_SOURCE, request, timeoutMs);
  }

  /**
   * Between agents: the source's guest (powered off) exports its disks and offers them for one fetch; null
   * when its driver cannot. Exporting copies the disks, so it may take a while.
   */
  exportDisks(
    host: string,
    request: Omit<MigrationSourceRequest, 'step'>,
    timeoutMs = 900_000,
  ): Promise<DiskOffer | null> {
    return this.bus.call<DiskOffer | null>(
      computeQueue(host),
      ComputeMethod.MIGRATION_SOURCE,
      { ...request, step: 'export_disks' },
      timeoutMs,
    );
  }
}
