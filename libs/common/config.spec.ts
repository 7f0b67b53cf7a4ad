import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, listSettings, loadConfig } from './config';

describe('configuration', () => {
  it('gives a working single host with no environment at all', () => {
    const config = loadConfig({});
    expect(config.databaseUrl).toBeUndefined();
    expect(config.amqpUrl).toBeUndefined();
    expect(config.ports).toEqual({
      identity: 5000,
      compute: 8774,
      image: 9292,
      network: 9696,
      orchestration: 8004,
      serialProxy: 6083,
    });
    expect(config.tokenExpirationSeconds).toBe(3600);
    expect(config.serialProxyclientAddress).toBe('127.0.0.1');
    expect(config.consoleTokenTtlSeconds).toBe(600);
    expect(config.dataDir).toMatch(/\/data$/);
  });

  it('reads and converts every variable', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u@h:5432/db',
      AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672/v',
      NOVUM_IDENTITY_PORT: '15000',
      NOVUM_TOKEN_EXPIRATION: '60',
    });
    expect(config.databaseUrl).toBe('postgres://u@h:5432/db');
    expect(config.ports.identity).toBe(15000);
    expect(config.tokenExpirationSeconds).toBe(60);
  });

  it('names every bad variable at once', () => {
    const attempt = () =>
      loadConfig({
        DATABASE_URL: 'mysql://x',
        NOVUM_IDENTITY_PORT: '70000',
        NOVUM_TOKEN_EXPIRATION: '-1',
        NOVUM_LOG_LEVEL: 'loud',
      });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (error) {
      const message = (error as Error).message;
      for (const name of [
        'DATABASE_URL',
        'NOVUM_IDENTITY_PORT',
        'NOVUM_TOKEN_EXPIRATION',
        'NOVUM_LOG_LEVEL',
      ]) {
        expect(message).toContain(name);
      }
    }
  });

  it('reads the compute control plane settings, refusing unknown drivers', () => {
    expect(loadConfig({})).toMatchObject({
      computeDrivers: ['fake'],
      fakeHosts: 1,
      reportIntervalSeconds: 10,
      serviceDownTimeSeconds: 60,
      powerSyncIntervalSeconds: 60,
      allowResizeToSameHost: true,
      resizeConfirmWindowSeconds: 0,
      shelvedOffloadTimeSeconds: 0,
      reclaimInstanceIntervalSeconds: 0,
    });
    expect(
      loadConfig({
        NOVUM_ALLOW_RESIZE_TO_SAME_HOST: 'false',
        NOVUM_RESIZE_CONFIRM_WINDOW: '3600',
        NOVUM_SHELVED_OFFLOAD_TIME: '-1',
        NOVUM_RECLAIM_INSTANCE_INTERVAL: '60',
      }),
    ).toMatchObject({
      allowResizeToSameHost: false,
      resizeConfirmWindowSeconds: 3600,
      shelvedOffloadTimeSeconds: -1,
      reclaimInstanceIntervalSeconds: 60,
    });
    expect(() =>
      loadConfig({ NOVUM_ALLOW_RESIZE_TO_SAME_HOST: 'maybe', NOVUM_SHELVED_OFFLOAD_TIME: '-2' }),
    ).toThrow(
      /NOVUM_ALLOW_RESIZE_TO_SAME_HOST="maybe": must be true or false[\s\S]*NOVUM_SHELVED_OFFLOAD_TIME/,
    );
    expect(loadConfig({ NOVUM_COMPUTE_DRIVERS: 'kvm, container', NOVUM_FAKE_HOSTS: '3' })).toMatchObject({
      computeDrivers: ['kvm', 'container'],
      fakeHosts: 3,
    });
    expect(() => loadConfig({ NOVUM_COMPUTE_DRIVERS: 'fake,xen', NOVUM_FAKE_HOSTS: '0' })).toThrow(
      /NOVUM_COMPUTE_DRIVERS="fake,xen": unknown driver xen[\s\S]*NOVUM_FAKE_HOSTS/,
    );
    expect(loadConfig({}).allocationRatios).toEqual({ cpu: 16, ram: 1.5, disk: 1 });
    expect(loadConfig({ NOVUM_ALLOCATION_RATIOS: '64, 1.0,2' }).allocationRatios).toEqual({
      cpu: 64,
      ram: 1,
      disk: 2,
    });
    for (const bad of ['4,1', '4,0,1', 'a,b,c']) {
      expect(() => loadConfig({ NOVUM_ALLOCATION_RATIOS: bad })).toThrow(
        /NOVUM_ALLOCATION_RATIOS=.*must be three positive numbers/,
      );
    }
  });

  it('is documented in the README table, variable by variable', () => {
    const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8');
    for (const setting of listSettings()) expect(readme).toContain(`| \`${setting.env}\` |`);
  });
});
