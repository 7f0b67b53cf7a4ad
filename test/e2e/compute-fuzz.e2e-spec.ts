import { CloudHandle, startCloud } from './support/cloud';
import { mutate, pool, randomBytesString, randomValue, Rng } from './support/fuzz';
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

/** Random and mutated requests to flavors, key pairs, quotas and server groups: never a 5xx, always Nova's fault body. */
describe(`compute fuzzing (seed ${SEED})`, () => {
  let cloud: CloudHandle;
  let root: string;
  let adminToken: string;
  let demoToken: string;
  let projectId: string;
  const failures: string[] = [];

  const check = async (
    token: string,
    method: string,
    path: string,
    options: { body?: unknown; raw?: string; version?: string },
  ) => {
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
  };

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
        const value = encodeURIComponent(String(JSON.stringify(randomValue(rng))).slice(0, 100));
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
