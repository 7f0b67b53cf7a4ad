/**
 * The tiny bootable test image of ops/images/build-vm-busybox.sh, built once per version of the script and of
 * Debian's kernel package and kept in the temp dir, so that test runs after the first start at once. Test
 * support only: keep it out of the production build.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const VM_IMAGE_BUILDER = resolve(__dirname, '../../../ops/images/build-vm-busybox.sh');

/** Builds (once, then cached under /var/cache/novum-images) the tiny kernel the image can boot instead. */
export const TINY_KERNEL_BUILDER = resolve(__dirname, '../../../ops/images/build-tiny-kernel.sh');

/** What the image's init prints on the serial console. */
export const VM_IMAGE_BANNER = 'NOVUM-GUEST-BOOTED';

/** What the image's boot loader prints on the serial console, within a second of each (re)boot. */
export const VM_IMAGE_BOOTLOADER = 'SYSLINUX';

/** The tools the builder and the kvm driver need, by the Debian package that has them. */
const TOOLS: Record<string, string> = {
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  genisoimage: 'genisoimage',
  busybox: 'busybox-static',
  syslinux: 'syslinux',
  mcopy: 'mtools',
  'mkfs.vfat': 'dosfstools',
  cpio: 'cpio',
};

/** The Debian kernel package the builder unpacks (what linux-image-amd64 depends on), if apt knows it. */
function kernelPackage(): string | undefined {
  try {
    const depends = execFileSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8' });
    return /Depends: (linux-image-\d\S*)/.exec(depends)?.[1];
  } catch {
    return undefined;
  }
}

/** Why the kvm driver's host tests cannot run here, or undefined when they can. */
export function missingVmPrerequisites(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  for (const [tool, pkg] of Object.entries(TOOLS)) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed (apt-get install ${pkg})`;
    }
  }
  if (!existsSync('/usr/lib/syslinux/mbr/mbr.bin'))
    return 'no syslinux MBR (apt-get install syslinux-common)';
  if (!kernelPackage()) return 'apt knows no linux-image-amd64 kernel package (apt-get update)';
  return undefined;
}

/**
 * The path of the built qcow2, building it when this script and kernel have not been built yet. With
 * `kernel: 'tiny'`, the image boots the kernel of build-tiny-kernel.sh (everything built in) instead of
 * Debian's: compiled from linux-source-6.1 on first use (minutes; it needs that package and a compiler),
 * it boots in a fraction of the time under TCG. The tests keep Debian's kernel, so that CI compiles none.
 */
export function vmTestImage(options: { kernel?: 'debian' | 'tiny' } = {}): string {
  const hash = createHash('sha256').update(readFileSync(VM_IMAGE_BUILDER));
  let builderArgs: string[] = [];
  let kernel: string | undefined;
  if (options.kernel === 'tiny') {
    kernel = join(tmpdir(), `novum-tiny-kernel.${process.pid}`);
    // Copies the cached kernel (or builds it first), printing the build's progress to stderr.
    execFileSync(TINY_KERNEL_BUILDER, [kernel], { stdio: ['ignore', 'ignore', 'inherit'] });
    hash.update('tiny').update(readFileSync(kernel));
    builderArgs = ['--kernel', kernel];
  } else {
    hash.update(kernelPackage() ?? '');
  }
  const key = hash.digest('hex').slice(0, 16);
  const image = join(tmpdir(), `novum-vm-busybox-${key}.qcow2`);
  try {
    if (!existsSync(image)) {
      const partial = `${image}.${process.pid}`;
      execFileSync(VM_IMAGE_BUILDER, [...builderArgs, partial], { stdio: 'ignore' });
      renameSync(partial, image);
    }
  } finally {
    if (kernel) rmSync(kernel, { force: true });
  }
  return image;
}
