import { DataSource } from 'typeorm';
import { FlavorEntity, InstanceEntity, InstanceFlavor, MigrationEntity, nowIso } from '@novum/db';

/** Nova's migration statuses as this control plane moves through them. */
export type MigrationStatus =
  | 'pre-migrating'
  | 'migrating'
  | 'finished'
  | 'confirmed'
  | 'reverted'
  | 'error'
  // An evacuation's: accepted (the destination claimed), done (rebuilt there), failed, and completed once
  // the source host, back up, has destroyed what was left of the guest there.
  | 'accepted'
  | 'done'
  | 'failed'
  | 'completed'
  // A live migration's: queued (the source has it), preparing (the destination makes the guest), running
  // (the copy), then completed, or failed (the copy) / error (before it), the guest still on its source.
  | 'queued'
  | 'preparing'
  | 'running';

async function flavorInternalId(dataSource: DataSource, flavor: InstanceFlavor): Promise<number | null> {
  const row = await dataSource.getRepository(FlavorEntity).findOneBy({ id: flavor.id });
  return row?.internalId ?? null;
}

/**
 * The `migration` row of a resize or cold migration (what os-migrations lists), written by the conductor
 * once the destination is claimed; its uuid is the migration id of the claim.
 */
export async function recordMigration(
  dataSource: DataSource,
  migration: {
    uuid: string;
    instance: InstanceEntity;
    type: 'resize' | 'migration' | 'evacuation' | 'live-migration';
    status?: MigrationStatus;
    newFlavor: InstanceFlavor;
    destHost: string | null;
    destNode: string | null;
  },
): Promise<void> {
  const { instance } = migration;
  const now = nowIso();
  await dataSource.getRepository(MigrationEntity).insert({
    uuid: migration.uuid,
    instanceUuid: instance.uuid,
    migrationType: migration.type,
    status: migration.status ?? 'pre-migrating',
    sourceCompute: instance.host,
    sourceNode: instance.node,
    destCompute: migration.destHost,
    destNode: migration.destNode,
    destHost: migration.destHost ? '127.0.0.1' : null,
    oldInstanceTypeId: await flavorInternalId(dataSource, instance.flavor),
    newInstanceTypeId: await flavorInternalId(dataSource, migration.newFlavor),
    userId: instance.userId,
    projectId: instance.projectId,
    hidden: false,
    createdAt: now,
    updatedAt: now,
  });
}

/** Moves a migration on; one that does not exist (a migration of an older release) is left alone. */
export async function setMigrationStatus(
  dataSource: DataSource,
  uuid: string | undefined,
  status: MigrationStatus,
): Promise<void> {
  if (!uuid) return;
  await dataSource.getRepository(MigrationEntity).update({ uuid }, { status, updatedAt: nowIso() });
}
