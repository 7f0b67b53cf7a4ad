import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  createBackends,
  entryPoint,
  launchService,
  ServiceProcess,
  testMode,
  waitForHttp,
} from './support/cloud';
import { issueToken } from './support/keystone';
import { openstack, openstackJson, openstackOk, openstackWaitedJson } from './support/openstack';
import { TcpProxy } from './support/tcp-proxy';

/**
 * Novum as separate services (issue 9's layout, on one machine): identity, image, network, compute API and
 * orchestration each in its own process, a Heat engine apart from its API, the conductor, and two compute agents with data dirs of their own
 * (hosts `apart-a` and `apart-b`, fake driver), sharing one PostgreSQL database and one RabbitMQ vhost, as
 * ops/systemd's units run them. Each API service puts its own entry in identity's catalog and makes its
 * first-start data; the others find each other through that catalog only. PostgreSQL and RabbitMQ are what
 * separate processes share, so this runs in the production pass.
 */
const PORT = 27000;
const APIS = ['image', 'network', 'compute-api', 'orchestration'] as const;
const URLS: Record<(typeof APIS)[number], string> = {
  image: `http://127.0.0.1:${PORT + 2}/image`,
  network: `http://127.0.0.1:${PORT + 3}/network`,
  'compute-api': `http://127.0.0.1:${PORT + 1}/compute/v2.1`,
  orchestration: `http://127.0.0.1:${PORT + 4}/heat-api`,
};
const HOSTS = ['apart-a', 'apart-b'];
const DEMO_PASSWORD = randomBytes(12).toString('base64url');

function unprivilegedUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const id = (flag: string) =>
      Number(execFileSync('id', [flag, 'novum'], { encoding: 'utf8', stdio: 'pipe' }));
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    if (process.env.NOVUM_REQUIRE_HOST_TESTS === '1') throw new Error('no user novum: run ops/install.sh');
    return undefined;
  }
}

const describeApart = testMode() === 'production' ? describe : describe.skip;

async function pollUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not so after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

