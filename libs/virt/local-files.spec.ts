import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMountPoint, linkTarget, pathExists, readSmallFile, replaceSmallFile } from './local-files';

describe('local files', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'novum-local-files-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('replaces a file whole, leaves nothing beside it, and reads it back; a missing file reads as undefined', () => {
    const file = join(dir, 'guest.json');
    expect(readSmallFile(file)).toBeUndefined();
    expect(pathExists(file)).toBe(false);
    replaceSmallFile(file, '{"a":1}');
    replaceSmallFile(file, '{"b":2}');
    expect(readSmallFile(file)).toBe('{"b":2}');
    expect(pathExists(file)).toBe(true);
    expect(readdirSync(dir)).toEqual(['guest.json']);
  });

  it('reads a link target, and tells a mount point from a directory', () => {
    symlinkSync('../devices/novumbr1', join(dir, 'master'));
    expect(linkTarget(join(dir, 'master'))).toBe('../devices/novumbr1');
    expect(linkTarget(join(dir, 'none'))).toBeUndefined();
    // /proc is a file system of its own on every Linux host; a directory made here is not.
    expect(isMountPoint('/proc')).toBe(true);
    expect(isMountPoint(dir)).toBe(false);
    expect(isMountPoint(join(dir, 'none'))).toBe(false);
  });
});
