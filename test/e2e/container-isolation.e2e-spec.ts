import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudHandle, testMode } from './support/cloud';
import {
  cgroupPath,
  hostTestSkip,
  missingHostTools,
  mountsOf,
  readTrimmed,
  removeContainerLeftovers,
  RUNTIME,
  runtimeRoot as runtimeRootOf,
  runtimeState as runtimeStateOf,
  startContainerCloud,
} from './support/host';
import { openstackJson, openstackOk } from './support/openstack';

jest.setTimeout(180_000);

const CONTROLLERS = ['memory', 'cpu', 'pids', 'freezer', 'cpuacct', 'cpuset', 'devices', 'blkio'];
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHahMzjU1wUYJZQdF0ROVGrcremtTV92dXnn1EfhLctc novum@e2e';

const skip = hostTestSkip(
  'container isolation',
  missingHostTools(
    [RUNTIME, 'busybox', 'setfattr', 'getfattr', 'mkfs.ext4', 'losetup'],
    'runc busybox-static attr e2fsprogs mount',
  ),
);

/**
 * What a container server may not do to its host, and what it gets: limits (RAM, pids, root disk), the
 * seccomp filter and the user namespace, the config drive and key pair, snapshot → new server, resize, and
 * nothing of Novum left once every server is deleted. Commands run inside with `runc exec`.
 */
