import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { BusConsumer, RpcMethod } from '@novum/bus';
import { NOVUM_CONFIG, NovumConfig, rootLogger } from '@novum/common';
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
  MAX_BUILD_ATTEMPTS,
  NO_VALID_HOST,
  release,
  resourcesOf,
  ServiceHeartbeat,
} from '@novum/compute';
import { InstanceEntity } from '@novum/db';
import { TaskState, VmState } from '@novum/virt';
import { Scheduler } from './scheduler';

/** Nova's conductor event name for the scheduling step of a build. */
const SCHEDULE_EVENT = 'conductor_schedule_and_build_instances';

class BuildFailure extends Error {}

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
    await Promise.all(request.instanceUuids.map((uuid) => this.buildOne(uuid, request)));
  }

  private async buildOne(uuid: string, request: BuildInstancesRequest): Promise<void> {
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
      const placed = await this.place(instance, excludedHosts);
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
  private place(instance: InstanceEntity, excludedHosts: readonly string[]) {
    const group = instance.schedulerHints?.group;
    if (!group) return this.placeNow(instance, excludedHosts);
    const previous = this.groupTurns.get(group) ?? Promise.resolve();
    const mine = previous.then(() => this.placeNow(instance, excludedHosts));
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
  ): Promise<{ host: string; node: string } | 'gone' | undefined> {
    const resources = resourcesOf(instance.flavor);
    for (const candidate of await this.scheduler.select(instance, excludedHosts)) {
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
    const updated = await this.records.update(
      uuid,
      { vmState: VmState.ERROR, taskState: null },
      { vmState: [VmState.BUILDING], taskState: [TaskState.SCHEDULING] },
    );
    if (updated) await this.records.addFault(uuid, { code: 500, message });
  }
}
