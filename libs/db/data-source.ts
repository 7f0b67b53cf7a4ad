import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DataSource, DataSourceOptions } from 'typeorm';
import { guardImplicitTransactions } from './transaction';
import { IDENTITY_ENTITIES } from './entities/identity';
import { NETWORK_ENTITIES } from './entities/network';
import { IMAGE_ENTITIES } from './entities/image';
import { COMPUTE_ENTITIES } from './entities/compute';
import { INSTANCE_ENTITIES } from './entities/instance';
import { AGGREGATE_ENTITIES } from './entities/aggregate';
import { ORCHESTRATION_ENTITIES } from './entities/orchestration';
import { CONSOLE_ENTITIES } from './entities/console';
import { SOFTWARE_CONFIG_ENTITIES } from './entities/software-config';
import { Identity1764316800000 } from './migrations/1764316800000-identity';
import { Network1764330000000 } from './migrations/1764330000000-network';
import { Image1764403200000 } from './migrations/1764403200000-image';
import { Compute1764480000000 } from './migrations/1764480000000-compute';
import { Instance1764489600000 } from './migrations/1764489600000-instance';
import { Servers1764576000000 } from './migrations/1764576000000-servers';
import { Aggregates1764576100000 } from './migrations/1764576100000-aggregates';
import { Orchestration1764700000000 } from './migrations/1764700000000-orchestration';
import { NestedStacks1764710000000 } from './migrations/1764710000000-nested-stacks';
import { ConsoleAuthTokens1764720000000 } from './migrations/1764720000000-console-auth-tokens';
import { SoftwareConfigs1764760000000 } from './migrations/1764760000000-software-configs';
import { StackSnapshots1764780000000 } from './migrations/1764780000000-stack-snapshots';
import { HeatEngines1764800000000 } from './migrations/1764800000000-heat-engines';

export const ENTITIES = [
  ...IDENTITY_ENTITIES,
  ...NETWORK_ENTITIES,
  ...IMAGE_ENTITIES,
  ...COMPUTE_ENTITIES,
  ...INSTANCE_ENTITIES,
  ...AGGREGATE_ENTITIES,
  ...ORCHESTRATION_ENTITIES,
  ...CONSOLE_ENTITIES,
  ...SOFTWARE_CONFIG_ENTITIES,
];
export const MIGRATIONS = [
  Identity1764316800000,
  Network1764330000000,
  Image1764403200000,
  Compute1764480000000,
  Instance1764489600000,
  Servers1764576000000,
  Aggregates1764576100000,
  Orchestration1764700000000,
  NestedStacks1764710000000,
  ConsoleAuthTokens1764720000000,
  SoftwareConfigs1764760000000,
  StackSnapshots1764780000000,
  HeatEngines1764800000000,
];

export interface DatabaseSettings {
  dataDir: string;
  databaseUrl?: string;
  /** PostgreSQL connections this process may hold (20 when unset). */
  databasePoolSize?: number;
}

export function dataSourceOptions(settings: DatabaseSettings): DataSourceOptions {
  const common = {
    entities: ENTITIES,
    migrations: MIGRATIONS,
    // Run by openDataSource, which serializes the services that start together on one PostgreSQL database.
    migrationsRun: false,
    synchronize: false,
    logging: false,
  };
  if (settings.databaseUrl) {
    return {
      ...common,
      type: 'postgres',
      url: settings.databaseUrl,
      extra: { max: settings.databasePoolSize ?? 20, connectionTimeoutMillis: 5000 },
    };
  }
  mkdirSync(settings.dataDir, { recursive: true });
  return {
    ...common,
    type: 'better-sqlite3',
    database: join(settings.dataDir, 'novum.sqlite'),
    enableWAL: true,
    prepareDatabase: (db: { pragma(sql: string): unknown }) => {
      db.pragma('busy_timeout = 5000');
      db.pragma('synchronous = NORMAL');
    },
  };
}

/** The PostgreSQL advisory lock (any 64-bit number of Novum's own) that one migrating process holds at a time. */
const MIGRATION_LOCK = 7_318_716_233_504_301;

/**
 * A database opened and migrated. Services apart from each other (ops/systemd) start together on one
 * PostgreSQL database: each migrates under a session advisory lock, so the first creates the tables and
 * the others, once they get the lock, find nothing pending (otherwise two would create the same table).
 */
export async function openDataSource(settings: DatabaseSettings): Promise<DataSource> {
  const dataSource = await new DataSource(dataSourceOptions(settings)).initialize();
  try {
    if (dataSource.options.type !== 'postgres') {
      guardImplicitTransactions(dataSource);
      await dataSource.runMigrations();
      return dataSource;
    }
    const lock = dataSource.createQueryRunner();
    await lock.connect();
    try {
      await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      await dataSource.runMigrations();
    } finally {
      await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
      await lock.release();
    }
    return dataSource;
  } catch (error) {
    await dataSource.destroy().catch(() => undefined);
    throw error;
  }
}

const open = new Map<string, { dataSource: Promise<DataSource>; users: number }>();

/**
 * Opens (and migrates) the database once per process: the all-in-one cloud runs several Nest applications
 * in one process, and they share one connection pool (one writer for SQLite).
 */
export async function acquireDataSource(settings: DatabaseSettings): Promise<DataSource> {
  const key = settings.databaseUrl ?? settings.dataDir;
  let entry = open.get(key);
  if (!entry) {
    const dataSource = openDataSource(settings);
    entry = { dataSource, users: 0 };
    open.set(key, entry);
    dataSource.catch(() => open.delete(key));
  }
  entry.users += 1;
  return entry.dataSource;
}

export async function releaseDataSource(dataSource: DataSource): Promise<void> {
  for (const [key, entry] of open) {
    if ((await entry.dataSource) !== dataSource) continue;
    entry.users -= 1;
    if (entry.users <= 0) {
      open.delete(key);
      if (dataSource.isInitialized) await dataSource.destroy();
    }
    return;
  }
}
