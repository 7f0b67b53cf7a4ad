import { CloudHandle, startCloud } from './support/cloud';
import { mutate, pool, queryValue, randomBytesString, randomValue, Rng, SERVER_KEYS } from './support/fuzz';
import { putData } from './support/image';
import { api, issueToken } from './support/keystone';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 100_000);
const COUNT = Number(process.env.FUZZ_COUNT ?? 2000);

const NOVA_FAULTS = [
  'badRequest',
  'unauthorized',
  'forbidden',
  'itemNotFound',
  'badMethod',
  'conflictingRequest',
  'overLimit',
  'notAcceptable',
  'badMediaType',
];

/** Sends one request and records it in `failures` if it answers 5xx or a fault not in Nova's format. */
async function checkNova(
  root: string,
  failures: string[],
  token: string,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; version?: string },
): Promise<void> {
  const headers: Record<string, string> = options.version
    ? { 'x-openstack-nova-api-version': options.version }
    : {};
  const response = await api(root, method, path, { token, body: options.body, raw: options.raw, headers });
  const fault =
    response.body && typeof response.body === 'object' ? Object.entries(response.body)[0] : undefined;
  const wellFormed =
    response.status < 400 ||
    (fault !== undefined &&
      NOVA_FAULTS.includes(fault[0]) &&
      (fault[1] as any)?.code === response.status &&
      typeof (fault[1] as any)?.message === 'string');
  if (response.status >= 500 || !wellFormed) {
    failures.push(
      `${method} ${path} v${options.version} ${String(JSON.stringify(options.body ?? options.raw)).slice(0, 300)} -> ${response.status} ${String(JSON.stringify(response.body)).slice(0, 300)}`,
    );
  }
}

/** Random and mutated requests to flavors, key pairs, quotas and server groups: never a 5xx, always Nova's fault body. */
describe(`compute fuzzing (seed ${SEED})`, () => {
  let cloud: CloudHandle;
  let root: string;
  let adminToken: string;
  let demoToken: string;
  let projectId: string;
  const failures: string[] = [];

  const check = (
    token: string,
    method: string,
    path: string,
    options: { body?: unknown; raw?: string; version?: string },
  ) => checkNova(root, failures, token, method, path, options);

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 23220 });
    root = cloud.services.compute;
    const admin = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    adminToken = admin.token;
    const demo = await issueToken(cloud.identityUrl, {
      user: 'demo',
      password: cloud.demoPassword,
      project: 'demo',
    });
    demoToken = demo.token;
    projectId = demo.body.token.project.id;
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  const versions = [
    '2.1',
    '2.2',
    '2.10',
    '2.35',
    '2.55',
    '2.61',
    '2.64',
    '2.75',
    '2.86',
    '2.92',
    'latest',
    '2.97',
    'x',
  ];

  it('bodies of flavors, extra specs, flavor actions, key pairs, quotas and server groups', async () => {
    const rng = new Rng(SEED);
    const bodies: [string, () => string, unknown][] = [
      [
        'POST',
        () => '/flavors',
        {
          flavor: {
            name: 'f',
            ram: 512,
            vcpus: 1,
            disk: 1,
            id: 'fz',
            swap: 0,
            rxtx_factor: 1.0,
            'os-flavor-access:is_public': false,
            description: 'd',
          },
        },
      ],
      ['PUT', () => '/flavors/1', { flavor: { description: 'd' } }],
      [
        'POST',
        () => '/flavors/1/os-extra_specs',
        { extra_specs: { 'hw:cpu_policy': 'shared', 'novum:driver': 'kvm' } },
      ],
      ['PUT', () => '/flavors/1/os-extra_specs/hw:numa_nodes', { 'hw:numa_nodes': '1' }],
      ['POST', () => '/flavors/1/action', { addTenantAccess: { tenant: projectId } }],
      ['POST', () => '/flavors/fz/action', { removeTenantAccess: { tenant: projectId } }],
      ['POST', () => '/os-keypairs', { keypair: { name: `k${rng.int(50)}`, type: 'ssh', user_id: 'u' } }],
      ['PUT', () => `/os-quota-sets/${projectId}`, { quota_set: { instances: 5, cores: 10, force: true } }],
      ['PUT', () => '/os-quota-class-sets/fuzz', { quota_class_set: { instances: 5, key_pairs: 3 } }],
      [
        'POST',
        () => '/os-server-groups',
        {
          server_group: {
            name: 'g',
            policies: ['affinity'],
            policy: 'anti-affinity',
            rules: { max_server_per_host: 1 },
          },
        },
      ],
    ];
    await pool(COUNT, 8, async (i) => {
      const [method, path, body] = rng.pick(bodies);
      const token = rng.next() < 0.7 ? adminToken : demoToken;
      const version = rng.pick(versions);
      const kind = i % 10;
      if (kind === 0) await check(token, method, path(), { raw: randomBytesString(rng), version });
      else if (kind === 1) await check(token, method, path(), { body: randomValue(rng), version });
      else await check(token, method, path(), { body: mutate(rng, mutate(rng, body)), version });
    });
    expect(failures.slice(0, 5)).toEqual([]);
  }, 600_000);

  it('paths and query strings', async () => {
    const rng = new Rng(SEED + 1);
    const paths = [
      '/flavors',
      '/flavors/detail',
      '/os-keypairs',
      '/os-server-groups',
      '/limits',
      `/os-quota-sets/${projectId}`,
      '/os-availability-zone',
    ];
    const segments = [
      '1',
      'x',
      '%00',
      '..',
      "'",
      '%F0%9F%92%A5',
      'a'.repeat(300),
      '%',
      '%E0%A4%A',
      'os-extra_specs',
      'detail',
      'defaults',
    ];
    const params = [
      'limit',
      'marker',
      'minRam',
      'minDisk',
      'is_public',
      'sort_key',
      'sort_dir',
      'user_id',
      'all_projects',
      'offset',
      'tenant_id',
    ];
    await pool(COUNT, 8, async (i) => {
      const token = rng.next() < 0.5 ? adminToken : demoToken;
      const version = rng.pick(versions);
      if (i % 2 === 0) {
        const name = rng.pick(params);
        const value = queryValue(randomValue(rng), 100);
        await check(token, 'GET', `${rng.pick(paths)}?${name}=${value}&${rng.pick(params)}=${value}`, {
          version,
        });
      } else {
        const path = `${rng.pick(paths)}/${rng.pick(segments)}/${rng.pick(['', 'os-extra_specs/k', 'action', 'os-flavor-access', 'detail'])}`;
        const method = rng.pick(['GET', 'PUT', 'DELETE', 'POST']);
        const raw =
          method === 'PUT' || method === 'POST'
            ? rng.next() < 0.5
              ? randomBytesString(rng)
              : JSON.stringify(randomValue(rng))
            : undefined;
        await check(token, method, path, { raw, version });
      }
    });
    expect(failures.slice(0, 5)).toEqual([]);
    // still healthy and correct afterwards
    const created = await api(root, 'POST', '/flavors', {
      token: adminToken,
      body: { flavor: { name: 'after-fuzz', ram: 64, vcpus: 1, disk: 0 } },
    });
    expect(created.status).toBe(200);
    const shown = await api(root, 'GET', `/flavors/${created.body.flavor.id}`, { token: demoToken });
    expect(shown.body.flavor.name).toBe('after-fuzz');
  }, 600_000);
});

