import { lstat, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { mustRun, runCommand } from './host-commands';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

export interface LayerTarOptions {
  /** Subtracted from every owner and group at or above it: the user namespace base the layer was made under. */
  idBase?: number;
  /** Scratch space for the file lists and the whiteout markers; removed afterwards. */
  scratch: string;
  /** Relative paths left out when they are empty directories (mount points the runtime made). */
  skipEmptyDirs?: readonly string[];
}

/**
 * Writes `dir`, a layer in overlayfs form (an upper dir, or an unpacked layer), as a Docker/OCI layer tar at
 * `out`: overlayfs whiteouts (0/0 character devices) become `.wh.<name>` files, opaque directories
 * (`trusted.overlay.opaque=y`) get a `.wh..wh..opq` entry, owners are shifted back by `idBase`. Hard links
 * stay hard links; extended attributes are not carried.
 */
export async function writeLayerTar(dir: string, out: string, options: LayerTarOptions): Promise<void> {
  const base = options.idBase ?? 0;
  const skip = new Set(options.skipEmptyDirs ?? []);
  const members: string[] = [];
  const markers: string[] = [];
  const owners = new Set<number>();
  const groups = new Set<number>();
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  for (const entry of entries) {
    const path = relative(dir, join(entry.parentPath, entry.name));
    const info = await lstat(join(dir, path));
    if (info.isCharacterDevice() && info.rdev === 0) {
      markers.push(join(dirname(path), `${WHITEOUT}${entry.name}`));
      continue;
    }
    if (skip.has(path) && info.isDirectory() && (await readdir(join(dir, path))).length === 0) continue;
    members.push(path);
    owners.add(info.uid);
    groups.add(info.gid);
  }
  for (const opaque of await opaqueDirs(dir)) markers.push(join(opaque, OPAQUE));
  members.sort();
  markers.sort();

  const extras = join(options.scratch, 'markers');
  await mkdir(extras, { recursive: true });
  try {
    const list = join(options.scratch, 'members');
    await writeFile(list, members.map((m) => `${m}\0`).join(''));
    const shift = (ids: Set<number>) =>
      [...ids]
        .filter((id) => base > 0 && id >= base)
        .map((id) => `+${id} +${id - base}\n`)
        .join('');
    await writeFile(join(options.scratch, 'owner-map'), shift(owners));
    await writeFile(join(options.scratch, 'group-map'), shift(groups));
    await mustRun('tar', [
      '-c',
      '-f',
      out,
      '--numeric-owner',
      '--format=pax',
      '--no-recursion',
      `--owner-map=${join(options.scratch, 'owner-map')}`,
      `--group-map=${join(options.scratch, 'group-map')}`,
      '-C',
      dir,
      '--null',
      '-T',
      list,
    ]);
    if (markers.length > 0) {
      for (const marker of markers) {
        await mkdir(join(extras, dirname(marker)), { recursive: true });
        await writeFile(join(extras, marker), '');
      }
      const markerList = join(options.scratch, 'markers-list');
      await writeFile(markerList, markers.map((m) => `${m}\0`).join(''));
      await mustRun('tar', [
        '-r',
        '-f',
        out,
        '--numeric-owner',
        '--format=pax',
        '--no-recursion',
        '--owner=0',
        '--group=0',
        '--mode=0644',
        '--mtime=@0',
        '-C',
        extras,
        '--null',
        '-T',
        markerList,
      ]);
    }
  } finally {
    await rm(extras, { recursive: true, force: true });
  }
}

/** The directories under `dir` (relative, `.` for itself) that overlayfs marks opaque. */
async function opaqueDirs(dir: string): Promise<string[]> {
  // getfattr exits 1 when some files lack the attribute: only its output counts.
  const result = await runCommand('getfattr', [
    '-R',
    '-P',
    '--absolute-names',
    '-n',
    'trusted.overlay.opaque',
    '-e',
    'text',
    dir,
  ]);
  const dirs: string[] = [];
  let file: string | undefined;
  for (const line of result.stdout.split('\n')) {
    if (line.startsWith('# file: ')) file = unescapeGetfattr(line.slice('# file: '.length));
    else if (file !== undefined && line === 'trusted.overlay.opaque="y"')
      dirs.push(relative(dir, file) || '.');
  }
  return dirs;
}

/** getfattr writes a file name's backslashes, control characters and the like as `\ooo` octal escapes. */
function unescapeGetfattr(name: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(name, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString())) {
      bytes.push(Number.parseInt(raw.subarray(i + 1, i + 4).toString(), 8));
      i += 3;
    } else bytes.push(raw[i]);
  }
  return Buffer.from(bytes).toString('utf8');
}
