import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { FlavorSpec, ImageSource, InstanceSpec, PowerState } from '../index';
import { describeDriverContract } from '../testing/driver-contract';
import { HostNetwork } from '../net/host-network';
import { netnsName } from '../net/names';
import { ContainerDriver, mountedAt, prepareCgroupsForCrun } from './container.driver';

const RUNTIME = process.env.NOVUM_CONTAINER_RUNTIME || 'runc';
const BUILD = join(__dirname, '../../../ops/images/build-busybox.sh');
const CONTROLLERS = ['memory', 'cpu', 'pids', 'freezer', 'cpuacct', 'cpuset', 'devices', 'blkio'];

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  for (const tool of [RUNTIME, 'busybox', 'setfattr']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed (apt-get install runc busybox-static attr)`;
    }
  }
  return undefined;
}

const skip = missing();
if (skip) {
  // ops/test.sh (CI) installs what these need and sets NOVUM_REQUIRE_HOST_TESTS: there a gap fails, never skips.
  describe('ContainerDriver', () => {
    if (process.env.NOVUM_REQUIRE_HOST_TESTS === '1') {
      it('has root, the OCI runtime, busybox and setfattr', () => {
        throw new Error(`the container driver tests cannot run: ${skip}`);
      });
    } else {
      it.skip(`needs root and ${RUNTIME}: ${skip}`, () => undefined);
    }
  });
} else {
  const work = mkdtempSync(join(tmpdir(), 'novum-ctr-'));
  const archive = join(work, 'busybox.tar');
  execFileSync(BUILD, [archive], { stdio: 'ignore' });
  const ociArchive = join(work, 'busybox-oci.tar');
  execFileSync(BUILD, ['--oci', ociArchive], { stdio: 'ignore' });
  const dataDir = join(work, 'data');
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  const busybox = (id = 'c0ffee00-0000-4000-8000-0000000000bb'): ImageSource => ({
    id,
    name: 'busybox',
    diskFormat: 'raw',
    containerFormat: 'docker',
    minDiskGb: 0,
    minRamMb: 0,
    properties: {},
    open: async () => createReadStream(archive),
  });
  const make = () => new ContainerDriver({ dataDir, runtime: RUNTIME, softRebootSeconds: 5 });
  /** The same driver as another host has it: its own data dir (layer cache, instances, runtime state). */
  const peerDataDir = join(work, 'peer');
  const makePeer = () =>
    new ContainerDriver({ dataDir: peerDataDir, runtime: RUNTIME, softRebootSeconds: 5 });

  describe('ContainerDriver contract', () => {
    describeDriverContract(make, { image: () => busybox(), timeoutMs: 30_000, peer: makePeer });
  });

  describe('ContainerDriver on the host', () => {
    const driver = make();
    const flavor: FlavorSpec = {
      vcpus: 2,
      memoryMb: 96,
      rootGb: 1,
      ephemeralGb: 0,
      swapMb: 0,
      extraSpecs: {},
    };
    const made: string[] = [];
    const spec = (overrides: Partial<InstanceSpec> = {}): InstanceSpec => {
      const uuid = randomUUID();
      made.push(uuid);
      return {
        uuid,
        name: `instance-${uuid.slice(0, 8)}`,
        hostname: 'host-check',
        projectId: 'p',
        userId: 'u',
        flavor,
        imageRef: busybox().id,
        imageProperties: {},
        metadata: {},
        configDrive: false,
        ...overrides,
      };
    };
    const cgroup = (controller: string, uuid: string, file?: string) =>
      join('/sys/fs/cgroup', controller, 'novum', uuid, ...(file ? [file] : []));
    const read = (path: string) => readFileSync(path, 'utf8').trim();
    const initPid = (uuid: string) =>
      (
        JSON.parse(
          execFileSync(
            RUNTIME,
            ['--root', join(dataDir, 'containers', 'runtime'), 'state', `novum-${uuid}`],
            {
              encoding: 'utf8',
            },
          ),
        ) as { pid: number }
      ).pid;
    /** Gone, or a zombie waiting for a host init that does not reap (it holds nothing any more). */
    const processGone = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].startsWith('Z');
      } catch {
        return true;
      }
    };
    const mounted = (uuid: string) => readFileSync('/proc/self/mountinfo', 'utf8').includes(uuid);
    /** Loop devices whose backing file is under the data dir. */
    const loops = () =>
      execFileSync('losetup', ['-a'], { encoding: 'utf8' })
        .split('\n')
        .filter((line) => line.includes(dataDir));
    /** Runs a shell command inside the container, as root of its user namespace. */
    const exec = (uuid: string, script: string) => {
      try {
        const output = execFileSync(
          RUNTIME,
          ['--root', join(dataDir, 'containers', 'runtime'), 'exec', `novum-${uuid}`, 'sh', '-c', script],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
        );
        return { code: 0, output };
      } catch (error) {
        const failed = error as { status: number; stdout: string; stderr: string };
        return { code: failed.status, output: `${failed.stdout}${failed.stderr}` };
      }
    };
    const waitFor = async (check: () => boolean | Promise<boolean>, ms = 5_000) => {
      const deadline = Date.now() + ms;
      while (!(await check()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      return check();
    };

    beforeAll(() => driver.init('container-host'));
    afterAll(async () => {
      for (const uuid of made) await driver.destroy({ uuid }, []);
      await driver.close();
    }, 30_000);

    it('puts the flavour limits in the cgroup /novum/<uuid>', async () => {
      const instance = spec({
        flavor: { ...flavor, extraSpecs: { 'quota:cpu_period': '50000', 'quota:cpu_shares': '512' } },
      });
      await driver.spawn(instance, busybox(), []);
      const plain = spec();
      await driver.spawn(plain, busybox(), []);

      expect(read(cgroup('memory', plain.uuid, 'memory.limit_in_bytes'))).toBe(String(96 * 1024 * 1024));
      if (existsSync(cgroup('memory', plain.uuid, 'memory.memsw.limit_in_bytes'))) {
        expect(read(cgroup('memory', plain.uuid, 'memory.memsw.limit_in_bytes'))).toBe(
          String(96 * 1024 * 1024),
        );
      }
      expect(read(cgroup('cpu', plain.uuid, 'cpu.cfs_period_us'))).toBe('100000');
      expect(read(cgroup('cpu', plain.uuid, 'cpu.cfs_quota_us'))).toBe('200000');
      expect(read(cgroup('pids', plain.uuid, 'pids.max'))).toBe('1024');
      expect(read(cgroup('cpu', instance.uuid, 'cpu.cfs_period_us'))).toBe('50000');
      expect(read(cgroup('cpu', instance.uuid, 'cpu.cfs_quota_us'))).toBe('100000');
      expect(read(cgroup('cpu', instance.uuid, 'cpu.shares'))).toBe('512');
      const pid = initPid(plain.uuid);
      expect(read(cgroup('memory', plain.uuid, 'cgroup.procs')).split('\n')).toContain(String(pid));
    }, 30_000);

    it('runs the image command as pid 1 in its own namespaces with the server hostname', async () => {
      const instance = spec({ hostname: 'ctr-hello' });
      await driver.spawn(instance, busybox(), []);
      expect(
        await waitFor(async () => (await driver.getConsoleOutput(instance)).includes('hello from ctr-hello')),
      ).toBe(true);
      const pid = initPid(instance.uuid);
      for (const ns of ['pid', 'mnt', 'uts', 'ipc', 'net']) {
        expect(execFileSync('readlink', [`/proc/${pid}/ns/${ns}`], { encoding: 'utf8' })).not.toBe(
          execFileSync('readlink', [`/proc/self/ns/${ns}`], { encoding: 'utf8' }),
        );
      }
      const status = read(`/proc/${pid}/status`);
      expect(status).toMatch(/NoNewPrivs:\s+1/);
      // Docker's default set: no CAP_SYS_ADMIN (bit 21), CAP_CHOWN (bit 0) kept.
      const capEff = BigInt(`0x${/CapEff:\s+([0-9a-f]+)/.exec(status)![1]}`);
      expect(capEff & (1n << 21n)).toBe(0n);
      expect(capEff & 1n).toBe(1n);

      await driver.powerOff(instance, { timeoutSeconds: 5 });
      expect(await driver.getConsoleOutput(instance)).toContain('bye');
    }, 30_000);

    it('assembles the rootfs from shared layers with whiteouts and opaque directories applied', async () => {
      const one = spec();
      const two = spec();
      await driver.spawn(one, busybox(), []);
      await driver.spawn(two, busybox(), []);
      const rootfs = driver.rootfsPath(one.uuid);
      expect(existsSync(join(rootfs, 'bin/busybox'))).toBe(true);
      expect(existsSync(join(rootfs, 'etc/novum-release'))).toBe(true);
      expect(existsSync(join(rootfs, 'etc/novum-removed'))).toBe(false);
      expect(readdirSync(join(rootfs, 'srv'))).toEqual(['new']);
      expect(readdirSync(join(dataDir, 'containers', 'layers'))).toHaveLength(2);
    }, 30_000);

    it('boots an OCI image layout (gzip and plain layers), sharing the layers of the same docker image', async () => {
      const instance = spec({ hostname: 'ctr-oci' });
      const oci: ImageSource = { ...busybox(randomUUID()), open: async () => createReadStream(ociArchive) };
      await driver.spawn(instance, oci, []);
      expect(
        await waitFor(async () => (await driver.getConsoleOutput(instance)).includes('hello from ctr-oci')),
      ).toBe(true);
      const rootfs = driver.rootfsPath(instance.uuid);
      expect(existsSync(join(rootfs, 'etc/novum-release'))).toBe(true);
      expect(existsSync(join(rootfs, 'etc/novum-removed'))).toBe(false);
      expect(readdirSync(join(rootfs, 'srv'))).toEqual(['new']);
      expect(exec(instance.uuid, 'readlink /proc/1/cwd').output).toBe('/root\n');
      // The gzip layer was keyed by its uncompressed digest: the docker archive's layers serve both images.
      expect(readdirSync(join(dataDir, 'containers', 'layers'))).toHaveLength(2);
      expect(readdirSync(join(dataDir, 'containers', 'tmp'))).toEqual([]);
    }, 30_000);

    it('pauses and suspends with the freezer, and reports an init that ended as SHUTDOWN', async () => {
      const instance = spec();
      await driver.spawn(instance, busybox(), []);
      const freezer = cgroup('freezer', instance.uuid, 'freezer.state');
      // The guest's record is written anew (a new file renamed over it) only when it changes.
      const record = join(dataDir, 'containers', 'instances', instance.uuid, 'guest.json');
      const version = () => statSync(record, { bigint: true }).ctimeNs;
      const written = version();
      await driver.pause(instance);
      expect(read(freezer)).toBe('FROZEN');
      await driver.unpause(instance);
      expect(read(freezer)).toBe('THAWED');
      expect(version()).toBe(written);
      await driver.suspend(instance);
      expect(read(freezer)).toBe('FROZEN');
      expect(version()).not.toBe(written);
      expect(JSON.parse(readFileSync(record, 'utf8')).suspended).toBe(true);
      expect((await driver.getInfo(instance)).state).toBe(PowerState.SUSPENDED);
      await driver.resume(instance, []);
      expect(read(freezer)).toBe('THAWED');

      process.kill(initPid(instance.uuid), 'SIGKILL');
      expect(await waitFor(async () => (await driver.getInfo(instance)).state === PowerState.SHUTDOWN)).toBe(
        true,
      );
      await driver.powerOn(instance, []);
      expect((await driver.getInfo(instance)).state).toBe(PowerState.RUNNING);
    }, 30_000);

    it('keeps the writable layer across stop and start, and rebuild gives a fresh one', async () => {
      const instance = spec();
      await driver.spawn(instance, busybox(), []);
      writeFileSync(join(driver.rootfsPath(instance.uuid), 'root/written'), 'data');
      await driver.powerOff(instance, { timeoutSeconds: 0 });
      expect(mounted(instance.uuid)).toBe(false);
      await driver.powerOn(instance, []);
      expect(existsSync(join(driver.rootfsPath(instance.uuid), 'root/written'))).toBe(true);
      await driver.rebuild(instance, busybox(), []);
      expect(existsSync(join(driver.rootfsPath(instance.uuid), 'root/written'))).toBe(false);
      expect((await driver.getInfo(instance)).state).toBe(PowerState.RUNNING);
    }, 30_000);

    it('is re-adopted by a new driver on the same data dir (an agent restart)', async () => {
      const instance = spec();
      await driver.spawn(instance, busybox(), []);
      const restarted = make();
      await restarted.init('container-host');
      expect(await restarted.listInstances()).toContain(instance.uuid);
      expect((await restarted.getInfo(instance)).state).toBe(PowerState.RUNNING);
      await restarted.close();
    }, 30_000);

    it('leaves no process, cgroup, mount or directory after destroy', async () => {
      const instance = spec();
      await driver.spawn(instance, busybox(), []);
      await driver.pause(instance);
      const pid = initPid(instance.uuid);
      expect(mounted(instance.uuid)).toBe(true);

      await driver.destroy(instance, []);

      expect(await waitFor(() => processGone(pid))).toBe(true);
      for (const controller of CONTROLLERS) expect(existsSync(cgroup(controller, instance.uuid))).toBe(false);
      expect(mounted(instance.uuid)).toBe(false);
      expect(loops().filter((line) => line.includes(instance.uuid))).toEqual([]);
      expect(existsSync(driver.instanceDir(instance.uuid))).toBe(false);
      expect(existsSync(join(dataDir, 'containers', 'runtime', `novum-${instance.uuid}`))).toBe(false);
    }, 30_000);

    it('runs the container as an unprivileged host uid, behind seccomp, in a read-only /proc/sys', async () => {
      const instance = spec();
      await driver.spawn(instance, busybox(), []);
      const pid = initPid(instance.uuid);
      const status = read(`/proc/${pid}/status`);
      expect(status).toMatch(/^Uid:\s+100000\s/m);
      expect(status).toMatch(/^Seccomp:\s+2$/m);
      expect(read(`/proc/${pid}/uid_map`).split(/\s+/)).toEqual(['0', '100000', '65536']);
      expect(exec(instance.uuid, 'id -u').output.trim()).toBe('0');
      // Each of these must fail inside, each for its own reason (seccomp, capabilities, read-only paths).
      for (const script of [
        'mount -t tmpfs none /mnt',
        'unshare -U true',
        'insmod /bin/busybox',
        'echo h > /proc/sysrq-trigger',
        'echo 1 > /proc/sys/kernel/sysrq',
      ]) {
        expect({ script, failed: exec(instance.uuid, script).code !== 0 }).toEqual({ script, failed: true });
      }
      expect(exec(instance.uuid, 'unshare -U true').output).toMatch(/not permitted/i);
      expect(exec(instance.uuid, 'echo ok').output.trim()).toBe('ok');
    }, 30_000);

    it('bounds the writable layer by the root disk: ENOSPC past it, nothing of it left after destroy', async () => {
      const small = new ContainerDriver({ dataDir, runtime: RUNTIME, defaultRootGb: 1 / 16 });
      await small.init('container-host');
      const instance = spec({ flavor: { ...flavor, rootGb: 0 } });
      await small.spawn(instance, busybox(), []);
      expect(loops().filter((line) => line.includes(instance.uuid))).toHaveLength(1);
      const full = exec(instance.uuid, 'dd if=/dev/zero of=/root/fill bs=1M count=100');
      expect(full.code).not.toBe(0);
      expect(full.output).toMatch(/No space left on device/);
      // The 64 MiB file system, less ext4's own metadata.
      const sizeKb = Number(exec(instance.uuid, "df -k / | tail -1 | awk '{print $(NF-4)}'").output);
      expect(sizeKb).toBeGreaterThan(48 * 1024);
      expect(sizeKb).toBeLessThanOrEqual(64 * 1024);
      await small.destroy(instance, []);
      expect(loops().filter((line) => line.includes(instance.uuid))).toEqual([]);
      expect(mounted(instance.uuid)).toBe(false);
      await small.close();
    }, 30_000);

    it('grows the root disk of a running container, keeping its files, and leaves it running', async () => {
      const small = new ContainerDriver({ dataDir, runtime: RUNTIME, defaultRootGb: 1 / 16 });
      await small.init('container-host');
      const instance = spec({ flavor: { ...flavor, rootGb: 1 / 16 } });
      await small.spawn(instance, busybox(), []);
      exec(instance.uuid, 'echo kept > /root/written');
      const sizeKb = () => Number(exec(instance.uuid, "df -k / | tail -1 | awk '{print $(NF-4)}'").output);
      // Online where the kernel lets the agent (CAP_SYS_RESOURCE); else stopped, checked and grown offline once
      // the kernel has let go of the file system, and started again. Three times over, as a race would show.
      let before = sizeKb();
      for (const sixteenths of [2, 3, 4]) {
        await small.resize(instance, { ...flavor, rootGb: sixteenths / 16 }, []);
        await small.confirmResize(instance);
        expect((await small.getInfo(instance)).state).toBe(PowerState.RUNNING);
        // 64 MiB more each time, less ext4's own metadata for it.
        const after = sizeKb();
        expect(after).toBeGreaterThan(before + 48 * 1024);
        before = after;
        expect(exec(instance.uuid, 'cat /root/written').output).toBe('kept\n');
      }
      await small.destroy(instance, []);
      expect(loops().filter((line) => line.includes(instance.uuid))).toEqual([]);
      await small.close();
    }, 60_000);

    it('shows the config drive read-only and puts the key pair in root authorized_keys', async () => {
      const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnovumtestkey test@novum';
      const instance = spec({
        keyName: 'mykey',
        keyData: key,
        userData: Buffer.from('#!/bin/sh\n').toString('base64'),
      });
      await driver.spawn(instance, busybox(), []);
      const meta = JSON.parse(
        exec(instance.uuid, 'cat /config-drive/openstack/latest/meta_data.json').output,
      );
      expect(meta).toMatchObject({
        uuid: instance.uuid,
        hostname: 'host-check',
        public_keys: { mykey: key },
      });
      expect(exec(instance.uuid, 'cat /config-drive/openstack/latest/user_data').output).toBe('#!/bin/sh\n');
      expect(exec(instance.uuid, 'touch /config-drive/x').output).toMatch(/Read-only/);
      expect(exec(instance.uuid, 'cat /root/.ssh/authorized_keys').output).toBe(`${key}\n`);
      expect(exec(instance.uuid, 'stat -c "%u %a" /root/.ssh /root/.ssh/authorized_keys').output).toBe(
        '0 700\n0 600\n',
      );
    }, 30_000);

    it('resizes live: new cgroup limits on the same process; revert puts the old ones back', async () => {
      const instance = spec();
      await driver.spawn(instance, busybox(), []);
      const pid = initPid(instance.uuid);
      await driver.resize(instance, { ...flavor, memoryMb: 160, vcpus: 1 }, []);
      expect(initPid(instance.uuid)).toBe(pid);
      expect(read(cgroup('memory', instance.uuid, 'memory.limit_in_bytes'))).toBe(String(160 * 1024 * 1024));
      expect(read(cgroup('cpu', instance.uuid, 'cpu.cfs_quota_us'))).toBe('100000');
      await expect(driver.powerOff(instance)).rejects.toThrow(/resize awaits/);
      await driver.revertResize(instance, []);
      expect(read(cgroup('memory', instance.uuid, 'memory.limit_in_bytes'))).toBe(String(96 * 1024 * 1024));
      expect(read(cgroup('cpu', instance.uuid, 'cpu.cfs_quota_us'))).toBe('200000');
      expect(initPid(instance.uuid)).toBe(pid);
    }, 30_000);

    it('snapshots the writable layer as a docker archive that boots with the written and deleted files', async () => {
      const instance = spec();
      await driver.spawn(instance, busybox(), []);
      exec(
        instance.uuid,
        'echo kept > /root/written && rm /etc/novum-release && chown 65534 /root/written && ' +
          'mkdir -p /var/mine && echo x > /var/mine/f && rm -r /srv && mkdir /srv && echo y > /srv/only',
      );
      const archiveFile = join(work, `snapshot-${instance.uuid}.tar`);
      await driver.snapshot(instance, randomUUID(), async ({ data, containerFormat, diskFormat }) => {
        expect({ containerFormat, diskFormat }).toEqual({ containerFormat: 'docker', diskFormat: 'raw' });
        await pipeline(data, createWriteStream(archiveFile));
      });
      expect((await driver.getInfo(instance)).state).toBe(PowerState.RUNNING);
      expect(read(cgroup('freezer', instance.uuid, 'freezer.state'))).toBe('THAWED');

      const listing = execFileSync('tar', ['-tf', archiveFile], { encoding: 'utf8' }).split('\n');
      expect(listing).toContain('manifest.json');
      const manifest = JSON.parse(
        execFileSync('tar', ['-xOf', archiveFile, 'manifest.json'], { encoding: 'utf8' }),
      );
      expect(manifest[0].Layers).toHaveLength(3);
      const top = execFileSync(
        'sh',
        ['-c', `tar -xOf ${archiveFile} ${manifest[0].Layers[2]} | tar -tv --numeric-owner`],
        { encoding: 'utf8' },
      );
      expect(top).toMatch(/etc\/\.wh\.novum-release/);
      expect(top).toMatch(/srv\/\.wh\.\.wh\.\.opq/);
      expect(top).not.toMatch(/config-drive/);
      expect(top).toMatch(/65534\/0 .* root\/written/);

      const copy = spec();
      const snapshotImage: ImageSource = {
        ...busybox(randomUUID()),
        open: async () => createReadStream(archiveFile),
      };
      await driver.spawn(copy, snapshotImage, []);
      expect(exec(copy.uuid, 'cat /root/written; stat -c %u /root/written').output).toBe('kept\n65534\n');
      expect(exec(copy.uuid, 'cat /var/mine/f /srv/only').output).toBe('x\ny\n');
      // /srv was made anew: opaque in the snapshot, the image's /srv/new is hidden.
      expect(exec(copy.uuid, 'ls /srv').output).toBe('only\n');
      expect(exec(copy.uuid, 'test -e /etc/novum-release').code).not.toBe(0);
      // The parent's layers are the same ones, shared: only the new top layer was unpacked.
      expect(readdirSync(join(dataDir, 'containers', 'layers'))).toHaveLength(3);
    }, 30_000);

    it("carries the writable layer to another host's driver: files, owners, xattrs, whiteouts", async () => {
      const peer = makePeer();
      await peer.init('container-peer');
      const instance = spec();
      try {
        await driver.spawn(instance, busybox(), []);
        exec(
          instance.uuid,
          'echo kept > /root/written && chown 65534:65534 /root/written && rm /etc/novum-release && ' +
            'rm -r /srv && mkdir /srv && echo y > /srv/only && dd if=/dev/zero of=/root/big bs=1M count=8 2>/dev/null',
        );
        const upper = join(dataDir, 'containers', 'instances', instance.uuid, 'disk', 'upper');
        execFileSync('setfattr', ['-n', 'user.novum', '-v', 'carried', join(upper, 'root', 'written')]);
        await driver.powerOff(instance, { timeoutSeconds: 0 });
        const exported = await driver.exportDisks(instance);
        expect(exported.format).toBe('container-upper-tar');
        // The source's disk is unmounted again, nothing of the export inside the guest's layer.
        expect(loops().filter((line) => line.includes(instance.uuid))).toEqual([]);

        const started = Date.now();
        await peer.spawn({ ...instance, flavor: { ...flavor, rootGb: 2 } }, busybox(), [], {
          migratedDisks: { format: exported.format, data: exported.open() },
        });
        const ms = Date.now() - started;
        await exported.dispose();
        expect((await peer.getInfo(instance)).state).toBe(PowerState.RUNNING);
        const peerExec = (script: string) =>
          execFileSync(
            RUNTIME,
            [
              '--root',
              join(peerDataDir, 'containers', 'runtime'),
              'exec',
              `novum-${instance.uuid}`,
              'sh',
              '-c',
              script,
            ],
            { encoding: 'utf8' },
          );
        expect(peerExec('cat /root/written; stat -c %u:%g /root/written; ls /srv; wc -c < /root/big')).toBe(
          'kept\n65534:65534\nonly\n8388608\n',
        );
        expect(peerExec('test -e /etc/novum-release || echo gone')).toBe('gone\n');
        // The owners are the host's shifted ids on the peer's disk too, the xattr with them.
        const peerUpper = join(peerDataDir, 'containers', 'instances', instance.uuid, 'disk', 'upper');
        expect(
          execFileSync('stat', ['-c', '%u', join(peerUpper, 'root', 'written')], { encoding: 'utf8' }),
        ).toBe(`${100_000 + 65534}\n`);
        expect(
          execFileSync(
            'getfattr',
            ['--only-values', '-n', 'user.novum', join(peerUpper, 'root', 'written')],
            {
              encoding: 'utf8',
            },
          ),
        ).toBe('carried');
        // The source keeps its guest, stopped, for a revert.
        expect((await driver.getInfo(instance)).state).toBe(PowerState.SHUTDOWN);
        console.log(`container writable layer carried in ${ms} ms`);
      } finally {
        await peer.destroy(instance, []);
        await peer.close();
      }
    }, 60_000);

    it('rescues into the rescue image with the server rootfs at /mnt, and unrescues back', async () => {
      const instance = spec();
      await driver.spawn(instance, busybox(), []);
      exec(instance.uuid, 'echo broken > /root/state');
      const pid = initPid(instance.uuid);
      await driver.rescue(instance, busybox(), []);
      expect(initPid(instance.uuid)).not.toBe(pid);
      expect(read(`/proc/${initPid(instance.uuid)}/status`)).toMatch(/^Uid:\s+100000\s/m);
      // The rescue system's own root has no /root/state; the server's is at /mnt.
      expect(exec(instance.uuid, 'test -e /root/state').code).not.toBe(0);
      expect(exec(instance.uuid, 'cat /mnt/root/state && echo fixed > /mnt/root/state').output).toBe(
        'broken\n',
      );
      await expect(driver.reboot(instance, 'HARD', [])).rejects.toThrow(/rescued/);

      await driver.unrescue(instance);
      expect(exec(instance.uuid, 'cat /root/state').output).toBe('fixed\n');
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(`novum-rescue-${instance.uuid}`);
      expect((await driver.getInfo(instance)).state).toBe(PowerState.RUNNING);
    }, 30_000);

    it('fails a spawn of an image that is not a docker archive and leaves nothing behind', async () => {
      const instance = spec();
      const bad: ImageSource = { ...busybox(randomUUID()), containerFormat: 'bare' };
      await expect(driver.spawn(instance, bad, [])).rejects.toThrow(/container_format bare/);
      expect(await driver.listInstances()).not.toContain(instance.uuid);
      expect(existsSync(driver.instanceDir(instance.uuid))).toBe(false);
    });
  });

  const hasCrun = (() => {
    try {
      execFileSync('sh', ['-c', 'command -v crun'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  // Both runtimes through the same driver: each step checked on the host, and the create / netns attach /
  // start sequence of a container with ports (a stand-in network that puts a veth pair in the namespace).
  for (const runtime of [...new Set([RUNTIME, 'runc', 'crun'])]) {
    if (runtime === 'crun' && !hasCrun) {
      describe('ContainerDriver with crun', () => {
        if (process.env.NOVUM_REQUIRE_HOST_TESTS === '1') {
          it('has crun', () => {
            throw new Error('crun is not installed (apt-get install crun)');
          });
        } else {
          it.skip('needs crun (apt-get install crun)', () => undefined);
        }
      });
      continue;
    }
    describe(`ContainerDriver with ${runtime}`, () => {
      const runtimeData = join(work, `data-${runtime}`);
      const netnsList = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
      const plugged: string[] = [];
      const network = {
        prepareContainer: async () => undefined,
        plugContainer: async (uuid: string, _vifs: unknown, options: { attachPid?: number } = {}) => {
          // As HostNetwork: the runtime's namespace of the container's init gets its persistent name.
          if (options.attachPid !== undefined)
            execFileSync('ip', ['netns', 'attach', netnsName(uuid), String(options.attachPid)]);
          execFileSync('ip', [
            '-n',
            netnsName(uuid),
            'link',
            'add',
            'novum0',
            'type',
            'veth',
            'peer',
            'name',
            'novum1',
          ]);
          plugged.push(uuid);
          return `/run/netns/${netnsName(uuid)}`;
        },
        unplugInstance: async (uuid: string) => {
          if (netnsList().includes(netnsName(uuid))) execFileSync('ip', ['netns', 'delete', netnsName(uuid)]);
        },
      } as unknown as HostNetwork;
      const driver = new ContainerDriver({ dataDir: runtimeData, runtime, network, softRebootSeconds: 5 });
      const uuid = randomUUID();
      const instance: InstanceSpec = {
        uuid,
        name: `instance-${uuid.slice(0, 8)}`,
        hostname: `ctr-${runtime}`,
        projectId: 'p',
        userId: 'u',
        flavor: {
          vcpus: 1,
          memoryMb: 64,
          rootGb: 1,
          ephemeralGb: 0,
          swapMb: 0,
          extraSpecs: {
            'quota:disk_read_bytes_sec': '1048576',
            'quota:disk_total_iops_sec': '300',
            'quota:disk_write_iops_sec': '100',
          },
        },
        imageRef: busybox().id,
        imageProperties: {},
        metadata: {},
        configDrive: false,
      };
      const runtimeArgs = (...args: string[]) => [
        '--root',
        join(runtimeData, 'containers', 'runtime'),
        ...args,
      ];
      const pidOf = () =>
        (
          JSON.parse(execFileSync(runtime, runtimeArgs('state', `novum-${uuid}`), { encoding: 'utf8' })) as {
            pid: number;
          }
        ).pid;
      const inside = (script: string) =>
        execFileSync(runtime, runtimeArgs('exec', `novum-${uuid}`, 'sh', '-c', script), { encoding: 'utf8' });
      const cgroupFile = (controller: string, file: string) =>
        readFileSync(join('/sys/fs/cgroup', controller, 'novum', uuid, file), 'utf8').trim();
      /** major:minor of the loop device under the container's root disk. */
      const rootDevice = () => {
        const image = join(runtimeData, 'containers', 'instances', uuid, 'disk.ext4');
        const loop = execFileSync('losetup', ['-j', image], { encoding: 'utf8' }).split(':')[0];
        return readFileSync(join('/sys/block', loop.replace('/dev/', ''), 'dev'), 'utf8').trim();
      };
      const cgroupDirs = () =>
        readdirSync('/sys/fs/cgroup').filter((controller) =>
          existsSync(join('/sys/fs/cgroup', controller, 'novum', uuid)),
        );

      beforeAll(() => driver.init('container-host'));
      afterAll(async () => {
        await driver.destroy({ uuid }, []);
        await driver.close();
      }, 30_000);

      it('spawns into a pinned network namespace with the ports plugged between create and start', async () => {
        await driver.spawn(instance, busybox(), []);
        expect((await driver.getInfo(instance)).state).toBe(PowerState.RUNNING);
        expect(plugged).toEqual([uuid]);
        expect(netnsList()).toContain(netnsName(uuid));
        expect(inside('ls /sys/class/net').split(/\s+/)).toContain('novum0');
        expect(readFileSync(`/proc/${pidOf()}/uid_map`, 'utf8').trim().split(/\s+/)).toEqual([
          '0',
          '100000',
          '65536',
        ]);
        expect(cgroupFile('memory', 'memory.limit_in_bytes')).toBe(String(64 * 1024 * 1024));
        expect(cgroupFile('cpu', 'cpu.cfs_quota_us')).toBe('100000');
        // Nova's disk I/O quotas, on the root disk's loop device.
        const device = rootDevice();
        expect(cgroupFile('blkio', 'blkio.throttle.read_bps_device')).toBe(`${device} 1048576`);
        expect(cgroupFile('blkio', 'blkio.throttle.write_bps_device')).toBe('');
        expect(cgroupFile('blkio', 'blkio.throttle.read_iops_device')).toBe(`${device} 300`);
        expect(cgroupFile('blkio', 'blkio.throttle.write_iops_device')).toBe(`${device} 100`);
      }, 30_000);

      it('pauses with the freezer, stops and starts again into a fresh namespace, resizes live', async () => {
        await driver.pause(instance);
        expect(cgroupFile('freezer', 'freezer.state')).toBe('FROZEN');
        expect((await driver.getInfo(instance)).state).toBe(PowerState.PAUSED);
        await driver.unpause(instance);
        expect(cgroupFile('freezer', 'freezer.state')).toBe('THAWED');

        const first = pidOf();
        await driver.powerOff(instance, { timeoutSeconds: 5 });
        expect((await driver.getInfo(instance)).state).toBe(PowerState.SHUTDOWN);
        expect(await driver.getConsoleOutput(instance)).toContain('bye');
        await driver.powerOn(instance, []);
        expect(pidOf()).not.toBe(first);
        expect(inside('ls /sys/class/net').split(/\s+/)).toContain('novum0');

        const pid = pidOf();
        const extraSpecs = { 'quota:disk_write_bytes_sec': '2097152' };
        await driver.resize(instance, { ...instance.flavor, vcpus: 2, memoryMb: 128, extraSpecs }, []);
        expect(pidOf()).toBe(pid);
        const device = rootDevice();
        expect(cgroupFile('blkio', 'blkio.throttle.read_bps_device')).toBe('');
        expect(cgroupFile('blkio', 'blkio.throttle.write_bps_device')).toBe(`${device} 2097152`);
        expect(cgroupFile('blkio', 'blkio.throttle.read_iops_device')).toBe('');
        expect(cgroupFile('blkio', 'blkio.throttle.write_iops_device')).toBe('');
        expect(cgroupFile('memory', 'memory.limit_in_bytes')).toBe(String(128 * 1024 * 1024));
        expect(cgroupFile('cpu', 'cpu.cfs_quota_us')).toBe('200000');
        await driver.confirmResize(instance);
      }, 30_000);

      it('destroys: no process, cgroup, namespace, mount or state left', async () => {
        const pid = pidOf();
        await driver.destroy(instance, []);
        // Gone, or a zombie of a host init that does not reap.
        const gone = () =>
          !existsSync(`/proc/${pid}/stat`) || / Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
        for (let i = 0; i < 100 && !gone(); i++) await new Promise((r) => setTimeout(r, 50));
        expect(gone()).toBe(true);
        expect(cgroupDirs()).toEqual([]);
        expect(netnsList()).not.toContain(netnsName(uuid));
        expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(uuid);
        expect(existsSync(join(runtimeData, 'containers', 'runtime', `novum-${uuid}`))).toBe(false);
        expect(await driver.listInstances()).toEqual([]);
      }, 30_000);

      it('tells a mount point from a plain directory, as mountinfo does', async () => {
        const base = mkdtempSync(join(work, 'mnt-'));
        const target = join(base, 'target');
        const listed = () =>
          readFileSync('/proc/self/mountinfo', 'utf8')
            .split('\n')
            .some((line) => line.split(' ')[4] === target);
        execFileSync('mkdir', [target]);
        expect(await mountedAt(target)).toBe(false);
        expect(await mountedAt(join(base, 'absent'))).toBe(false);
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'novum-test', target]);
        try {
          expect(listed()).toBe(true);
          expect(await mountedAt(target)).toBe(true);
          // A directory inside the mount is not a mount point of its own.
          execFileSync('mkdir', [join(target, 'inner')]);
          expect(await mountedAt(join(target, 'inner'))).toBe(false);
        } finally {
          execFileSync('umount', [target]);
        }
        expect(listed()).toBe(false);
        expect(await mountedAt(target)).toBe(false);
      });

      if (runtime === 'crun') {
        it('has the hybrid cgroup layout crun needs, and preparing it again changes nothing', async () => {
          if (!existsSync('/sys/fs/cgroup/cgroup.controllers') && existsSync('/sys/fs/cgroup/memory')) {
            expect(readFileSync('/proc/self/mountinfo', 'utf8')).toMatch(
              / \/sys\/fs\/cgroup\/hugetlb .* cgroup /,
            );
          }
          expect(await prepareCgroupsForCrun()).toEqual([]);
        });
      }
    });
  }
}
