import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** ops/systemd: the units of a deployment of several hosts (ops/systemd/README.md), installed into a scratch dir. */
const ROOT = resolve(__dirname, '../..');
const APPS = readdirSync(join(ROOT, 'apps')).filter(
  (app) => app !== 'novum' && existsSync(join(ROOT, 'apps', app, 'main.ts')),
);
/** Each entry point of an app: `main.ts` is the unit `novum-<app>`, `<part>-main.ts` `novum-<app>-<part>`. */
const ENTRIES = APPS.flatMap((app) =>
  readdirSync(join(ROOT, 'apps', app))
    .filter((file) => file === 'main.ts' || file.endsWith('-main.ts'))
    .map((file) => ({
      unit: file === 'main.ts' ? app : `${app}-${file.slice(0, -'-main.ts'.length)}`,
      js: `apps/${app}/${file.replace(/\.ts$/, '.js')}`,
    })),
);
const root = process.getuid?.() === 0;

(root ? describe : describe.skip)('ops/systemd/install.sh', () => {
  // Made in beforeAll: jest runs this body even when the suite is skipped.
  let dir = '';
  let units = '';
  let config = '';
  const install = (...args: string[]) =>
    execFileSync(
      'bash',
      [
        join(ROOT, 'ops/systemd/install.sh'),
        '--no-enable',
        '--unit-dir',
        units,
        '--config-dir',
        config,
        ...args,
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  const unit = (app: string) => readFileSync(join(units, `novum-${app}.service`), 'utf8');
  const setting = (text: string, key: string) => text.match(new RegExp(`^${key}=(.*)$`, 'm'))?.[1];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'novum-e2e-'));
    units = join(dir, 'units');
    config = join(dir, 'config');
    install('all');
  });
  afterAll(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('installs one unit per entry point of an app, each starting it from this checkout', () => {
    expect(ENTRIES.map((e) => e.unit)).toContain('orchestration-engine');
    expect(readdirSync(units).sort()).toEqual(ENTRIES.map((e) => `novum-${e.unit}.service`).sort());
    for (const { unit: name, js } of ENTRIES) {
      expect(setting(unit(name), 'ExecStart')).toBe(`/usr/bin/env node ${ROOT}/dist/${js}`);
      expect(setting(unit(name), 'EnvironmentFile')).toBe(join(config, 'novum.env'));
    }
  });

  it('runs the compute agent as root and every other service as the unprivileged novum, without capabilities', () => {
    expect(setting(unit('compute'), 'User')).toBeUndefined();
    expect(setting(unit('compute'), 'KillMode')).toBe('process');
    expect(setting(unit('compute'), 'Environment')).toBe('NOVUM_DATA_DIR=/var/lib/novum-compute');
    for (const app of ENTRIES.map((e) => e.unit).filter((a) => a !== 'compute')) {
      expect([setting(unit(app), 'User'), setting(unit(app), 'CapabilityBoundingSet')]).toEqual([
        'novum',
        '',
      ]);
      expect(setting(unit(app), 'NoNewPrivileges')).toBe('yes');
    }
    expect(execFileSync('id', ['-u', 'novum'], { encoding: 'utf8' }).trim()).not.toBe('0');
  });

  it('writes the settings file once, readable by novum only, and never overwrites it', () => {
    const env = join(config, 'novum.env');
    const mode = statSync(env).mode & 0o777;
    expect(mode).toBe(0o640);
    expect(statSync(env).gid).toBe(Number(execFileSync('id', ['-g', 'novum'], { encoding: 'utf8' })));
    expect(readFileSync(env, 'utf8')).toContain('NOVUM_SERVICE_PASSWORD=CHANGE-ME');
    writeFileSync(env, 'NOVUM_SERVICE_PASSWORD=mine\n');
    install('compute');
    expect(readFileSync(env, 'utf8')).toBe('NOVUM_SERVICE_PASSWORD=mine\n');
  });

  it('refuses an unknown service', () => {
    expect(() => install('nonsense')).toThrow(/no such service: nonsense/);
  });

  it('passes systemd-analyze verify without a warning', () => {
    const files = readdirSync(units).map((name) => join(units, name));
    const verified = spawnSync('systemd-analyze', ['verify', ...files], { encoding: 'utf8' });
    expect([verified.status, verified.stderr]).toEqual([0, '']);
  }, 60_000);
});
