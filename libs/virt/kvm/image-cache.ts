import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DriverError, ImageSource } from '../driver';
import { mustRun } from '../container/host-commands';

/** A base image in the host's cache: its file, format and size as qemu-img sees them. */
export interface CachedImage {
  imageId: string;
  path: string;
  format: 'qcow2' | 'raw';
  virtualSize: number;
}

interface QemuImgInfo {
  format?: string;
  'virtual-size'?: number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
}

const ID = /^[0-9A-Za-z_.-]{1,64}$/;
const DIGESTS = ['md5', 'sha1', 'sha256', 'sha512'] as const;
type Digest = (typeof DIGESTS)[number];

/**
 * Glance images cached once per host under `images/<image id>` (the base every overlay of that image sits
 * on, never written after it is in place). A download is checked against the image's checksum (MD5) and
 * `os_hash_value` when the image carries them, then `qemu-img info` must find the declared disk format and
 * no backing file; anything else is refused and deleted.
 */
export class ImageCache {
  private readonly inflight = new Map<string, Promise<CachedImage>>();

  constructor(private readonly root: string) {}

  async init(): Promise<void> {
    await mkdir(join(this.root, 'images'), { recursive: true });
    await rm(join(this.root, 'images', 'tmp'), { recursive: true, force: true });
    await mkdir(join(this.root, 'images', 'tmp'));
  }

  /** The cached base of `image`, downloading it (`image.open`) only on a miss. */
  prepare(image: ImageSource): Promise<CachedImage> {
    let pending = this.inflight.get(image.id);
    if (!pending) {
      pending = this.load(image).finally(() => this.inflight.delete(image.id));
      this.inflight.set(image.id, pending);
    }
    return pending;
  }

  private async load(image: ImageSource): Promise<CachedImage> {
    if (!ID.test(image.id)) throw new DriverError(`Image id ${image.id} cannot name a file.`);
    const format = image.diskFormat;
    if (format !== 'qcow2' && format !== 'raw') {
      throw new DriverError(
        `Image ${image.id} has disk_format ${format}; the kvm driver boots qcow2 and raw.`,
      );
    }
    const path = join(this.root, 'images', image.id);
    const meta = `${path}.json`;
    const cached = await readFile(meta, 'utf8').then(
      (text) => JSON.parse(text) as CachedImage,
      () => undefined,
    );
    if (cached && (await stat(path).catch(() => undefined))) return cached;

    const staging = join(this.root, 'images', 'tmp', randomUUID());
    try {
      const digests = await download(image, staging);
      verifyDigests(image, digests);
      const info = JSON.parse(await mustRun('qemu-img', ['info', '--output=json', staging])) as QemuImgInfo;
      if (info.format !== format) {
        throw new DriverError(
          `Image ${image.id} declares disk_format ${format} but its data is ${info.format ?? 'unknown'}.`,
        );
      }
      if (info['backing-filename'] || info['full-backing-filename']) {
        throw new DriverError(`Image ${image.id} names a backing file; refused.`);
      }
      const entry: CachedImage = {
        imageId: image.id,
        path,
        format,
        virtualSize: info['virtual-size'] ?? 0,
      };
      await rename(staging, path);
      await writeFile(`${meta}.tmp`, JSON.stringify(entry));
      await rename(`${meta}.tmp`, meta);
      return entry;
    } finally {
      await rm(staging, { force: true });
    }
  }
}

/** Streams the image into `file`, computing every digest Glance may have recorded on the way. */
async function download(image: ImageSource, file: string): Promise<Record<Digest, string>> {
  const hashes = Object.fromEntries(DIGESTS.map((name) => [name, createHash(name)])) as Record<
    Digest,
    ReturnType<typeof createHash>
  >;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      for (const hash of Object.values(hashes)) hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(await image.open(), tap, createWriteStream(file));
  } catch (error) {
    throw new DriverError(`Could not download image ${image.id}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return Object.fromEntries(DIGESTS.map((name) => [name, hashes[name].digest('hex')])) as Record<
    Digest,
    string
  >;
}

function verifyDigests(image: ImageSource, digests: Record<Digest, string>): void {
  if (image.checksum && image.checksum.toLowerCase() !== digests.md5) {
    throw new DriverError(`Image ${image.id} does not match its checksum; refused.`);
  }
  const algo = (image.osHashAlgo ?? '').toLowerCase() as Digest;
  if (image.osHashValue) {
    if (!DIGESTS.includes(algo)) {
      throw new DriverError(
        `Image ${image.id} has os_hash_algo ${image.osHashAlgo}, which cannot be checked.`,
      );
    }
    if (image.osHashValue.toLowerCase() !== digests[algo]) {
      throw new DriverError(`Image ${image.id} does not match its os_hash_value; refused.`);
    }
  }
}
