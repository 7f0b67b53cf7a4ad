import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { ImageFileStore, StalledError, TooLargeError } from './file-store';

describe('ImageFileStore', () => {
  let root: string;
  let store: ImageFileStore;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'image-store-'));
    store = new ImageFileStore(root);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('streams data to a partial file, measuring size, md5 and sha512 on the way', async () => {
    const chunks = [Buffer.from('hello '), Buffer.from('world')];
    const file = await store.receive(Readable.from(chunks), 100);
    const data = Buffer.concat(chunks);
    expect(file).toMatchObject({
      size: data.length,
      md5: createHash('md5').update(data).digest('hex'),
      sha512: createHash('sha512').update(data).digest('hex'),
    });
    await store.commit(file, 'img');
    expect(readFileSync(store.dataPath('img'))).toEqual(data);
    expect(readdirSync(join(root, '.partial'))).toEqual([]);
    expect(await store.size('img')).toBe(data.length);
  });

  it('stops at the limit and keeps nothing', async () => {
    const source = Readable.from([Buffer.alloc(60), Buffer.alloc(60)]);
    await expect(store.receive(source, 100)).rejects.toBeInstanceOf(TooLargeError);
    expect(readdirSync(join(root, '.partial'))).toEqual([]);
  });

  it('keeps nothing of a stream that breaks off', async () => {
    const source = new PassThrough();
    const received = store.receive(source, 1000);
    source.write(Buffer.alloc(10));
    setImmediate(() => source.destroy(new Error('aborted')));
    await expect(received).rejects.toThrow('aborted');
    expect(readdirSync(join(root, '.partial'))).toEqual([]);
  });

  it('gives up a stream that stalls, keeping nothing', async () => {
    const patient = new ImageFileStore(root, 100);
    const source = new PassThrough();
    const received = patient.receive(source, 1000);
    source.write(Buffer.alloc(10));
    await expect(received).rejects.toBeInstanceOf(StalledError);
    expect(readdirSync(join(root, '.partial'))).toEqual([]);
  });

  it('serves byte ranges and removes data with its staged copy', async () => {
    await store.commit(await store.receive(Readable.from([Buffer.from('0123456789')]), 100), 'img');
    const chunks: Buffer[] = [];
    for await (const chunk of store.read('img', { start: 2, end: 4 })) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('234');
    await store.remove('img');
    expect(await store.size('img')).toBeUndefined();
  });
});
