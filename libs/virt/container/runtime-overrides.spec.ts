import { DriverError } from '../driver';
import { DEFAULT_CAPABILITIES, ociSpec } from './oci-spec';
import { capabilitiesAfter, runtimeOverrides, withOverrides } from './runtime-overrides';

const IMAGE = {
  Cmd: ['/bin/sh', '-c', 'echo hello'],
  Entrypoint: ['/init'],
  Env: ['PATH=/bin', 'MODE=image'],
  WorkingDir: '/root',
  User: 'nobody',
};

describe('container runtime overrides from server metadata', () => {
  it('reads cmd, env, workdir, user, read_only and cap_drop', () => {
    const overrides = runtimeOverrides({
      'novum:cmd': '["echo","hi there"]',
      'novum:env': '["MODE=heat","EXTRA=a=b"]',
      'novum:workdir': '/srv',
      'novum:user': '0:0',
      'novum:read_only': 'True',
      'novum:cap_drop': '["net_raw","CAP_KILL"]',
      unrelated: 'kept out',
    });
    expect(overrides).toEqual({
      cmd: ['echo', 'hi there'],
      env: ['MODE=heat', 'EXTRA=a=b'],
      workdir: '/srv',
      user: '0:0',
      readOnly: true,
      capDrop: ['CAP_NET_RAW', 'CAP_KILL'],
    });
    expect(runtimeOverrides({})).toEqual({});
  });

  it('replaces Cmd (the Entrypoint stays), appends Env with later names winning, and sets WorkingDir and User', () => {
    const config = withOverrides(
      IMAGE,
      runtimeOverrides({ 'novum:cmd': '["date"]', 'novum:env': '["MODE=heat"]' }),
    );
    expect(config).toEqual({
      Cmd: ['date'],
      Entrypoint: ['/init'],
      Env: ['PATH=/bin', 'MODE=heat'],
      WorkingDir: '/root',
      User: 'nobody',
    });
    expect(withOverrides(IMAGE, { workdir: '/tmp', user: 'root' })).toMatchObject({
      WorkingDir: '/tmp',
      User: 'root',
    });
    expect(withOverrides(IMAGE, undefined)).toEqual(IMAGE);
  });

  it('only ever drops capabilities, and ALL drops them all', () => {
    expect(capabilitiesAfter(runtimeOverrides({ 'novum:cap_drop': '["NET_RAW"]' }))).toEqual(
      DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_NET_RAW'),
    );
    expect(capabilitiesAfter(runtimeOverrides({ 'novum:cap_drop': '["all"]' }))).toEqual([]);
    // Dropping one the default set lacks adds nothing.
    expect(capabilitiesAfter(runtimeOverrides({ 'novum:cap_drop': '["SYS_ADMIN"]' }))).toEqual(
      DEFAULT_CAPABILITIES,
    );
    expect(capabilitiesAfter(undefined)).toEqual(DEFAULT_CAPABILITIES);
  });

  it.each([
    ['novum:cmd', 'echo hi'],
    ['novum:cmd', '[1, 2]'],
    ['novum:env', '["NOEQUALS"]'],
    ['novum:env', '{"A":"b"}'],
    ['novum:workdir', 'relative'],
    ['novum:read_only', 'maybe'],
    ['novum:cap_drop', 'NET_RAW'],
  ])('refuses a malformed %s (%s) with a fault naming the key', (key, value) => {
    expect(() => runtimeOverrides({ [key]: value })).toThrow(DriverError);
    expect(() => runtimeOverrides({ [key]: value })).toThrow(key);
  });

  it('reach the OCI spec: args, env, cwd, capabilities and a read-only root', () => {
    const overrides = runtimeOverrides({
      'novum:cmd': '["echo","x"]',
      'novum:env': '["GREETING=hi"]',
      'novum:workdir': '/srv',
      'novum:read_only': 'true',
      'novum:cap_drop': '["ALL"]',
    });
    const spec = ociSpec({
      hostname: 'h',
      image: withOverrides({ Cmd: ['sleep', '1'], Env: ['PATH=/bin'] }, overrides),
      uid: 0,
      gid: 0,
      limits: { memoryBytes: 1, cpuQuotaUs: 1, cpuPeriodUs: 1, pids: 1 },
      cgroupsPath: '/novum/x',
      rootfs: 'rootfs',
      capabilities: capabilitiesAfter(overrides),
      readonlyRoot: overrides.readOnly,
    }) as any;
    expect(spec.process.args).toEqual(['echo', 'x']);
    expect(spec.process.env).toEqual(['PATH=/bin', 'GREETING=hi', 'HOSTNAME=h']);
    expect(spec.process.cwd).toBe('/srv');
    expect(spec.process.capabilities).toEqual({ bounding: [], effective: [], permitted: [] });
    expect(spec.root.readonly).toBe(true);
  });
});
