import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import {
  chmod,
  lchown,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { DriverError, ImageSource } from '../driver';
import { mustRun } from './host-commands';

/** The part of a Docker image config (`config` of the config JSON) a container runs by. */
export interface ImageRuntimeConfig {
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  WorkingDir?: string;
  User?: string;
}

/** An image ready to run: its layers (sha256 hex of each layer tar, bottom first) and its config. */
export interface PreparedImage {
  imageId: string;
  layers: string[];
  config: ImageRuntimeConfig;
}

const HEX = /^[0-9a-f]{64}$/;
const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/**
 * The layers of `docker save` archives and OCI image layouts, each unpacked once per host under `layers/<sha256>` (read-only by
 * convention, shared by every container of every image that has it), and the images made of them under
 * `images/<glance id>.json`. Docker's whiteouts become overlayfs ones as a layer is unpacked. With a user
 * namespace base (`idBase`), every owner in a layer is shifted by it once, at unpack time (Docker's
 * userns-remap), so that the container's root owns its files. The layer tars themselves are kept under
 * `layer-tars/<sha256>.tar`, so that a snapshot hands its parent's layers on unchanged.
 */
export class ImageStore {
  private readonly inflight = new Map<string, Promise<PreparedImage>>();

  constructor(
    private readonly root: string,
    private readonly idBase = 0,
  ) {}

  async init(): Promise<void> {
    for (const dir of ['layers', 'layer-tars', 'images', 'tmp'])
      await mkdir(join(this.root, dir), { recursive: true });
    await rm(join(this.root, 'tmp'), { recursive: true, force: true });
    await mkdir(join(this.root, 'tmp'));
    // Layers unpacked with another owner shift are of no use: unpack them again.
    // A store from before the marker has unshifted layers (base 0).
    const marker = join(this.root, 'id-base');
    const unmarked = (await readdir(join(this.root, 'layers'))).length > 0 ? '0' : undefined;
    const previous = await readFile(marker, 'utf8').catch(() => unmarked);
    if (previous !== undefined && Number(previous) !== this.idBase) {
      for (const dir of ['layers', 'images']) {
        await rm(join(this.root, dir), { recursive: true, force: true });
        await mkdir(join(this.root, dir));
      }
    }
    if (previous === undefined || Number(previous) !== this.idBase)
      await writeFile(marker, String(this.idBase));
  }

  layerPath(digest: string): string {
    return join(this.root, 'layers', digest);
  }

  /** The layer's tar as the image had it; absent for layers unpacked before tars were kept. */
  layerTarPath(digest: string): string {
    return join(this.root, 'layer-tars', `${digest}.tar`);
  }

  /** The image, unpacked; downloads it (`image.open`) only when this host has not got it yet. */
  prepare(image: ImageSource): Promise<PreparedImage> {
    let pending = this.inflight.get(image.id);
    if (!pending) {
      pending = this.load(image).finally(() => this.inflight.delete(image.id));
      this.inflight.set(image.id, pending);
    }
    return pending;
  }

  private async load(image: ImageSource): Promise<PreparedImage> {
    const file = join(this.root, 'images', `${image.id}.json`);
    const cached = await readFile(file, 'utf8').then(
      (text) => JSON.parse(text) as PreparedImage,
      () => undefined,
    );
    if (cached && (await this.haveLayers(cached.layers))) return cached;
    if (image.containerFormat !== 'docker') {
      throw new DriverError(
        `Image ${image.id} has container_format ${image.containerFormat}; the container driver boots docker images.`,
      );
    }
    const staging = join(this.root, 'tmp', randomUUID());
    await mkdir(staging);
    try {
      await untar(await image.open(), staging);
      const prepared = await this.unpack(image.id, staging);
      await writeFile(`${file}.tmp`, JSON.stringify(prepared));
      await rename(`${file}.tmp`, file);
      return prepared;
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  private async haveLayers(layers: string[]): Promise<boolean> {
    for (const digest of layers) {
      if (!(await stat(this.layerPath(digest)).catch(() => undefined))) return false;
    }
    return true;
  }

  private async unpack(imageId: string, staging: string): Promise<PreparedImage> {
    const { config: imageConfig, layers: layerFiles } = await readArchive(imageId, staging);
    const layers: string[] = [];
    for (const layer of layerFiles) {
      // A gzip layer is decompressed first: layers are keyed by the digest of their tar (the diff id).
      const tarFile = await plainTar(layer, join(this.root, 'tmp'));
      try {
        const digest = await sha256File(tarFile);
        layers.push(digest);
        if (!(await stat(this.layerPath(digest)).catch(() => undefined)))
          await this.unpackLayer(tarFile, digest);
        if (!(await stat(this.layerTarPath(digest)).catch(() => undefined)))
          await rename(tarFile, this.layerTarPath(digest));
      } finally {
        if (tarFile !== layer) await rm(tarFile, { force: true });
      }
    }
    const { Entrypoint, Cmd, Env, WorkingDir, User } = imageConfig.config ?? {};
    return { imageId, layers, config: { Entrypoint, Cmd, Env, WorkingDir, User } };
  }

  private async unpackLayer(tarFile: string, digest: string): Promise<void> {
    if (!HEX.test(digest)) throw new DriverError(`Bad layer digest ${digest}.`);
    const target = join(this.root, 'tmp', `layer-${digest}-${randomUUID()}`);
    await mkdir(target);
    try {
      await mustRun('tar', ['-x', '-p', '--numeric-owner', '-f', tarFile, '-C', target]);
      await convertWhiteouts(target);
      if (this.idBase > 0) await shiftOwners(target, this.idBase);
      await rename(target, this.layerPath(digest)).catch(async (error: NodeJS.ErrnoException) => {
        // Another image unpacked the same layer meanwhile: theirs is as good.
        if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
      });
    } finally {
      await rm(target, { recursive: true, force: true });
    }
  }
}

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

interface ArchiveContents {
  config: { config?: ImageRuntimeConfig };
  /** The layer files in the staging dir, bottom first: tars, or gzip-compressed tars. */
  layers: string[];
}

/**
 * The image config and layer files of an unpacked archive: a `docker save` archive (manifest.json) or an
 * OCI image layout (oci-layout, index.json, blobs/<alg>/<hex>), whose index may point at a nested index
 * (the linux/amd64 manifest of it, else the first).
 */
export async function readArchive(imageId: string, staging: string): Promise<ArchiveContents> {
  const manifestText = await readFile(join(staging, 'manifest.json'), 'utf8').catch(() => undefined);
  if (manifestText !== undefined) {
    const [manifest] = JSON.parse(manifestText) as { Config: string; Layers: string[] }[];
    if (!manifest?.Config || !Array.isArray(manifest.Layers) || manifest.Layers.length === 0) {
      throw new DriverError(`Image ${imageId} has no layers in its manifest.json.`);
    }
    return {
      config: JSON.parse(
        await readFile(inside(staging, manifest.Config), 'utf8'),
      ) as ArchiveContents['config'],
      layers: manifest.Layers.map((layer) => inside(staging, layer)),
    };
  }
  const indexText = await readFile(join(staging, 'index.json'), 'utf8').catch(() => undefined);
  if (indexText === undefined || !existsSync(join(staging, 'oci-layout'))) {
    throw new DriverError(
      `Image ${imageId} is neither a docker save archive (manifest.json) nor an OCI image layout (index.json).`,
    );
  }
  type Descriptor = {
    mediaType?: string;
    digest?: string;
    platform?: { os?: string; architecture?: string };
  };
  const blob = (descriptor: Descriptor | undefined): string => {
    const match = /^(sha256|sha512):([0-9a-f]{64,128})$/.exec(descriptor?.digest ?? '');
    if (!match) throw new DriverError(`Image ${imageId} has a bad digest in its OCI layout.`);
    return inside(staging, join('blobs', match[1], match[2]));
  };
  const json = async <T>(descriptor: Descriptor | undefined): Promise<T> => {
    try {
      return JSON.parse(await readFile(blob(descriptor), 'utf8')) as T;
    } catch (error) {
      if (error instanceof DriverError) throw error;
      throw new DriverError(`Image ${imageId}: blob ${descriptor?.digest} is missing or not JSON.`);
    }
  };
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  let index = JSON.parse(indexText) as { manifests?: Descriptor[] };
  for (let depth = 0; ; depth++) {
    const manifests = index.manifests ?? [];
    const chosen =
      manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === arch) ?? manifests[0];
    if (!chosen) throw new DriverError(`Image ${imageId} has no manifest in its OCI index.json.`);
    if ((chosen.mediaType === OCI_INDEX || chosen.mediaType === DOCKER_LIST) && depth < 4) {
      index = await json<typeof index>(chosen);
      continue;
    }
    const manifest = await json<{ config?: Descriptor; layers?: Descriptor[] }>(chosen);
    if (!manifest.config || !Array.isArray(manifest.layers) || manifest.layers.length === 0) {
      throw new DriverError(`Image ${imageId} has no layers in its OCI manifest.`);
    }
    for (const layer of manifest.layers) {
      if (/zstd/.test(layer.mediaType ?? '')) {
        throw new DriverError(`Image ${imageId} has a zstd layer; gzip and plain tar layers are supported.`);
      }
    }
    return {
      config: await json<ArchiveContents['config']>(manifest.config),
      layers: manifest.layers.map(blob),
    };
  }
}

/** The layer as a plain tar: itself, or (gzip-compressed) a decompressed copy in `scratch`. */
async function plainTar(file: string, scratch: string): Promise<string> {
  const handle = await open(file, 'r');
  const magic = Buffer.alloc(2);
  try {
    await handle.read(magic, 0, 2, 0);
  } finally {
    await handle.close();
  }
  if (magic[0] !== 0x1f || magic[1] !== 0x8b) return file;
  const out = join(scratch, `gunzip-${randomUUID()}.tar`);
  try {
    await pipeline(createReadStream(file), createGunzip(), createWriteStream(out));
  } catch (error) {
    await rm(out, { force: true });
    throw new DriverError(`A layer of the image is not valid gzip: ${(error as Error).message}`);
  }
  return out;
}

/** Docker's `.wh.<name>` become 0/0 character devices and `.wh..wh..opq` an opaque directory, as overlayfs wants. */
export async function convertWhiteouts(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.name === OPAQUE) {
      await unlink(path);
      await mustRun('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', dir]);
    } else if (entry.name.startsWith(WHITEOUT)) {
      await unlink(path);
      const hidden = join(dir, entry.name.slice(WHITEOUT.length));
      await rm(hidden, { recursive: true, force: true });
      await mustRun('mknod', [hidden, 'c', '0', '0']);
    } else if (entry.isDirectory()) {
      await convertWhiteouts(path);
    }
  }
}

