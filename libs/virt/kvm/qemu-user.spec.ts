import { afterAll, describe, expect, it } from '@jest/globals';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lookupUser, prepareGuestDir, runAsArgs } from './qemu-user';

const scratch = mkdtempSync(join(tmpdir(), 'novum-qemu-user-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('lookupUser', () => {
  const passwd = join(scratch, 'passwd');
  writeFileSync(
    passwd,
    [
      'root:x:0:0:root:/root:/bin/bash',
      'novum-qemu:x:998:997:Novum QEMU:/nonexistent:/usr/sbin/nologin',
      'broken:x:abc:1::/:/bin/false',
      '',
    ].join('\n'),
  );

  it('finds an account by name with its uid and gid', async () => {
    expect(await lookupUser('novum-qemu', passwd)).toEqual({ name: 'novum-qemu', uid: 998, gid: 997 });
    expect(await lookupUser('root', passwd)).toEqual({ name: 'root', uid: 0, gid: 0 });
  });

  it('knows no account that is missing or malformed, nor a prefix of a name', async () => {
    expect(await lookupUser('nobody', passwd)).toBeUndefined();
    expect(await lookupUser('broken', passwd)).toBeUndefined();
    expect(await lookupUser('novum', passwd)).toBeUndefined();
  });
});

describe('runAsArgs', () => {
  it('spells the drop as -runas before QEMU 9.1 and as -run-with user= from 9.1', () => {
    expect(runAsArgs('novum-qemu', '7.2.22')).toEqual(['-runas', 'novum-qemu']);
    expect(runAsArgs('novum-qemu', '9.0.2')).toEqual(['-runas', 'novum-qemu']);
    expect(runAsArgs('novum-qemu', '9.1.0')).toEqual(['-run-with', 'user=novum-qemu']);
    expect(runAsArgs('novum-qemu', '10.0')).toEqual(['-run-with', 'user=novum-qemu']);
  });
});

describe('prepareGuestDir', () => {
  const asRoot = process.getuid?.() === 0 ? it : it.skip;

  asRoot('gives the guest directory to the user and lets it through the directories above', async () => {
    const top = join(scratch, 'data');
    const dir = join(top, 'kvm', 'instances', 'guest');
    mkdirSync(dir, { recursive: true });
    chmodSync(top, 0o700);
    chmodSync(join(top, 'kvm'), 0o750);
    chmodSync(join(top, 'kvm', 'instances'), 0o700);
    await prepareGuestDir(dir, { name: 'guest', uid: 4242, gid: 4343 });
    expect(statSync(dir)).toMatchObject({ uid: 4242, gid: 4343 });
    expect(statSync(top).mode & 0o777).toBe(0o701);
    expect(statSync(join(top, 'kvm')).mode & 0o777).toBe(0o751);
    // Only the search bit is added: nothing becomes readable or writable for others.
    expect(statSync(join(top, 'kvm', 'instances')).mode & 0o777).toBe(0o701);
  });
});
