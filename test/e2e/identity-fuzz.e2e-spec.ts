import { CloudHandle, startCloud } from './support/cloud';
import { mutate, pool, queryValue, randomBytesString, randomValue, Rng } from './support/fuzz';
import { api, issueToken } from './support/keystone';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 100_000);
const COUNT = Number(process.env.FUZZ_COUNT ?? 2000);

/** Thousands of random and mutated requests: every answer is a 2xx/4xx in Keystone's format, never a 5xx. */
describe(`identity fuzzing (seed ${SEED})`, () => {
  let cloud: CloudHandle;
  let token: string;
  const failures: string[] = [];

  const check = async (method: string, path: string, options: Parameters<typeof api>[3]) => {
    const response = await api(cloud.identityUrl, method, path, { ...options, token: options?.token });
    const wellFormed =
      response.status < 400 ||
      method === 'HEAD' ||
      (response.body?.error?.code === response.status && typeof response.body.error.message === 'string');
    if (response.status >= 500 || !wellFormed) {
      failures.push(
        `${method} ${path} ${String(JSON.stringify(options?.body ?? options?.raw)).slice(0, 300)} -> ${response.status} ${String(JSON.stringify(response.body)).slice(0, 300)}`,
      );
    }
  };

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 21200 });
    token = (
      await issueToken(cloud.identityUrl, { user: 'admin', password: cloud.adminPassword, project: 'admin' })
    ).token;
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('POST /v3/auth/tokens', async () => {
    const rng = new Rng(SEED);
    const valid = {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'demo', domain: { id: 'default' }, password: cloud.demoPassword } },
        },
        scope: { project: { name: 'demo', domain: { name: 'Default' } } },
      },
    };
    const rescope = {
      auth: {
        identity: { methods: ['token'], token: { id: token } },
        scope: { project: { name: 'admin', domain: { id: 'default' } } },
      },
    };
    await pool(COUNT, 8, async (i) => {
      const kind = i % 10;
      if (kind === 0) await check('POST', '/v3/auth/tokens', { raw: randomBytesString(rng) });
      else if (kind === 1) await check('POST', '/v3/auth/tokens', { body: randomValue(rng) });
      else if (kind < 6) await check('POST', '/v3/auth/tokens', { body: mutate(rng, mutate(rng, valid)) });
      else await check('POST', '/v3/auth/tokens', { body: mutate(rng, rescope) });
    });
    expect(failures.slice(0, 5)).toEqual([]);
  }, 300_000);

  it('the admin API', async () => {
    const rng = new Rng(SEED + 1);
    const bodies: [string, string, unknown][] = [
      ['POST', '/v3/projects', { project: { name: 'p', description: 'd', enabled: true, tags: ['a'] } }],
      ['POST', '/v3/users', { user: { name: 'u', password: 'p', enabled: true, default_project_id: null } }],
      ['POST', '/v3/roles', { role: { name: 'r' } }],
      ['POST', '/v3/domains', { domain: { name: 'd', enabled: false } }],
      ['POST', '/v3/regions', { region: { id: 'r', description: 'x' } }],
      ['POST', '/v3/services', { service: { type: 't', name: 'n' } }],
      ['POST', '/v3/endpoints', { endpoint: { service_id: 's', interface: 'public', url: 'http://x' } }],
      ['PATCH', '/v3/projects/x', { project: { name: 'p' } }],
      ['PATCH', '/v3/users/x', { user: { enabled: false } }],
      [
        'POST',
        '/v3/users/x/application_credentials',
        { application_credential: { name: 'a', roles: [{ name: 'reader' }] } },
      ],
      ['POST', '/v3/users/x/password', { user: { password: 'a', original_password: 'b' } }],
    ];
    const paths = [
      '/v3/projects',
      '/v3/users',
      '/v3/roles',
      '/v3/domains',
      '/v3/role_assignments',
      '/v3/regions',
      '/v3/services',
      '/v3/endpoints',
      '/v3/auth/catalog',
      '/v3/auth/projects',
      '/v3/role_inferences',
    ];
    const segments = [
      'x',
      '%00',
      '..',
      'default',
      "'",
      '%F0%9F%92%A5',
      'a'.repeat(300),
      'b'.repeat(2000),
      '%',
      '%E0%A4%A',
    ];
    await pool(COUNT, 8, async (i) => {
      const kind = i % 4;
      if (kind < 2) {
        const [method, path, body] = rng.pick(bodies);
        await check(method, path, { token, body: mutate(rng, body) });
      } else if (kind === 2) {
        const name = rng.pick([
          'name',
          'enabled',
          'domain_id',
          'user.id',
          'effective',
          'include_names',
          'scope.project.id',
        ]);
        const value = queryValue(randomValue(rng), 100);
        const query = rng.next() < 0.2 ? `?${name}=${value}&${name}=x` : `?${name}=${value}`;
        await check('GET', rng.pick(paths) + query, { token });
      } else {
        const path = `${rng.pick(paths)}/${rng.pick(segments)}/${rng.pick(['', 'users/x/roles/y', 'implies/z', 'projects', 'application_credentials/q'])}`;
        const method = rng.pick(['GET', 'PUT', 'DELETE', 'PATCH', 'HEAD']);
        const raw =
          method !== 'GET' && method !== 'HEAD' && rng.next() < 0.3 ? randomBytesString(rng) : undefined;
        await check(method, path, { token, raw });
      }
    });
    expect(failures.slice(0, 5)).toEqual([]);
    // still healthy and correct afterwards
    const check2 = await api(cloud.identityUrl, 'GET', '/v3/users?name=admin', { token });
    expect(check2.body.users).toHaveLength(1);
  }, 300_000);
});
