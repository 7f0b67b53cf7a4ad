import { Injectable } from '@nestjs/common';
import {
  AggregateEntity,
  AggregateHostEntity,
  AggregateMetadataEntity,
  ComputeNodeEntity,
  ComputeNodeIdEntity,
  ComputeServiceEntity,
  MigrationEntity,
  FlavorAccessEntity,
  FlavorEntity,
  FlavorExtraSpecEntity,
  KeyPairEntity,
  QuotaClassEntity,
  QuotaEntity,
  ServerGroupEntity,
  ServerGroupMemberEntity,
} from '@novum/db';
import { DataSource, QueryFailedError, Repository } from 'typeorm';

/** The compute API's only way to the database: one repository per Nova table. */
@Injectable()
export class ComputeStore {
  readonly flavors: Repository<FlavorEntity>;
  readonly extraSpecs: Repository<FlavorExtraSpecEntity>;
  readonly flavorAccess: Repository<FlavorAccessEntity>;
  readonly keyPairs: Repository<KeyPairEntity>;
  readonly quotas: Repository<QuotaEntity>;
  readonly quotaClasses: Repository<QuotaClassEntity>;
  readonly serverGroups: Repository<ServerGroupEntity>;
  readonly serverGroupMembers: Repository<ServerGroupMemberEntity>;
  readonly services: Repository<ComputeServiceEntity>;
  readonly computeNodes: Repository<ComputeNodeEntity>;
  readonly computeNodeIds: Repository<ComputeNodeIdEntity>;
  readonly aggregates: Repository<AggregateEntity>;
  readonly aggregateHosts: Repository<AggregateHostEntity>;
  readonly aggregateMetadata: Repository<AggregateMetadataEntity>;
  readonly migrations: Repository<MigrationEntity>;

  constructor(readonly dataSource: DataSource) {
    this.flavors = dataSource.getRepository(FlavorEntity);
    this.extraSpecs = dataSource.getRepository(FlavorExtraSpecEntity);
    this.flavorAccess = dataSource.getRepository(FlavorAccessEntity);
    this.keyPairs = dataSource.getRepository(KeyPairEntity);
    this.quotas = dataSource.getRepository(QuotaEntity);
    this.quotaClasses = dataSource.getRepository(QuotaClassEntity);
    this.serverGroups = dataSource.getRepository(ServerGroupEntity);
    this.serverGroupMembers = dataSource.getRepository(ServerGroupMemberEntity);
    this.services = dataSource.getRepository(ComputeServiceEntity);
    this.computeNodes = dataSource.getRepository(ComputeNodeEntity);
    this.computeNodeIds = dataSource.getRepository(ComputeNodeIdEntity);
    this.aggregates = dataSource.getRepository(AggregateEntity);
    this.aggregateHosts = dataSource.getRepository(AggregateHostEntity);
    this.aggregateMetadata = dataSource.getRepository(AggregateMetadataEntity);
    this.migrations = dataSource.getRepository(MigrationEntity);
  }
}

/** True when a write broke a unique constraint (SQLite and PostgreSQL spell it differently). */
export function isUniqueViolation(error: unknown): boolean {
  if (!(error instanceof QueryFailedError)) return false;
  const driverError = error.driverError as { code?: string; message?: string };
  return driverError?.code === '23505' || /UNIQUE constraint failed/.test(driverError?.message ?? '');
}
