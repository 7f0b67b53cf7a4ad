import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { MIGRATIONS, openDataSource } from './data-source';

async function admin(sql: string): Promise<void> {
  const client = new Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

describe('openDataSource', () => {
  it('migrates a fresh PostgreSQL database once when several services open it at the same time', async () => {
    const database = `novum_unit_${randomBytes(4).toString('hex')}`;
    await admin(`CREATE DATABASE ${database}`);
    const opened: DataSource[] = [];
    try {
      const settings = { dataDir: tmpdir(), databaseUrl: `postgres://postgres@127.0.0.1:5432/${database}` };
      const results = await Promise.allSettled([1, 2, 3, 4].map(() => openDataSource(settings)));
      for (const result of results) if (result.status === 'fulfilled') opened.push(result.value);
      expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'opened'))).toEqual(
        Array(4).fill('opened'),
      );
      const applied = await opened[0].query('SELECT name FROM migrations ORDER BY id');
      expect(applied.map((row: { name: string }) => row.name)).toEqual(MIGRATIONS.map((m) => m.name));
    } finally {
      await Promise.all(opened.map((dataSource) => dataSource.destroy()));
      await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    }
  }, 60_000);

  it('migrates the embedded SQLite file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'novum-db-'));
    const dataSource = await openDataSource({ dataDir: dir });
    try {
      expect(await dataSource.showMigrations()).toBe(false);
    } finally {
      await dataSource.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