(skip ? describe.skip : describe)(
  `container server isolation and images (${testMode()}${skip ? `; skipped: ${skip}` : ''})`,
  () => {
    let cloud: CloudHandle;
    let demo: Record<string, string>;
    const servers: Record<string, string> = {};

    const runtimeRoot = () => runtimeRootOf(cloud);
    const runtimeState = (uuid: string) => runtimeStateOf(cloud, uuid);
    /** A shell command inside the server's container: its exit code and output (stdout then stderr). */
    const exec = (uuid: string, script: string) => {
      try {
        const output = execFileSync(
          RUNTIME,
          ['--root', runtimeRoot(), 'exec', `novum-${uuid}`, 'sh', '-c', script],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 20 },
        );
        return { code: 0, output };
      } catch (error) {
        const failed = error as {
          status: number | null;
          signal: string | null;
          stdout: string;
          stderr: string;
        };
        return { code: failed.status ?? 128, output: `${failed.stdout}${failed.stderr}` };
      }
    };
    const cgroup = cgroupPath;
    const read = readTrimmed;
    const novumMounts = () => mountsOf(cloud);
    const novumLoops = () =>
      execFileSync('losetup', ['-a'], { encoding: 'utf8' })
        .split('\n')
        .filter((line) => line.includes(cloud.dataDir));
    const show = (server: string) => openstackJson(demo, 'server', 'show', server);
    const waitStatus = async (server: string, status: string) => {
      const deadline = Date.now() + 60_000;
      let shown: any;
      do {
        shown = await show(server);
        if (shown.status === status && !shown['OS-EXT-STS:task_state']) return shown;
        await new Promise((r) => setTimeout(r, 200));
      } while (Date.now() < deadline);
      throw new Error(`${server} is ${shown.status}/${shown['OS-EXT-STS:task_state']}, not ${status}`);
    };
    const create = async (name: string, image: string, ...extra: string[]) => {
      const created = await openstackJson(
        demo,
        'server',
        'create',
        '--flavor',
        'c1.tiny',
        '--image',
        image,
        '--network',
        'private',
        ...extra,
        '--wait',
        name,
      );
      expect(created).toMatchObject({ name, status: 'ACTIVE' });
      servers[name] = created.id;
      return created.id as string;
    };

    beforeAll(async () => {
      ({ cloud, demo } = await startContainerCloud(24800));
      const keyFile = join(cloud.dataDir, 'e2e-key.pub');
      writeFileSync(keyFile, `${KEY}\n`);
      await openstackOk(demo, 'keypair', 'create', '--public-key', keyFile, 'e2e-key');
    }, 180_000);

    afterAll(async () => {
      if (!cloud) return;
      // A failed test must not leave containers, mounts, loop devices or namespaces behind.
      // The cloud first, so that its agents plug nothing again (a router) while its leftovers go.
      await cloud.stop();
      removeContainerLeftovers(cloud);
      await cloud.destroy();
    }, 60_000);

    it('boots with the config drive and the key pair; runs as an unprivileged host uid behind seccomp', async () => {
      const id = await create('iso1', 'busybox', '--key-name', 'e2e-key');
      const pid = runtimeState(id)!.pid;
      expect(read(`/proc/${pid}/status`)).toMatch(/^Uid:\s+100000\s/m);
      expect(read(`/proc/${pid}/status`)).toMatch(/^Seccomp:\s+2$/m);
      // Its network namespace belongs to its user namespace: the port is in it, sysfs shows only its devices.
      const address = Object.values((await show(id)).addresses as Record<string, string[]>)[0][0];
      expect(exec(id, 'ip -o -4 addr show dev eth0').output).toContain(`inet ${address}/`);
      expect(exec(id, 'ls /sys/class/net').output.split('\n').filter(Boolean).sort()).toEqual(['eth0', 'lo']);

      const meta = JSON.parse(exec(id, 'cat /config-drive/openstack/latest/meta_data.json').output);
      expect(meta).toMatchObject({ uuid: id, name: 'iso1' });
      expect(meta.public_keys['e2e-key'].trim()).toBe(KEY);
      expect(exec(id, 'cat /root/.ssh/authorized_keys').output).toBe(`${KEY}\n`);
      expect(exec(id, 'echo x > /config-drive/openstack/latest/meta_data.json').code).not.toBe(0);

      for (const script of [
        'mount -t tmpfs none /mnt',
        'mount -o remount,rw /',
        'insmod /bin/busybox',
        'echo b > /proc/sysrq-trigger',
        'unshare -U -r true',
      ]) {
        expect({ script, failed: exec(id, script).code !== 0 }).toEqual({ script, failed: true });
      }
      // busybox date reports the refused clock_settime but exits 0.
      expect(exec(id, 'date -s 2000-01-01 2>&1').output).toMatch(/not permitted/);
      expect(new Date().getFullYear()).toBeGreaterThan(2000);
      expect(runtimeState(id)?.status).toBe('running');
    });

    it('OOM-kills a program allocating past the flavour RAM inside the container only', async () => {
      const id = servers.iso1;
      const pid = runtimeState(id)!.pid;
      const kills = () =>
        Number(/oom_kill (\d+)/.exec(read(cgroup('memory', id, 'memory.oom_control')))?.[1] ?? 0);
      const before = kills();
      // c1.tiny has 256 MiB: awk doubles a string until it would hold 512 MiB.
      const hog = exec(
        id,
        `awk 'BEGIN { s = "x"; for (i = 0; i < 29; i++) s = s s; print "survived", length(s) }'`,
      );
      expect(hog.code).not.toBe(0);
      expect(hog.output).not.toMatch(/survived/);
      expect(kills()).toBeGreaterThan(before);
      expect(runtimeState(id)).toMatchObject({ status: 'running', pid });
      expect((await show(id)).status).toBe('ACTIVE');
      expect(exec(id, 'echo alive').output).toBe('alive\n');
    });

    it('keeps a fork bomb inside its pids limit', async () => {
      const id = servers.iso1;
      const pid = runtimeState(id)!.pid;
      const limit = Number(read(cgroup('pids', id, 'pids.max')));
      exec(id, 'i=0; while [ $i -lt 1500 ]; do sleep 60 >/dev/null 2>&1 & i=$((i+1)); done 2>/dev/null');
      expect(Number(read(cgroup('pids', id, 'pids.current')))).toBeLessThanOrEqual(limit);
      expect(Number(read(cgroup('pids', id, 'pids.current')))).toBeGreaterThan(limit / 2);
      // Forks refused at the limit.
      expect(Number(/max (\d+)/.exec(read(cgroup('pids', id, 'pids.events')))?.[1])).toBeGreaterThan(0);
      // The sleepers go, killed from the host (the container cannot fork a kill); the init's own sleep stays.
      for (const proc of read(cgroup('pids', id, 'cgroup.procs')).split('\n')) {
        const cmdline = readFileSync(`/proc/${proc}/cmdline`, 'utf8');
        if (cmdline === 'sleep\u000060\u0000') {
          try {
            process.kill(Number(proc), 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
      const deadline = Date.now() + 10_000;
      while (Number(read(cgroup('pids', id, 'pids.current'))) > 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(Number(read(cgroup('pids', id, 'pids.current')))).toBe(2);
      expect(runtimeState(id)).toMatchObject({ status: 'running', pid });
    });

    it('fails writes past the root disk with ENOSPC', async () => {
      const id = servers.iso1;
      const full = exec(id, 'dd if=/dev/zero of=/root/fill bs=1M count=1200 2>&1; rm -f /root/fill');
      expect(full.output).toMatch(/No space left on device/);
      // The 1 GiB root disk of c1.tiny, less ext4's metadata.
      const sizeKb = Number(exec(id, "df -k / | tail -1 | awk '{print $(NF-4)}'").output);
      expect(sizeKb).toBeGreaterThan(900 * 1024);
      expect(sizeKb).toBeLessThanOrEqual(1024 * 1024);
    });

    it('snapshots a server into an image that boots a new server with the written file', async () => {
      const id = servers.iso1;
      expect(exec(id, 'echo "written before the snapshot" > /root/note && rm /etc/novum-release').code).toBe(
        0,
      );
      const image = await openstackJson(
        demo,
        'server',
        'image',
        'create',
        '--name',
        'iso1-snap',
        '--wait',
        id,
      );
      expect(image).toMatchObject({ name: 'iso1-snap' });
      const shown = await openstackJson(demo, 'image', 'show', 'iso1-snap');
      expect(shown).toMatchObject({ status: 'active', container_format: 'docker' });
      expect((await show(id)).status).toBe('ACTIVE');

      const copy = await create('iso2', 'iso1-snap');
      expect(exec(copy, 'cat /root/note').output).toBe('written before the snapshot\n');
      expect(exec(copy, 'test -e /etc/novum-release').code).not.toBe(0);
      expect(exec(copy, 'cat /srv/new').output).toBe('from the second layer\n');
    });

    it('resizes to c1.small: new cgroup limits and a larger root disk, then confirms', async () => {
      const id = servers.iso2;
      await openstackOk(demo, 'server', 'resize', '--flavor', 'c1.small', '--wait', id);
      await waitStatus(id, 'VERIFY_RESIZE');
      expect(read(cgroup('memory', id, 'memory.limit_in_bytes'))).toBe(String(1024 * 1024 * 1024));
      const sizeKb = Number(exec(id, "df -k / | tail -1 | awk '{print $(NF-4)}'").output);
      expect(sizeKb).toBeGreaterThan(9 * 1024 * 1024);
      expect(exec(id, 'cat /root/note').output).toBe('written before the snapshot\n');
      await openstackOk(demo, 'server', 'resize', 'confirm', id);
      await waitStatus(id, 'ACTIVE');
      expect(runtimeState(id)?.status).toBe('running');
    });

    it('rescues a server into the rescue image with its rootfs at /mnt, and unrescues it', async () => {
      const id = servers.iso2;
      await openstackOk(demo, 'server', 'rescue', '--image', 'busybox', id);
      await waitStatus(id, 'RESCUE');
      expect(exec(id, 'cat /mnt/root/note').output).toBe('written before the snapshot\n');
      expect(exec(id, 'test -e /root/note').code).not.toBe(0);
      await openstackOk(demo, 'server', 'unrescue', id);
      await waitStatus(id, 'ACTIVE');
      expect(exec(id, 'cat /root/note').output).toBe('written before the snapshot\n');
    });

    it('leaves nothing of Novum on the host once every server is deleted', async () => {
      const pids = Object.values(servers).map((id) => runtimeState(id)?.pid);
      await openstackOk(demo, 'server', 'delete', '--wait', ...Object.values(servers));
      for (const pid of pids) {
        if (pid)
          expect(
            existsSync(`/proc/${pid}`) && !read(`/proc/${pid}/stat`).split(') ')[1].startsWith('Z'),
          ).toBe(false);
      }
      for (const id of Object.values(servers)) {
        expect(runtimeState(id)).toBeUndefined();
        for (const controller of CONTROLLERS) expect(existsSync(cgroup(controller, id))).toBe(false);
      }
      expect(novumMounts()).toEqual([]);
      expect(novumLoops()).toEqual([]);
      expect(readdirSync(join(cloud.dataDir, 'containers', 'instances'))).toEqual([]);
      expect(readdirSync(runtimeRoot())).toEqual([]);
    });
  },
);
