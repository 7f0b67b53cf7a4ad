import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudHandle, startCloud } from './support/cloud';
import { cutOffUpload, getData, hangingUpload, putData, qemuImage } from './support/image';
import { api, issueToken } from './support/keystone';

const PATCH = { 'content-type': 'application/openstack-images-v2.1-json-patch' };

/** Glance's fault body: `{"code": "404 Not Found", "title": "Not Found", "message": "..."}`. */
function expectFault(response: { status: number; body: any }, status: number, message?: RegExp): void {
  expect(response.status).toBe(status);
  expect(response.body).toEqual({
    code: expect.stringMatching(new RegExp(`^${status} `)),
    title: expect.any(String),
    message: message ? expect.stringMatching(message) : expect.any(String),
  });
}

/** The Glance v2 API spoken directly: validation, policy, isolation, data handling and listing. */
describe('image API (Glance v2)', () => {
  let cloud: CloudHandle;
  let url: string;
  let admin: string;
  let demo: string;
  let demoProject: string;
  let alt: string;

  const image = (token: string, body: unknown) => api(url, 'POST', '/v2/images', { token, body });
  const patch = (token: string, id: string, operations: unknown) =>
    api(url, 'PATCH', `/v2/images/${id}`, { token, raw: JSON.stringify(operations), headers: PATCH });
  const partials = () => readdirSync(join(cloud.dataDir, 'images', '.partial'));

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 23010 });
    url = cloud.services.image;
    admin = (
      await issueToken(cloud.identityUrl, { user: 'admin', password: cloud.adminPassword, project: 'admin' })
    ).token;
    const demoToken = await issueToken(cloud.identityUrl, {
      user: 'demo',
      password: cloud.demoPassword,
      project: 'demo',
    });
    demo = demoToken.token;
    demoProject = demoToken.body.token.project.id;
    alt = (
      await issueToken(cloud.identityUrl, {
        user: 'alt_demo',
        password: cloud.demoPassword,
        project: 'alt_demo',
      })
    ).token;
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('answers version discovery without a token, and 401 in its own format without one elsewhere', async () => {
    const versions = await api(url, 'GET', '');
    expect(versions.status).toBe(300);
    expect(versions.body.versions[0]).toEqual({
      id: 'v2.16',
      status: 'CURRENT',
      links: [{ rel: 'self', href: `${url}/v2/` }],
    });
    const denied = await api(url, 'GET', '/v2/images');
    expectFault(denied, 401);
    expect(denied.headers.get('www-authenticate')).toBe(`Keystone uri="${cloud.identityUrl}"`);
    const schema = await api(url, 'GET', '/v2/schemas/image', { token: demo });
    expect(schema.status).toBe(200);
    expect(schema.body.name).toBe('image');
    expect(schema.body.properties.disk_format.enum).toContain('qcow2');
  });

  it('creates an image with Glance defaults and custom properties', async () => {
    const created = await image(demo, { name: 'defaults', foo: 'bar', tags: ['a', 'a', 'b'] });
    expect(created.status).toBe(201);
    expect(created.headers.get('openstack-image-import-methods')).toBe('glance-direct');
    expect(created.body).toMatchObject({
      name: 'defaults',
      status: 'queued',
      visibility: 'shared',
      protected: false,
      os_hidden: false,
      owner: demoProject,
      disk_format: null,
      container_format: null,
      size: null,
      checksum: null,
      min_disk: 0,
      min_ram: 0,
      foo: 'bar',
      tags: ['a', 'b'],
      self: `/v2/images/${created.body.id}`,
      file: `/v2/images/${created.body.id}/file`,
      schema: '/v2/schemas/image',
    });
    expect(created.body.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const again = await image(demo, { id: created.body.id });
    expectFault(again, 409);
  });

  it('refuses bad input with a 4xx naming the problem', async () => {
    expectFault(await image(demo, { status: 'active' }), 403, /'status' is read-only/);
    expectFault(await image(demo, { size: 5 }), 403, /read-only/);
    expectFault(await image(demo, { os_glance_import_task: 'x' }), 403, /reserved/);
    expectFault(await image(demo, { disk_format: 'exe' }), 400, /disk_format/);
    expectFault(await image(demo, { container_format: 'zip' }), 400, /container_format/);
    expectFault(await image(demo, { min_ram: -1 }), 400, /min_ram/);
    expectFault(await image(demo, { name: 'x'.repeat(256) }), 400, /name/);
    expectFault(await image(demo, { custom: 5 }), 400, /custom/);
    expectFault(await image(demo, { id: 'not-a-uuid' }), 400, /id/);
    expectFault(await image(demo, { visibility: 'everyone' }), 400, /visibility/);
    expectFault(await image(demo, { owner: 'someone-else' }), 403);
    expectFault(await api(url, 'POST', '/v2/images', { token: demo, raw: '[1]' }), 400);
    expectFault(await api(url, 'POST', '/v2/images', { token: demo, raw: '{"name":' }), 400);
    expectFault(await api(url, 'GET', '/v2/images?limit=-1', { token: demo }), 400);
    expectFault(await api(url, 'GET', '/v2/images?sort_key=secret', { token: demo }), 400);
    expectFault(await api(url, 'GET', '/v2/images?sort_dir=sideways', { token: demo }), 400);
    expectFault(await api(url, 'GET', '/v2/images?visibility=everyone', { token: demo }), 400);
    expectFault(await api(url, 'GET', '/v2/images?marker=nope', { token: demo }), 400, /marker/);
    expectFault(await api(url, 'GET', '/v2/images/nope', { token: demo }), 404, /No image found/);
  });

  it('updates by JSON patch and refuses bad patches', async () => {
    const { body: created } = await image(demo, {
      name: 'patchable',
      disk_format: 'raw',
      container_format: 'bare',
    });
    const id = created.id;
    const ok = await patch(demo, id, [
      { op: 'replace', path: '/name', value: 'patched' },
      { op: 'add', path: '/hw_disk_bus', value: 'scsi' },
      { op: 'add', path: '/a~1b', value: 'slash' },
      { op: 'replace', path: '/min_disk', value: 2 },
      { op: 'add', path: '/tags', value: ['x'] },
      { op: 'replace', path: '/protected', value: true },
    ]);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({
      name: 'patched',
      hw_disk_bus: 'scsi',
      'a/b': 'slash',
      min_disk: 2,
      tags: ['x'],
      protected: true,
    });
    const removed = await patch(demo, id, [{ op: 'remove', path: '/hw_disk_bus' }]);
    expect(removed.body.hw_disk_bus).toBeUndefined();

    expectFault(await patch(demo, id, [{ op: 'replace', path: '/a/b', value: 'x' }]), 400, /JSON pointer/);
    expectFault(await patch(demo, id, [{ op: 'replace', path: 'name', value: 'x' }]), 400, /JSON pointer/);
    expectFault(await patch(demo, id, [{ op: 'move', path: '/name', value: 'x' }]), 400, /op/);
    expectFault(await patch(demo, id, [{ op: 'add', path: '/name' }]), 400, /value/);
    expectFault(await patch(demo, id, { op: 'add' }), 400);
    expectFault(
      await patch(demo, id, [{ op: 'replace', path: '/status', value: 'active' }]),
      403,
      /read-only/,
    );
    expectFault(await patch(demo, id, [{ op: 'add', path: '/os_glance_x', value: 'x' }]), 403, /reserved/);
    expectFault(
      await patch(demo, id, [{ op: 'replace', path: '/missing', value: 'x' }]),
      409,
      /does not exist/,
    );
    expectFault(await patch(demo, id, [{ op: 'remove', path: '/missing' }]), 409, /does not exist/);
    expectFault(await patch(demo, id, [{ op: 'remove', path: '/name' }]), 403);
    expectFault(
      await patch(demo, id, [{ op: 'replace', path: '/visibility', value: 'public' }]),
      403,
      /publicize/,
    );
    const wrongType = await api(url, 'PATCH', `/v2/images/${id}`, {
      token: demo,
      body: [{ op: 'replace', path: '/name', value: 'x' }],
    });
    expectFault(wrongType, 415);
    expectFault(await api(url, 'PATCH', `/v2/images/${id}`, { token: demo, raw: '[{', headers: PATCH }), 400);

    // protected: no delete until unprotected
    expectFault(await api(url, 'DELETE', `/v2/images/${id}`, { token: demo }), 403, /protected/);
    await patch(demo, id, [{ op: 'replace', path: '/protected', value: false }]);
    expect((await api(url, 'DELETE', `/v2/images/${id}`, { token: demo })).status).toBe(204);
    expect((await api(url, 'GET', `/v2/images/${id}`, { token: demo })).status).toBe(404);
  });

  it("keeps a project's private images invisible to others (404) and public ones read-only", async () => {
    const { body: mine } = await image(demo, { name: 'demo-private', visibility: 'private' });
    expectFault(await api(url, 'GET', `/v2/images/${mine.id}`, { token: alt }), 404);
    expectFault(await patch(alt, mine.id, [{ op: 'replace', path: '/name', value: 'x' }]), 404);
    expectFault(await api(url, 'DELETE', `/v2/images/${mine.id}`, { token: alt }), 404);
    expectFault(await putData(url, `/v2/images/${mine.id}/file`, alt, Buffer.from('x')), 404);
    const altList = await api(url, 'GET', '/v2/images?visibility=all', { token: alt });
    expect(altList.body.images.map((i: any) => i.id)).not.toContain(mine.id);
    // admins see everything
    expect((await api(url, 'GET', `/v2/images/${mine.id}`, { token: admin })).status).toBe(200);

    const { body: pub } = await image(admin, { name: 'admin-public', visibility: 'public' });
    expect(pub.visibility).toBe('public');
    expect((await api(url, 'GET', `/v2/images/${pub.id}`, { token: alt })).status).toBe(200);
    expectFault(await patch(alt, pub.id, [{ op: 'replace', path: '/name', value: 'x' }]), 403);
    expectFault(await api(url, 'DELETE', `/v2/images/${pub.id}`, { token: alt }), 403);
    expectFault(await api(url, 'PUT', `/v2/images/${pub.id}/tags/mine`, { token: alt }), 403);

    const { body: community } = await image(demo, { name: 'demo-community', visibility: 'community' });
    const defaultList = await api(url, 'GET', '/v2/images', { token: alt });
    expect(defaultList.body.images.map((i: any) => i.id)).not.toContain(community.id);
    const communityList = await api(url, 'GET', '/v2/images?visibility=community', { token: alt });
    expect(communityList.body.images.map((i: any) => i.id)).toContain(community.id);
  });

  it('shares an image with members who accept or reject it', async () => {
    const outsider = (
      await issueToken(cloud.identityUrl, { user: 'demo2', password: cloud.demoPassword, project: 'demo2' })
    ).token;
    const { body: shared } = await image(alt, { name: 'to-share' });
    const base = `/v2/images/${shared.id}/members`;
    const added = await api(url, 'POST', base, { token: alt, body: { member: demoProject } });
    expect(added.status).toBe(200);
    expect(added.body).toMatchObject({ image_id: shared.id, member_id: demoProject, status: 'pending' });
    expectFault(await api(url, 'POST', base, { token: alt, body: { member: demoProject } }), 409);
    expectFault(await api(url, 'POST', base, { token: alt, body: { member: 5 } }), 400, /member/);
    expectFault(await api(url, 'POST', base, { token: demo, body: { member: 'x' } }), 403);

    const pendingList = await api(url, 'GET', '/v2/images', { token: demo });
    expect(pendingList.body.images.map((i: any) => i.id)).not.toContain(shared.id);
    const pending = await api(url, 'GET', '/v2/images?member_status=pending', { token: demo });
    expect(pending.body.images.map((i: any) => i.id)).toContain(shared.id);

    // only the member itself accepts
    expectFault(
      await api(url, 'PUT', `${base}/${demoProject}`, { token: alt, body: { status: 'accepted' } }),
      403,
    );
    expectFault(
      await api(url, 'PUT', `${base}/${demoProject}`, { token: demo, body: { status: 'maybe' } }),
      400,
      /status/,
    );
    const accepted = await api(url, 'PUT', `${base}/${demoProject}`, {
      token: demo,
      body: { status: 'accepted' },
    });
    expect(accepted.body.status).toBe('accepted');
    const list = await api(url, 'GET', '/v2/images', { token: demo });
    expect(list.body.images.map((i: any) => i.id)).toContain(shared.id);
    const members = await api(url, 'GET', base, { token: demo });
    expect(members.body).toMatchObject({
      schema: '/v2/schemas/members',
      members: [{ member_id: demoProject }],
    });
    expectFault(await api(url, 'GET', base, { token: outsider }), 404);
    expectFault(await api(url, 'GET', `/v2/images/${shared.id}`, { token: outsider }), 404);
    expectFault(await patch(demo, shared.id, [{ op: 'replace', path: '/name', value: 'x' }]), 403);

    const { body: priv } = await image(alt, { name: 'private-no-members', visibility: 'private' });
    expectFault(
      await api(url, 'POST', `/v2/images/${priv.id}/members`, { token: alt, body: { member: demoProject } }),
      403,
      /shared/,
    );
    expect((await api(url, 'DELETE', `${base}/${demoProject}`, { token: alt })).status).toBe(204);
    expectFault(await api(url, 'GET', `/v2/images/${shared.id}`, { token: demo }), 404);
  });

  it('stores uploads with checksums, serves ranges, and refuses a second upload', async () => {
    const data = randomBytes(384 * 512);
    const { body: created } = await image(demo, {
      name: 'data',
      disk_format: 'raw',
      container_format: 'bare',
    });
    const file = `/v2/images/${created.id}/file`;
    expect((await getData(url, file, demo)).status).toBe(204);
    expectFault(await putData(url, file, demo, Buffer.from('plain text'), 'text/plain'), 415);
    expect((await putData(url, file, demo, data)).status).toBe(204);
    const shown = await api(url, 'GET', `/v2/images/${created.id}`, { token: demo });
    expect(shown.body).toMatchObject({
      status: 'active',
      size: data.length,
      virtual_size: data.length,
      checksum: createHash('md5').update(data).digest('hex'),
      os_hash_algo: 'sha512',
      os_hash_value: createHash('sha512').update(data).digest('hex'),
    });
    const whole = await getData(url, file, demo);
    expect(whole.status).toBe(200);
    expect(whole.data.equals(data)).toBe(true);
    expect(whole.headers.get('content-md5')).toBe(shown.body.checksum);
    const part = await getData(url, file, demo, { range: 'bytes=100-199' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${data.length}`);
    expect(part.data.equals(data.subarray(100, 200))).toBe(true);
    const tail = await getData(url, file, demo, { range: 'bytes=-10' });
    expect(tail.data.equals(data.subarray(data.length - 10))).toBe(true);
    expect((await getData(url, file, demo, { range: 'bytes=999999-' })).status).toBe(416);
    const several = await getData(url, file, demo, { range: 'bytes=0-1,5-6' });
    expect(several.status).toBe(200);
    expect(several.data.equals(data)).toBe(true);
    expectFault(await putData(url, file, demo, data), 409);

    const { body: unformatted } = await image(demo, { name: 'no-format' });
    expectFault(await putData(url, `/v2/images/${unformatted.id}/file`, demo, data), 400, /disk_format/);
  });

  it('refuses disk images that name backing or data files or contradict their disk_format', async () => {
    const dir = cloud.dataDir;
    qemuImage(join(dir, 'backing.qcow2'), 'qcow2', '-b', '/etc/passwd', '-F', 'raw');
    qemuImage(join(dir, 'datafile.qcow2'), 'qcow2', '-o', `data_file=${join(dir, 'data.raw')}`);
    qemuImage(join(dir, 'plain.qcow2'), 'qcow2');
    // A VMDK descriptor whose extent is a file of the host (the data would be that file).
    writeFileSync(
      join(dir, 'extent.vmdk'),
      '# Disk DescriptorFile\nversion=1\nCID=5c9962c0\nparentCID=ffffffff\ncreateType="monolithicFlat"\n' +
        'RW 2048 FLAT "/etc/hostname" 0\n',
    );
    const cases: [string, string, RegExp][] = [
      ['backing.qcow2', 'qcow2', /backing file/],
      ['datafile.qcow2', 'qcow2', /data file/],
      ['plain.qcow2', 'raw', /does not match disk_format 'raw'/],
      ['plain.qcow2', 'iso', /does not match/],
      ['plain.qcow2', 'vmdk', /does not match/],
      ['extent.vmdk', 'vmdk', /other files as its extents/],
    ];
    const refused: string[] = [];
    for (const [name, diskFormat, message] of cases) {
      const { body: created } = await image(demo, {
        name,
        disk_format: diskFormat,
        container_format: 'bare',
      });
      refused.push(created.id);
      const upload = await putData(url, `/v2/images/${created.id}/file`, demo, readFileSync(join(dir, name)));
      expectFault(upload, 400, message);
      const after = await api(url, 'GET', `/v2/images/${created.id}`, { token: demo });
      expect(after.body).toMatchObject({ status: 'queued', size: null, checksum: null });
    }
    const raw = Buffer.alloc(4096, 1);
    const { body: rawImage } = await image(demo, {
      name: 'raw-as-raw',
      disk_format: 'raw',
      container_format: 'bare',
    });
    expect((await putData(url, `/v2/images/${rawImage.id}/file`, demo, raw)).status).toBe(204);
    expect(partials()).toEqual([]);
    const stored = readdirSync(join(cloud.dataDir, 'images'));
    for (const id of refused) expect(stored).not.toContain(id);
    expect(stored).toContain(rawImage.id);
  });

  it('leaves an upload cut off mid-stream queued, with no partial file kept', async () => {
    const { body: created } = await image(demo, {
      name: 'cut-off',
      disk_format: 'raw',
      container_format: 'bare',
    });
    await cutOffUpload(url, `/v2/images/${created.id}/file`, demo, 10_000_000, randomBytes(1_000_000));
    let after: any;
    for (let i = 0; i < 50; i++) {
      after = await api(url, 'GET', `/v2/images/${created.id}`, { token: demo });
      if (after.body.status === 'queued') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(after.body).toMatchObject({ status: 'queued', size: null, checksum: null });
    expect(partials()).toEqual([]);
    expect(readdirSync(join(cloud.dataDir, 'images'))).not.toContain(created.id);
    // and it can be uploaded again afterwards
    expect((await putData(url, `/v2/images/${created.id}/file`, demo, Buffer.alloc(512))).status).toBe(204);
  });

  it('lets exactly one of two concurrent uploads win', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    for (let round = 0; round < 3; round++) {
      const { body: created } = await image(demo, {
        name: 'race',
        disk_format: 'raw',
        container_format: 'bare',
      });
      const file = `/v2/images/${created.id}/file`;
      const results = await Promise.all([putData(url, file, demo, data), putData(url, file, demo, data)]);
      expect(results.map((r) => r.status).sort()).toEqual([204, 409]);
      const shown = await api(url, 'GET', `/v2/images/${created.id}`, { token: demo });
      expect(shown.body).toMatchObject({ status: 'active', size: data.length });
      expect((await getData(url, file, demo)).data.equals(data)).toBe(true);
    }
    expect(partials()).toEqual([]);
  });

  it('returns an upload interrupted by a crash of the service to queued, without its partial file', async () => {
    const { body: created } = await image(demo, {
      name: 'crash',
      disk_format: 'raw',
      container_format: 'bare',
    });
    const upload = hangingUpload(
      url,
      `/v2/images/${created.id}/file`,
      demo,
      50_000_000,
      randomBytes(500_000),
    );
    let status = 'queued';
    for (let i = 0; i < 50 && status !== 'saving'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await api(url, 'GET', `/v2/images/${created.id}`, { token: demo })).body.status;
    }
    expect(status).toBe('saving');
    expect(partials()).toHaveLength(1);
    await cloud.stop('SIGKILL');
    upload.abort();
    await cloud.start();
    url = cloud.services.image;
    const after = await api(url, 'GET', `/v2/images/${created.id}`, { token: demo });
    expect(after.body).toMatchObject({ status: 'queued', size: null });
    expect(partials()).toEqual([]);
    expect((await putData(url, `/v2/images/${created.id}/file`, demo, Buffer.alloc(1024))).status).toBe(204);
  }, 120_000);

  it('imports with glance-direct: stage, then import', async () => {
    const data = randomBytes(70_000);
    const { body: created } = await image(demo, {
      name: 'imported',
      disk_format: 'raw',
      container_format: 'bare',
    });
    const imported = `/v2/images/${created.id}/import`;
    expectFault(
      await api(url, 'POST', imported, { token: demo, body: { method: { name: 'glance-direct' } } }),
      409,
      /staged/,
    );
    expect((await putData(url, `/v2/images/${created.id}/stage`, demo, data)).status).toBe(204);
    expect((await api(url, 'GET', `/v2/images/${created.id}`, { token: demo })).body.status).toBe(
      'uploading',
    );
    expectFault(
      await api(url, 'POST', imported, { token: demo, body: { method: { name: 'web-download' } } }),
      400,
      /not supported/,
    );
    const accepted = await api(url, 'POST', imported, {
      token: demo,
      body: { method: { name: 'glance-direct' } },
    });
    expect(accepted.status).toBe(202);
    let shown: any;
    for (let i = 0; i < 100; i++) {
      shown = (await api(url, 'GET', `/v2/images/${created.id}`, { token: demo })).body;
      if (shown.status === 'active') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(shown).toMatchObject({ status: 'active', size: data.length });
    expect((await getData(url, `/v2/images/${created.id}/file`, demo)).data.equals(data)).toBe(true);
    const info = await api(url, 'GET', '/v2/info/import', { token: demo });
    expect(info.body['import-methods'].value).toEqual(['glance-direct']);
  });

  it('deactivates and reactivates an image; tags add and remove', async () => {
    const { body: created } = await image(demo, {
      name: 'lifecycle',
      disk_format: 'raw',
      container_format: 'bare',
    });
    const base = `/v2/images/${created.id}`;
    expectFault(await api(url, 'POST', `${base}/actions/deactivate`, { token: demo }), 403, /queued/);
    await putData(url, `${base}/file`, demo, Buffer.alloc(1024));
    expect((await api(url, 'POST', `${base}/actions/deactivate`, { token: demo })).status).toBe(204);
    expect((await api(url, 'GET', base, { token: demo })).body.status).toBe('deactivated');
    expectFault(await api(url, 'GET', `${base}/file`, { token: demo }), 403, /deactivated/);
    expect((await getData(url, `${base}/file`, admin)).status).toBe(200);
    expect((await api(url, 'POST', `${base}/actions/reactivate`, { token: demo })).status).toBe(204);
    expect((await getData(url, `${base}/file`, demo)).status).toBe(200);

    expect((await api(url, 'PUT', `${base}/tags/green`, { token: demo })).status).toBe(204);
    expect((await api(url, 'PUT', `${base}/tags/green`, { token: demo })).status).toBe(204);
    const parallel = await Promise.all(
      Array.from({ length: 10 }, () => api(url, 'PUT', `${base}/tags/blue`, { token: demo })),
    );
    expect(parallel.map((r) => r.status)).toEqual(Array(10).fill(204));
    expect((await api(url, 'DELETE', `${base}/tags/blue`, { token: demo })).status).toBe(204);
    expect((await api(url, 'GET', base, { token: demo })).body.tags).toEqual(['green']);
    expect((await api(url, 'DELETE', `${base}/tags/green`, { token: demo })).status).toBe(204);
    expectFault(await api(url, 'DELETE', `${base}/tags/green`, { token: demo }), 404);
  });

  it('filters, sorts and pages the image list with next links', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { body } = await image(alt, {
        name: `page-${i}`,
        disk_format: i % 2 ? 'qcow2' : 'raw',
        container_format: 'bare',
        tags: i < 2 ? ['paged', 'first'] : ['paged'],
        flavour: i === 3 ? 'vanilla' : 'plain',
        min_ram: i,
      });
      ids.push(body.id);
    }
    await image(alt, { name: 'hidden-one', os_hidden: true, tags: ['paged'] });
    const names = async (query: string) =>
      (await api(url, 'GET', `/v2/images?${query}`, { token: alt })).body.images.map((i: any) => i.name);

    expect(await names('tag=paged&sort=name:asc')).toEqual([
      'page-0',
      'page-1',
      'page-2',
      'page-3',
      'page-4',
    ]);
    expect(await names('tag=paged&tag=first&sort_key=name&sort_dir=desc')).toEqual(['page-1', 'page-0']);
    expect(await names('disk_format=qcow2&sort=name:asc')).toEqual(['page-1', 'page-3']);
    expect(await names('flavour=vanilla')).toEqual(['page-3']);
    expect(await names('name=in:page-2,page-4&sort=name:asc')).toEqual(['page-2', 'page-4']);
    expect(await names('os_hidden=true')).toEqual(['hidden-one']);
    expect(await names('tag=paged&sort=min_ram:desc,name:asc')).toEqual([
      'page-4',
      'page-3',
      'page-2',
      'page-1',
      'page-0',
    ]);
    expect(await names('status=queued&tag=first&sort=name:asc')).toEqual(['page-0', 'page-1']);

    const seen: string[] = [];
    let next: string | undefined = '/v2/images?tag=paged&sort=name:asc&limit=2';
    let pages = 0;
    while (next) {
      const page = await api(url, 'GET', next, { token: alt });
      expect(page.status).toBe(200);
      expect(page.body.schema).toBe('/v2/schemas/images');
      seen.push(...page.body.images.map((i: any) => i.name));
      next = page.body.next;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);
  });

  it('removes the images of a deleted project', async () => {
    const project = await api(cloud.identityUrl, 'POST', '/v3/projects', {
      token: admin,
      body: { project: { name: 'doomed', domain_id: 'default' } },
    });
    const { body: owned } = await image(admin, { name: 'doomed-image', owner: project.body.project.id });
    expect(owned.owner).toBe(project.body.project.id);
    await api(cloud.identityUrl, 'DELETE', `/v3/projects/${project.body.project.id}`, { token: admin });
    let status = 200;
    for (let i = 0; i < 50 && status === 200; i++) {
      status = (await api(url, 'GET', `/v2/images/${owned.id}`, { token: admin })).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(404);
  });
});

/** The size cap and per-project quota, on a cloud configured with small ones. */
describe('image storage limits', () => {
  let cloud: CloudHandle;
  let url: string;
  let demo: string;

  beforeAll(async () => {
    cloud = await startCloud({
      portBase: 23020,
      extraEnv: { NOVUM_IMAGE_SIZE_CAP: '300000', NOVUM_IMAGE_PROJECT_QUOTA: '500000' },
    });
    url = cloud.services.image;
    demo = (
      await issueToken(cloud.identityUrl, { user: 'demo', password: cloud.demoPassword, project: 'demo' })
    ).token;
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  const upload = async (size: number) => {
    const created = await api(url, 'POST', '/v2/images', {
      token: demo,
      body: { name: `${size}`, disk_format: 'raw', container_format: 'bare' },
    });
    const response = await putData(url, `/v2/images/${created.body.id}/file`, demo, Buffer.alloc(size, 7));
    const after = await api(url, 'GET', `/v2/images/${created.body.id}`, { token: demo });
    return { response, status: after.body.status };
  };

  it('lets only one of two concurrent uploads take the last of the quota', async () => {
    const [first, second] = await Promise.all([upload(280_000), upload(280_000)]);
    expect([first.response.status, second.response.status].sort()).toEqual([204, 413]);
    expect([first.status, second.status].sort()).toEqual(['active', 'queued']);
    // free the quota again for the next tests
    const list = await api(url, 'GET', '/v2/images?status=active', { token: demo });
    for (const { id } of list.body.images) await api(url, 'DELETE', `/v2/images/${id}`, { token: demo });
  });

  it('refuses an image over the size cap (413) and keeps it queued', async () => {
    const { response, status } = await upload(300_001);
    expectFault(response, 413, /300000 bytes/);
    expect(status).toBe('queued');
    expect(readdirSync(join(cloud.dataDir, 'images', '.partial'))).toEqual([]);
  });

  it("refuses an upload over the project's quota (413)", async () => {
    expect((await upload(250_000)).response.status).toBe(204);
    expect((await upload(200_000)).response.status).toBe(204);
    const over = await upload(60_000);
    expectFault(over.response, 413, /quota/);
    expect(over.status).toBe('queued');
    expect((await upload(50_000)).response.status).toBe(204);
  });
});