/** Adds `base` to the owner and group of everything under `dir` (setuid and setgid bits kept). */
export async function shiftOwners(dir: string, base: number): Promise<void> {
  const shift = async (path: string) => {
    const info = await lstat(path);
    await lchown(path, info.uid + base, info.gid + base);
    // chown clears the setuid and setgid bits: put them back.
    if (!info.isSymbolicLink() && info.mode & 0o6000) await chmod(path, info.mode & 0o7777);
  };
  await shift(dir);
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    await shift(join(entry.parentPath, entry.name));
  }
}

function inside(root: string, relative: string): string {
  const path = resolve(root, relative);
  if (!path.startsWith(root + sep)) throw new DriverError(`Path ${relative} leaves the image archive.`);
  return path;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** Unpacks a tar stream into `dir` with GNU tar (which refuses members outside it). */
async function untar(stream: Readable, dir: string): Promise<void> {
  const child = spawn('tar', ['-x', '-f', '-', '-C', dir, '--no-same-owner'], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  let sourceError: Error | undefined;
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number>((done) => {
    child.on('error', () => done(127));
    child.on('close', (code) => done(code ?? 1));
  });
  stream.on('error', (error) => {
    sourceError = error;
    child.kill();
  });
  // tar stops reading at the archive's end marker, before the padding after it: not an error.
  child.stdin.on('error', () => undefined);
  stream.pipe(child.stdin);
  const code = await exited;
  stream.unpipe(child.stdin);
  stream.destroy();
  if (sourceError) {
    throw new DriverError(`Could not read the image data: ${sourceError.message}`, { cause: sourceError });
  }
  if (code !== 0) throw new DriverError(`The image is not a tar archive: ${stderr.trim().slice(0, 300)}`);
}
