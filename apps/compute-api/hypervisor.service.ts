import { Inject, Injectable } from '@nestjs/common';
import { loadavg, uptime } from 'node:os';
import { In, IsNull, Not } from 'typeorm';
import { BadRequestError, NOVUM_CONFIG, NovumConfig } from '@novum/common';
import { Binary, isServiceUp } from '@novum/compute';
import { ComputeNodeEntity, InstanceEntity } from '@novum/db';
import { HypervisorRow, uptimeText } from './admin-views';
import { ComputeStore } from './compute.store';

/** The hypervisors (compute nodes) with their services, as the hypervisors API lists them. */
@Injectable()
export class HypervisorService {
  constructor(
    private readonly store: ComputeStore,
    @Inject(NOVUM_CONFIG) private readonly config: NovumConfig,
  ) {}

  /**
   * Every node whose compute service exists, in id order (a node whose service was deleted is left out, as
   * in Nova). `pattern` matches hypervisor host names by substring (Nova's LIKE %pattern%).
   */
  async rows(pattern?: string): Promise<HypervisorRow[]> {
    let nodes = await this.store.computeNodes.find({ order: { createdAt: 'ASC', uuid: 'ASC' } });
    if (pattern !== undefined) nodes = nodes.filter((n) => n.hypervisorHostname.includes(pattern));
    if (!nodes.length) return [];
    const ids = await this.integerIds(nodes);
    const services = await this.store.services.findBy({
      binary: Binary.COMPUTE,
      host: In([...new Set(nodes.map((n) => n.host))]),
    });
    const byHost = new Map(services.map((s) => [s.host, s]));
    const workloads = await this.workloads(nodes.map((n) => n.host));
    const now = Date.now();
    const rows: HypervisorRow[] = [];
    for (const node of nodes) {
      const service = byHost.get(node.host);
      if (!service) continue;
      rows.push({
        node,
        id: ids.get(node.uuid)!,
        service,
        up: isServiceUp(service, now, this.config.serviceDownTimeSeconds),
        workload: workloads.get(node.host) ?? 0,
      });
    }
    return rows.sort((a, b) => a.id - b.id);
  }

  /** One hypervisor by its id (an integer below 2.53, the node uuid from 2.53); undefined when none. */
  async find(id: string, uuids: boolean): Promise<HypervisorRow | undefined> {
    const rows = await this.rows();
    return rows.find((r) => (uuids ? r.node.uuid === id : String(r.id) === id));
  }

  /** The live instances on a host (not deleted), as Nova's instance_get_all_by_host. */
  instancesOn(host: string): Promise<InstanceEntity[]> {
    return this.store.dataSource
      .getRepository(InstanceEntity)
      .find({ where: { host, deletedAt: IsNull() }, order: { createdAt: 'ASC', uuid: 'ASC' } });
  }

  /**
   * The host's uptime as `uptime(1)` prints it, or 400 when its compute service is down, as Nova's. The
   * compute agents run on this API's host in the all-in-one cloud, so this host's uptime is theirs.
   */
  uptime(row: HypervisorRow): string {
    if (!row.up)
      throw new BadRequestError(`Compute service of ${row.node.host} is unavailable at this time.`);
    return uptimeText(new Date(), uptime(), loadavg());
  }

  /** The nodes' integer ids, given on first sight (in creation order) and kept. */
  private async integerIds(nodes: ComputeNodeEntity[]): Promise<Map<string, number>> {
    const uuids = nodes.map((n) => n.uuid);
    let known = await this.store.computeNodeIds.findBy({ nodeUuid: In(uuids) });
    const seen = new Set(known.map((k) => k.nodeUuid));
    const missing = uuids.filter((uuid) => !seen.has(uuid));
    if (missing.length) {
      // One statement for all the new ones (1,000 hosts registering need not cost 1,000 round trips); one
      // that another request numbered first keeps its id.
      await this.store.computeNodeIds
        .createQueryBuilder()
        .insert()
        .values(missing.map((nodeUuid) => ({ nodeUuid })))
        .orIgnore()
        .execute();
      known = await this.store.computeNodeIds.findBy({ nodeUuid: In(uuids) });
    }
    return new Map(known.map((k) => [k.nodeUuid, k.id]));
  }

  /** Instances per host with a task under way (Nova's `current_workload`). */
  private async workloads(hosts: string[]): Promise<Map<string, number>> {
    const busy = await this.store.dataSource.getRepository(InstanceEntity).find({
      select: { uuid: true, host: true },
      where: { host: In(hosts), taskState: Not(IsNull()), deletedAt: IsNull() },
    });
    const counts = new Map<string, number>();
    for (const i of busy) counts.set(i.host!, (counts.get(i.host!) ?? 0) + 1);
    return counts;
  }
}
