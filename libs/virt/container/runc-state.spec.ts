import { RuncStateHost, crunInitPid, crunStatus, procStat, runcInitPid, runcStatus } from './runc-state';

/** A host of files and processes in memory. */
function host(
  files: Record<string, string>,
  procs: Record<number, { state: string; start: number }>,
): RuncStateHost {
  return {
    readText: async (path) => files[path],
    exists: async (path) => path in files || Object.keys(files).some((f) => f.startsWith(`${path}/`)),
    stat: async (pid) => procs[pid],
  };
}

const state = (extra: object = {}) =>
  JSON.stringify({
    init_process_pid: 42,
    init_process_start: 1000,
    cgroup_paths: { freezer: '/cg/freezer/novum/x', '': '/cg/unified/novum/x' },
    ...extra,
  });

describe('runcStatus', () => {
  const file = '/run/novum-x/state.json';

  it('is running when the init process lives with its start time and the fifo is gone', async () => {
    const h = host(
      { [file]: state(), '/cg/freezer/novum/x/freezer.state': 'THAWED\n' },
      { 42: { state: 'S', start: 1000 } },
    );
    expect(await runcStatus('/run', 'novum-x', h)).toBe('running');
  });

  it('is created while the exec fifo waits for runc start', async () => {
    const h = host({ [file]: state(), '/run/novum-x/exec.fifo': '' }, { 42: { state: 'S', start: 1000 } });
    expect(await runcStatus('/run', 'novum-x', h)).toBe('created');
  });

  it('is paused when the v1 freezer holds the cgroup, whatever the process', async () => {
    const h = host({ [file]: state(), '/cg/freezer/novum/x/freezer.state': 'FROZEN\n' }, {});
    expect(await runcStatus('/run', 'novum-x', h)).toBe('paused');
  });

  it('reads cgroup.freeze on a cgroup v2 host', async () => {
    const v2 = state({ cgroup_paths: { '': '/cg/novum/x' } });
    const h = host({ [file]: v2, '/cg/novum/x/cgroup.freeze': '1\n' }, { 42: { state: 'S', start: 1000 } });
    expect(await runcStatus('/run', 'novum-x', h)).toBe('paused');
    const thawed = host(
      { [file]: v2, '/cg/novum/x/cgroup.freeze': '0\n' },
      { 42: { state: 'S', start: 1000 } },
    );
    expect(await runcStatus('/run', 'novum-x', thawed)).toBe('running');
  });

  it('is stopped when the init process is gone, a zombie, or its pid reused', async () => {
    expect(await runcStatus('/run', 'novum-x', host({ [file]: state() }, {}))).toBe('stopped');
    expect(
      await runcStatus('/run', 'novum-x', host({ [file]: state() }, { 42: { state: 'Z', start: 1000 } })),
    ).toBe('stopped');
    expect(
      await runcStatus('/run', 'novum-x', host({ [file]: state() }, { 42: { state: 'S', start: 7 } })),
    ).toBe('stopped');
  });

  it('is undefined for a container runc does not have, null for what it cannot read', async () => {
    expect(await runcStatus('/run', 'novum-x', host({}, {}))).toBeUndefined();
    expect(await runcStatus('/run', 'novum-x', host({ '/run/novum-x/other': '' }, {}))).toBeNull();
    expect(await runcStatus('/run', 'novum-x', host({ [file]: '{"init_process_pid":' }, {}))).toBeNull();
    expect(await runcStatus('/run', 'novum-x', host({ [file]: '{}' }, {}))).toBeNull();
  });
});

describe('procStat', () => {
  it('reads the state and start time of this process; nothing for a pid that does not exist', async () => {
    const me = await procStat(process.pid);
    expect(me?.state).toMatch(/^[RSD]$/);
    expect(me?.start).toBeGreaterThan(0);
    expect(await procStat(2 ** 22 + 1)).toBeUndefined();
  });
});

describe('runcInitPid', () => {
  it('reads the init pid from the state file, nothing when it cannot', async () => {
    const files = { '/run/novum-x/state.json': JSON.stringify({ init_process_pid: 4242 }) };
    expect(await runcInitPid('/run', 'novum-x', host(files, {}))).toBe(4242);
    expect(await runcInitPid('/run', 'novum-y', host(files, {}))).toBeUndefined();
    expect(
      await runcInitPid('/run', 'novum-x', host({ '/run/novum-x/state.json': '{' }, {})),
    ).toBeUndefined();
  });
});

describe('crunStatus', () => {
  const file = '/run/novum-x/status';
  const status = (extra: object = {}) =>
    JSON.stringify({ pid: 42, 'process-start-time': 1000, 'cgroup-path': '/novum/x', ...extra });
  const live = { 42: { state: 'S', start: 1000 } };

  it('is running, created while the exec fifo waits, paused when the v1 freezer holds the cgroup', async () => {
    const freezer = '/cg/freezer/novum/x/freezer.state';
    expect(
      await crunStatus('/run', 'novum-x', host({ [file]: status(), [freezer]: 'THAWED\n' }, live), '/cg'),
    ).toBe('running');
    expect(
      await crunStatus(
        '/run',
        'novum-x',
        host({ [file]: status(), '/run/novum-x/exec.fifo': '' }, live),
        '/cg',
      ),
    ).toBe('created');
    expect(
      await crunStatus('/run', 'novum-x', host({ [file]: status(), [freezer]: 'FROZEN\n' }, live), '/cg'),
    ).toBe('paused');
  });

  it('reads cgroup.freeze where no v1 freezer is mounted', async () => {
    const frozen = host({ [file]: status(), '/cg/novum/x/cgroup.freeze': '1\n' }, live);
    expect(await crunStatus('/run', 'novum-x', frozen, '/cg')).toBe('paused');
    const thawed = host({ [file]: status(), '/cg/novum/x/cgroup.freeze': '0\n' }, live);
    expect(await crunStatus('/run', 'novum-x', thawed, '/cg')).toBe('running');
  });

  it('is stopped when the init process is gone, a zombie, or its pid reused', async () => {
    expect(await crunStatus('/run', 'novum-x', host({ [file]: status() }, {}), '/cg')).toBe('stopped');
    const zombie = host({ [file]: status() }, { 42: { state: 'Z', start: 1000 } });
    expect(await crunStatus('/run', 'novum-x', zombie, '/cg')).toBe('stopped');
    const reused = host({ [file]: status() }, { 42: { state: 'S', start: 7 } });
    expect(await crunStatus('/run', 'novum-x', reused, '/cg')).toBe('stopped');
  });

  it('is undefined for a container crun does not have, null for what it cannot read', async () => {
    expect(await crunStatus('/run', 'novum-x', host({}, {}), '/cg')).toBeUndefined();
    expect(await crunStatus('/run', 'novum-x', host({ '/run/novum-x/other': '' }, {}), '/cg')).toBeNull();
    expect(await crunStatus('/run', 'novum-x', host({ [file]: '{"pid":' }, live), '/cg')).toBeNull();
    const systemd = host(
      { [file]: status({ 'systemd-cgroup': true, 'cgroup-path': 'machine.slice:x' }) },
      live,
    );
    expect(await crunStatus('/run', 'novum-x', systemd, '/cg')).toBeNull();
  });

  it('reads the init pid from the status file, nothing when it cannot', async () => {
    expect(await crunInitPid('/run', 'novum-x', host({ [file]: status() }, {}))).toBe(42);
    expect(await crunInitPid('/run', 'novum-x', host({ [file]: '{}' }, {}))).toBeUndefined();
    expect(await crunInitPid('/run', 'novum-x', host({}, {}))).toBeUndefined();
  });
});
