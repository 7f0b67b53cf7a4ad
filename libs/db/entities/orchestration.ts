import { Column, Entity, Index, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { booleanTransformer, isoTimestamp } from '../columns';

/**
 * A Heat stack: its template, environment and parameters as given, its state (Heat's action + status),
 * its owner, and the credential the engine acts with on the owner's behalf. Deleted stacks stay as rows
 * with `deleted_at` set (`show_deleted`).
 */
@Entity('heat_stack')
@Index(['projectId', 'name'])
@Index(['ownerId'])
export class HeatStackEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ type: 'varchar', length: 255 }) name: string;
  @Column({ name: 'project_id', type: 'varchar', length: 64 }) projectId: string;
  @Column({ name: 'user_id', type: 'varchar', length: 64 }) userId: string;
  @Column({ type: 'varchar', length: 255 }) username: string;
  /** CREATE, UPDATE, DELETE, ROLLBACK, ... */
  @Column({ type: 'varchar', length: 32 }) action: string;
  /** IN_PROGRESS, COMPLETE, FAILED. */
  @Column({ type: 'varchar', length: 32 }) status: string;
  @Column({ name: 'status_reason', type: 'text' }) statusReason: string;
  @Column({ type: 'simple-json' }) template: Record<string, unknown>;
  @Column({ type: 'simple-json' }) environment: Record<string, unknown>;
  @Column({ type: 'simple-json' }) files: Record<string, string>;
  @Column({ name: 'timeout_mins', type: 'integer', nullable: true }) timeoutMins: number | null;
  @Column({ name: 'disable_rollback', type: 'boolean', transformer: booleanTransformer })
  disableRollback: boolean;
  @Column({ type: 'simple-json' }) tags: string[];
  /**
   * How the engine authenticates as the owner: an application credential (id + secret) or, failing that, a
   * token; sealed (AES-256-GCM under the auth encryption key) as `{ sealed }`, never kept in clear.
   */
  @Column({ type: 'simple-json' }) credential: Record<string, string>;
  /** The parent stack of a nested stack (a template resource's, a group's, an OS::Heat::Stack's); null at top. */
  @Column({ name: 'owner_id', type: 'varchar', length: 36, nullable: true }) ownerId: string | null;
  /** 0 for a top-level stack, its parent's plus one for a nested one. */
  @Column({ name: 'nested_depth', type: 'integer', default: 0 }) nestedDepth: number;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp, nullable: true }) updatedAt: string | null;
  @Column({ name: 'deleted_at', ...isoTimestamp, nullable: true }) deletedAt: string | null;
}

/** One resource of a stack, with the properties it was last created or updated with and its attributes. */
@Entity('heat_resource')
@Index(['stackId'])
export class HeatResourceEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ name: 'stack_id', type: 'varchar', length: 36 }) stackId: string;
  @Column({ type: 'varchar', length: 255 }) name: string;
  @Column({ type: 'varchar', length: 255 }) type: string;
  @Column({ name: 'physical_id', type: 'varchar', length: 255, nullable: true }) physicalId: string | null;
  @Column({ type: 'varchar', length: 32 }) action: string;
  @Column({ type: 'varchar', length: 32 }) status: string;
  @Column({ name: 'status_reason', type: 'text' }) statusReason: string;
  @Column({ type: 'simple-json' }) properties: Record<string, unknown>;
  /** What the resource type keeps to answer get_attr and to delete what it made (secrets excluded from views). */
  @Column({ type: 'simple-json' }) data: Record<string, unknown>;
  @Column({ type: 'simple-json' }) metadata: Record<string, unknown>;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp, nullable: true }) updatedAt: string | null;
}

/** A state change of a stack or one of its resources (`openstack stack event list`), in order of `seq`. */
@Entity('heat_event')
@Index(['stackId', 'seq'])
export class HeatEventEntity {
  @PrimaryGeneratedColumn() seq: number;
  @Column({ type: 'varchar', length: 36, unique: true }) id: string;
  @Column({ name: 'stack_id', type: 'varchar', length: 36 }) stackId: string;
  @Column({ name: 'resource_name', type: 'varchar', length: 255 }) resourceName: string;
  @Column({ name: 'physical_resource_id', type: 'varchar', length: 255, nullable: true }) physicalResourceId:
    string | null;
  @Column({ name: 'resource_type', type: 'varchar', length: 255 }) resourceType: string;
  @Column({ type: 'varchar', length: 32 }) action: string;
  @Column({ type: 'varchar', length: 32 }) status: string;
  @Column({ name: 'status_reason', type: 'text' }) statusReason: string;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
}

/**
 * A stack snapshot (Heat's `snapshot` table): the stack's abandon data when it was taken, with what each
 * resource's snapshot made (a server's image id), for a restore; CREATE or DELETE × IN_PROGRESS, COMPLETE, FAILED.
 */
@Entity('heat_snapshot')
@Index(['stackId'])
export class HeatSnapshotEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ name: 'stack_id', type: 'varchar', length: 36 }) stackId: string;
  @Column({ type: 'varchar', length: 255, nullable: true }) name: string | null;
  @Column({ name: 'project_id', type: 'varchar', length: 64 }) projectId: string;
  @Column({ type: 'varchar', length: 32 }) action: string;
  @Column({ type: 'varchar', length: 32 }) status: string;
  @Column({ name: 'status_reason', type: 'text', nullable: true }) statusReason: string | null;
  @Column({ type: 'simple-json', nullable: true }) data: Record<string, unknown> | null;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp, nullable: true }) updatedAt: string | null;
}

/**
 * A running orchestration engine (Heat's `service` table, `openstack orchestration service list`): it reports
 * every few seconds; one that stopped reporting, or whose process on this machine is gone, is dead, and the
 * stacks it held are failed by the engines still alive.
 */
@Entity('heat_service')
export class HeatServiceEntity {
  /** The engine id (Heat's engine_id): new at every start. */
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ type: 'varchar', length: 255 }) hostname: string;
  @Column({ type: 'integer' }) pid: number;
  @Column({ name: 'report_interval', type: 'integer' }) reportInterval: number;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp }) updatedAt: string;
}

/** Heat's stack_lock: the engine running an action on a top-level stack (its nested stacks go with it). */
@Entity('heat_stack_lock')
export class HeatStackLockEntity {
  @PrimaryColumn({ name: 'stack_id', type: 'varchar', length: 36 }) stackId: string;
  @Column({ name: 'engine_id', type: 'varchar', length: 36 }) engineId: string;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
}

export const ORCHESTRATION_ENTITIES = [
  HeatStackEntity,
  HeatResourceEntity,
  HeatEventEntity,
  HeatSnapshotEntity,
  HeatServiceEntity,
  HeatStackLockEntity,
];
