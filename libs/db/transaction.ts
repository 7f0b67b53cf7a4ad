import { AsyncLocalStorage } from 'node:async_hooks';
import { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { IsolationLevel } from 'typeorm/driver/types/IsolationLevel';

/**
 * On SQLite every app of the process shares one connection and TypeORM one query runner on it, where two
 * interleaved transactions nest as savepoints of each other: one's COMMIT ends the other's transaction, one's
 * ROLLBACK undoes the other's work, and the last to finish finds none to commit ("Transaction is not started
 * yet"). So they take turns, one at a time: the explicit ones (inTransaction) and the ones TypeORM starts by
 * itself around a `save` or `remove` outside any transaction. SQLite has a single writer anyway. PostgreSQL
 * gives each transaction its own pooled connection.
 */
interface Turns {
  /** Settles when the transaction holding the connection (and those queued before) ends. */
  tail: Promise<void>;
  /** The explicit transaction holding the connection, as its work's async context knows it. */
  current?: symbol;
}

const turnsOf = new WeakMap<DataSource, Turns>();
const explicit = new AsyncLocalStorage<symbol>();

function turns(dataSource: DataSource): Turns {
  let found = turnsOf.get(dataSource);
  if (!found) {
    found = { tail: Promise.resolve() };
    turnsOf.set(dataSource, found);
  }
  return found;
}

/** Waits for the connection's turn; resolves with the function that hands it on. */
function take(turns: Turns): Promise<() => void> {
  let handOn!: () => void;
  const ended = new Promise<void>((resolve) => (handOn = resolve));
  const mine = turns.tail.then(() => handOn);
  turns.tail = turns.tail.then(() => ended);
  return mine;
}

/** Runs `work` in a transaction (on SQLite, when the connection's turn comes). */
export async function inTransaction<T>(
  dataSource: DataSource,
  work: (manager: EntityManager) => Promise<T>,
  isolation?: IsolationLevel,
): Promise<T> {
  const run = () => (isolation ? dataSource.transaction(isolation, work) : dataSource.transaction(work));
  if (dataSource.options.type === 'postgres') return run();
  const shared = turns(dataSource);
  const handOn = await take(shared);
  const token = Symbol('transaction');
  shared.current = token;
  try {
    return await explicit.run(token, run);
  } finally {
    shared.current = undefined;
    handOn();
  }
}

/**
 * Makes the transactions TypeORM starts by itself on this SQLite data source's shared query runner (a `save`
 * or `remove` outside any transaction) take the connection's turn as inTransaction's do, holding it until they
 * commit or roll back. The explicit transaction's own start (and a savepoint inside it) goes straight on.
 * Nothing for PostgreSQL. Called once per data source, when it is opened.
 */
export function guardImplicitTransactions(dataSource: DataSource): void {
  if (dataSource.options.type === 'postgres') return;
  const shared = turns(dataSource);
  // better-sqlite3: every createQueryRunner gives this one runner.
  const runner: QueryRunner = dataSource.createQueryRunner();
  const start = runner.startTransaction.bind(runner);
  const commit = runner.commitTransaction.bind(runner);
  const rollback = runner.rollbackTransaction.bind(runner);
  let handOn: (() => void) | undefined;
  const settle = () => {
    if (handOn && !runner.isTransactionActive) {
      const next = handOn;
      handOn = undefined;
      next();
    }
  };
  runner.startTransaction = async (isolation?: IsolationLevel) => {
    const inside = shared.current !== undefined && explicit.getStore() === shared.current;
    if (inside || runner.isTransactionActive) return start(isolation);
    handOn = await take(shared);
    try {
      await start(isolation);
    } catch (error) {
      // Not begun: the turn goes on whatever state the runner was left in.
      const next = handOn;
      handOn = undefined;
      next?.();
      throw error;
    }
  };
  runner.commitTransaction = async () => {
    try {
      await commit();
    } finally {
      settle();
    }
  };
  runner.rollbackTransaction = async () => {
    try {
      await rollback();
    } finally {
      settle();
    }
  };
}
