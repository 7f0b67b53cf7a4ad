import { Column, Entity, Index, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { booleanTransformer, isoTimestamp } from '../columns';

/**
 * A Nova flavor. `id` is Nova's `flavorid` (the string clients use); `internalId` is Nova's auto-increment
 * key, which orders listings and markers.
 */
@Entity('compute_flavor')
export class FlavorEntity {
  @PrimaryGeneratedColumn({ name: 'internal_id' }) internalId: number;
  @Column({ name: 'flavorid', type: 'varchar', length: 255, unique: true }) id: string;
  @Column({ type: 'varchar', length: 255, unique: true }) name: string;
  @Column({ name: 'memory_mb', type: 'integer' }) memoryMb: number;
  @Column({ type: 'integer' }) vcpus: number;
  @Column({ name: 'root_gb', type: 'integer' }) rootGb: number;
  @Column({ name: 'ephemeral_gb', type: 'integer' }) ephemeralGb: number;
  @Column({ type: 'integer' }) swap: number;
  @Column({ name: 'rxtx_factor', type: 'double precision' }) rxtxFactor: number;
  @Column({ name: 'is_public', type: 'boolean', transformer: booleanTransformer }) isPublic: boolean;
  @Column({ type: 'boolean', transformer: booleanTransformer }) disabled: boolean;
  @Column({ type: 'text', nullable: true }) description: string | null;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp, nullable: true }) updatedAt: string | null;
}

/** One extra spec of a flavor (`hw:cpu_policy`, `novum:driver`, ...). */
@Entity('compute_flavor_extra_spec')
export class FlavorExtraSpecEntity {
  @PrimaryColumn({ name: 'flavor_id', type: 'varchar', length: 255 }) flavorId: string;
  @PrimaryColumn({ type: 'varchar', length: 255 }) key: string;
  @Column({ type: 'varchar', length: 255 }) value: string;
}

/** A project allowed to use a private flavor. */
@Entity('compute_flavor_access')
@Index(['projectId'])
export class FlavorAccessEntity {
  @PrimaryColumn({ name: 'flavor_id', type: 'varchar', length: 255 }) flavorId: string;
  @PrimaryColumn({ name: 'project_id', type: 'varchar', length: 255 }) projectId: string;
}

/** An SSH (or x509) public key of a user; names are unique per user. */
@Entity('compute_key_pair')
@Index(['userId', 'name'], { unique: true })
export class KeyPairEntity {
  @PrimaryGeneratedColumn() id: number;
  @Column({ name: 'user_id', type: 'varchar', length: 255 }) userId: string;
  @Column({ type: 'varchar', length: 255 }) name: string;
  @Column({ type: 'varchar', length: 16 }) type: string;
  @Column({ name: 'public_key', type: 'text' }) publicKey: string;
  @Column({ type: 'varchar', length: 255 }) fingerprint: string;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
}

/** A project's own limit for one resource (absent: the `default` quota class applies). */
@Entity('compute_quota')
export class QuotaEntity {
  @PrimaryColumn({ name: 'project_id', type: 'varchar', length: 255 }) projectId: string;
  @PrimaryColumn({ type: 'varchar', length: 255 }) resource: string;
  @Column({ name: 'hard_limit', type: 'integer' }) hardLimit: number;
}

/** A quota class limit; the `default` class holds the defaults every project starts from. */
@Entity('compute_quota_class')
export class QuotaClassEntity {
  @PrimaryColumn({ name: 'class_name', type: 'varchar', length: 255 }) className: string;
  @PrimaryColumn({ type: 'varchar', length: 255 }) resource: string;
  @Column({ name: 'hard_limit', type: 'integer' }) hardLimit: number;
}

/** A server group: a placement policy for its members. */
@Entity('compute_server_group')
@Index(['projectId'])
export class ServerGroupEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ type: 'varchar', length: 255 }) name: string;
  @Column({ name: 'project_id', type: 'varchar', length: 255 }) projectId: string;
  @Column({ name: 'user_id', type: 'varchar', length: 255 }) userId: string;
  @Column({ type: 'varchar', length: 32 }) policy: string;
  @Column({ type: 'simple-json' }) rules: Record<string, number>;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
}

/** A server in a group (written when servers are built into the group). */
@Entity('compute_server_group_member')
@Index(['instanceUuid'], { unique: true })
export class ServerGroupMemberEntity {
  @PrimaryColumn({ name: 'group_id', type: 'varchar', length: 36 }) groupId: string;
  @PrimaryColumn({ name: 'instance_uuid', type: 'varchar', length: 36 }) instanceUuid: string;
}

/**
 * A control-plane service on a host (Nova's `services` table): conductor, scheduler and compute agents
 * register here and heartbeat through `lastSeenUp`; the API lists and (de)activates them.
 */
@Entity('compute_service')
@Index(['host', 'binary'], { unique: true })
export class ComputeServiceEntity {
  @PrimaryGeneratedColumn() id: number;
  @Column({ type: 'varchar', length: 36, unique: true }) uuid: string;
  @Column({ type: 'varchar', length: 255 }) host: string;
  @Column({ type: 'varchar', length: 255 }) binary: string;
  @Column({ type: 'varchar', length: 255 }) topic: string;
  @Column({ name: 'report_count', type: 'integer' }) reportCount: number;
  @Column({ type: 'boolean', transformer: booleanTransformer }) disabled: boolean;
  @Column({ name: 'disabled_reason', type: 'varchar', length: 255, nullable: true }) disabledReason:
    string | null;
  @Column({ name: 'forced_down', type: 'boolean', transformer: booleanTransformer }) forcedDown: boolean;
  @Column({ name: 'last_seen_up', ...isoTimestamp, nullable: true }) lastSeenUp: string | null;
  @Column({ type: 'integer' }) version: number;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp, nullable: true }) updatedAt: string | null;
}

export const COMPUTE_ENTITIES = [
  ComputeServiceEntity,
  FlavorEntity,
  FlavorExtraSpecEntity,
  FlavorAccessEntity,
  KeyPairEntity,
  QuotaEntity,
  QuotaClassEntity,
  ServerGroupEntity,
  ServerGroupMemberEntity,
];
