import { CloudHandle, startCloud } from './support/cloud';
import { mutate, pool, queryValue, randomBytesString, randomValue, Rng } from './support/fuzz';
import { api, issueToken } from './support/keystone';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 100_000);
const COUNT = Number(process.env.FUZZ_COUNT ?? 2000);

/** Thousands of random and mutated requests: every answer is a 2xx/4xx in Neutron's format, never a 5xx. */
describe(`network fuzzing (seed ${SEED})`, () => {
  let cloud: CloudHandle;
  let url: string;
  let tokens: string[];
  const failures: string[] = [];
  const ids: Record<string, string> = {};

  const check = async (method: string, path: string, options: Parameters<typeof api>[3]) => {
    const response = await api(url, method, path, options);
    const error = response.body?.NeutronError;
    const wellFormed =
      response.status < 400 ||
      method === 'HEAD' ||
      (typeof error?.type === 'string' && typeof error.message === 'string' && error.detail === '');
    if (response.status >= 500 || !wellFormed) {
      failures.push(
        `${method} ${path} ${String(JSON.stringify(options?.body ?? options?.raw)).slice(0, 300)} -> ${response.status} ${String(JSON.stringify(response.body)).slice(0, 300)}`,
      );
    }
  };

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 23120 });
    url = cloud.services.network;
    const admin = (
      await issueToken(cloud.identityUrl, { user: 'admin', password: cloud.adminPassword, project: 'admin' })
    ).token;
    const demo = (
      await issueToken(cloud.identityUrl, { user: 'demo', password: cloud.demoPassword, project: 'demo' })
    ).token;
    tokens = [admin, demo];
    const ok = async (path: string, body: unknown) =>
      (await api(url, 'POST', path, { token: demo, body })).body;
    ids.network = (await ok('/v2.0/networks', { network: { name: 'fuzz' } })).network.id;
    ids.subnet = (
      await ok('/v2.0/subnets', { subnet: { network_id: ids.network, cidr: '10.77.0.0/24', ip_version: 4 } })
    ).subnet.id;
    ids.port = (await ok('/v2.0/ports', { port: { network_id: ids.network } })).port.id;
    ids.group = (await ok('/v2.0/security-groups', { security_group: { name: 'fuzz' } })).security_group.id;
    ids.router = (await ok('/v2.0/routers', { router: { name: 'fuzz' } })).router.id;
    ids.public = (await api(url, 'GET', '/v2.0/networks?name=public', { token: demo })).body.networks[0].id;
    ids.project = (
      await api(cloud.identityUrl, 'GET', '/v3/auth/tokens', {
        token: admin,
        headers: { 'x-subject-token': demo },
      })
    ).body.token.project.id;
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('mutated bodies on every write', async () => {
    const rng = new Rng(SEED);
    const bodies: [string, string, unknown][] = [
      [
        'POST',
        '/v2.0/networks',
        { network: { name: 'n', admin_state_up: true, shared: false, mtu: 1450, 'router:external': false } },
      ],
      [
        'PUT',
        `/v2.0/networks/${ids.network}`,
        { network: { name: 'n2', description: 'd', port_security_enabled: true } },
      ],
      [
        'POST',
        '/v2.0/subnets',
        {
          subnet: {
            network_id: ids.network,
            cidr: '10.78.0.0/24',
            ip_version: 4,
            gateway_ip: '10.78.0.1',
            allocation_pools: [{ start: '10.78.0.10', end: '10.78.0.20' }],
            dns_nameservers: ['8.8.8.8'],
            host_routes: [{ destination: '10.0.0.0/8', nexthop: '10.78.0.5' }],
          },
        },
      ],
      [
        'PUT',
        `/v2.0/subnets/${ids.subnet}`,
        {
          subnet: { gateway_ip: '10.77.0.1', allocation_pools: [{ start: '10.77.0.2', end: '10.77.0.200' }] },
        },
      ],
      [
        'POST',
        '/v2.0/ports',
        {
          port: {
            network_id: ids.network,
            fixed_ips: [{ subnet_id: ids.subnet, ip_address: '10.77.0.99' }],
            mac_address: 'fa:16:3e:00:00:01',
            security_groups: [ids.group],
            allowed_address_pairs: [{ ip_address: '10.77.0.0/24' }],
            'binding:vnic_type': 'normal',
          },
        },
      ],
      [
        'PUT',
        `/v2.0/ports/${ids.port}`,
        {
          port: {
            name: 'p',
            fixed_ips: [{ subnet_id: ids.subnet }],
            security_groups: [],
            port_security_enabled: false,
          },
        },
      ],
      ['POST', '/v2.0/security-groups', { security_group: { name: 'g', description: 'd', stateful: true } }],
      [
        'POST',
        '/v2.0/security-group-rules',
        {
          security_group_rule: {
            security_group_id: ids.group,
            direction: 'ingress',
            ethertype: 'IPv4',
            protocol: 'tcp',
            port_range_min: 22,
            port_range_max: 22,
            remote_ip_prefix: '0.0.0.0/0',
          },
        },
      ],
      [
        'POST',
        '/v2.0/routers',
        { router: { name: 'r', external_gateway_info: { network_id: ids.public, enable_snat: true } } },
      ],
      [
        'PUT',
        `/v2.0/routers/${ids.router}`,
        {
          router: {
            routes: [{ destination: '10.1.0.0/16', nexthop: '10.77.0.3' }],
            external_gateway_info: null,
          },
        },
      ],
      ['PUT', `/v2.0/routers/${ids.router}/add_router_interface`, { subnet_id: ids.subnet }],
      ['PUT', `/v2.0/routers/${ids.router}/remove_router_interface`, { port_id: ids.port }],
      [
        'POST',
        '/v2.0/floatingips',
        {
          floatingip: { floating_network_id: ids.public, port_id: ids.port, fixed_ip_address: '10.77.0.99' },
        },
      ],
      ['PUT', `/v2.0/quotas/${ids.project}`, { quota: { network: 50, port: -1 } }],
      ['PUT', `/v2.0/networks/${ids.network}/tags`, { tags: ['a', 'b'] }],
    ];
    await pool(COUNT, 8, async (i) => {
      const [method, path, body] = rng.pick(bodies);
      const token = rng.pick(tokens);
      const kind = i % 10;
      if (kind === 0) await check(method, path, { token, raw: randomBytesString(rng) });
      else if (kind === 1) await check(method, path, { token, body: randomValue(rng) });
      else await check(method, path, { token, body: mutate(rng, mutate(rng, body)) });
    });
    expect(failures.slice(0, 5)).toEqual([]);
  }, 300_000);

  it('random queries and paths', async () => {
    const rng = new Rng(SEED + 1);
    const collections = [
      'networks',
      'subnets',
      'ports',
      'security-groups',
      'security-group-rules',
      'routers',
      'floatingips',
      'quotas',
      'extensions',
    ];
    const params = [
      'name',
      'id',
      'shared',
      'limit',
      'marker',
      'sort_key',
      'sort_dir',
      'fields',
      'page_reverse',
      'fixed_ips',
      'tags',
      'not-tags-any',
      'router:external',
      'ip_version',
      'x',
    ];
    const segments = [
      'x',
      '%00',
      '..',
      "'",
      '%F0%9F%92%A5',
      'a'.repeat(300),
      '%',
      '%E0%A4%A',
      ids.network,
      ids.port,
      'default',
      'details',
    ];
    await pool(COUNT, 8, async (i) => {
      const token = rng.pick(tokens);
      if (i % 2 === 0) {
        const query = Array.from({ length: 1 + rng.int(3) }, () => {
          const value = queryValue(randomValue(rng), 80);
          return `${encodeURIComponent(rng.pick(params))}=${value}`;
        }).join('&');
        await check('GET', `/v2.0/${rng.pick(collections)}?${query}`, { token });
      } else {
        const path = `/v2.0/${rng.pick(collections)}/${rng.pick(segments)}${rng.pick(['', '/add_router_interface', '/default', '/x', '/tags', '/tags/x', '/tags/%00'])}`;
        const method = rng.pick(['GET', 'PUT', 'DELETE', 'POST', 'PATCH', 'HEAD']);
        const raw =
          method !== 'GET' && method !== 'HEAD' && rng.next() < 0.5 ? randomBytesString(rng) : undefined;
        await check(method, path, { token, raw });
      }
    });
    expect(failures.slice(0, 5)).toEqual([]);
    // Still healthy and correct afterwards.
    const listed = await api(url, 'GET', '/v2.0/networks?name=private', { token: tokens[1] });
    expect(listed.body.networks).toHaveLength(1);
  }, 300_000);
});
