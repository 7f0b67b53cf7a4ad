import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** What `qemu-img info` finds in a disk image's header. */
export interface DiskInfo {
  format: string;
  virtualSize: number | null;
  backingFile?: string;
  dataFile?: string;
  /** VMDK: the descriptor's create type, and extent files other than the image itself. */
  vmdkCreateType?: string;
  foreignExtents?: string[];
}

/** The inspection tool itself is missing: the host's fault, not the data's. */
export class InspectorUnavailableError extends Error {}

/** Reads a disk image's header without trusting the file's name or the image's metadata. */
export abstract class DiskInspector {
  abstract inspect(path: string): Promise<DiskInfo>;
}

/**
 * `qemu-img info --output=json`: probes the format from the data itself, never opens a backing file, and
 * runs with a time and memory bound since the input is hostile.
 */
export class QemuImgInspector extends DiskInspector {
  async inspect(path: string): Promise<DiskInfo> {
    let stdout: string;
    try {
      ({ stdout } = await run(
        'prlimit',
        ['--as=1073741824', '--cpu=30', '--', 'qemu-img', 'info', '--output=json', path],
        { timeout: 60_000, maxBuffer: 1024 * 1024 },
      ));
    } catch (error) {
      const { code, stderr } = error as { code?: unknown; stderr?: string };
      if (code === 'ENOENT' || /failed to execute/.test(stderr ?? ''))
        throw new InspectorUnavailableError('qemu-img (Debian package qemu-utils) is not installed');
      throw error;
    }
    const info = JSON.parse(stdout) as {
      format: string;
      'virtual-size'?: number;
      'backing-filename'?: string;
      'full-backing-filename'?: string;
      'format-specific'?: {
        data?: { 'data-file'?: string; 'create-type'?: string; extents?: { filename?: string }[] };
      };
    };
    const specific = info['format-specific']?.data;
    return {
      format: info.format,
      virtualSize: typeof info['virtual-size'] === 'number' ? info['virtual-size'] : null,
      backingFile: info['backing-filename'] ?? info['full-backing-filename'],
      dataFile: specific?.['data-file'],
      vmdkCreateType: specific?.['create-type'],
      foreignExtents: (specific?.extents ?? [])
        .map((extent) => extent.filename ?? '')
        .filter((filename) => filename !== path),
    };
  }
}

/** VMDK create types that keep all data in the one file (Glance's vmdk_allowed_types). */
const VMDK_TYPES = ['monolithicSparse', 'streamOptimized'];

/** The formats `qemu-img` may report for each Glance disk format. */
const QEMU_FORMATS: Record<string, string[] | undefined> = {
  raw: ['raw'],
  qcow2: ['qcow2'],
  vmdk: ['vmdk'],
  vdi: ['vdi'],
  vhd: ['vpc'],
  vhdx: ['vhdx'],
  // qemu has no ISO 9660 driver: an ISO probes as raw.
  iso: ['raw'],
  ami: ['raw'],
  ari: ['raw'],
  aki: ['raw'],
  // ploop images are directories of files; qemu-img cannot tell them apart.
  ploop: undefined,
};

/**
 * Why a disk image must be refused, or undefined when it is acceptable: an image whose header names a
 * backing file or an external data file would make a compute host read its own files into a guest, and one
 * whose header contradicts its disk_format would be opened by the hypervisor as something else.
 */
export function diskImageProblem(diskFormat: string, info: DiskInfo): string | undefined {
  if (info.backingFile) return 'Image data names a backing file, which is not allowed.';
  if (info.dataFile) return 'Image data names an external data file, which is not allowed.';
  if (info.foreignExtents?.length)
    return 'Image data names other files as its extents, which is not allowed.';
  const expected = QEMU_FORMATS[diskFormat];
  if (expected && !expected.includes(info.format)) {
    return `Image data is in ${info.format} format, which does not match disk_format '${diskFormat}'.`;
  }
  if (info.format === 'vmdk' && !VMDK_TYPES.includes(info.vmdkCreateType ?? ''))
    return `VMDK images of create type '${info.vmdkCreateType}' are not allowed; use monolithicSparse or streamOptimized.`;
  return undefined;
}
