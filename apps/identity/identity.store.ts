import { Injectable } from '@nestjs/common';
import {
  ApplicationCredentialEntity,
  DomainEntity,
  EndpointEntity,
  ImpliedRoleEntity,
  ProjectEntity,
  RegionEntity,
  RevocationEventEntity,
  RoleAssignmentEntity,
  RoleEntity,
  ServiceEntity,
  TokenKeyEntity,
  UserEntity,
} from '@novum/db';
import { DataSource, QueryFailedError, Repository } from 'typeorm';

/** The identity service's only way to the database: one repository per Keystone table. */
@Injectable()
export class IdentityStore {
  readonly domains: Repository<DomainEntity>;
  readonly projects: Repository<ProjectEntity>;
  readonly users: Repository<UserEntity>;
  readonly roles: Repository<RoleEntity>;
  readonly impliedRoles: Repository<ImpliedRoleEntity>;
  readonly assignments: Repository<RoleAssignmentEntity>;
  readonly regions: Repository<RegionEntity>;
  readonly services: Repository<ServiceEntity>;
  readonly endpoints: Repository<EndpointEntity>;
  readonly applicationCredentials: Repository<ApplicationCredentialEntity>;
  readonly revocations: Repository<RevocationEventEntity>;
  readonly tokenKeys: Repository<TokenKeyEntity>;

  constructor(readonly dataSource: DataSource) {
    this.domains = dataSource.getRepository(DomainEntity);
    this.projects = dataSource.getRepository(ProjectEntity);
    this.users = dataSource.getRepository(UserEntity);
    this.roles = dataSource.getRepository(RoleEntity);
    this.impliedRoles = dataSource.getRepository(ImpliedRoleEntity);
    this.assignments = dataSource.getRepository(RoleAssignmentEntity);
    this.regions = dataSource.getRepository(RegionEntity);
    this.services = dataSource.getRepository(ServiceEntity);
    this.endpoints = dataSource.getRepository(EndpointEntity);
    this.applicationCredentials = dataSource.getRepository(ApplicationCredentialEntity);
    this.revocations = dataSource.getRepository(RevocationEventEntity);
    this.tokenKeys = dataSource.getRepository(TokenKeyEntity);
  }
}

/** True when an insert broke a unique constraint (SQLite and PostgreSQL spell it differently). */
export function isUniqueViolation(error: unknown): boolean {
  if (!(error instanceof QueryFailedError)) return false;
  const driverError = error.driverError as { code?: string; message?: string };
  return driverError?.code === '23505' || /UNIQUE constraint failed/.test(driverError?.message ?? '');
}
