import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { inTransaction } from './transaction';

describe('inTransaction on SQLite', () => {
  let dir: string;
  let dataSource: DataSource;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'novum-tx-'));
    dataSource = await new DataSource({
      type: 'better-sqlite3',
      database: join(dir, 'db.sqlite'),
    }).initialize();
    await dataSource.query('CREATE TABLE item (name varchar PRIMARY KEY)');
  });

  afterAll(async () => {
    await dataSource.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps concurrent transactions apart: one rolling back does not undo the other', async () => {
    const failing = inTransaction(dataSource, async (manager) => {
      await manager.query(`INSERT INTO item (name) VALUES ('lost')`);
      await new Promise((resolve) => setTimeout(resolve, 20));
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
});
