import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, readdirSync, ReadStream, rmSync } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** What a finished upload measured on its way to disk. */
export interface ReceivedFile {
  path: string;
  size: number;
  md5: string;
  sha512: string;
}

/** Raised by the meter when a stream grows past the bytes it may have. */
export class TooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`the data exceeds ${limit} bytes`);
  }
}

/** Raised when a stream sends nothing for longer than the store waits. */
export class StalledError extends Error {
  constructor(readonly idleMs: number) {
    super(`no data for ${idleMs} ms`);
  }
}

/** Counts and hashes bytes as they pass, failing as soon as they exceed `limit`. */
class Meter extends Transform {
  readonly md5 = createHash('md5');
  readonly sha512 = createHash('sha512');
  size = 0;
  lastChunkAt = Date.now();

  constructor(private readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.lastChunkAt = Date.now();
    this.size += chunk.length;
    if (this.size > this.limit) {
      done(new TooLargeError(this.limit));
      return;
    }
    this.md5.update(chunk);
    this.sha512.update(chunk);
    done(null, chunk);
  }
}

/**
 * Image data on the local file system: `<dataDir>/images/<id>` for active images, `staging/<id>` for the
 * import's staged data. Data streams into a `.partial/` file that is renamed into place only once it is
 * complete and accepted, so an interrupted or refused upload never leaves a file behind.
 */
export class ImageFileStore {
  private readonly partialDir: string;
  private readonly stagingDir: string;

  /** `idleMs`: how long a stream may send nothing before it is given up as stalled. */
  constructor(
    readonly root: string,
    private readonly idleMs = 60_000,
  ) {
    this.partialDir = join(root, '.partial');
    this.stagingDir = join(root, 'staging');
    mkdirSync(this.partialDir, { recursive: true });
    mkdirSync(this.stagingDir, { recursive: true });
  }

  /** Removes what interrupted uploads of an earlier run left in `.partial/`. */
  sweepPartials(): void {
    for (const name of readdirSync(this.partialDir)) rmSync(join(this.partialDir, name), { force: true });
  }

  /** Streams `source` into a partial file, measuring it; the file is removed on any failure. */
  async receive(source: Readable, limit: number): Promise<ReceivedFile> {
    const path = join(this.partialDir, randomUUID());
    const meter = new Meter(limit);
    // A client that stops sending without closing would hold the image in `saving` for ever.
    const watchdog = setInterval(
      () => {
        if (Date.now() - meter.lastChunkAt > this.idleMs) source.destroy(new StalledError(this.idleMs));
      },
      Math.max(10, this.idleMs / 4),
    );
    try {
      await pipeline(source, meter, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
    } catch (error) {
      await rm(path, { force: true });
      throw error;
    } finally {
      clearInterval(watchdog);
    }
    return { path, size: meter.size, md5: meter.md5.digest('hex'), sha512: meter.sha512.digest('hex') };
  }

  async discard(file: ReceivedFile | { path: string }): Promise<void> {
    await rm(file.path, { force: true });
  }

  async commit(file: { path: string }, imageId: string): Promise<void> {
    await rename(file.path, this.dataPath(imageId));
  }

  async stage(file: ReceivedFile, imageId: string): Promise<void> {
    await rename(file.path, this.stagedPath(imageId));
  }

  dataPath(imageId: string): string {
    return join(this.root, imageId);
  }

  stagedPath(imageId: string): string {
    return join(this.stagingDir, imageId);
  }

  async size(imageId: string): Promise<number | undefined> {
    try {
      return (await stat(this.dataPath(imageId))).size;
    } catch {
      return undefined;
    }
  }

  read(imageId: string, range?: { start: number; end: number }): ReadStream {
    return createReadStream(this.dataPath(imageId), range);
  }

  async remove(imageId: string): Promise<void> {
    await rm(this.dataPath(imageId), { force: true });
    await rm(this.stagedPath(imageId), { force: true });
  }
}
