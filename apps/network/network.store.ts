import { Injectable } from '@nestjs/common';
import {
  DefaultSecurityGroupEntity,
  FloatingIpEntity,
  inTransaction,
  IpAllocationEntity,
  NetworkEntity,
  NetworkQuotaEntity,
  PortEntity,
  RouterEntity,
  SecurityGroupEntity,
  SecurityGroupRuleEntity,
  SubnetEntity,
} from '@novum/db';
import { DataSource, EntityManager, QueryFailedError, Repository } from 'typeorm';

/** The repositories of one unit of work: the store's own, or a transaction's. */
export class NetworkTables {
  readonly networks: Repository<NetworkEntity>;
  readonly subnets: Repository<SubnetEntity>;
  readonly allocations: Repository<IpAllocationEntity>;
  readonly ports: Repository<PortEntity>;
  readonly securityGroups: Repository<SecurityGroupEntity>;
  readonly defaultSecurityGroups: Repository<DefaultSecurityGroupEntity>;
  readonly securityGroupRules: Repository<SecurityGroupRuleEntity>;
  readonly routers: Repository<RouterEntity>;
  readonly floatingIps: Repository<FloatingIpEntity>;
  readonly quotas: Repository<NetworkQuotaEntity>;

  constructor(readonly manager: EntityManager) {
    this.networks = manager.getRepository(NetworkEntity);
    this.subnets = manager.getRepository(SubnetEntity);
    this.allocations = manager.getRepository(IpAllocationEntity);
    this.ports = manager.getRepository(PortEntity);
    this.securityGroups = manager.getRepository(SecurityGroupEntity);
    this.defaultSecurityGroups = manager.getRepository(DefaultSecurityGroupEntity);
    this.securityGroupRules = manager.getRepository(SecurityGroupRuleEntity);
    this.routers = manager.getRepository(RouterEntity);
    this.floatingIps = manager.getRepository(FloatingIpEntity);
    this.quotas = manager.getRepository(NetworkQuotaEntity);
  }

  /**
   * Inserts a row unless one with the same key exists (`ON CONFLICT DO NOTHING` / `INSERT OR IGNORE`):
   * losing a race for a unique key is then an answer, not an aborted transaction.
   */
  async insertIfAbsent<T extends object>(entity: new () => T, row: T): Promise<void> {
    await this.manager.createQueryBuilder().insert().into(entity).values(row).orIgnore().execute();
  }
}

/** The network service's only way to the database. */
@Injectable()
export class NetworkStore extends NetworkTables {
  constructor(readonly dataSource: DataSource) {
    super(dataSource.manager);
  }

  /**
   * Runs `work` in a transaction (taking turns on SQLite, see inTransaction); PostgreSQL deadlocks and
   * serialization failures are retried.
   */
  async transaction<T>(work: (tables: NetworkTables) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await inTransaction(this.dataSource, (manager) => work(new NetworkTables(manager)));
      } catch (error) {
        if (attempt >= 5 || !isRetriable(error)) throw error;
      }
    }
  }
}

function isRetriable(error: unknown): boolean {
  const code = (error as QueryFailedError & { driverError?: { code?: string } })?.driverError?.code;
  return error instanceof QueryFailedError && (code === '40001' || code === '40P01');
}

/** True when an insert broke a unique constraint (SQLite and PostgreSQL spell it differently). */
export function isUniqueViolation(error: unknown): boolean {
  if (!(error instanceof QueryFailedError)) return false;
  const driverError = error.driverError as { code?: string; message?: string };
  return driverError?.code === '23505' || /UNIQUE constraint failed/.test(driverError?.message ?? '');
}
