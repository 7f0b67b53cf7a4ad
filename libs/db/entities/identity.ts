import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { booleanTransformer, isoTimestamp } from '../columns';

@Entity('domain')
export class DomainEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 }) id: string;
  @Index({ unique: true }) @Column({ type: 'varchar', length: 255 }) name: string;
  @Column({ type: 'text' }) description: string;
  @Column({ type: 'boolean', transformer: booleanTransformer }) enabled: boolean;
  @Column({ type: 'simple-json' }) extra: Record<string, any>;
}

@Entity('project')
@Index(['domainId', 'name'], { unique: true })
export class ProjectEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 }) id: string;
  @Column({ type: 'varchar', length: 64 }) name: string;
  @Column({ name: 'domain_id', type: 'varchar', length: 64 }) domainId: string;
  @Column({ name: 'parent_id', type: 'varchar', length: 64, nullable: true }) parentId: string | null;
  @Column({ type: 'text' }) description: string;
  @Column({ type: 'boolean', transformer: booleanTransformer }) enabled: boolean;
  @Column({ type: 'simple-json' }) tags: string[];
  @Column({ type: 'simple-json' }) extra: Record<string, any>;
}

@Entity('identity_user')
@Index(['domainId', 'name'], { unique: true })
export class UserEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 }) id: string;
  @Column({ type: 'varchar', length: 255 }) name: string;
  @Column({ name: 'domain_id', type: 'varchar', length: 64 }) domainId: string;
  @Column({ name: 'default_project_id', type: 'varchar', length: 64, nullable: true }) defaultProjectId:
    string | null;
  @Column({ type: 'text' }) description: string;
  @Column({ type: 'boolean', transformer: booleanTransformer }) enabled: boolean;
  @Column({ name: 'password_hash', type: 'varchar', length: 255, nullable: true }) passwordHash:
    string | null;
  @Column({ name: 'password_expires_at', ...isoTimestamp, nullable: true }) passwordExpiresAt: string | null;
  @Column({ type: 'simple-json' }) extra: Record<string, any>;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
}

@Entity('role')
@Index(['name', 'domainId'], { unique: true })
export class RoleEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 }) id: string;
  @Column({ type: 'varchar', length: 255 }) name: string;
  /** Empty string for global roles, so the unique index also holds on engines that treat NULLs as distinct. */
  @Column({ name: 'domain_id', type: 'varchar', length: 64 }) domainId: string;
  @Column({ type: 'text' }) description: string;
  @Column({ type: 'simple-json' }) extra: Record<string, any>;
}

@Entity('implied_role')
export class ImpliedRoleEntity {
  @PrimaryColumn({ name: 'prior_role_id', type: 'varchar', length: 64 }) priorRoleId: string;
  @PrimaryColumn({ name: 'implied_role_id', type: 'varchar', length: 64 }) impliedRoleId: string;
}

export type AssignmentType = 'UserProject' | 'UserDomain';

@Entity('role_assignment')
@Index(['actorId'])
@Index(['targetId'])
export class RoleAssignmentEntity {
  @PrimaryColumn({ type: 'varchar', length: 16 }) type: AssignmentType;
  @PrimaryColumn({ name: 'actor_id', type: 'varchar', length: 64 }) actorId: string;
  @PrimaryColumn({ name: 'target_id', type: 'varchar', length: 64 }) targetId: string;
  @PrimaryColumn({ name: 'role_id', type: 'varchar', length: 64 }) roleId: string;
}

@Entity('region')
export class RegionEntity {
  @PrimaryColumn({ type: 'varchar', length: 255 }) id: string;
  @Column({ type: 'text' }) description: string;
  @Column({ name: 'parent_region_id', type: 'varchar', length: 255, nullable: true }) parentRegionId:
    string | null;
  @Column({ type: 'simple-json' }) extra: Record<string, any>;
}

@Entity('service')
export class ServiceEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 }) id: string;
  @Column({ type: 'varchar', length: 255 }) type: string;
  @Column({ type: 'varchar', length: 255 }) name: string;
  @Column({ type: 'text' }) description: string;
  @Column({ type: 'boolean', transformer: booleanTransformer }) enabled: boolean;
  @Column({ type: 'simple-json' }) extra: Record<string, any>;
}

@Entity('endpoint')
export class EndpointEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 }) id: string;
  @Column({ name: 'service_id', type: 'varchar', length: 64 }) serviceId: string;
  @Column({ type: 'varchar', length: 8 }) interface: string;
  @Column({ name: 'region_id', type: 'varchar', length: 255, nullable: true }) regionId: string | null;
  @Column({ type: 'text' }) url: string;
  @Column({ type: 'boolean', transformer: booleanTransformer }) enabled: boolean;
  @Column({ type: 'simple-json' }) extra: Record<string, any>;
}

@Entity('application_credential')
@Index(['userId', 'name'], { unique: true })
export class ApplicationCredentialEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 }) id: string;
  @Column({ type: 'varchar', length: 255 }) name: string;
  @Column({ name: 'user_id', type: 'varchar', length: 64 }) userId: string;
  @Column({ name: 'project_id', type: 'varchar', length: 64 }) projectId: string;
  @Column({ name: 'secret_hash', type: 'varchar', length: 255 }) secretHash: string;
  @Column({ type: 'text' }) description: string;
  @Column({ name: 'expires_at', ...isoTimestamp, nullable: true }) expiresAt: string | null;
  @Column({ type: 'boolean', transformer: booleanTransformer }) unrestricted: boolean;
  /** Role ids delegated to the credential (a subset of the creator's roles on the project). */
  @Column({ type: 'simple-json' }) roles: string[];
}

/** Keystone-style revocation events: a token matching any of these fields and issued before `issuedBefore` is void. */
@Entity('revocation_event')
export class RevocationEventEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 }) id: string;
  @Index() @Column({ name: 'audit_id', type: 'varchar', length: 64, nullable: true }) auditId: string | null;
  @Column({ name: 'user_id', type: 'varchar', length: 64, nullable: true }) userId: string | null;
  @Column({ name: 'project_id', type: 'varchar', length: 64, nullable: true }) projectId: string | null;
  @Column({ name: 'issued_before', ...isoTimestamp }) issuedBefore: string;
  /** After this the tokens it voids have expired anyway, so the event can be pruned. */
  @Column({ name: 'expires_at', ...isoTimestamp }) expiresAt: string;
}

/** Token encryption keys; the newest encrypts, every key still kept can decrypt (rotation). */
@Entity('token_key')
export class TokenKeyEntity {
  @PrimaryColumn({ type: 'integer' }) id: number;
  @Column({ type: 'varchar', length: 64 }) secret: string;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
}

export const IDENTITY_ENTITIES = [
  DomainEntity,
  ProjectEntity,
  UserEntity,
  RoleEntity,
  ImpliedRoleEntity,
  RoleAssignmentEntity,
  RegionEntity,
  ServiceEntity,
  EndpointEntity,
  ApplicationCredentialEntity,
  RevocationEventEntity,
  TokenKeyEntity,
];
