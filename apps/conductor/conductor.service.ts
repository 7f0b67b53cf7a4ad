import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { BusConsumer, RpcMethod } from '@novum/bus';
import { BadRequestError, NOVUM_CONFIG, NovumConfig, rootLogger } from '@novum/common';
import {
  Binary,
  BuildInstancesRequest,
  checkRequest,
  claim,
  ComputeRpcClient,
  CONDUCTOR_QUEUE,
  ConductorMethod,
  errorMessage,
  InstanceRecords,
  InstanceRequest,
  MAX_BUILD_ATTEMPTS,
  MigrateServerRequest,
  NO_VALID_HOST,
  release,
  resourcesOf,
  ServiceHeartbeat,
  recordMigration,
  confirmMigrationClaim,
  setMigrationStatus,
} from '@novum/compute';
import { ComputeNodeEntity, InstanceEntity, MigrationEntity } from '@novum/db';
import { TaskState, VmState } from '@novum/virt';
import { HostSnapshot, Scheduler } from './scheduler';

/** Nova's conductor event name for the scheduling step of a build. */
const SCHEDULE_EVENT = 'conductor_schedule_and_build_instances';

class BuildFailure extends Error {}

/**
 * The instance as the scheduler sees it when it moves (Nova's RequestSpec.reset_forced_destinations, then
 * requested_destination): the host its create forced (`zone:host`, 2.74 `host`) no longer binds it, the
 * admin's destination, if any, does.
 */
function withDestination<T extends InstanceEntity>(instance: T, host?: string): T {
  const { requested_host: _forced, ...hints } = instance.schedulerHints ?? {};
  return { ...instance, schedulerHints: host ? { ...hints, requested_host: host } : hints };
}

/**
 * Nova's conductor for builds: schedules each instance, claims its resources on the chosen node (the
 * next candidate when a concurrent build took the room), records the host and hands the build to the
 * host's compute agent. A build that failed on a host comes back here with that host excluded, at most
 * MAX_BUILD_ATTEMPTS times in all.
 */
