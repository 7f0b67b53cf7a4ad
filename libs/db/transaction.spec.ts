import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { guardImplicitTransactions, inTransaction } from './transaction';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A row saved with `save`, which TypeORM wraps in a transaction of its own. */
@Entity('saved_item')
class SavedItem {
  @PrimaryColumn('varchar')
  name!: string;

  @Column('varchar')
  note!: string | null;
}

describe('inTransaction on SQLite', () => {
  let dir: string;
  let dataSource: DataSource;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'novum-tx-'));
    dataSource = await new DataSource({
      type: 'better-sqlite3',
      database: join(dir, 'db.sqlite'),
      entities: [SavedItem],
      synchronize: true,
    }).initialize();
    guardImplicitTransactions(dataSource);
    await dataSource.query('CREATE TABLE item (name varchar PRIMARY KEY)');
  });

  afterAll(async () => {
    await dataSource.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `work` with these statements of the shared query runner held up (ms) before they run. */
  async function withSlowStatements<T>(delays: Record<string, number>, work: () => Promise<T>) {
    const runner = dataSource.createQueryRunner();
    const query = runner.query.bind(runner);
    runner.query = (async (sql: string, ...rest: unknown[]) => {
      const delay = Object.entries(delays).find(([start]) => sql.startsWith(start))?.[1];
      if (delay) await sleep(delay);
      return (query as (...args: unknown[]) => Promise<unknown>)(sql, ...rest);
    }) as typeof runner.query;
    try {
      return await work();
    } finally {
      runner.query = query;
    }
  }

  beforeEach(async () => {
    await dataSource.query('DELETE FROM item');
    await dataSource.query('DELETE FROM saved_item');
  });

  it('keeps concurrent transactions apart: one rolling back does not undo the other', async () => {
    const failing = inTransaction(dataSource, async (manager) => {
      await manager.query(`INSERT INTO item (name) VALUES ('lost')`);
      await sleep(20);
      throw new Error('rolled back');
    });
    const succeeding = inTransaction(dataSource, async (manager) => {
      await manager.query(`INSERT INTO item (name) VALUES ('kept')`);
      return 'done';
    });
    await expect(failing).rejects.toThrow('rolled back');
    await expect(succeeding).resolves.toBe('done');
    expect(await dataSource.query('SELECT name FROM item')).toEqual([{ name: 'kept' }]);
  });

  it('waits for the transaction TypeORM opened around a save elsewhere, rather than nesting in it', async () => {
    // The save's INSERT and a savepoint both take their time: the save's COMMIT would otherwise end the
    // transaction the explicit one nested in, which then finds none to commit (seen between Heat's
    // resource saves and a port delete).
    await withSlowStatements({ 'INSERT INTO "saved_item"': 10, SAVEPOINT: 20 }, async () => {
      const saving = dataSource.getRepository(SavedItem).save({ name: 'saved', note: 'n' });
      await sleep(2);
      const explicit = inTransaction(dataSource, async (manager) => {
        await manager.query(`INSERT INTO item (name) VALUES ('explicit')`);
        return 'done';
      });
      await expect(saving).resolves.toMatchObject({ name: 'saved' });
      await expect(explicit).resolves.toBe('done');
    });
    expect(await dataSource.query('SELECT name FROM item')).toEqual([{ name: 'explicit' }]);
    expect(await dataSource.query('SELECT name FROM saved_item')).toEqual([{ name: 'saved' }]);
  });

  it('hands the turn on after a save that fails and rolls back', async () => {
    await withSlowStatements({ 'INSERT INTO "saved_item"': 10 }, async () => {
      const failing = dataSource.getRepository(SavedItem).save({ name: 'refused', note: null });
      await sleep(2);
      const explicit = inTransaction(dataSource, async (manager) => {
        await manager.query(`INSERT INTO item (name) VALUES ('after')`);
        return 'done';
      });
      await expect(failing).rejects.toThrow(/NOT NULL/);
      await expect(explicit).resolves.toBe('done');
    });
    expect(await dataSource.query('SELECT name FROM item')).toEqual([{ name: 'after' }]);
    expect(await dataSource.query('SELECT name FROM saved_item')).toEqual([]);
  });
});
