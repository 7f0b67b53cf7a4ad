import { Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { Readable } from 'node:stream';
import { AuthContext, isAdmin } from '@novum/auth';
import {
  ApiError,
  BadRequestError,
  ConflictError,
  ForbiddenError,
  NOVUM_CONFIG,
  NovumConfig,
  PayloadTooLargeError,
  rootLogger,
  ServiceUnavailableError,
} from '@novum/common';
import { ImageEntity, nowIso, inTransaction } from '@novum/db';
import { QueryFailedError } from 'typeorm';
import { diskImageProblem, DiskInspector, InspectorUnavailableError } from './disk-inspector';
import { ImageFileStore, ReceivedFile, StalledError, TooLargeError } from './file-store';
import { ImageService } from './image.service';
import { ImageStore } from './image.store';

/** Container formats whose payload is an archive, so the disk format cannot be read from its header. */
const ARCHIVES = ['ova', 'compressed'];
/** Storage failures on our side, which are not the client's fault. */
const STORAGE_ERRORS = ['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EMFILE'];

export interface Download {
  status: 200 | 204 | 206;
  headers: Record<string, string>;
  stream?: Readable;
}

/**
 * Image data: direct upload (`PUT file`), the interoperable import's `glance-direct` method (stage, then
 * import) and download with ranges. Data streams through a hash on its way to disk and is never held in
 * memory; it becomes the image's only once complete, inspected and within the size cap and quota.
 */
@Injectable()
export class ImageDataService implements OnApplicationBootstrap {
  private readonly log = rootLogger().child({ service: 'image', component: 'data' });

  constructor(
    private readonly store: ImageStore,
    private readonly images: ImageService,
    private readonly files: ImageFileStore,
    private readonly inspector: DiskInspector,
    @Inject(NOVUM_CONFIG) private readonly config: NovumConfig,
  ) {}

  /**
   * Uploads of an earlier run that never finished: their partial files go, and their images return to the
   * state they were in before the upload (Glance would leave them stuck in `saving`).
   */
  async onApplicationBootstrap(): Promise<void> {
    this.files.sweepPartials();
    const now = nowIso();
    await this.store.images.update({ status: 'saving' }, { status: 'queued', updatedAt: now });
    await this.store.images.update({ status: 'importing' }, { status: 'uploading', updatedAt: now });
  }

  /** How many bytes this image may have: the size cap, or what is left of the owner's quota. */
  private async limitFor(image: ImageEntity): Promise<{ limit: number; byQuota: boolean }> {
    const cap = this.config.imageSizeCap;
    const quota = this.config.imageProjectQuota;
    if (!quota || !image.owner) return { limit: cap, byQuota: false };
    const left = Math.max(0, quota - (await this.store.bytesUsed(image.owner)));
    return left < cap ? { limit: left, byQuota: true } : { limit: cap, byQuota: false };
  }

  private tooLarge(byQuota: boolean, limit: number): PayloadTooLargeError {
    return new PayloadTooLargeError(
      byQuota
        ? `Denying attempt to upload image because it exceeds the quota: the project may store ${limit} more bytes.`
        : `Image exceeds the storage limit of ${limit} bytes.`,
    );
  }

  private checkUploadable(image: ImageEntity, target: string): void {
    if (!image.diskFormat || !image.containerFormat)
      throw new BadRequestError('Properties disk_format, container_format must be set prior to saving data.');
    if (image.status !== 'queued')
      throw new ConflictError(`Image status transition from ${image.status} to ${target} is not allowed.`);
  }

  /** Receives the body into a partial file; a client that goes away mid-stream is a 400, not ours. */
  private async receive(source: Readable, limit: number, byQuota: boolean): Promise<ReceivedFile> {
    try {
      return await this.files.receive(source, limit);
    } catch (error) {
      if (error instanceof TooLargeError) throw this.tooLarge(byQuota, limit);
      if (error instanceof StalledError)
        throw new BadRequestError(`The upload stalled: no data arrived for ${error.idleMs / 1000} seconds.`);
      const code = (error as { code?: string }).code;
      if (code && STORAGE_ERRORS.includes(code)) {
        this.log.error({ err: error }, 'image store write failed');
        throw new ServiceUnavailableError('The image store cannot take the data now.');
      }
      throw new BadRequestError('The upload was interrupted before all of the image data arrived.');
    }
  }

  /** Refuses data whose header contradicts the disk format or points at other files. */
  private async inspect(image: ImageEntity, path: string): Promise<number | null> {
    let info;
    try {
      info = await this.inspector.inspect(path);
    } catch (error) {
      if (error instanceof InspectorUnavailableError) {
        this.log.error({ err: error }, 'cannot inspect image data');
        throw new ServiceUnavailableError('Image data cannot be inspected now (qemu-img is missing).');
      }
      this.log.warn({ err: error, image: image.id }, 'qemu-img could not read the image data');
      throw new BadRequestError('Image data could not be read as a disk image.');
    }
    const problem = ARCHIVES.includes(image.containerFormat ?? '')
      ? info.backingFile || info.dataFile || info.foreignExtents?.length
        ? 'Image data names a backing, data or extent file, which is not allowed.'
        : undefined
      : diskImageProblem(image.diskFormat ?? 'raw', info);
    if (problem) throw new BadRequestError(problem);
    return info.virtualSize;
  }

  /** Makes received data the image's: rename into place, then record it if the image is still `from`. */
  private async activate(image: ImageEntity, file: ReceivedFile, from: string, virtualSize: number | null) {
    await this.files.commit(file, image.id);
    try {
      await this.serializable(async () => {
        await inTransaction(
          this.store.dataSource,
          async (manager) => {
            const current = await manager.findOneBy(ImageEntity, { id: image.id });
            if (!current || current.status !== from)
              throw new ConflictError(`Image ${image.id} was deleted or changed during the upload.`);
            const quota = this.config.imageProjectQuota;
            if (quota && image.owner) {
              const used = await this.store.bytesUsed(image.owner, manager.getRepository(ImageEntity));
              if (used + file.size > quota) throw this.tooLarge(true, Math.max(0, quota - used));
            }
            await manager.update(
              ImageEntity,
              { id: image.id },
              {
                status: 'active',
                size: file.size,
                virtualSize,
                checksum: file.md5,
                osHashAlgo: 'sha512',
                osHashValue: file.sha512,
                updatedAt: nowIso(),
              },
            );
          },
          'SERIALIZABLE',
        );
      });
    } catch (error) {
      await this.files.discard({ path: this.files.dataPath(image.id) });
      throw error;
    }
  }

  /** Retries a transaction that PostgreSQL aborted as a serialization failure. */
  private async serializable(work: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (error) {
        const code = (error as QueryFailedError & { driverError?: { code?: string } }).driverError?.code;
        if (!(error instanceof QueryFailedError) || code !== '40001' || attempt >= 5) throw error;
      }
    }
  }

  async upload(auth: AuthContext, id: string, source: Readable, declaredLength?: number): Promise<void> {
    const image = await this.images.modifiable(auth, id, 'upload_image');
    this.checkUploadable(image, 'saving');
    const { limit, byQuota } = await this.limitFor(image);
    if (declaredLength !== undefined && declaredLength > limit) throw this.tooLarge(byQuota, limit);
    if (!(await this.store.transition(id, ['queued'], 'saving', nowIso())))
      throw new ConflictError('Image status transition to saving is not allowed: another upload is running.');
    let file: ReceivedFile | undefined;
    try {
      file = await this.receive(source, limit, byQuota);
      const virtualSize = await this.inspect(image, file.path);
      await this.activate(image, file, 'saving', virtualSize);
    } catch (error) {
      if (file) await this.files.discard(file);
      await this.store.transition(id, ['saving'], 'queued', nowIso());
      throw error;
    }
  }

  /** `PUT /stage`: the data waits in the staging area, the image becomes `uploading`. */
  async stage(auth: AuthContext, id: string, source: Readable, declaredLength?: number): Promise<void> {
    const image = await this.images.modifiable(auth, id, 'upload_image');
    if (image.status !== 'queued')
      throw new ConflictError(`Image status transition from ${image.status} to uploading is not allowed.`);
    const { limit, byQuota } = await this.limitFor(image);
    if (declaredLength !== undefined && declaredLength > limit) throw this.tooLarge(byQuota, limit);
    if (!(await this.store.transition(id, ['queued'], 'uploading', nowIso())))
      throw new ConflictError(
        'Image status transition to uploading is not allowed: another upload is running.',
      );
    let file: ReceivedFile | undefined;
    try {
      file = await this.receive(source, limit, byQuota);
      await this.files.stage(file, id);
    } catch (error) {
      if (file) await this.files.discard(file);
      await this.store.transition(id, ['uploading'], 'queued', nowIso());
      throw error;
    }
  }

  /**
   * `POST /import` with `glance-direct`: answers 202 at once and imports in the background (`importing`,
   * then `active`, or back to `queued` with the staged data dropped when the data is refused).
   */
  async import(auth: AuthContext, id: string, body: unknown): Promise<void> {
    const image = await this.images.modifiable(auth, id, 'import_image');
    const method = (body as { method?: { name?: unknown } } | null)?.method;
    if (typeof method !== 'object' || method === null || typeof method.name !== 'string')
      throw new BadRequestError("The import request needs 'method': {'name': 'glance-direct'}.");
    if (method.name !== 'glance-direct')
      throw new BadRequestError(`Import method ${method.name} is not supported; use glance-direct.`);
    if (!image.diskFormat || !image.containerFormat)
      throw new BadRequestError(
        'Properties disk_format, container_format must be set prior to importing data.',
      );
    if (image.status !== 'uploading')
      throw new ConflictError("Image needs to be staged before 'glance-direct' method can be used.");
    if (!(await this.store.transition(id, ['uploading'], 'importing', nowIso())))
      throw new ConflictError("Image needs to be staged before 'glance-direct' method can be used.");
    void this.runImport(image).catch((error) =>
      this.log.warn({ err: error, image: id }, 'image import failed; the image is queued again'),
    );
  }

  private async runImport(image: ImageEntity): Promise<void> {
    const staged = this.files.stagedPath(image.id);
    try {
      const { createReadStream } = await import('node:fs');
      const file = await this.files.receive(createReadStream(staged), this.config.imageSizeCap);
      try {
        const virtualSize = await this.inspect(image, file.path);
        await this.activate(image, file, 'importing', virtualSize);
      } catch (error) {
        await this.files.discard(file);
        throw error;
      }
    } catch (error) {
      await this.store.transition(image.id, ['importing'], 'queued', nowIso());
      throw error;
    } finally {
      await this.files.discard({ path: staged });
    }
  }

  async download(auth: AuthContext, id: string, range: string | undefined): Promise<Download> {
    const image = await this.images.visible(auth, id);
    if (image.status === 'deactivated' && !isAdmin(auth))
      throw new ForbiddenError('The requested image has been deactivated. Image data download is forbidden.');
    const size =
      image.status === 'active' || image.status === 'deactivated' ? await this.files.size(id) : undefined;
    if (size === undefined) return { status: 204, headers: {} };
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
    };
    if (image.checksum) headers['content-md5'] = image.checksum;
    const parsed = range === undefined ? 'ignore' : parseRange(range, size);
    if (parsed === 'ignore') {
      headers['content-length'] = String(size);
      return { status: 200, headers, stream: this.files.read(id) };
    }
    if (!parsed) {
      throw new ApiError(
        416,
        `Requested range ${range} is not satisfiable for an image of ${size} bytes.`,
        undefined,
        {
          'content-range': `bytes */${size}`,
        },
      );
    }
    headers['content-range'] = `bytes ${parsed.start}-${parsed.end}/${size}`;
    headers['content-length'] = String(parsed.end - parsed.start + 1);
    return { status: 206, headers, stream: this.files.read(id, parsed) };
  }
}

/**
 * One `bytes=` range (`a-b`, `a-`, or `-n` for the last n bytes) within `size`; undefined when it cannot be
 * satisfied. Anything else (several ranges, other units, nonsense) is `ignore`: RFC 9110 lets a server
 * answer such a request with the whole representation.
 */
export function parseRange(
  header: string,
  size: number,
): { start: number; end: number } | undefined | 'ignore' {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return 'ignore';
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return undefined;
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start > end || start >= size) return undefined;
  return { start, end };
}