/** Every action name of POST /servers/{id}/action, each with a plausible body to mutate. */
const SERVER_ACTIONS: Record<string, unknown> = {
  reboot: { type: 'HARD' },
  'os-stop': null,
  'os-start': null,
  pause: null,
  unpause: null,
  suspend: null,
  resume: null,
  lock: { locked_reason: 'r' },
  unlock: null,
  'os-getConsoleOutput': { length: 10 },
  'os-resetState': { state: 'active' },
  rebuild: { imageRef: 'IMAGE', name: 'n', metadata: { a: 'b' }, adminPass: 'p' },
  resize: { flavorRef: '2', 'OS-DCF:diskConfig': 'AUTO' },
  confirmResize: null,
  revertResize: null,
  migrate: { host: 'h' },
  'os-migrateLive': { host: null, block_migration: 'auto', disk_over_commit: false, force: false },
  createImage: { name: 'snap', metadata: { k: 'v' } },
  shelve: null,
  shelveOffload: null,
  unshelve: { availability_zone: 'nova' },
  rescue: { adminPass: 'p', rescue_image_ref: 'IMAGE' },
  unrescue: null,
  forceDelete: null,
  restore: null,
  trigger_crash_dump: null,
  changePassword: { adminPass: 'p' },
  addSecurityGroup: { name: 'default' },
  removeSecurityGroup: { name: 'default' },
  'os-getSerialConsole': { type: 'serial' },
};

