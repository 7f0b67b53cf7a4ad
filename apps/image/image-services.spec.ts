import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { AuthContext, TokenValidator } from '@novum/auth';
import { loadConfig } from '@novum/common';
import { DiskInfo, DiskInspector } from './disk-inspector';
import { ImageDataService } from './image-data.service';
import { ImageListService } from './image-list';
import { ImageService } from './image.service';
import { ImageModule } from './image.module';
import { MemberService } from './member.service';

/** Stands in for qemu-img: reports what the test says the data is. */
class FakeInspector extends DiskInspector {
  next: DiskInfo = { format: 'raw', virtualSize: 0 };
  async inspect(): Promise<DiskInfo> {
    return this.next;
  }
}

const caller = (projectId: string, roles = ['member', 'reader']): AuthContext =>
  ({ userId: `u-${projectId}`, projectId, roles }) as unknown as AuthContext;

describe('image services on a real (SQLite) database and file store', () => {
  let dataDir: string;
  let app: INestApplicationContext;
  let images: ImageService;
  let data: ImageDataService;
  let lists: ImageListService;
  let members: MemberService;
  const inspector = new FakeInspector();
  const alice = caller('alpha');
  const bob = caller('beta');

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'novum-image-'));
    const config = loadConfig({
      NOVUM_DATA_DIR: dataDir,
      NOVUM_IMAGE_SIZE_CAP: '1000',
      NOVUM_IMAGE_PROJECT_QUOTA: '1500',
    });
    const validator = { validate: async () => alice } as unknown as TokenValidator;
    const moduleRef = await Test.createTestingModule({ imports: [ImageModule.forRoot(config, validator)] })
      .overrideProvider(DiskInspector)
      .useValue(inspector)
      .compile();
    app = await moduleRef.init();
    images = app.get(ImageService);
    data = app.get(ImageDataService);
    lists = app.get(ImageListService);
    members = app.get(MemberService);
  });

  afterAll(async () => {
    await app?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const rawImage = async (owner = alice, extra: Record<string, unknown> = {}) =>
    (await images.create(owner, { disk_format: 'raw', container_format: 'bare', ...extra })).image;
  const partials = () => readdirSync(join(dataDir, 'images', '.partial'));

  it('uploads: queued, then active with size and hashes, data in the store', async () => {
    const image = await rawImage();
    inspector.next = { format: 'raw', virtualSize: 5 };
    await data.upload(alice, image.id, Readable.from([Buffer.from('hello')]));
    const { image: shown } = await images.show(alice, image.id);
    expect(shown).toMatchObject({
      status: 'active',
      size: 5,
      virtualSize: 5,
      checksum: '5d41402abc4b2a76b9719d911017c592',
      osHashAlgo: 'sha512',
    });
    expect(readFileSync(join(dataDir, 'images', image.id), 'utf8')).toBe('hello');
    await expect(data.upload(alice, image.id, Readable.from([Buffer.from('x')]))).rejects.toMatchObject({
      status: 409,
    });
  });

  it('refuses data the inspector finds wrong, keeping the image queued and no file', async () => {
    const image = await rawImage();
    inspector.next = { format: 'qcow2', virtualSize: 1, backingFile: '/etc/shadow' };
    await expect(data.upload(alice, image.id, Readable.from([Buffer.from('QFI')]))).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/backing file/),
    });
    expect((await images.show(alice, image.id)).image.status).toBe('queued');
    expect(existsSync(join(dataDir, 'images', image.id))).toBe(false);
    expect(partials()).toEqual([]);
  });

  it('refuses more than the size cap (413), by declared length or by bytes received', async () => {
    inspector.next = { format: 'raw', virtualSize: 1 };
    const image = await rawImage();
    await expect(data.upload(alice, image.id, Readable.from([]), 1001)).rejects.toMatchObject({
      status: 413,
    });
    await expect(data.upload(alice, image.id, Readable.from([Buffer.alloc(1001)]))).rejects.toMatchObject({
      status: 413,
    });
    expect((await images.show(alice, image.id)).image.status).toBe('queued');
    expect(partials()).toEqual([]);
  });

  it('treats a stream that breaks off as a 400 and forgets its bytes', async () => {
    const image = await rawImage();
    const source = new PassThrough();
    const upload = data.upload(alice, image.id, source);
    source.write(Buffer.alloc(100));
    setImmediate(() => source.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
    await expect(upload).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/interrupted/),
    });
    expect((await images.show(alice, image.id)).image.status).toBe('queued');
    expect(partials()).toEqual([]);
  });

  it("enforces the project's quota", async () => {
    inspector.next = { format: 'raw', virtualSize: 1 };
    const quotaOwner = caller('gamma');
    const first = await rawImage(quotaOwner);
    await data.upload(quotaOwner, first.id, Readable.from([Buffer.alloc(900)]));
    const second = await rawImage(quotaOwner);
    await expect(
      data.upload(quotaOwner, second.id, Readable.from([Buffer.alloc(700)])),
    ).rejects.toMatchObject({
      status: 413,
      message: expect.stringMatching(/quota/),
    });
    await data.upload(quotaOwner, second.id, Readable.from([Buffer.alloc(600)]));
    expect((await images.show(quotaOwner, second.id)).image.status).toBe('active');
  });

  it('hides private images from other projects and lists shared ones by member status', async () => {
    const secret = await rawImage(alice, { name: 'secret', visibility: 'private' });
    await expect(images.show(bob, secret.id)).rejects.toMatchObject({ status: 404 });
    const shared = await rawImage(alice, { name: 'shared' });
    await members.add(alice, shared.id, 'beta');
    const names = async (query: Record<string, string>) =>
      (await lists.list(bob, query)).views.map((v) => v.image.name);
    expect(await names({})).not.toContain('shared');
    expect(await names({ member_status: 'pending' })).toContain('shared');
    await members.setStatus(bob, shared.id, 'beta', 'accepted');
    expect(await names({})).toContain('shared');
    expect(await names({ visibility: 'all' })).not.toContain('secret');
    await expect(members.setStatus(alice, shared.id, 'beta', 'rejected')).rejects.toMatchObject({
      status: 403,
    });
  });

  it('pages with a marker and a next query', async () => {
    const owner = caller('delta');
    for (const name of ['c', 'a', 'b']) await rawImage(owner, { name });
    const first = await lists.list(owner, { sort: 'name:asc', limit: '2' });
    expect(first.views.map((v) => v.image.name)).toEqual(['a', 'b']);
    expect(first.next?.get('marker')).toBe(first.views[1].image.id);
    const rest = await lists.list(owner, Object.fromEntries(first.next!.entries()));
    expect(rest.views.map((v) => v.image.name)).toEqual(['c']);
    expect(rest.next).toBeUndefined();
  });

  it("forgets a deleted project's images and memberships", async () => {
    const owner = caller('epsilon');
    inspector.next = { format: 'raw', virtualSize: 1 };
    const image = await rawImage(owner);
    await data.upload(owner, image.id, Readable.from([Buffer.from('data')]));
    await images.forgetProject('epsilon');
    await expect(images.show(caller('admin', ['admin']), image.id)).rejects.toMatchObject({ status: 404 });
    expect(existsSync(join(dataDir, 'images', image.id))).toBe(false);
  });
});
