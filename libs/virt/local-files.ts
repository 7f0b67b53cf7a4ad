import { existsSync, readFileSync, readlinkSync, renameSync, statSync, writeFileSync } from 'node:fs';

/*
 * Small files of this host's own state (a guest's record, ports.json, an OCI runtime's state, /proc and /sys)
 * read and written synchronously. Each fs.promises call is a round trip through libuv's thread pool, and a
 * readFile is four (open, fstat, read, close): ~150-190 µs of CPU for a 600-byte file against 11-15 µs for
 * readFileSync, and ~200 against ~50 µs for a write and rename (measured on this project's 2-core host). A
 * container build made some forty such calls. These files are local and small: the event loop waits less on
 * them than the asynchronous calls cost it.
 */

/** A small file's text; undefined when it cannot be read (missing, or no longer there). */
export function readSmallFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Replaces a small file's content all at once: written beside it, then renamed over it. */
export function replaceSmallFile(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

export function pathExists(path: string): boolean {
  return existsSync(path);
}

/** A symbolic link's target; undefined when the path is not one. */
export function linkTarget(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Whether a file system is mounted at `target`: its device differs from its parent directory's, as
 * mountpoint(1) decides without libmount. Meant for targets that are the root of a mount of their own (a
 * loop device's ext4, an overlay, a cgroup hierarchy), never a bind of the parent's file system. Reading
 * /proc/self/mountinfo instead costs O(mounts) per call, and a host of 100 containers has hundreds.
 */
export function isMountPoint(target: string): boolean {
  try {
    return statSync(target).dev !== statSync(`${target}/..`).dev;
  } catch {
    return false;
  }
}
