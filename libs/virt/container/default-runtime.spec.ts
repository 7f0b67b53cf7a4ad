import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerDriver, defaultRuntime } from './container.driver';

describe('the default OCI runtime', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'novum-runtime-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is crun where a directory of PATH has it, runc otherwise', () => {
    const withCrun = join(dir, 'with');
    const without = join(dir, 'without');
    mkdirSync(withCrun);
    mkdirSync(without);
    writeFileSync(join(withCrun, 'crun'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(without, 'runc'), '#!/bin/sh\n', { mode: 0o755 });
    expect(defaultRuntime(`${without}:${withCrun}`)).toBe('crun');
    expect(defaultRuntime(without)).toBe('runc');
    expect(defaultRuntime('')).toBe('runc');
  });

  it('is what NOVUM_CONTAINER_RUNTIME names, unless that is auto', () => {
    const runtimeOf = (runtime?: string) =>
      (new ContainerDriver({ dataDir: dir, runtime }) as unknown as { runtime: string }).runtime;
    expect(runtimeOf('runc')).toBe('runc');
    expect(runtimeOf('/opt/bin/crun')).toBe('/opt/bin/crun');
    expect(runtimeOf('auto')).toBe(defaultRuntime());
    expect(runtimeOf(undefined)).toBe(defaultRuntime());
  });
});
