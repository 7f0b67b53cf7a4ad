import { registerWithIdentity } from './catalog-registration';
import { loadConfig } from './config';

/** A Keystone catalog in memory, answering the calls registerWithIdentity makes, as the identity API does. */
function fakeKeystone(options: { refusals?: number } = {}) {
  let refusals = options.refusals ?? 0;
  const services: { id: string; type: string; name: string }[] = [];
  const endpoints: { id: string; service_id: string; interface: string; region_id: string; url: string }[] =
    [];
  const calls: string[] = [];
  let next = 0;
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { 'content-type': 'application/json', ...headers },
    });
  const fetchImpl = (async (input: string | URL, init?: RequestInit) => {
    const url = new URL(String(input));
    const method = init?.method ?? 'GET';
    calls.push(`${method} ${url.pathname}`);
    if (refusals > 0) {
      refusals -= 1;
      throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    }
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    if (url.pathname === '/identity/v3/auth/tokens') {
      const password = body.auth.identity.password.user.password;
      return password === 'secret'
        ? json(201, { token: {} }, { 'x-subject-token': 'service-token' })
        : json(401, { error: { code: 401, message: 'The request you have made requires authentication.' } });
    }
    if ((init?.headers as Record<string, string>)['x-auth-token'] !== 'service-token') return json(401, {});
    if (url.pathname === '/identity/v3/services' && method === 'GET')
      return json(200, { services: services.filter((s) => s.type === url.searchParams.get('type')) });
    if (url.pathname === '/identity/v3/services' && method === 'POST') {
      const service = { id: `s${next++}`, type: body.service.type, name: body.service.name };
      services.push(service);
      return json(201, { service });
    }
    if (url.pathname === '/identity/v3/endpoints' && method === 'GET')
      return json(200, {
        endpoints: endpoints.filter((e) => e.service_id === url.searchParams.get('service_id')),
      });
    if (url.pathname === '/identity/v3/endpoints' && method === 'POST') {
      const endpoint = { id: `e${next++}`, ...body.endpoint };
      endpoints.push(endpoint);
      return json(201, { endpoint });
    }
    const patched = url.pathname.match(/^\/identity\/v3\/endpoints\/(.+)$/);
    if (patched && method === 'PATCH') {
      const endpoint = endpoints.find((e) => e.id === patched[1])!;
      endpoint.url = body.endpoint.url;
      return json(200, { endpoint });
    }
    if (url.pathname === '/identity/v3/projects')
      return json(200, {
        projects: [
          { id: 'p-admin', name: 'admin' },
          { id: 'p-service', name: 'service' },
        ],
      });
    return json(404, {});
  }) as typeof fetch;
  return { fetchImpl, services, endpoints, calls };
}

const entry = (url: string) => ({ type: 'compute', name: 'nova', description: 'Nova', url });
const IDENTITY = 'http://keystone.example/identity';

describe('registerWithIdentity', () => {
  const config = loadConfig({ NOVUM_SERVICE_PASSWORD: 'secret', NOVUM_REGION: 'RegionOne' });

  it('creates the service and its three endpoints, and returns the projects by name', async () => {
    const keystone = fakeKeystone();
    const context = await registerWithIdentity(
      config,
      IDENTITY,
      entry('http://a:8774/compute/v2.1'),
      keystone,
    );
    expect(keystone.services).toEqual([{ id: 's0', type: 'compute', name: 'nova' }]);
    expect(keystone.endpoints.map((e) => [e.interface, e.region_id, e.url]).sort()).toEqual([
      ['admin', 'RegionOne', 'http://a:8774/compute/v2.1'],
      ['internal', 'RegionOne', 'http://a:8774/compute/v2.1'],
      ['public', 'RegionOne', 'http://a:8774/compute/v2.1'],
    ]);
    expect(context).toEqual({ projects: { admin: 'p-admin', service: 'p-service' } });
  });

  it('changes nothing at a restart with the same URL, and only the URLs when it moved', async () => {
    const keystone = fakeKeystone();
    await registerWithIdentity(config, IDENTITY, entry('http://a:8774/compute/v2.1'), keystone);
    await registerWithIdentity(config, IDENTITY, entry('http://a:8774/compute/v2.1'), keystone);
    expect(keystone.services).toHaveLength(1);
    expect(keystone.endpoints).toHaveLength(3);
    await registerWithIdentity(config, IDENTITY, entry('http://lb:8774/compute/v2.1'), keystone);
    expect(keystone.endpoints.map((e) => e.url)).toEqual(Array(3).fill('http://lb:8774/compute/v2.1'));
    expect(keystone.calls.filter((c) => c.startsWith('PATCH'))).toHaveLength(3);
  });

  it('waits for an identity service that is not up yet', async () => {
    const keystone = fakeKeystone({ refusals: 2 });
    await expect(
      registerWithIdentity(config, IDENTITY, entry('http://a:8774/compute/v2.1'), {
        ...keystone,
        waitMs: 10_000,
      }),
    ).resolves.toEqual({ projects: expect.any(Object) });
    expect(keystone.calls.slice(0, 3)).toEqual(Array(3).fill('POST /identity/v3/auth/tokens'));
  }, 15_000);

  it('gives up after waitMs, naming the problem, and fails at once on a refused password', async () => {
    await expect(
      registerWithIdentity(config, IDENTITY, entry('http://a'), {
        ...fakeKeystone({ refusals: 100 }),
        waitMs: 0,
      }),
    ).rejects.toThrow(
      'the identity service at http://keystone.example/identity is unreachable: ECONNREFUSED',
    );
    const wrong = loadConfig({ NOVUM_SERVICE_PASSWORD: 'wrong' });
    await expect(registerWithIdentity(wrong, IDENTITY, entry('http://a'), fakeKeystone())).rejects.toThrow(
      'POST http://keystone.example/identity/v3/auth/tokens answered 401',
    );
  });
});
