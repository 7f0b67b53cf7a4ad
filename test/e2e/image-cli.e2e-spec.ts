import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudHandle, startCloud } from './support/cloud';
import { qemuImage } from './support/image';
import { api, issueToken } from './support/keystone';
import { openstack, openstackJson, openstackOk } from './support/openstack';

/** Acceptance of the image service (Glance v2) with the real client, /usr/bin/openstack. */
describe('image with /usr/bin/openstack', () => {
  let cloud: CloudHandle;
  let admin: Record<string, string>;
  let demo: Record<string, string>;
  let qcow2: string;

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 23000 });
    admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
    demo = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-demo' };
    qcow2 = join(cloud.dataDir, 'disk.qcow2');
    qemuImage(qcow2, 'qcow2');
    // Some data in the image, so that byte-identical means something.
    execFileSync('qemu-io', ['-c', 'write -P 0x5a 0 256k', qcow2], { stdio: 'ignore' });
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('lists the image endpoint in the catalog', async () => {
    const catalog = await openstackJson<any[]>(admin, 'catalog', 'list');
    const image = catalog.find((entry) => entry.Type === 'image');
    expect(image).toMatchObject({ Name: 'glance' });
    expect(image.Endpoints.map((e: any) => e.url)).toContain(cloud.services.image);
  }, 60_000);

  it('creates, shows, lists, sets, saves byte-identical and deletes an image', async () => {
    const created = await openstackJson(
      admin,
      'image',
      'create',
      '--file',
      qcow2,
      '--disk-format',
      'qcow2',
      '--container-format',
      'bare',
      'cli-image',
    );
    expect(created).toMatchObject({ name: 'cli-image', disk_format: 'qcow2', container_format: 'bare' });

    const shown = await openstackJson(admin, 'image', 'show', 'cli-image');
    expect(shown).toMatchObject({ id: created.id, status: 'active', size: readFileSync(qcow2).length });
    expect(shown.virtual_size).toBe(1024 * 1024);
    const sha512 = execFileSync('sha512sum', [qcow2], { encoding: 'utf8' }).split(' ')[0];
    const md5 = execFileSync('md5sum', [qcow2], { encoding: 'utf8' }).split(' ')[0];
    expect(shown.checksum).toBe(md5);
    expect(shown.properties.os_hash_algo).toBe('sha512');
    expect(shown.properties.os_hash_value).toBe(sha512);

    const list = await openstackJson<any[]>(admin, 'image', 'list');
    expect(list).toContainEqual(
      expect.objectContaining({ ID: created.id, Name: 'cli-image', Status: 'active' }),
    );

    await openstackOk(admin, 'image', 'set', '--property', 'hw_disk_bus=scsi', '--tag', 'blue', 'cli-image');
    const updated = await openstackJson(admin, 'image', 'show', 'cli-image');
    expect(updated.properties.hw_disk_bus).toBe('scsi');
    expect(updated.tags).toEqual(['blue']);

    const saved = join(cloud.dataDir, 'saved.qcow2');
    await openstackOk(admin, 'image', 'save', '--file', saved, 'cli-image');
    expect(readFileSync(saved).equals(readFileSync(qcow2))).toBe(true);

    await openstackOk(admin, 'image', 'delete', 'cli-image');
    const gone = await openstack(admin, 'image', 'show', created.id);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/No Image found|404/);
  }, 120_000);

  it('publishes as admin only; other projects read a public image but cannot change it', async () => {
    const pub = await openstackJson(
      admin,
      'image',
      'create',
      '--public',
      '--file',
      qcow2,
      '--disk-format',
      'qcow2',
      '--container-format',
      'bare',
      'cli-public',
    );
    expect(pub.visibility).toBe('public');
    const seen = await openstackJson<any[]>(demo, 'image', 'list');
    expect(seen.map((i) => i.ID)).toContain(pub.id);
    const saved = join(cloud.dataDir, 'public.qcow2');
    await openstackOk(demo, 'image', 'save', '--file', saved, pub.id);
    expect(readFileSync(saved).equals(readFileSync(qcow2))).toBe(true);

    const denied = await openstack(demo, 'image', 'delete', pub.id);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/403/);
    const notPublished = await openstack(
      demo,
      'image',
      'create',
      '--public',
      '--file',
      qcow2,
      '--disk-format',
      'qcow2',
      '--container-format',
      'bare',
      'demo-public',
    );
    expect(notPublished.code).not.toBe(0);
    expect(notPublished.stderr).toMatch(/403/);

    // (without --file the client would wait for data on stdin)
    const adminToken = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    const privateImage = await api(cloud.services.image, 'POST', '/v2/images', {
      token: adminToken.token,
      body: { name: 'cli-private', visibility: 'private' },
    });
    expect(privateImage.status).toBe(201);
    const hidden = await openstack(demo, 'image', 'show', privateImage.body.id);
    expect(hidden.code).not.toBe(0);
    expect(hidden.stderr).toMatch(/No Image found/);
  }, 120_000);

  it('shares an image with a project: image add project, image member list, accept', async () => {
    const shared = await openstackJson(
      admin,
      'image',
      'create',
      '--shared',
      '--file',
      qcow2,
      '--disk-format',
      'qcow2',
      '--container-format',
      'bare',
      'cli-shared',
    );
    const demoProject = (await openstackJson(admin, 'project', 'show', 'demo')).id;
    const member = await openstackJson(admin, 'image', 'add', 'project', 'cli-shared', 'demo');
    expect(member).toMatchObject({ image_id: shared.id, member_id: demoProject, status: 'pending' });
    const members = await openstackJson<any[]>(admin, 'image', 'member', 'list', 'cli-shared');
    expect(members).toEqual([
      expect.objectContaining({ 'Image ID': shared.id, 'Member ID': demoProject, Status: 'pending' }),
    ]);

    // Pending: readable by id, not yet in the member's list.
    expect((await openstackJson<any[]>(demo, 'image', 'list')).map((i) => i.ID)).not.toContain(shared.id);
    await openstackOk(demo, 'image', 'set', '--accept', shared.id);
    expect((await openstackJson<any[]>(demo, 'image', 'list')).map((i) => i.ID)).toContain(shared.id);

    // A member cannot change the image, and another project still cannot see it.
    const changed = await openstack(demo, 'image', 'set', '--name', 'mine', shared.id);
    expect(changed.code).not.toBe(0);
    const alt = await issueToken(cloud.identityUrl, {
      user: 'alt_demo',
      password: cloud.demoPassword,
      project: 'alt_demo',
    });
    const other = await api(cloud.services.image, 'GET', `/v2/images/${shared.id}`, { token: alt.token });
    expect(other.status).toBe(404);
  }, 120_000);

  it('refuses a qcow2 image that names a backing file', async () => {
    const evil = join(cloud.dataDir, 'evil.qcow2');
    qemuImage(evil, 'qcow2', '-b', '/etc/passwd', '-F', 'raw');
    const result = await openstack(
      admin,
      'image',
      'create',
      '--file',
      evil,
      '--disk-format',
      'qcow2',
      '--container-format',
      'bare',
      'cli-evil',
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/backing file/);
  }, 60_000);

  it('uploads random data as raw and downloads it byte-identical', async () => {
    const raw = join(cloud.dataDir, 'random.raw');
    writeFileSync(raw, randomBytes(3 * 1024 * 1024 + 17));
    const created = await openstackJson(
      admin,
      'image',
      'create',
      '--file',
      raw,
      '--disk-format',
      'raw',
      '--container-format',
      'bare',
      'cli-raw',
    );
    const shown = await openstackJson(admin, 'image', 'show', created.id);
    expect(shown.properties.os_hash_value).toBe(
      execFileSync('sha512sum', [raw], { encoding: 'utf8' }).split(' ')[0],
    );
    const saved = join(cloud.dataDir, 'random.out');
    await openstackOk(admin, 'image', 'save', '--file', saved, created.id);
    expect(readFileSync(saved).equals(readFileSync(raw))).toBe(true);
  }, 60_000);
});
