import { afterAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DriverError } from '../driver';
import { readArchive } from './image-store';

const work = mkdtempSync(join(tmpdir(), 'novum-image-store-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
/** An OCI layout dir with the blobs given; returns the dir and a blob writer. */
function layout(): { dir: string; blob: (content: string) => string } {
  const dir = join(work, `layout-${n++}`);
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const blob = (content: string) => {
    const hex = createHash('sha256').update(content).digest('hex');
    writeFileSync(join(dir, 'blobs', 'sha256', hex), content);
    return `sha256:${hex}`;
  };
  return { dir, blob };
}
const manifestOf = (blob: (c: string) => string, cmd: string, layers: string[]) =>
  JSON.stringify({
    schemaVersion: 2,
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: blob(JSON.stringify({ config: { Cmd: [cmd] } })),
    },
    layers: layers.map((content) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      digest: blob(content),
    })),
  });

describe('readArchive', () => {
  it('reads an OCI layout through a nested index, choosing the linux manifest of this architecture', async () => {
    const { dir, blob } = layout();
    const arch = process.arch === 'x64' ? 'amd64' : process.arch;
    const other = blob(manifestOf(blob, 'other', ['x']));
    const mine = blob(manifestOf(blob, 'mine', ['bottom', 'top']));
    const nested = blob(
      JSON.stringify({
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: other,
            platform: { os: 'linux', architecture: 'riscv' },
          },
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: mine,
            platform: { os: 'linux', architecture: arch },
          },
        ],
      }),
    );
    writeFileSync(
      join(dir, 'index.json'),
      JSON.stringify({
        manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: nested }],
      }),
    );
    const contents = await readArchive('img', dir);
    expect(contents.config.config?.Cmd).toEqual(['mine']);
    const hex = (s: string) => createHash('sha256').update(s).digest('hex');
    expect(contents.layers).toEqual([
      join(dir, 'blobs', 'sha256', hex('bottom')),
      join(dir, 'blobs', 'sha256', hex('top')),
    ]);
  });

  it('reads a docker save archive by its manifest.json', async () => {
    const dir = join(work, 'docker');
    mkdirSync(join(dir, 'l1'), { recursive: true });
    writeFileSync(join(dir, 'c.json'), JSON.stringify({ config: { Entrypoint: ['/init'] } }));
    writeFileSync(
      join(dir, 'manifest.json'),
      JSON.stringify([{ Config: 'c.json', Layers: ['l1/layer.tar'] }]),
    );
    const contents = await readArchive('img', dir);
    expect(contents.config.config?.Entrypoint).toEqual(['/init']);
    expect(contents.layers).toEqual([join(dir, 'l1', 'layer.tar')]);
  });

  it('refuses digests that leave the layout, missing blobs, zstd layers and archives of neither form', async () => {
    const bad = layout();
    writeFileSync(
      join(bad.dir, 'index.json'),
      JSON.stringify({ manifests: [{ digest: 'sha256:../../etc/passwd' }] }),
    );
    await expect(readArchive('img', bad.dir)).rejects.toThrow(/bad digest/);

    const missing = layout();
    writeFileSync(
      join(missing.dir, 'index.json'),
      JSON.stringify({ manifests: [{ digest: `sha256:${'a'.repeat(64)}` }] }),
    );
    await expect(readArchive('img', missing.dir)).rejects.toThrow(/missing or not JSON/);

    const zstd = layout();
    const manifest = zstd.blob(
      JSON.stringify({
        config: { digest: zstd.blob('{}') },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: zstd.blob('z') }],
      }),
    );
    writeFileSync(join(zstd.dir, 'index.json'), JSON.stringify({ manifests: [{ digest: manifest }] }));
    await expect(readArchive('img', zstd.dir)).rejects.toThrow(/zstd/);

    const neither = join(work, 'neither');
    mkdirSync(neither);
    await expect(readArchive('img', neither)).rejects.toThrow(DriverError);
    await expect(readArchive('img', neither)).rejects.toThrow(/neither a docker save archive/);
  });
});
