import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudHandle, startCloud } from './support/cloud';
import { api, issueToken } from './support/keystone';

/**
 * The network samples in openstack-api-ref/network/samples are live, like identity's: each is sent to a
 * real cloud, which must answer with the sample's status and a body of exactly the sample's shape.
 * Paths and requests may name the fixtures made below (`@NETWORK_ID@`, `@SUBNET_ID@`, ...).
 */
const SAMPLES = join(__dirname, '../../openstack-api-ref/network/samples');

interface Sample {
  method: string;
  path: string;
  auth: 'none' | 'admin';
  status: number;
  request?: unknown;
  response?: unknown;
}

/** Every key path in a JSON value, arrays standing for their elements ("network.subnets[]"). */
function shape(value: unknown, prefix = ''): string[] {
  if (Array.isArray(value)) return [...new Set(value.flatMap((item) => shape(item, `${prefix}[]`)))];
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, child]) => [
      `${prefix}.${key}`,
      ...shape(child, `${prefix}.${key}`),
    ]);
  }
  return [];
}

describe('openstack-api-ref network samples', () => {
  let cloud: CloudHandle;
  let url: string;
  let token: string;
  let substitutions: Record<string, string>;

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 23130 });
    url = cloud.services.network;
    const admin = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    token = admin.token;
    const post = async (path: string, body: unknown) => (await api(url, 'POST', path, { token, body })).body;
    const network = (await post('/v2.0/networks', { network: { name: 'sample-net' } })).network;
    const subnet = (
      await post('/v2.0/subnets', {
        subnet: { name: 'sample-subnet', network_id: network.id, cidr: '10.60.0.0/24', ip_version: 4 },
      })
    ).subnet;
    const group = (await post('/v2.0/security-groups', { security_group: { name: 'sample-group' } }))
      .security_group;
    const router = (await post('/v2.0/routers', { router: { name: 'sample-router' } })).router;
    const publicNetwork = (await api(url, 'GET', '/v2.0/networks?name=public', { token })).body.networks[0];
    substitutions = {
      '@NETWORK_ID@': network.id,
      '@SUBNET_ID@': subnet.id,
      '@SECURITY_GROUP_ID@': group.id,
      '@ROUTER_ID@': router.id,
      '@PUBLIC_NETWORK_ID@': publicNetwork.id,
      '@PROJECT_ID@': admin.body.token.project.id,
    };
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  const fill = (text: string) =>
    Object.entries(substitutions).reduce((t, [k, v]) => t.split(k).join(v), text);

  const files = readdirSync(SAMPLES).filter((f) => f.endsWith('.json'));
  it('has samples', () => expect(files.length).toBeGreaterThanOrEqual(15));

  it.each(files)('%s', async (file) => {
    const sample = JSON.parse(readFileSync(join(SAMPLES, file), 'utf8')) as Sample;
    const response = await api(url, sample.method, fill(sample.path), {
      token: sample.auth === 'admin' ? token : undefined,
      raw: sample.request === undefined ? undefined : fill(JSON.stringify(sample.request)),
    });
    expect(response.status).toBe(sample.status);
    expect(shape(response.body).sort()).toEqual(shape(sample.response).sort());
  });
});
