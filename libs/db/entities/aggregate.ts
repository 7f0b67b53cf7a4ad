import { Column, Entity, Index, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { booleanTransformer, isoTimestamp } from '../columns';

/**
 * A host aggregate (Nova's `aggregates`): a named group of compute hosts with metadata. The metadata key
 * `availability_zone` makes it an availability zone; the API shows it as the aggregate's field too.
 */
@Entity('aggregate')
export class AggregateEntity {
  @PrimaryGeneratedColumn() id: number;
  @Column({ type: 'varchar', length: 36, unique: true }) uuid: string;
  @Column({ type: 'varchar', length: 255, unique: true }) name: string;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp, nullable: true }) updatedAt: string | null;
}

/** A compute host in an aggregate (by service host name, as in Nova). */
@Entity('aggregate_host')
@Index(['host'])
export class AggregateHostEntity {
  @PrimaryColumn({ name: 'aggregate_id', type: 'integer' }) aggregateId: number;
  @PrimaryColumn({ type: 'varchar', length: 255 }) host: string;
}

/** One metadata item of an aggregate. */
@Entity('aggregate_metadata')
@Index(['key'])
export class AggregateMetadataEntity {
  @PrimaryColumn({ name: 'aggregate_id', type: 'integer' }) aggregateId: number;
  @PrimaryColumn({ type: 'varchar', length: 255 }) key: string;
  @Column({ type: 'varchar', length: 255 }) value: string;
}

/**
 * A move of an instance between hosts (Nova's `migrations`): resize, cold and live migration, evacuation.
 * Written by the compute services that move servers; listed by `GET /os-migrations`.
 */
@Entity('migration')
@Index(['instanceUuid'])
export class MigrationEntity {
  @PrimaryGeneratedColumn() id: number;
  @Column({ type: 'varchar', length: 36, unique: true }) uuid: string;
  @Column({ name: 'instance_uuid', type: 'varchar', length: 36 }) instanceUuid: string;
  /** `migration`, `resize`, `live-migration` or `evacuation`. */
  @Column({ name: 'migration_type', type: 'varchar', length: 32 }) migrationType: string;
  /** Nova's migration statuses: `pre-migrating`, `migrating`, `finished`, `confirmed`, `reverted`, `error`, ... */
  @Column({ type: 'varchar', length: 255 }) status: string;
  @Index() @Column({ name: 'source_compute', type: 'varchar', length: 255, nullable: true }) sourceCompute:
    string | null;
  @Column({ name: 'source_node', type: 'varchar', length: 255, nullable: true }) sourceNode: string | null;
  @Index() @Column({ name: 'dest_compute', type: 'varchar', length: 255, nullable: true }) destCompute:
    string | null;
  @Column({ name: 'dest_node', type: 'varchar', length: 255, nullable: true }) destNode: string | null;
  @Column({ name: 'dest_host', type: 'varchar', length: 255, nullable: true }) destHost: string | null;
  /** Nova's flavor ids (`instance_types.id`); here the flavors' internal ids. */
  @Column({ name: 'old_instance_type_id', type: 'integer', nullable: true }) oldInstanceTypeId: number | null;
  @Column({ name: 'new_instance_type_id', type: 'integer', nullable: true }) newInstanceTypeId: number | null;
  @Column({ name: 'user_id', type: 'varchar', length: 64, nullable: true }) userId: string | null;
  @Column({ name: 'project_id', type: 'varchar', length: 64, nullable: true }) projectId: string | null;
  @Column({ type: 'boolean', transformer: booleanTransformer }) hidden: boolean;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp, nullable: true }) updatedAt: string | null;
}

/**
 * The integer id of a compute node, which the hypervisors API shows below 2.53 (Nova's `compute_nodes.id`).
 * Given on first sight, in order, so ids are stable and page in creation order.
 */
@Entity('compute_node_id')
export class ComputeNodeIdEntity {
  @PrimaryGeneratedColumn() id: number;
  @Column({ name: 'node_uuid', type: 'varchar', length: 36, unique: true }) nodeUuid: string;
}

export const AGGREGATE_ENTITIES = [
  AggregateEntity,
  AggregateHostEntity,
  AggregateMetadataEntity,
  MigrationEntity,
  ComputeNodeIdEntity,
];
