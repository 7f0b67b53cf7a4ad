import { DataSource, EntityManager } from 'typeorm';
import { AllocationEntity, ComputeNodeEntity, InstanceFlavor, inTransaction, nowIso } from '@novum/db';

export interface Resources {
  vcpus: number;
  memoryMb: number;
  diskGb: number;
}

/** What a flavor takes on a host: root + ephemeral + swap rounded up to whole GB, as Nova's resource tracker. */
export function resourcesOf(flavor: InstanceFlavor): Resources {
  return {
    vcpus: flavor.vcpus,
    memoryMb: flavor.memory_mb,
    diskGb: flavor.root_gb + flavor.ephemeral_gb + Math.ceil(flavor.swap / 1024),
  };
}

/** Room left on a node under its allocation ratios. */
export function freeResources(node: ComputeNodeEntity): Resources {
  return {
    vcpus: Math.floor(node.vcpus * node.cpuAllocationRatio) - node.vcpusUsed,
    memoryMb: Math.floor(node.memoryMb * node.ramAllocationRatio) - node.memoryMbUsed,
    diskGb: Math.floor(node.localGb * node.diskAllocationRatio) - node.localGbUsed,
  };
}

const whole = (n: number) => {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`A claim needs whole, non-negative amounts, not ${n}`);
  return n;
};

/** Nova's placement semantics: used + requested <= total * ratio, for every resource, in one statement. */
async function addUsage(manager: EntityManager, nodeUuid: string, r: Resources, sign: 1 | -1) {
  const [v, m, d] = [whole(r.vcpus), whole(r.memoryMb), whole(r.diskGb)];
  const op = sign > 0 ? '+' : '-';
  const update = manager
    .createQueryBuilder()
    .update(ComputeNodeEntity)
    .set({
      vcpusUsed: () => `vcpus_used ${op} ${v}`,
      memoryMbUsed: () => `memory_mb_used ${op} ${m}`,
      localGbUsed: () => `local_gb_used ${op} ${d}`,
    })
    .where('uuid = :nodeUuid', { nodeUuid });
  if (sign > 0) {
    update
      .andWhere(`vcpus_used + ${v} <= vcpus * cpu_allocation_ratio`)
      .andWhere(`memory_mb_used + ${m} <= memory_mb * ram_allocation_ratio`)
      .andWhere(`local_gb_used + ${d} <= local_gb * disk_allocation_ratio`);
  }
  const result = await update.execute();
  return (result.affected ?? 0) > 0;
}

/**
 * Claims `resources` on a node for a consumer (an instance, or a migration: the destination claim of a
 * resize is keyed by the migration id, as Nova's placement consumers), atomically: the node's counters grow only if the node
 * does not overflow, and the allocation row is written in the same transaction. On PostgreSQL the
 * conditional UPDATE locks the node's row, so concurrent claims re-check against each other's totals; on
 * SQLite transactions take turns. An instance holds at most one claim: claiming again on the node it
 * already holds succeeds without claiming twice (a redelivered build), on another node it fails.
 */
export function claim(
  dataSource: DataSource,
  instanceUuid: string,
  nodeUuid: string,
  resources: Resources,
): Promise<boolean> {
  return inTransaction(dataSource, async (manager) => {
    const existing = await manager.findOneBy(AllocationEntity, { instanceUuid });
    if (existing) return existing.nodeUuid === nodeUuid;
    if (!(await addUsage(manager, nodeUuid, resources, 1))) return false;
    await manager.insert(AllocationEntity, {
      instanceUuid,
      nodeUuid,
      vcpus: resources.vcpus,
      memoryMb: resources.memoryMb,
      diskGb: resources.diskGb,
      createdAt: nowIso(),
    });
    return true;
  });
}

/** Frees an instance's claim; a second release (or one without a claim) changes nothing. */
export function release(dataSource: DataSource, instanceUuid: string): Promise<boolean> {
  return inTransaction(dataSource, async (manager) => {
    const allocation = await manager.findOneBy(AllocationEntity, { instanceUuid });
    if (!allocation) return false;
    const deleted = await manager.delete(AllocationEntity, { instanceUuid });
    if (!deleted.affected) return false;
    await addUsage(manager, allocation.nodeUuid, allocation, -1);
    return true;
  });
}

/**
 * A resize's confirmation: the instance's old claim (on the source) is freed and the migration's claim (the
 * new flavor on the destination, keyed by the migration id) becomes the instance's, in one transaction.
 * Idempotent: without a migration claim nothing changes.
 */
export function confirmMigrationClaim(
  dataSource: DataSource,
  instanceUuid: string,
  migrationId: string,
): Promise<boolean> {
  return inTransaction(dataSource, async (manager) => {
    const moving = await manager.findOneBy(AllocationEntity, { instanceUuid: migrationId });
    if (!moving) return false;
    const old = await manager.findOneBy(AllocationEntity, { instanceUuid });
    if (old) {
      await manager.delete(AllocationEntity, { instanceUuid });
      await addUsage(manager, old.nodeUuid, old, -1);
    }
    await manager.update(AllocationEntity, { instanceUuid: migrationId }, { instanceUuid });
    return true;
  });
}

/** Sets a node's used counters to the sum of its allocations (an agent at start heals any drift). */
export function recomputeUsage(dataSource: DataSource, nodeUuid: string): Promise<void> {
  return inTransaction(dataSource, async (manager) => {
    const lock = manager.createQueryBuilder(ComputeNodeEntity, 'node').where('node.uuid = :nodeUuid', {
      nodeUuid,
    });
    if (dataSource.options.type === 'postgres') lock.setLock('pessimistic_write');
    if (!(await lock.getOne())) return;
    const sums = await manager
      .createQueryBuilder(AllocationEntity, 'a')
      .select('COALESCE(SUM(a.vcpus), 0)', 'vcpus')
      .addSelect('COALESCE(SUM(a.memory_mb), 0)', 'memoryMb')
      .addSelect('COALESCE(SUM(a.disk_gb), 0)', 'diskGb')
      .where('a.node_uuid = :nodeUuid', { nodeUuid })
      .getRawOne<{ vcpus: string | number; memoryMb: string | number; diskGb: string | number }>();
    await manager.update(
      ComputeNodeEntity,
      { uuid: nodeUuid },
      {
        vcpusUsed: Number(sums?.vcpus ?? 0),
        memoryMbUsed: Number(sums?.memoryMb ?? 0),
        localGbUsed: Number(sums?.diskGb ?? 0),
      },
    );
  });
}
