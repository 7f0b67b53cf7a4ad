import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { ConsoleAuthTokenEntity, openDataSource } from '@novum/db';
import { ConsoleAuthTokens } from './console-auth';

describe('ConsoleAuthTokens on SQLite', () => {
  let dir: string;
  let dataSource: DataSource;
  let now = Date.parse('2026-11-28T12:00:00Z');
  let tokens: ConsoleAuthTokens;
  const endpoint = { host: '10.0.0.5', port: 40123, internalAccessPath: 'uuid-1.123.abc' };
  const authorize = (instanceUuid = 'uuid-1', ttlSeconds = 600) =>
    tokens.authorize({
      instanceUuid,
      consoleType: 'serial',
      endpoint,
      accessUrlBase: 'ws://proxy.example:6083/',
      ttlSeconds,
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'novum-console-auth-'));
    dataSource = await openDataSource({ dataDir: dir });
    tokens = new ConsoleAuthTokens(dataSource, () => now);
  });

  afterAll(async () => {
    await dataSource.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives a URL with a fresh token that admits to the endpoint until it expires, many times', async () => {
    const { token, url } = await authorize();
    expect(url).toBe(`ws://proxy.example:6083/?token=${token}`);
    const expected = {
      instanceUuid: 'uuid-1',
      consoleType: 'serial',
      host: '10.0.0.5',
      port: 40123,
      internalAccessPath: 'uuid-1.123.abc',
      accessUrlBase: 'ws://proxy.example:6083/',
      expires: now / 1000 + 600,
    };
    expect(await tokens.validate(token)).toEqual(expected);
    expect(await tokens.validate(token)).toEqual(expected);
    now += 599_000;
    expect(await tokens.validate(token)).toEqual(expected);
    now += 1_000;
    expect(await tokens.validate(token)).toBeUndefined();
  });

  it('keeps only the hash of a token, refuses unknown ones, and purges expired ones as it makes new ones', async () => {
    const { token } = await authorize('uuid-2', 5);
    const rows = await dataSource.getRepository(ConsoleAuthTokenEntity).find();
    expect(rows.some((row) => JSON.stringify(row).includes(token))).toBe(false);
    expect(await tokens.validate('')).toBeUndefined();
    expect(await tokens.validate(`${token}x`)).toBeUndefined();
    now += 10_000;
    await authorize('uuid-3');
    const left = await dataSource.getRepository(ConsoleAuthTokenEntity).find();
    expect(left.map((row) => row.instanceUuid)).toEqual(['uuid-3']);
  });

  it("drops an instance's tokens when asked (its deletion)", async () => {
    const { token } = await authorize('uuid-4');
    const other = await authorize('uuid-5');
    await tokens.deleteForInstance('uuid-4');
    expect(await tokens.validate(token)).toBeUndefined();
    expect(await tokens.validate(other.token)).toMatchObject({ instanceUuid: 'uuid-5' });
  });
});
