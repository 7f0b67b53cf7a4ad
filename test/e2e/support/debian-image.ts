/**
 * The Debian cloud image of ops/images/build-vm-debian.sh for the kvm tests: built once per version of the
 * script (minutes: debootstrap and about 120 MB from the Debian mirror) and kept in /var/cache/novum/images,
 * so that later runs, and CI after its first, start at once.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { missingVmPrerequisites } from '../../../libs/virt/testing/vm-image';

export const DEBIAN_IMAGE_BUILDER = resolve(__dirname, '../../../ops/images/build-vm-debian.sh');

/** Where built images are kept (NOVUM_IMAGE_CACHE overrides it). */
export const IMAGE_CACHE = process.env.NOVUM_IMAGE_CACHE ?? '/var/cache/novum/images';

/** The tools the builder needs besides the tiny image's, by the Debian package that has them. */
const TOOLS: Record<string, string> = {
  debootstrap: 'debootstrap',
  'mkfs.ext4': 'e2fsprogs',
  python3: 'python3',
  ssh: 'openssh-client',
};

/** Why the Debian image tests cannot run here, or undefined when they can. */
export function missingDebianPrerequisites(): string | undefined {
  const missing = missingVmPrerequisites();
  if (missing) return missing;
  for (const [tool, pkg] of Object.entries(TOOLS)) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed (apt-get install ${pkg})`;
    }
  }
  return undefined;
}

/** The cached image's path for this version of the builder. */
export function debianImagePath(): string {
  const key = createHash('sha256').update(readFileSync(DEBIAN_IMAGE_BUILDER)).digest('hex').slice(0, 16);
  return join(IMAGE_CACHE, `debian-12-${key}.qcow2`);
}

/** The path of the built qcow2, building it first when this version of the builder has not been built. */
export async function debianCloudImage(): Promise<string> {
  const image = debianImagePath();
  if (existsSync(image)) return image;
  mkdirSync(IMAGE_CACHE, { recursive: true });
  const partial = `${image}.${process.pid}`;
  try {
    await promisify(execFile)(DEBIAN_IMAGE_BUILDER, [partial], { maxBuffer: 16 * 1024 * 1024 });
    renameSync(partial, image);
  } finally {
    rmSync(partial, { force: true });
  }
  return image;
}
