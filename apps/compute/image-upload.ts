import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import type { SnapshotData } from '@novum/virt';
import type { ImageUpload } from './compute-manager';
import { ServiceCredential, serviceSession, ServiceToken } from './service-client';

/** What Glance recorded of an image's data when it was uploaded. */
interface ImageDigests {
  checksum?: string | null;
  os_hash_algo?: string | null;
  os_hash_value?: string | null;
}

/**
 * Passes the data through, hashing it, and fails the stream at its end when the data is not what Glance
 * recorded (Nova's ImageChecksumVerificationFailed): a corrupted store or a changed file never boots.
 */
function verifying(imageId: string, image: ImageDigests): Transform {
  const md5 = image.checksum ? createHash('md5') : undefined;
  const algo = image.os_hash_value ? (image.os_hash_algo ?? '').toLowerCase() : '';
  let multihash: ReturnType<typeof createHash> | undefined;
  let unknownAlgo = false;
  try {
    multihash = algo ? createHash(algo) : undefined;
  } catch {
    unknownAlgo = true;
  }
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      md5?.update(chunk);
      multihash?.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      if (unknownAlgo) {
        done(new Error(`Image ${imageId} has os_hash_algo ${image.os_hash_algo}, which cannot be verified.`));
      } else if (md5 && md5.digest('hex') !== image.checksum!.toLowerCase()) {
        done(new Error(`Image ${imageId} data does not match its checksum: refused.`));
      } else if (multihash && multihash.digest('hex') !== image.os_hash_value!.toLowerCase()) {
        done(new Error(`Image ${imageId} data does not match its os_hash_value (${algo}): refused.`));
      } else {
        done();
      }
    },
  });
}

/**
 * Uploads snapshots as Nova's glance client does: a project-scoped token of the service user (cached until
 * near its expiry), the image endpoint from its catalog (internal, else public), then
 * `PUT /v2/images/{id}/file` with the driver's stream. The image must exist (queued) with its formats.
 */
export function glanceImageUpload(
  credential: ServiceCredential,
  fetchImpl: typeof fetch = fetch,
): ImageUpload {
  const session = serviceSession(credential, 'image', fetchImpl);
  const imageUrl = (url: string, imageId: string) => `${url}/v2/images/${encodeURIComponent(imageId)}`;

  const upload: ImageUpload = async (imageId: string, snapshot: SnapshotData) => {
    let current: ServiceToken;
    try {
      current = await session.current();
    } catch (error) {
      snapshot.data.destroy();
      throw error;
    }
    const response = await fetchImpl(`${imageUrl(current.url, imageId)}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': current.token, 'content-type': 'application/octet-stream' },
      body: Readable.toWeb(snapshot.data) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    if (response.status === 401) session.invalidate();
    if (!response.ok) {
      const detail = (await response.text().catch(() => '')).slice(0, 200);
      throw new Error(
        `The image service refused the snapshot of image ${imageId} (${response.status}). ${detail}`.trim(),
      );
    }
  };
  /** Deletes an image the agent is done with (the shelved snapshot after an unshelve); gone is fine. */
  upload.remove = async (imageId: string) => {
    const { token, url } = await session.current();
    const response = await fetchImpl(imageUrl(url, imageId), {
      method: 'DELETE',
      headers: { 'x-auth-token': token },
    });
    if (response.status === 401) session.invalidate();
    if (!response.ok && response.status !== 404) {
      throw new Error(`The image service refused to delete image ${imageId} (${response.status}).`);
    }
  };
  /**
   * Streams an image's data, as Nova's glance client downloads an image to boot it: the record first, for
   * its `checksum` and `os_hash_value`, then the data, which fails at its end when it does not match them.
   */
  upload.download = async (imageId: string) => {
    const { token, url: base } = await session.current();
    const url = imageUrl(base, imageId);
    const record = await fetchImpl(url, { headers: { 'x-auth-token': token } });
    if (record.status === 401) session.invalidate();
    if (!record.ok) {
      await record.body?.cancel().catch(() => undefined);
      throw new Error(`The image service refused image ${imageId} (${record.status}).`);
    }
    const image = (await record.json()) as ImageDigests;
    const response = await fetchImpl(`${url}/file`, { headers: { 'x-auth-token': token } });
    if (response.status === 401) session.invalidate();
    if (!response.ok || !response.body) {
      await response.body?.cancel().catch(() => undefined);
      throw new Error(`The image service refused the data of image ${imageId} (${response.status}).`);
    }
    return Readable.fromWeb(response.body as Parameters<typeof Readable.fromWeb>[0]).pipe(
      verifying(imageId, image),
    );
  };
  return upload;
}
