import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { CONFIG_DRIVE_LABEL } from '../config-drive';
import { DriverError } from '../driver';
import { runCommand } from '../container/host-commands';

/** The ISO 9660 tools tried in turn; xorriso speaks genisoimage's options with `-as genisoimage`. */
const ISO_TOOLS: readonly (readonly string[])[] = [['genisoimage'], ['xorriso', '-as', 'genisoimage']];

/**
 * Writes `files` (paths inside the drive) as an ISO 9660 image with Rock Ridge and Joliet names and the
 * volume label `config-2`, with the options Nova's configdrive.py gives genisoimage. Written beside `out`
 * and renamed into place, so that a guest never sees half an image.
 */
export async function writeConfigDriveIso(files: Map<string, Buffer>, out: string): Promise<void> {
  const staging = `${out}.${randomUUID()}`;
  const tree = `${staging}.d`;
  try {
    for (const [path, content] of files) {
      const target = normalize(join(tree, path));
      if (!target.startsWith(tree + '/'))
        throw new DriverError(`Config drive path ${path} leaves the drive.`);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, content);
    }
    const options = [
      '-o',
      staging,
      '-ldots',
      '-allow-lowercase',
      '-allow-multidot',
      '-l',
      '-publisher',
      'Novum',
      '-quiet',
      '-J',
      '-r',
      '-V',
      CONFIG_DRIVE_LABEL,
      tree,
    ];
    let failure = '';
    for (const [tool, ...prefix] of ISO_TOOLS) {
      const result = await runCommand(tool, [...prefix, ...options]);
      if (result.code === 0) {
        await rename(staging, out);
        return;
      }
      failure += `${tool} (${result.code}): ${result.stderr.trim().slice(0, 200)}; `;
    }
    throw new DriverError(`Cannot write the config drive: ${failure}install genisoimage or xorriso.`);
  } finally {
    await rm(tree, { recursive: true, force: true });
    await rm(staging, { force: true });
  }
}
