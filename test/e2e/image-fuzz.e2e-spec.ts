import { randomBytes } from 'node:crypto';
import { CloudHandle, startCloud } from './support/cloud';
import { mutate, pool, queryValue, randomBytesString, randomValue, Rng } from './support/fuzz';
import { putData } from './support/image';
import { api, issueToken } from './support/keystone';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 100_000);
const COUNT = Number(process.env.FUZZ_COUNT ?? 2000);
const PATCH = 'application/openstack-images-v2.1-json-patch';

/** Thousands of random and mutated requests: every answer is a 2xx/3xx/4xx in Glance's format, never a 5xx. */
describe(`image fuzzing (seed ${SEED})`, () => {
  let cloud: CloudHandle;
  let url: string;
  let admin: string;
  let demo: string;
  let imageId: string;
  const failures: string[] = [];

  const record = (what: string, status: number, body: unknown) => {
    const wellFormed =
      status < 400 ||
      (typeof (body as any)?.code === 'string' &&
        (body as any).code.startsWith(`${status} `) &&
        typeof (body as any).message === 'string');
    if (status >= 500 || !wellFormed)
      failures.push(`${what.slice(0, 400)} -> ${status} ${String(JSON.stringify(body)).slice(0, 300)}`);
  };

  const check = async (method: string, path: string, options: Parameters<typeof api>[3]) => {
    const response = await api(url, method, path, options);
    if (method === 'HEAD') {
      if (response.status >= 500) failures.push(`HEAD ${path} -> ${response.status}`);
      return;
    }
    record(
      `${method} ${path} ${String(JSON.stringify(options?.body ?? options?.raw))}`,
      response.status,
      response.body,
    );
  };

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 23030 });
    url = cloud.services.image;
    admin = (
      await issueToken(cloud.identityUrl, { user: 'admin', password: cloud.adminPassword, project: 'admin' })
    ).token;
    demo = (
      await issueToken(cloud.identityUrl, { user: 'demo', password: cloud.demoPassword, project: 'demo' })
    ).token;
    const created = await api(url, 'POST', '/v2/images', {
      token: demo,
      body: { name: 'fuzzed', disk_format: 'raw', container_format: 'bare' },
    });
    imageId = created.body.id;
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('POST /v2/images and the members API', async () => {
    const rng = new Rng(SEED);
    const valid = {
      name: 'n',
      disk_format: 'qcow2',
      container_format: 'bare',
      visibility: 'shared',
      min_ram: 1,
      tags: ['a'],
      protected: false,
      custom: 'v',
    };
    await pool(COUNT, 8, async (i) => {
      const token = i % 3 === 0 ? admin : demo;
      const kind = i % 10;
      if (kind === 0) await check('POST', '/v2/images', { token, raw: randomBytesString(rng) });
      else if (kind === 1) await check('POST', '/v2/images', { token, body: randomValue(rng) });
      else if (kind < 7) await check('POST', '/v2/images', { token, body: mutate(rng, mutate(rng, valid)) });
      else if (kind === 7)
        await check('POST', `/v2/images/${imageId}/members`, { token, body: mutate(rng, { member: 'p' }) });
      else if (kind === 8)
        await check('PUT', `/v2/images/${imageId}/members/${rng.pick(['p', 'x', '%00', 'a'.repeat(300)])}`, {
          token,
          body: mutate(rng, { status: 'accepted' }),
        });
      else
        await check('POST', `/v2/images/${imageId}/import`, {
          token,
          body: mutate(rng, { method: { name: 'glance-direct' } }),
        });
    });
    expect(failures.slice(0, 5)).toEqual([]);
  }, 300_000);

  it('JSON patch', async () => {
    const rng = new Rng(SEED + 1);
    const valid = [
      { op: 'replace', path: '/name', value: 'x' },
      { op: 'add', path: '/hw_disk_bus', value: 'scsi' },
      { op: 'add', path: '/tags', value: ['t'] },
      { op: 'replace', path: '/min_disk', value: 1 },
    ];
    await pool(COUNT, 8, async (i) => {
      const kind = i % 5;
      const raw =
        kind === 0
          ? randomBytesString(rng)
          : JSON.stringify(kind === 1 ? randomValue(rng) : mutate(rng, mutate(rng, valid)));
      await check('PATCH', `/v2/images/${imageId}`, {
        token: i % 2 ? demo : admin,
        raw,
        headers: { 'content-type': rng.next() < 0.9 ? PATCH : 'application/json' },
      });
    });
    expect(failures.slice(0, 5)).toEqual([]);
  }, 300_000);

  it('queries, paths and methods', async () => {
    const rng = new Rng(SEED + 2);
    const params = [
      'name',
      'status',
      'visibility',
      'owner',
      'tag',
      'member_status',
      'os_hidden',
      'disk_format',
      'container_format',
      'size_min',
      'size_max',
      'sort',
      'sort_key',
      'sort_dir',
      'limit',
      'marker',
      'created_at',
      'protected',
      'id',
      'custom',
    ];
    const segments = [
      imageId,
      'x',
      '%00',
      '..',
      "'",
      '%F0%9F%92%A5',
      'a'.repeat(300),
      '%',
      '00000000-0000-0000-0000-000000000000',
    ];
    const tails = [
      '',
      'file',
      'stage',
      'tags/t',
      'members',
      'members/m',
      'actions/deactivate',
      'actions/reactivate',
      'import',
    ];
    await pool(COUNT, 8, async (i) => {
      const token = i % 2 ? demo : admin;
      if (i % 2 === 0) {
        const name = rng.pick(params);
        const value = queryValue(randomValue(rng), 100);
        const query = rng.next() < 0.2 ? `?${name}=${value}&${name}=x` : `?${name}=${value}`;
        await check('GET', `/v2/images${query}`, { token });
      } else {
        const path = `/v2/images/${rng.pick(segments)}/${rng.pick(tails)}`;
        const method = rng.pick(['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD']);
        const raw =
          method !== 'GET' && method !== 'HEAD' && rng.next() < 0.3 ? randomBytesString(rng) : undefined;
        await check(method, path, { token, raw });
      }
    });
    expect(failures.slice(0, 5)).toEqual([]);
  }, 300_000);

  it('image data of every disk format', async () => {
    const rng = new Rng(SEED + 3);
    const formats = ['raw', 'qcow2', 'vmdk', 'vdi', 'vhd', 'vhdx', 'iso', 'ami', 'ploop'];
    await pool(Math.max(20, Math.floor(COUNT / 20)), 4, async () => {
      const created = await api(url, 'POST', '/v2/images', {
        token: demo,
        body: { disk_format: rng.pick(formats), container_format: rng.pick(['bare', 'ova', 'docker']) },
      });
      record('POST /v2/images', created.status, created.body);
      const header = rng.pick([
        Buffer.from('QFI\xfb\x00\x00\x00\x03', 'latin1'),
        Buffer.from('KDMV', 'latin1'),
        Buffer.from('conectix', 'latin1'),
        Buffer.alloc(0),
      ]);
      const data = Buffer.concat([header, randomBytes(rng.int(70_000))]);
      const path = rng.next() < 0.8 ? 'file' : 'stage';
      const response = await putData(url, `/v2/images/${created.body.id}/${path}`, demo, data);
      record(`PUT ${path} ${data.length} bytes`, response.status, response.body);
    });
    expect(failures.slice(0, 5)).toEqual([]);
    const list = await api(url, 'GET', '/v2/images?limit=1', { token: demo });
    expect(list.status).toBe(200);
  }, 300_000);
});
