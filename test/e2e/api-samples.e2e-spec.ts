import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudHandle, startCloud } from './support/cloud';
import { putData } from './support/image';
import { api, issueToken } from './support/keystone';

/**
 * The request/response samples in openstack-api-ref/ are live: each is sent to a real cloud, which must
 * answer with the sample's status and a body of exactly the sample's shape (same keys at every level;
 * values differ, ids and times being fresh). The compute server samples act on fixtures made first: an
 * image (`@IMAGE_ID@`) and two ACTIVE servers (`@SERVER_ID@`, and `@SERVER2_ID@` that the action and
 * delete samples use up).
 */
const REFERENCE = join(__dirname, '../../openstack-api-ref');
/**
 * Every service with a samples directory; its paths are relative to that service's root URL. A service
 * whose samples need fixtures (ids of things made first) checks them in its own
 * `<service>-api-samples.e2e-spec.ts` instead.
 */
const SERVICES = readdirSync(REFERENCE)
  .filter((name) => existsSync(join(REFERENCE, name, 'samples')))
  .filter((name) => !existsSync(join(__dirname, `${name}-api-samples.e2e-spec.ts`)))
  .sort();

interface Sample {
  method: string;
  path: string;
  auth: 'none' | 'admin';
  status: number;
  headers?: Record<string, string>;
  request?: unknown;
  response?: unknown;
}

/** Every key path in a JSON value, arrays standing for their elements ("token.roles[].name"). */
export function shape(value: unknown, prefix = ''): string[] {
  if (Array.isArray(value)) return [...new Set(value.flatMap((item) => shape(item, `${prefix}[]`)))];
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, child]) => [
      `${prefix}.${key}`,
      ...shape(child, `${prefix}.${key}`),
    ]);
  }
  return [];
}

describe('openstack-api-ref samples', () => {
  let cloud: CloudHandle;
  let substitutions: Record<string, string>;

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 21300 });
    const admin = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    substitutions = {
      '@ADMIN_PASSWORD@': cloud.adminPassword,
      '@TOKEN@': admin.token,
      '@USER_ID@': admin.body.token.user.id,
    };
    if (SERVICES.includes('compute')) Object.assign(substitutions, await serverFixtures(admin.token));
  }, 120_000);

  async function serverFixtures(token: string): Promise<Record<string, string>> {
    const images = cloud.services.image;
    const image = (
      await api(images, 'POST', '/v2/images', {
        token,
        body: { name: 'sample-image', disk_format: 'raw', container_format: 'bare' },
      })
    ).body;
    expect((await putData(images, `/v2/images/${image.id}/file`, token, Buffer.alloc(65536))).status).toBe(
      204,
    );
    const boot = async (name: string): Promise<string> => {
      const created = await api(cloud.services.compute, 'POST', '/servers', {
        token,
        body: { server: { name, imageRef: image.id, flavorRef: '1' } },
      });
      expect(created.status).toBe(202);
      const id = created.body.server.id as string;
      for (let i = 0; i < 600; i++) {
        const { status } = (await api(cloud.services.compute, 'GET', `/servers/${id}`, { token })).body
          .server;
        if (status === 'ACTIVE') return id;
        if (status === 'ERROR') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`fixture server ${name} did not become ACTIVE`);
    };
    return {
      '@IMAGE_ID@': image.id,
      '@SERVER_ID@': await boot('sample-server'),
      '@SERVER2_ID@': await boot('sample-server-2'),
    };
  }

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  const fill = (text: string) =>
    Object.entries(substitutions).reduce((t, [k, v]) => t.split(k).join(v), text);

  // Sorted, so that a service's samples run in a known order (a list sample may show what a create made).
  const files = SERVICES.flatMap((service) =>
    readdirSync(join(REFERENCE, service, 'samples'))
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => `${service}/${f}`),
  );
  it('has samples', () => {
    expect(files.filter((f) => f.startsWith('identity/')).length).toBeGreaterThanOrEqual(10);
    for (const service of SERVICES) expect(files.some((f) => f.startsWith(`${service}/`))).toBe(true);
  });

  it.each(files)('%s', async (file) => {
    const sample = JSON.parse(
      readFileSync(join(REFERENCE, file.replace('/', '/samples/')), 'utf8'),
    ) as Sample;
    const service = file.split('/')[0];
    const response = await api(cloud.services[service], sample.method, fill(sample.path), {
      token: sample.auth === 'admin' ? substitutions['@TOKEN@'] : undefined,
      headers: Object.fromEntries(Object.entries(sample.headers ?? {}).map(([k, v]) => [k, fill(v)])),
      raw: sample.request === undefined ? undefined : fill(JSON.stringify(sample.request)),
    });
    expect(response.status).toBe(sample.status);
    expect(shape(response.body).sort()).toEqual(shape(sample.response).sort());
  });
});