/** The servers API under fuzz: creates, updates, every action, metadata and tags; never a 5xx. */
describe(`compute servers fuzzing (seed ${SEED})`, () => {
  let cloud: CloudHandle;
  let root: string;
  let adminToken: string;
  let demoToken: string;
  let imageId: string;
  let networkId: string;
  const servers: string[] = [];
  const failures: string[] = [];
  const count = Math.ceil(COUNT / 2);
  const versions = ['2.1', '2.19', '2.26', '2.37', '2.47', '2.52', '2.57', '2.73', '2.90', 'latest'];

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 23730 });
    root = cloud.services.compute;
    adminToken = (
      await issueToken(cloud.identityUrl, { user: 'admin', password: cloud.adminPassword, project: 'admin' })
    ).token;
    demoToken = (
      await issueToken(cloud.identityUrl, { user: 'demo', password: cloud.demoPassword, project: 'demo' })
    ).token;
    const image = await api(cloud.services.image, 'POST', '/v2/images', {
      token: adminToken,
      body: { name: 'fuzz', disk_format: 'raw', container_format: 'bare', visibility: 'public' },
    });
    imageId = image.body.id;
    await putData(cloud.services.image, `/v2/images/${imageId}/file`, adminToken, Buffer.alloc(1024));
    networkId = (
      await api(cloud.services.network, 'GET', '/v2.0/networks?name=private', { token: adminToken })
    ).body.networks[0].id;
    for (const name of ['fz-1', 'fz-2', 'fz-3']) {
      const created = await api(root, 'POST', '/servers', {
        token: demoToken,
        body: { server: { name, imageRef: imageId, flavorRef: '1', networks: [{ uuid: networkId }] } },
      });
      expect(created.status).toBe(202);
      servers.push(created.body.server.id);
    }
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('bodies of POST /servers, PUT /servers/{id}, every action, metadata and tags', async () => {
    const rng = new Rng(SEED + 2);
    const server = () => rng.pick(servers);
    const bodies: [string, () => string, unknown][] = [
      [
        'POST',
        () => '/servers',
        {
          server: {
            name: 'fz',
            imageRef: imageId,
            flavorRef: '1',
            networks: [{ uuid: networkId, fixed_ip: '10.0.0.50' }],
            metadata: { a: 'b' },
            min_count: 1,
            max_count: 2,
            key_name: 'k',
            security_groups: [{ name: 'default' }],
            user_data: 'aGk=',
            tags: ['t'],
            availability_zone: 'nova',
            block_device_mapping_v2: [{ boot_index: 0, uuid: imageId, source_type: 'image' }],
          },
          'os:scheduler_hints': { group: 'g', same_host: ['x'] },
        },
      ],
      [
        'PUT',
        () => `/servers/${server()}`,
        { server: { name: 'n', description: 'd', accessIPv4: '1.2.3.4', hostname: 'h' } },
      ],
      ['PUT', () => `/servers/${server()}/metadata`, { metadata: { a: 'b' } }],
      ['POST', () => `/servers/${server()}/metadata`, { metadata: { c: 'd' } }],
      ['PUT', () => `/servers/${server()}/metadata/a`, { meta: { a: 'x' } }],
      ['PUT', () => `/servers/${server()}/tags`, { tags: ['a', 'b'] }],
      ['PUT', () => `/servers/${server()}/tags/t1`, undefined],
      ...Object.entries(SERVER_ACTIONS).map(
        ([name, args]) =>
          [
            'POST',
            () => `/servers/${server()}/action`,
            { [name]: JSON.parse(JSON.stringify(args ?? null).replace(/IMAGE/g, imageId)) },
          ] as [string, () => string, unknown],
      ),
    ];
    await pool(count, 8, async (i) => {
      const [method, path, body] = rng.pick(bodies);
      const token = rng.next() < 0.5 ? adminToken : demoToken;
      const version = rng.pick(versions);
      const kind = i % 10;
      if (kind === 0)
        await checkNova(root, failures, token, method, path(), { raw: randomBytesString(rng), version });
      else if (kind === 1)
        await checkNova(root, failures, token, method, path(), {
          body: randomValue(rng, 0, SERVER_KEYS),
          version,
        });
      else
        await checkNova(root, failures, token, method, path(), {
          body: mutate(rng, mutate(rng, body, SERVER_KEYS), SERVER_KEYS),
          version,
        });
    });
    // Names every plain object inherits are not actions (found by seed 11389: `constructor` gave a 500).
    for (const name of ['constructor', 'toString', 'hasOwnProperty', '__proto__', 'valueOf']) {
      const answer = await api(root, 'POST', `/servers/${servers[0]}/action`, {
        token: demoToken,
        raw: `{"${name}": -1}`,
      });
      expect([name, answer.status]).toEqual([name, 400]);
    }
    // Every action name once more, unmutated, on each server.
    for (const id of servers)
      for (const [name, args] of Object.entries(SERVER_ACTIONS))
        await checkNova(root, failures, demoToken, 'POST', `/servers/${id}/action`, {
          body: { [name]: JSON.parse(JSON.stringify(args ?? null).replace(/IMAGE/g, imageId)) },
          version: 'latest',
        });
    expect(failures.slice(0, 5)).toEqual([]);
    // still healthy afterwards: a new server goes ACTIVE
    const created = await api(root, 'POST', '/servers', {
      token: adminToken,
      body: { server: { name: 'after-fuzz', imageRef: imageId, flavorRef: '1', networks: 'none' } },
      headers: { 'openstack-api-version': 'compute 2.37' },
    });
    expect(created.status).toBe(202);
    const deadline = Date.now() + 30_000;
    let status = '';
    while (Date.now() < deadline && status !== 'ACTIVE') {
      status = (await api(root, 'GET', `/servers/${created.body.server.id}`, { token: adminToken })).body
        .server.status;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe('ACTIVE');
  }, 600_000);
});