@BusConsumer(CONDUCTOR_QUEUE)
@Injectable()
export class ConductorService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = rootLogger().child({ service: 'conductor' });
  private readonly heartbeats: ServiceHeartbeat[];
  private readonly groupTurns = new Map<string, Promise<void>>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly records: InstanceRecords,
    private readonly scheduler: Scheduler,
    private readonly rpc: ComputeRpcClient,
    @Inject(NOVUM_CONFIG) private readonly config: NovumConfig,
  ) {
    this.heartbeats = [Binary.CONDUCTOR, Binary.SCHEDULER].map(
      (binary) => new ServiceHeartbeat(dataSource, config.host, binary, config.reportIntervalSeconds),
    );
  }

  async onApplicationBootstrap(): Promise<void> {
    for (const heartbeat of this.heartbeats) await heartbeat.start();
  }

  async onModuleDestroy(): Promise<void> {
    for (const heartbeat of this.heartbeats) await heartbeat.stop();
  }

  @RpcMethod(ConductorMethod.BUILD_INSTANCES)
  async buildInstances(payload: unknown): Promise<void> {
    const request = checkRequest.buildInstances(payload);
    // One view of the hosts for the whole request: a multi-create of 50 reads the hosts once, not 50 times.
    const snapshot = this.scheduler.snapshot();
    await Promise.all(request.instanceUuids.map((uuid) => this.buildOne(uuid, request, snapshot)));
  }

  /**
   * Nova's migrate_server (not live), a call: schedules the instance with the new flavor (a resize) or its
   * own (a cold migration, never to its own host; a resize only with NOVUM_ALLOW_RESIZE_TO_SAME_HOST),
   * claims it on the destination under a new migration id while the source keeps its claim, records the
   * migration in system_metadata and casts `resize_instance` to the destination. No host: the task ends,
   * a fault is recorded and the caller gets 400 No valid host (as Nova's API answers).
   */
  @RpcMethod(ConductorMethod.MIGRATE_SERVER)
  async migrateServer(payload: unknown): Promise<{ migrationId: string } | null> {
    const request = checkRequest.migrateServer(payload);
    const instance = await this.records.get(request.instanceUuid);
    if (!instance || instance.deletedAt || !instance.host) return null;
    if (instance.taskState !== TaskState.RESIZE_PREP) return null;
    const meta = instance.systemMetadata;
    if (meta.migration_id) {
      // A redelivered request after the claim: the destination's agent is idempotent.
      await this.rpc.resizeInstance(meta.migration_dest_host, {
        ...this.scoped(request),
        migrationId: meta.migration_id,
      });
      return { migrationId: meta.migration_id };
    }
    const action = request.flavor ? 'resize' : 'migrate';
    const eventId = await this.records.startEvent(
      instance.uuid,
      request.requestId,
      'conductor_migrate_server',
      this.config.host,
      action,
    );
    try {
      const migrationId = await this.placeMigration(instance, request);
      await this.records.finishEvent(eventId);
      return migrationId ? { migrationId } : null;
    } catch (error) {
      if (!(error instanceof BuildFailure))
        this.log.error({ err: error, instance: instance.uuid }, 'migration failed');
      await this.records.finishEvent(eventId, error);
      await this.records.update(
        instance.uuid,
        { taskState: null },
        { taskState: [TaskState.RESIZE_PREP] },
        { code: 500, message: errorMessage(error) },
      );
      throw new BadRequestError(errorMessage(error));
    }
  }

  private async placeMigration(
    instance: InstanceEntity,
    request: MigrateServerRequest,
  ): Promise<string | undefined> {
    const flavor = request.flavor ?? instance.flavor;
    const excluded = !request.flavor || !this.config.allowResizeToSameHost ? [instance.host!] : [];
    const migrationId = randomUUID();
    const resources = resourcesOf(flavor);
    for (const { node } of await this.scheduler.select(withDestination({ ...instance, flavor }), excluded)) {
      if (!(await claim(this.dataSource, migrationId, node.uuid, resources))) continue;
      const recorded = await this.records.update(
        instance.uuid,
        {
          systemMetadata: {
            ...instance.systemMetadata,
            old_vm_state: instance.vmState,
            migration_id: migrationId,
            migration_source_host: instance.host!,
            migration_source_node: instance.node ?? instance.host!,
            migration_dest_host: node.host,
            migration_dest_node: node.hypervisorHostname,
            old_flavor: JSON.stringify(instance.flavor),
            new_flavor: JSON.stringify(flavor),
          },
        },
        { taskState: [TaskState.RESIZE_PREP], host: instance.host },
      );
      if (!recorded) {
        await release(this.dataSource, migrationId);
        return undefined;
      }
      await recordMigration(this.dataSource, {
        uuid: migrationId,
        instance,
        type: request.flavor ? 'resize' : 'migration',
        newFlavor: flavor,
        destHost: node.host,
        destNode: node.hypervisorHostname,
      });
      await this.rpc.resizeInstance(node.host, { ...this.scoped(request), migrationId });
      return migrationId;
    }
    throw new BuildFailure(NO_VALID_HOST);
  }

  /**
   * Nova's rebuild_instance with a recreate (evacuate): the instance's host is down, so it is scheduled
   * elsewhere (never its own host; the admin's `host` when named, if it passes the filters), claimed there
   * under a migration id, moved (host, node, the claim: the source's is freed), recorded as an `evacuation`
   * migration (`accepted`; the destination's agent makes it `done`, the source's agent `completed` once it
   * has destroyed the guest left there) and rebuilt by the destination's agent from the instance's image. No
   * host: the instance goes to ERROR with the No valid host fault and the migration to `error`, as Nova's.
   */
  @RpcMethod(ConductorMethod.EVACUATE_SERVER)
  async evacuateServer(payload: unknown): Promise<void> {
    const request = checkRequest.evacuateServer(payload);
    const instance = await this.records.get(request.instanceUuid);
    if (!instance || instance.deletedAt || !instance.host) return;
    if (instance.taskState !== TaskState.REBUILDING) return;
    const eventId = await this.records.startEvent(
      instance.uuid,
      request.requestId,
      'conductor_rebuild_server',
      this.config.host,
      'evacuate',
    );
    const migrationId = randomUUID();
    try {
      const source = instance.host;
      const candidates = await this.scheduler.select(withDestination(instance, request.host), [source]);
      for (const { node } of candidates) {
        if (!(await claim(this.dataSource, migrationId, node.uuid, resourcesOf(instance.flavor)))) continue;
        const moved = await this.records.update(
          instance.uuid,
          { host: node.host, node: node.hypervisorHostname },
          { taskState: [TaskState.REBUILDING], host: source },
        );
        if (!moved) {
          await release(this.dataSource, migrationId);
          await this.records.finishEvent(eventId);
          return;
        }
        await recordMigration(this.dataSource, {
          uuid: migrationId,
          instance,
          type: 'evacuation',
          status: 'accepted',
          newFlavor: instance.flavor,
          destHost: node.host,
          destNode: node.hypervisorHostname,
        });
        await confirmMigrationClaim(this.dataSource, instance.uuid, migrationId);
        await this.records.finishEvent(eventId);
        await this.rpc.rebuildInstance(node.host, {
          ...this.scoped(request),
          ...(request.adminPassword ? { adminPassword: request.adminPassword } : {}),
        });
        return;
      }
      throw new BuildFailure(NO_VALID_HOST);
    } catch (error) {
      if (!(error instanceof BuildFailure))
        this.log.error({ err: error, instance: instance.uuid }, 'evacuation failed');
      await this.records.finishEvent(eventId, error);
      await recordMigration(this.dataSource, {
        uuid: migrationId,
        instance,
        type: 'evacuation',
        status: 'error',
        newFlavor: instance.flavor,
        destHost: null,
        destNode: null,
      }).catch(() => setMigrationStatus(this.dataSource, migrationId, 'error'));
      await this.records.update(
        instance.uuid,
        { vmState: VmState.ERROR, taskState: null },
        { taskState: [TaskState.REBUILDING] },
        { code: 500, message: errorMessage(error) },
      );
    }
  }

  /**
   * Nova's live_migrate_instance and LiveMigrationTask (a call, task_state `migrating`): the destination is
   * the admin's `host` (through the scheduler's filters, or straight to it with `force`) or the scheduler's
   * pick, never the instance's own host; it is claimed under a new migration id (the source keeps its claim
   * until the guest has moved), the `live-migration` migration is recorded `accepted`, the destination's
   * agent checks that its driver can take the guest (a scheduled host that cannot is skipped), and the
   * source's agent gets the work (`live_migration`). A pre-check failure ends the task with a fault, the
   * migration `error`, and rejects with Nova's 400.
   */
  @RpcMethod(ConductorMethod.LIVE_MIGRATE_INSTANCE)
  async liveMigrateInstance(payload: unknown): Promise<{ migrationId: string } | null> {
    const request = checkRequest.liveMigrateInstance(payload);
    const instance = await this.records.get(request.instanceUuid);
    if (!instance || instance.deletedAt || !instance.host) return null;
    if (instance.taskState !== TaskState.MIGRATING) return null;
    const eventId = await this.records.startEvent(
      instance.uuid,
      request.requestId,
      'conductor_live_migrate_instance',
      this.config.host,
      'live-migration',
    );
    const migrationId = randomUUID();
    const source = instance.host;
    let recorded = false;
    try {
      if (request.host === source) {
        throw new BuildFailure(`Unable to migrate instance (${instance.uuid}) to current host (${source}).`);
      }
      const candidates =
        request.host && request.force
          ? (await this.dataSource.getRepository(ComputeNodeEntity).findBy({ host: request.host })).map(
              (node) => ({ node }),
            )
          : await this.scheduler.select(withDestination(instance, request.host), [source]);
      let lastRefusal: unknown;
      for (const { node } of candidates) {
        if (!(await claim(this.dataSource, migrationId, node.uuid, resourcesOf(instance.flavor)))) continue;
        if (!recorded) {
          await recordMigration(this.dataSource, {
            uuid: migrationId,
            instance,
            type: 'live-migration',
            status: 'accepted',
            newFlavor: instance.flavor,
            destHost: node.host,
            destNode: node.hypervisorHostname,
          });
          recorded = true;
        } else {
          await this.dataSource
            .getRepository(MigrationEntity)
            .update({ uuid: migrationId }, { destCompute: node.host, destNode: node.hypervisorHostname });
        }
        try {
          await this.rpc.liveMigrationDestination(
            node.host,
            { ...this.scoped(request), migrationId, step: 'check' },
            30_000,
          );
        } catch (error) {
          await release(this.dataSource, migrationId);
          lastRefusal = error;
          if (request.host) throw error;
          continue;
        }
        await this.rpc.liveMigration(source, { ...this.scoped(request), migrationId });
        await this.records.finishEvent(eventId);
        return { migrationId };
      }
      if (lastRefusal) throw lastRefusal;
      throw new BuildFailure(NO_VALID_HOST);
    } catch (error) {
      if (!(error instanceof BuildFailure))
        this.log.warn({ err: error, instance: instance.uuid }, 'live migration pre-check failed');
      await this.records.finishEvent(eventId, error);
      if (recorded) await setMigrationStatus(this.dataSource, migrationId, 'error');
      else {
        await recordMigration(this.dataSource, {
          uuid: migrationId,
          instance,
          type: 'live-migration',
          status: 'error',
          newFlavor: instance.flavor,
          destHost: request.host ?? null,
          destNode: null,
        }).catch(() => undefined);
      }
      await this.records.update(
        instance.uuid,
        { taskState: null },
        { taskState: [TaskState.MIGRATING] },
        { code: 400, message: errorMessage(error) },
      );
      throw new BadRequestError(errorMessage(error));
    }
  }

  /**
   * Nova's unshelve_instance: a `shelved` instance (still on its host) is simply started; an offloaded one
   * is scheduled, claimed and handed to its new host's agent (`unshelve_instance`). No host: the task
   * ends with the No valid host fault, still `shelved_offloaded`.
   */
  @RpcMethod(ConductorMethod.UNSHELVE_INSTANCE)
  async unshelveInstance(payload: unknown): Promise<void> {
    const request = checkRequest.instance(payload, ConductorMethod.UNSHELVE_INSTANCE);
    const instance = await this.records.get(request.instanceUuid);
    if (!instance || instance.deletedAt || instance.taskState !== TaskState.UNSHELVING) return;
    if (instance.vmState === VmState.SHELVED && instance.host) {
      const rest = Object.fromEntries(
        Object.entries(instance.systemMetadata).filter(([key]) => !key.startsWith('shelved_')),
      );
      const set = await this.records.update(
        instance.uuid,
        { taskState: TaskState.POWERING_ON, systemMetadata: rest },
        { taskState: [TaskState.UNSHELVING], vmState: [VmState.SHELVED] },
      );
      if (set) await this.rpc.instanceAction(instance.host, 'start_instance', this.scoped(request));
      return;
    }
    if (instance.vmState !== VmState.SHELVED_OFFLOADED) return;
    if (instance.host) {
      await this.rpc.unshelveOnHost(instance.host, this.scoped(request));
      return;
    }
    const eventId = await this.records.startEvent(
      instance.uuid,
      request.requestId,
      'conductor_unshelve_instance',
      this.config.host,
      'unshelve',
    );
    try {
      for (const { node } of await this.scheduler.select(instance, [])) {
        if (!(await claim(this.dataSource, instance.uuid, node.uuid, resourcesOf(instance.flavor)))) continue;
        const recorded = await this.records.update(
          instance.uuid,
          { host: node.host, node: node.hypervisorHostname },
          { taskState: [TaskState.UNSHELVING], vmState: [VmState.SHELVED_OFFLOADED], host: null },
        );
        if (!recorded) {
          await release(this.dataSource, instance.uuid);
          await this.records.finishEvent(eventId);
          return;
        }
        await this.records.finishEvent(eventId);
        await this.rpc.unshelveOnHost(node.host, this.scoped(request));
        return;
      }
      throw new BuildFailure(NO_VALID_HOST);
    } catch (error) {
      if (!(error instanceof BuildFailure))
        this.log.error({ err: error, instance: instance.uuid }, 'unshelve failed');
      await this.records.finishEvent(eventId, error);
      await this.records.update(
        instance.uuid,
        { taskState: null },
        { taskState: [TaskState.UNSHELVING], host: null },
        { code: 500, message: errorMessage(error) },
      );
    }
  }

  private scoped(request: InstanceRequest): InstanceRequest {
    return { instanceUuid: request.instanceUuid, requestId: request.requestId };
  }

  private async buildOne(
    uuid: string,
    request: BuildInstancesRequest,
    snapshot: HostSnapshot,
  ): Promise<void> {
    const instance = await this.records.get(uuid);
    if (!instance || instance.deletedAt || instance.vmState !== VmState.BUILDING) return;
    if (instance.taskState !== TaskState.SCHEDULING) return;
    const attempt = request.attempt ?? 1;
    const excludedHosts = request.excludedHosts ?? [];
    if (instance.host) {
      // A redelivered request after the claim: the host's agent is idempotent, so hand it over again.
      await this.handOver(instance, instance.host, instance.node!, request, attempt, excludedHosts);
      return;
    }
    const eventId = await this.records.startEvent(
      uuid,
      request.requestId,
      SCHEDULE_EVENT,
      this.config.host,
      'create',
    );
    try {
      if (attempt > MAX_BUILD_ATTEMPTS) {
        throw new BuildFailure(
          `Exceeded maximum number of retries. Exceeded max scheduling attempts ${MAX_BUILD_ATTEMPTS} ` +
            `for instance ${uuid}. Last exception: ${request.lastFault ?? 'unknown'}`,
        );
      }
      const placed = await this.place(instance, excludedHosts, snapshot);
      if (!placed) throw new BuildFailure(NO_VALID_HOST);
      if (placed === 'gone') {
        await this.records.finishEvent(eventId);
        return;
      }
      await this.records.finishEvent(eventId);
      await this.handOver(instance, placed.host, placed.node, request, attempt, excludedHosts);
    } catch (error) {
      if (!(error instanceof BuildFailure)) this.log.error({ err: error, instance: uuid }, 'build failed');
      await this.records.finishEvent(eventId, error);
      await this.setError(uuid, errorMessage(error));
    }
  }

  /**
   * Members of one server group are placed one after the other, each seeing where the previous ones went
   * (several conductors can still race; the agent's late policy check catches that, as in Nova).
   */
  private place(instance: InstanceEntity, excludedHosts: readonly string[], snapshot: HostSnapshot) {
    const group = instance.schedulerHints?.group;
    if (!group) return this.placeNow(instance, excludedHosts, snapshot);
    const previous = this.groupTurns.get(group) ?? Promise.resolve();
    const mine = previous.then(() => this.placeNow(instance, excludedHosts, snapshot));
    const settled = mine.then(
      () => undefined,
      () => undefined,
    );
    this.groupTurns.set(group, settled);
    void settled.then(() => {
      if (this.groupTurns.get(group) === settled) this.groupTurns.delete(group);
    });
    return mine;
  }

  /** Claims on the best host that still has room; 'gone' when the instance was deleted meanwhile. */
  private async placeNow(
    instance: InstanceEntity,
    excludedHosts: readonly string[],
    snapshot: HostSnapshot,
  ): Promise<{ host: string; node: string } | 'gone' | undefined> {
    const resources = resourcesOf(instance.flavor);
    for (const candidate of await this.scheduler.select(instance, excludedHosts, snapshot)) {
      const { node } = candidate;
      if (!(await claim(this.dataSource, instance.uuid, node.uuid, resources))) continue;
      const recorded = await this.records.update(
        instance.uuid,
        { host: node.host, node: node.hypervisorHostname },
        { vmState: [VmState.BUILDING], taskState: [TaskState.SCHEDULING], host: null },
      );
      if (!recorded) {
        await release(this.dataSource, instance.uuid);
        return 'gone';
      }
      return { host: node.host, node: node.hypervisorHostname };
    }
    return undefined;
  }

  private async handOver(
    instance: InstanceEntity,
    host: string,
    node: string,
    request: BuildInstancesRequest,
    attempt: number,
    excludedHosts: string[],
  ): Promise<void> {
    await this.rpc.buildAndRunInstance(host, {
      instanceUuid: instance.uuid,
      requestId: request.requestId,
      node,
      attempt,
      excludedHosts,
      adminPassword: request.adminPassword,
    });
  }

  private async setError(uuid: string, message: string): Promise<void> {
    await this.records.update(
      uuid,
      { vmState: VmState.ERROR, taskState: null },
      { vmState: [VmState.BUILDING], taskState: [TaskState.SCHEDULING] },
      { code: 500, message },
    );
  }
}
