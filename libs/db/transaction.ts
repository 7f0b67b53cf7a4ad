import { DataSource, EntityManager } from 'typeorm';
import { IsolationLevel } from 'typeorm/driver/types/IsolationLevel';

const turns = new WeakMap<DataSource, Promise<unknown>>();

/**
 * Runs `work` in a transaction. On SQLite every app of the process shares one connection, where two
 * interleaved transactions would nest as savepoints of each other (one's COMMIT ending the other's
 * transaction, one's ROLLBACK undoing the other's work), so there they take turns; SQLite has a single
 * writer anyway. PostgreSQL gives each transaction its own pooled connection.
 */
export function inTransaction<T>(
  dataSource: DataSource,
  work: (manager: EntityManager) => Promise<T>,
  isolation?: IsolationLevel,
): Promise<T> {
  const run = () => (isolation ? dataSource.transaction(isolation, work) : dataSource.transaction(work));
  if (dataSource.options.type === 'postgres') return run();
  const result = (turns.get(dataSource) ?? Promise.resolve()).then(run, run);
  turns.set(
    dataSource,
    result.catch(() => undefined),
  );
  return result;
}
