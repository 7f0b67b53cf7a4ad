import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createBackends,
  entryPoint,
  launchService,
  ServiceProcess,
  testMode,
  waitForHttp,
} from './support/cloud';
import { openstackJson, openstackOk, openstackWaitedJson } from './support/openstack';

/**
 * Novum as separate services (issue 9's layout, on one machine): identity, image, network, compute API and
 * orchestration each in its own process, the conductor, and two compute agents with data dirs of their own
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

describeApart('the services apart, sharing PostgreSQL and RabbitMQ', () => {
  const id = randomBytes(4).toString('hex');
  const controller = mkdtempSync(join(tmpdir(), 'novum-e2e-'));
  const hostDirs = HOSTS.map(() => mkdtempSync(join(tmpdir(), 'novum-e2e-')));
  const log = join(controller, 'services.log');
  const processes = new Map<string, ServiceProcess>();
  let backends: Awaited<ReturnType<typeof createBackends>> | undefined;
  let env: Record<string, string>;
  let admin: Record<string, string>;
  let demo: Record<string, string>;

  // As ops/systemd's units: every service but the compute agents as the unprivileged `novum` (ops/install.sh
  // makes it) when the test runs as root.
  const novum = unprivilegedUser();
  const start = (app: string, extra: Record<string, string> = {}) => {
    const user = app === 'compute' ? undefined : novum;
    processes.set(extra.NOVUM_HOST ?? app, launchService(entryPoint(app), { ...env, ...extra }, log, user));
  };
  const logTail = () => readFileSync(log, 'utf8').slice(-4000);

  beforeAll(async () => {
    if (novum) chownSync(controller, novum.uid, novum.gid);
    backends = await createBackends(id);
    env = {
      ...backends.env,
      NOVUM_DATA_DIR: controller,
      NOVUM_BIND_ADDRESS: '127.0.0.1',
      NOVUM_PUBLIC_HOST: '127.0.0.1',
      NOVUM_LOG_LEVEL: 'warn',
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
    for (const app of APIS) start(app);
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
  }, 180_000);

  afterAll(async () => {
    await Promise.all([...processes.values()].map((p) => p.stop()));
    await backends?.drop();
    if (process.env.NOVUM_E2E_KEEP_LOG) writeFileSync(process.env.NOVUM_E2E_KEEP_LOG, readFileSync(log));
    for (const dir of [controller, ...hostDirs]) rmSync(dir, { recursive: true, force: true });
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

  it('lists the conductor and both compute hosts up', async () => {
    const deadline = Date.now() + 30_000;
    let services: { Binary: string; Host: string; State: string }[] = [];
    while (Date.now() < deadline) {
      services = await openstackJson(admin, 'compute', 'service', 'list');
      const upComputes = services.filter((s) => s.Binary === 'nova-compute' && s.State === 'up');
      if (upComputes.length === HOSTS.length && services.some((s) => s.Binary === 'nova-conductor')) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(
      services
        .filter((s) => s.Binary === 'nova-compute')
        .map((s) => [s.Host, s.State])
        .sort(),
    ).toEqual(HOSTS.map((host) => [host, 'up']));
    expect(services.find((s) => s.Binary === 'nova-conductor')?.State).toBe('up');
  }, 60_000);

  it('spreads an anti-affinity group over both hosts and deletes the servers', async () => {
    const file = join(controller, 'tiny.raw');
    writeFileSync(file, Buffer.alloc(64 * 1024));
    await openstackOk(
      demo,
      'image',
      'create',
      '--disk-format',
      'raw',
      '--container-format',
      'bare',
      '--file',
      file,
      'tiny',
    );
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
});