describeApart('the services apart, sharing PostgreSQL and RabbitMQ', () => {
  const id = randomBytes(4).toString('hex');
  // Made in beforeAll: jest runs this body even when the suite is skipped (the embedded pass).
  let controller: string;
  let hostDirs: string[] = [];
  let log: string;
  const processes = new Map<string, ServiceProcess>();
  let backends: Awaited<ReturnType<typeof createBackends>> | undefined;
  let database: TcpProxy | undefined;
  let env: Record<string, string>;
  let admin: Record<string, string>;
  let demo: Record<string, string>;

  // As ops/systemd's units: every service but the compute agents as the unprivileged `novum` (ops/install.sh
  // makes it) when the test runs as root.
  const novum = unprivilegedUser();
  const start = (app: string, extra: Record<string, string> = {}) => {
    const user = app === 'compute' ? undefined : novum;
    // The Heat engine apart from its API (heat-engine): apps/orchestration/engine-main.js.
    const main =
      app === 'heat-engine' ? join(dirname(entryPoint('orchestration')), 'engine-main.js') : entryPoint(app);
    processes.set(extra.NOVUM_HOST ?? app, launchService(main, { ...env, ...extra }, log, user));
  };
  const logTail = () => readFileSync(log, 'utf8').slice(-4000);

  beforeAll(async () => {
    controller = mkdtempSync(join(tmpdir(), 'novum-e2e-'));
    hostDirs = HOSTS.map(() => mkdtempSync(join(tmpdir(), 'novum-e2e-')));
    log = join(controller, 'services.log');
    if (novum) chownSync(controller, novum.uid, novum.gid);
    backends = await createBackends(id);
    // The services reach PostgreSQL through a relay the database-outage test cuts.
    database = await TcpProxy.start(5432);
    env = {
      ...backends.env,
      DATABASE_URL: backends.env.DATABASE_URL.replace(':5432/', `:${database.port}/`),
      NOVUM_DEMO_PASSWORD: DEMO_PASSWORD,
      NOVUM_SERVICE_DOWN_TIME: '6',
      NOVUM_DATA_DIR: controller,
      NOVUM_BIND_ADDRESS: '127.0.0.1',
      NOVUM_PUBLIC_HOST: '127.0.0.1',
      NOVUM_LOG_LEVEL: process.env.APART_LOG_LEVEL ?? 'warn',
      NOVUM_IDENTITY_PORT: String(PORT),
      NOVUM_COMPUTE_PORT: String(PORT + 1),
      NOVUM_IMAGE_PORT: String(PORT + 2),
      NOVUM_NETWORK_PORT: String(PORT + 3),
      NOVUM_ORCHESTRATION_PORT: String(PORT + 4),
      NOVUM_SERIALPROXY_PORT: String(PORT + 5),
      NOVUM_IDENTITY_URL: `http://127.0.0.1:${PORT}/identity`,
      // What every host of a deployment shares (ops/systemd/novum.env).
      NOVUM_SERVICE_PASSWORD: randomBytes(12).toString('base64url'),
      NOVUM_AUTH_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
      NOVUM_REPORT_INTERVAL: '2',
      NOVUM_COMPUTE_DRIVERS: 'fake',
    };
    // The API services start before identity answers, as on hosts that boot in any order: they wait for it.
    // The orchestration API without an engine: stack actions go over RabbitMQ to the engine started apart.
    for (const app of APIS) start(app, app === 'orchestration' ? { NOVUM_HEAT_ENGINE: 'false' } : {});
    start('heat-engine');
    start('conductor');
    HOSTS.forEach((host, i) => start('compute', { NOVUM_HOST: host, NOVUM_DATA_DIR: hostDirs[i] }));
    start('identity');
    const died = Promise.race(
      [...processes.entries()].map(([name, p]) =>
        p.exited.then((code) => {
          throw new Error(`${name} exited with ${code} during start; log:\n${logTail()}`);
        }),
      ),
    );
    await Promise.race([
      Promise.all(
        [`http://127.0.0.1:${PORT}/identity/v3`, ...Object.values(URLS)].map((u) => waitForHttp(u, 90_000)),
      ),
      died,
    ]);
    const cloudsYaml = join(controller, 'clouds.yaml');
    admin = { OS_CLIENT_CONFIG_FILE: cloudsYaml, OS_CLOUD: 'novum-admin' };
    demo = { OS_CLIENT_CONFIG_FILE: cloudsYaml, OS_CLOUD: 'novum-demo' };
    const image = join(controller, 'tiny.raw');
    writeFileSync(image, Buffer.alloc(64 * 1024));
    await openstackOk(
      demo,
      ...['image', 'create', '--disk-format', 'raw', '--container-format', 'bare'],
      ...['--file', image, 'tiny'],
    );
  }, 180_000);

  afterAll(async () => {
    await Promise.all([...processes.values()].map((p) => p.stop()));
    await database?.close();
    await backends?.drop();
    if (process.env.NOVUM_E2E_KEEP_LOG && log)
      writeFileSync(process.env.NOVUM_E2E_KEEP_LOG, readFileSync(log));
    for (const dir of [controller, ...hostDirs]) if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('puts every API service in the catalog and makes their first-start data', async () => {
    const catalog = await openstackJson<{ Name: string; Type: string; Endpoints: unknown }[]>(
      admin,
      'catalog',
      'list',
    );
    expect(catalog.map((entry) => entry.Type).sort()).toEqual([
      'compute',
      'identity',
      'image',
      'network',
      'orchestration',
    ]);
    const endpoints = await openstackJson<{ 'Service Type': string; Interface: string; URL: string }[]>(
      admin,
      'endpoint',
      'list',
      '--service',
      'compute',
    );
    expect(endpoints.map((e) => e.Interface).sort()).toEqual(['admin', 'internal', 'public']);
    expect(new Set(endpoints.map((e) => e.URL))).toEqual(new Set([URLS['compute-api']]));
    // compute-api's flavors and network's shared networks exist: their bootstraps ran.
    const flavors = await openstackJson<{ Name: string }[]>(demo, 'flavor', 'list');
    expect(flavors.map((f) => f.Name)).toEqual(expect.arrayContaining(['m1.tiny', 'c1.tiny']));
    const networks = await openstackJson<{ Name: string }[]>(demo, 'network', 'list');
    expect(networks.map((n) => n.Name)).toEqual(expect.arrayContaining(['private', 'public']));
    // Identity ran as novum: the files it wrote are novum's.
    if (novum) expect(statSync(join(controller, 'clouds.yaml')).uid).toBe(novum.uid);
  }, 60_000);

  /** `compute service list` once every compute host's state is the one given (or the last list at the deadline). */
  async function computeStates(wanted: Record<string, string>, timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const services = await openstackJson<{ Binary: string; Host: string; State: string }[]>(
        admin,
        ...['compute', 'service', 'list'],
      );
      const states = Object.fromEntries(
        services
          .filter((s) => s.Binary === 'nova-compute')
          .map((s) => [s.Host, s.State])
          .sort(([a], [b]) => a.localeCompare(b)),
      );
      const conductor = services.find((s) => s.Binary === 'nova-conductor')?.State;
      if (Date.now() > deadline || (conductor === 'up' && JSON.stringify(states) === JSON.stringify(wanted)))
        return { states, conductor };
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const hostOf = async (name: string, owner = demo) => {
    const { id } = await openstackJson<{ id: string }>(owner, 'server', 'show', name);
    return (await openstackJson<Record<string, string>>(admin, 'server', 'show', id))['OS-EXT-SRV-ATTR:host'];
  };

  it('lists the conductor and both compute hosts up', async () => {
    expect(await computeStates({ 'apart-a': 'up', 'apart-b': 'up' })).toEqual({
      states: { 'apart-a': 'up', 'apart-b': 'up' },
      conductor: 'up',
    });
  }, 60_000);

  it('spreads an anti-affinity group over both hosts and deletes the servers', async () => {
    const group = await openstackJson<{ id: string }>(
      demo,
      'server',
      'group',
      'create',
      '--policy',
      'anti-affinity',
      'spread',
    );
    const names = ['apart-1', 'apart-2'];
    await Promise.all(
      names.map((name) =>
        openstackOk(
          demo,
          ...['server', 'create', '--image', 'tiny', '--flavor', 'm1.tiny', '--network', 'private'],
          ...['--hint', `group=${group.id}`, '--wait', name],
        ),
      ),
    );
    const hosts = await Promise.all(
      names.map(async (name) => {
        const { id } = await openstackJson<{ id: string }>(demo, 'server', 'show', name);
        const server = await openstackJson<Record<string, string>>(admin, 'server', 'show', id);
        expect(server.status).toBe('ACTIVE');
        return server['OS-EXT-SRV-ATTR:host'];
      }),
    );
    expect(hosts.sort()).toEqual(HOSTS);
    await openstackOk(demo, 'server', 'delete', '--wait', ...names);
    expect(await openstackJson(demo, 'server', 'list')).toEqual([]);
  }, 120_000);

  it('runs a stack through the orchestration service alone', async () => {
    const template = join(controller, 'random.yaml');
    writeFileSync(
      template,
      [
        'heat_template_version: 2021-04-16',
        'resources:',
        '  secret: {type: OS::Heat::RandomString, properties: {length: 12}}',
        'outputs:',
        '  value: {value: {get_attr: [secret, value]}}',
      ].join('\n'),
    );
    const stack = await openstackWaitedJson<{ stack_status: string }>(
      demo,
      'stack',
      'create',
      '-t',
      template,
      '--wait',
      'apart',
    );
    expect(stack.stack_status).toBe('CREATE_COMPLETE');
    const output = await openstackJson<{ output_value: string }>(
      demo,
      'stack',
      'output',
      'show',
      'apart',
      'value',
    );
    expect(output.output_value).toMatch(/^[A-Za-z0-9]{12}$/);
    await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'apart');
  }, 120_000);

  it('fails the stack a killed engine held once an engine is back, and the delete is taken by it', async () => {
    const template = join(controller, 'slow.yaml');
    writeFileSync(
      template,
      [
        'heat_template_version: 2021-04-16',
        'resources:',
        '  quick: {type: OS::Heat::RandomString}',
        '  slow: {type: OS::Heat::TestResource, properties: {wait_secs: 120}, depends_on: quick}',
      ].join('\n'),
    );
    await openstackOk(demo, 'stack', 'create', '-t', template, 'cut-short');
    const slowState = async () =>
      (
        await openstackJson<{ resource_status: string }>(
          demo,
          'stack',
          'resource',
          'show',
          'cut-short',
          'slow',
        )
      ).resource_status;
    await pollUntil(async () => (await slowState()) === 'CREATE_IN_PROGRESS', 60_000);
    // Meanwhile the engine holds the stack: another action is refused.
    const refused = await openstack(demo, 'stack', 'delete', '--yes', 'cut-short');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/in progress/i);

    const engine = processes.get('heat-engine')!;
    engine.child.kill('SIGKILL');
    await engine.exited;
    start('heat-engine');
    // The new engine sees the killed one's process gone on this host and fails what it held, as Heat does.
    const shown = () =>
      openstackJson<{ stack_status: string; stack_status_reason: string }>(
        demo,
        'stack',
        'show',
        'cut-short',
      );
    await pollUntil(async () => (await shown()).stack_status !== 'CREATE_IN_PROGRESS', 60_000);
    const stack = await shown();
    expect([stack.stack_status, stack.stack_status_reason]).toEqual([
      'CREATE_FAILED',
      'Engine went down during stack CREATE',
    ]);
    expect(await slowState()).toBe('CREATE_FAILED');
    await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'cut-short');
  }, 180_000);

  it('keeps one catalog entry per service when an API service restarts', async () => {
    const computeApi = processes.get('compute-api')!;
    expect(await computeApi.stop()).toBe(0);
    start('compute-api');
    await waitForHttp(URLS['compute-api'], 60_000);
    const services = await openstackJson<{ Type: string }[]>(admin, 'service', 'list');
    expect(services.filter((s) => s.Type === 'compute')).toHaveLength(1);
    const endpoints = await openstackJson<unknown[]>(admin, 'endpoint', 'list', '--service', 'compute');
    expect(endpoints).toHaveLength(3);
    expect(await openstackJson<unknown[]>(demo, 'flavor', 'list')).not.toHaveLength(0);
  }, 90_000);

  it('reports a killed compute agent down, schedules around it, evacuates one server, reports the other', async () => {
    const boot = (name: string, ...more: string[]) =>
      openstackOk(
        admin,
        ...['server', 'create', '--image', 'tiny', '--flavor', 'm1.tiny', '--network', 'private'],
        ...more,
        ...['--wait', name],
      );
    await boot('on-b', '--availability-zone', 'nova:apart-b');
    await boot('evacuated', '--availability-zone', 'nova:apart-b');
    const evacuatedId = (await openstackJson<{ id: string }>(admin, 'server', 'show', 'evacuated')).id;
    const agent = processes.get('apart-b')!;
    agent.child.kill('SIGKILL');
    await agent.exited;
    expect((await computeStates({ 'apart-a': 'up', 'apart-b': 'down' })).states).toEqual({
      'apart-a': 'up',
      'apart-b': 'down',
    });
    await boot('while-b-down');
    expect(await hostOf('while-b-down', admin)).toBe('apart-a');

    // The admin fences the host, then evacuates a server: rebuilt on apart-a from its image, same id and port.
    const compute = (version: string, ...args: string[]) =>
      openstackOk(admin, '--os-compute-api-version', version, ...args);
    const portBefore = await openstackJson<{ id: string }[]>(admin, 'port', 'list', '--server', evacuatedId);
    await compute('2.11', 'compute', 'service', 'set', '--down', 'apart-b', 'nova-compute');
    // Debian's openstackclient 6.0 sends the evacuation, then fails on novaclient's answer (it takes the
    // (response, body) tuple of `server.evacuate()` for a server: "'TupleWithMeta' object has no attribute
    // 'id'" with --wait, "... 'to_dict'" without), whatever the cloud answered; so `server show` awaits the end.
    const evacuate = await openstack(
      admin,
      ...['--os-compute-api-version', '2.29', 'server', 'evacuate', '--host', 'apart-a', evacuatedId],
    );
    if (evacuate.code !== 0)
      expect(evacuate.stderr).toMatch(/'TupleWithMeta' object has no attribute '(id|to_dict)'/);
    let evacuated: Record<string, unknown> = {};
    for (
      const until = Date.now() + 60_000;
      Date.now() < until;
      await new Promise((r) => setTimeout(r, 1000))
    ) {
      evacuated = await openstackJson<Record<string, unknown>>(admin, 'server', 'show', evacuatedId);
      if (evacuated['OS-EXT-STS:task_state'] === null && evacuated.status !== 'BUILD') break;
    }
    expect([evacuated['OS-EXT-SRV-ATTR:host'], evacuated.status]).toEqual(['apart-a', 'ACTIVE']);
    expect(await openstackJson<{ id: string }[]>(admin, 'port', 'list', '--server', evacuatedId)).toEqual(
      portBefore,
    );
    const migrations = await openstackJson<Record<string, string>[]>(
      admin,
      ...['--os-compute-api-version', '2.59', 'server', 'migration', 'list', '--type', 'evacuation'],
    );
    expect(migrations.map((m) => [m['Source Compute'], m['Dest Compute'], m.Status])).toEqual([
      ['apart-b', 'apart-a', 'done'],
    ]);

    start('compute', { NOVUM_HOST: 'apart-b', NOVUM_DATA_DIR: hostDirs[1] });
    await compute('2.11', 'compute', 'service', 'set', '--up', 'apart-b', 'nova-compute');
    expect((await computeStates({ 'apart-a': 'up', 'apart-b': 'up' })).states).toEqual({
      'apart-a': 'up',
      'apart-b': 'up',
    });
    // Back up, apart-b closes the evacuation, and reports the server it could not keep: the fake driver's
    // guests die with their agent (real drivers' outlive it), so it finds that one gone and says so (ERROR).
    const closed = async () =>
      (
        await openstackJson<Record<string, string>[]>(
          admin,
          ...['--os-compute-api-version', '2.59', 'server', 'migration', 'list', '--type', 'evacuation'],
        )
      ).map((m) => m.Status);
    const deadline = Date.now() + 30_000;
    while ((await closed())[0] !== 'completed' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 1000));
    expect(await closed()).toEqual(['completed']);
    const { id } = await openstackJson<{ id: string }>(admin, 'server', 'show', 'on-b');
    const server = await openstackJson<Record<string, unknown>>(admin, 'server', 'show', id);
    expect([server['OS-EXT-SRV-ATTR:host'], server.status]).toEqual(['apart-b', 'ERROR']);
    expect(JSON.stringify(server.fault)).toContain(`Instance ${id} could not be found on host apart-b.`);
    // (Not `--wait` for the one in ERROR: the client's wait gives up at once on a server whose status is error.)
    await openstackOk(admin, 'server', 'delete', 'on-b');
    await openstackOk(admin, 'server', 'delete', '--wait', 'while-b-down', evacuatedId);
    let left = await openstackJson<unknown[]>(admin, 'server', 'list');
    while (left.length && Date.now() < deadline + 30_000) {
      await new Promise((r) => setTimeout(r, 1000));
      left = await openstackJson<unknown[]>(admin, 'server', 'list');
    }
    expect(left).toEqual([]);
  }, 180_000);

  /** Servers named `prefix-N` once none is building any more (or the time is up): name -> status. */
  async function settled(prefix: string, count: number, timeoutMs = 90_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const servers = await openstackJson<{ Name: string; Status: string }[]>(demo, 'server', 'list');
      const mine = servers.filter((server) => server.Name.startsWith(`${prefix}-`));
      const busy = mine.some((server) => server.Status === 'BUILD');
      if ((mine.length >= count && !busy) || Date.now() > deadline)
        return Object.fromEntries(mine.map((server) => [server.Name, server.Status]));
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const createMany = (prefix: string, count: number) =>
    openstackOk(
      demo,
      ...['server', 'create', '--image', 'tiny', '--flavor', 'm1.tiny', '--network', 'private'],
      ...['--min', String(count), '--max', String(count), prefix],
    );
  const deleteAll = async (prefix: string, count: number) => {
    const names = Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`);
    await openstackOk(demo, 'server', 'delete', '--wait', ...names);
  };
  const allActive = (prefix: string, count: number) =>
    Object.fromEntries(Array.from({ length: count }, (_, i) => [`${prefix}-${i + 1}`, 'ACTIVE']));

  it('finishes the builds a conductor killed mid-schedule had taken, once a conductor is back', async () => {
    const conductor = processes.get('conductor')!;
    await createMany('orphan', 6);
    conductor.child.kill('SIGKILL');
    await conductor.exited;
    start('conductor');
    expect(await settled('orphan', 6)).toEqual(allActive('orphan', 6));
    await deleteAll('orphan', 6);
  }, 150_000);

  it('fails cleanly a build its compute agent was killed in the middle of, and the agent comes back up', async () => {
    // apart-a again, its fake spawns taking 30 s, so that the kill lands inside one.
    const agent = processes.get('apart-a')!;
    await agent.stop();
    start('compute', { NOVUM_HOST: 'apart-a', NOVUM_DATA_DIR: hostDirs[0], NOVUM_FAKE_SPAWN_SECONDS: '30' });
    expect((await computeStates({ 'apart-a': 'up', 'apart-b': 'up' })).states['apart-a']).toBe('up');
    await openstackOk(
      admin,
      ...['server', 'create', '--image', 'tiny', '--flavor', 'm1.tiny', '--network', 'private'],
      ...['--availability-zone', 'nova:apart-a', 'cut-build'],
    );
    type Shown = { status: string; 'OS-EXT-STS:task_state': string | null; fault?: { message: string } };
    const shown = () => openstackJson<Shown>(admin, 'server', 'show', 'cut-build');
    await pollUntil(async () => (await shown())['OS-EXT-STS:task_state'] === 'spawning', 60_000);
    const building = processes.get('apart-a')!;
    building.child.kill('SIGKILL');
    await building.exited;
    expect((await computeStates({ 'apart-a': 'down', 'apart-b': 'up' })).states['apart-a']).toBe('down');
    expect((await shown()).status).toBe('BUILD');
    start('compute', { NOVUM_HOST: 'apart-a', NOVUM_DATA_DIR: hostDirs[0] });
    expect((await computeStates({ 'apart-a': 'up', 'apart-b': 'up' })).states['apart-a']).toBe('up');
    // The guest went with the killed process: the agent back says so, as Nova's _init_instance does.
    await pollUntil(async () => (await shown()).status !== 'BUILD', 60_000);
    const after = await shown();
    expect(after.status).toBe('ERROR');
    expect(after.fault?.message).toMatch(/was being built on apart-a when its compute agent stopped/);
    await openstackOk(admin, 'server', 'delete', '--wait', 'cut-build');
  }, 240_000);

  it('keeps creating and deleting servers across a RabbitMQ restart, losing none', async () => {
    // rabbitmqctl stop_app/start_app: the broker's node stays, every vhost's durable state with it (as
    // test/e2e/bus-restart); the API's casts wait in its outbox, unacked work is delivered again.
    // (Asynchronously: this process relays the services' database connections, see TcpProxy.)
    const rabbitmq = (...args: string[]) => promisify(execFile)('rabbitmqctl', args);
    await createMany('steady', 3);
    await rabbitmq('stop_app');
    let storm: Promise<unknown> = Promise.resolve();
    try {
      // A create while the broker is away: the API's cast to the conductor waits for the broker's confirm
      // (as an oslo.messaging cast waits for its connection), so the request ends once the broker is back.
      storm = createMany('storm', 3);
      storm.catch(() => undefined);
      await new Promise((r) => setTimeout(r, 2_000));
    } finally {
      await rabbitmq('start_app');
      await rabbitmq('await_startup');
    }
    await storm;
    expect(await settled('steady', 3)).toEqual(allActive('steady', 3));
    expect(await settled('storm', 3)).toEqual(allActive('storm', 3));
    await Promise.all([deleteAll('steady', 3), deleteAll('storm', 3)]);
    expect(await openstackJson(demo, 'server', 'list')).toEqual([]);
  }, 180_000);

  it('answers 503 while the database is unreachable, never hanging, and recovers when it is back', async () => {
    const { token } = await issueToken(`http://127.0.0.1:${PORT}/identity`, {
      user: 'demo',
      password: DEMO_PASSWORD,
      project: 'demo',
    });
    const get = (url: string) =>
      fetch(url, { headers: { 'x-auth-token': token }, signal: AbortSignal.timeout(20_000) });
    const reads = [
      `${URLS['compute-api']}/servers`,
      `${URLS.network}/v2.0/networks`,
      `${URLS.image}/v2/images`,
    ];
    for (const url of reads) expect([url, (await get(url)).status]).toEqual([url, 200]);
    database!.cut();
    try {
      for (const url of reads) {
        const answer = await get(url);
        expect([url, answer.status]).toEqual([url, 503]);
        // The service's own fault body (Nova's, Neutron's, Glance's), never a stack trace.
        expect(JSON.stringify(await answer.json())).toMatch(/"[^"]*temporarily unavailable[^"]*"/);
      }
      const login = await fetch(`http://127.0.0.1:${PORT}/identity/v3/auth/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          auth: {
            identity: {
              methods: ['password'],
              password: { user: { name: 'demo', domain: { id: 'default' }, password: DEMO_PASSWORD } },
            },
          },
        }),
        signal: AbortSignal.timeout(20_000),
      });
      expect(login.status).toBe(503);
    } finally {
      database!.restore();
    }
    const deadline = Date.now() + 30_000;
    for (const url of reads) {
      let status = 0;
      while (status !== 200 && Date.now() < deadline) {
        status = (await get(url).catch(() => undefined))?.status ?? 0;
        if (status !== 200) await new Promise((r) => setTimeout(r, 500));
      }
      expect([url, status]).toEqual([url, 200]);
    }
    expect(await openstackJson(demo, 'flavor', 'list')).not.toHaveLength(0);
  }, 120_000);
});
