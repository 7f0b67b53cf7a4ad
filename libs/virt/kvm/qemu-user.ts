import { chmod, chown, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The unprivileged account a guest's QEMU becomes once it has opened its disks, taps and sockets. */
export interface QemuUser {
  name: string;
  uid: number;
  gid: number;
}

/** The account `name` as the passwd file lists it, or undefined when it has none. */
export async function lookupUser(name: string, passwd = '/etc/passwd'): Promise<QemuUser | undefined> {
  for (const line of (await readFile(passwd, 'utf8')).split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && /^\d+$/.test(uid ?? '') && /^\d+$/.test(gid ?? '')) {
      return { name, uid: Number(uid), gid: Number(gid) };
    }
  }
  return undefined;
}

/**
 * QEMU's arguments to drop to `user` once set up: `-run-with user=` from QEMU 9.1, which deprecated
 * `-runas`, the older spelling.
 */
export function runAsArgs(user: string, qemuVersion: string): string[] {
  const [major = 0, minor = 0] = qemuVersion.split('.').map(Number);
  return major > 9 || (major === 9 && minor >= 1) ? ['-run-with', `user=${user}`] : ['-runas', user];
}

/**
 * Readies a guest's directory for its QEMU once it runs as `user`: the directory becomes the user's (QEMU
 * removes its pidfile and sockets there when it ends, and a suspend's migration writes the state file there),
 * and each directory above it gets the others' search bit where it lacks it (nothing else changes), so that
 * the user reaches it.
 */
export async function prepareGuestDir(dir: string, user: QemuUser): Promise<void> {
  await chown(dir, user.uid, user.gid);
  for (let path = dirname(dir); ; path = dirname(path)) {
    const info = await stat(path);
    if (!(info.mode & 0o001)) await chmod(path, (info.mode & 0o7777) | 0o001);
    if (dirname(path) === path) return;
  }
}
