import { existsSync, readdirSync, readFileSync } from 'node:fs';
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

jest.setTimeout(120_000);

const CONTROLLERS = ['memory', 'cpu', 'pids', 'freezer', 'cpuacct', 'cpuset', 'devices', 'blkio'];

const skip = hostTestSkip(
  'container server',
  missingHostTools([RUNTIME, 'busybox', 'setfattr'], 'runc busybox-static attr'),
);

/** c1.* servers as real containers (NOVUM_COMPUTE_DRIVERS=container,fake), driven by /usr/bin/openstack. */
(skip ? describe.skip : describe)(
  `container servers with /usr/bin/openstack (${testMode()}${skip ? `; skipped: ${skip}` : ''})`,
  () => {
    let cloud: CloudHandle;
    let demo: Record<string, string>;
    let id: string;

    const runtimeRoot = () => runtimeRootOf(cloud);
    const runtimeState = (uuid: string) => runtimeStateOf(cloud, uuid);
    const cgroup = cgroupPath;
    const read = readTrimmed;
    const novumMounts = () => mountsOf(cloud);
    const processGone = (pid: number) => {
      try {
        // A zombie left to a host init that does not reap holds nothing any more.
        return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].startsWith('Z');
      } catch {
        return true;
      }
    };
    const show = (server: string) => openstackJson(demo, 'server', 'show', server);
    const waitStatus = async (server: string, status: string) => {
      const deadline = Date.now() + 30_000;
      let shown: any;
      do {
        shown = await show(server);
        if (shown.status === status && !shown['OS-EXT-STS:task_state']) return shown;
        await new Promise((r) => setTimeout(r, 100));
      } while (Date.now() < deadline);
      throw new Error(`${server} is ${shown.status}/${shown['OS-EXT-STS:task_state']}, not ${status}`);
    };
    const consoleLog = () => openstackOk(demo, 'console', 'log', 'show', id);

    beforeAll(async () => {
      ({ cloud, demo } = await startContainerCloud(24000));
    }, 120_000);

    afterAll(async () => {
      if (!cloud) return;
      // A failed test must not leave containers, mounts, loop devices or namespaces behind.
      // The cloud first, so that its agents plug nothing again (a router) while its leftovers go.
      await cloud.stop();
      removeContainerLeftovers(cloud);
      await cloud.destroy();
    }, 60_000);

    it('creates a c1.tiny server as a running container with the flavour limits, and shows its console', async () => {
      const started = Date.now();
      const created = await openstackJson(
        demo,
        'server',
        'create',
        '--flavor',
        'c1.tiny',
        '--image',
        'busybox',
        '--network',
        'private',
        '--wait',
        'ctr1',
      );
      const took = Date.now() - started;
      expect(created).toMatchObject({ name: 'ctr1', status: 'ACTIVE' });
      id = created.id;
      process.stdout.write(`container server create --wait (CLI, first boot of the image): ${took} ms\n`);

      expect(runtimeState(id)?.status).toBe('running');
      expect(read(cgroup('memory', id, 'memory.limit_in_bytes'))).toBe(String(256 * 1024 * 1024));
      expect(read(cgroup('cpu', id, 'cpu.cfs_quota_us'))).toBe('100000');
      expect(read(cgroup('cpu', id, 'cpu.cfs_period_us'))).toBe('100000');
      expect(read(cgroup('pids', id, 'pids.max'))).toBe('1024');
      // The root disk (ext4 on a loop device) and the overlay on it.
      expect(novumMounts()).toHaveLength(2);
      expect((await show(id))['OS-EXT-STS:power_state']).toBe(1);

      let output = '';
      for (let i = 0; i < 50 && !output.includes('hello from ctr1'); i++) output = await consoleLog();
      expect(output).toContain('hello from ctr1');
    });

    it('stops and starts the container, keeping it in its cgroup only while it runs', async () => {
      const pid = runtimeState(id)!.pid;
      await openstackOk(demo, 'server', 'stop', id);
      await waitStatus(id, 'SHUTOFF');
      expect(runtimeState(id)).toBeUndefined();
      expect(processGone(pid)).toBe(true);
      expect(existsSync(cgroup('memory', id))).toBe(false);
      expect(novumMounts()).toHaveLength(0);
      // SIGTERM reached the image's init, which said goodbye.
      expect(await consoleLog()).toContain('bye');

      await openstackOk(demo, 'server', 'start', id);
      await waitStatus(id, 'ACTIVE');
      expect(runtimeState(id)?.status).toBe('running');
      expect(read(cgroup('memory', id, 'memory.limit_in_bytes'))).toBe(String(256 * 1024 * 1024));
    });

    it('pauses and unpauses with the freezer', async () => {
      await openstackOk(demo, 'server', 'pause', id);
      await waitStatus(id, 'PAUSED');
      expect(runtimeState(id)?.status).toBe('paused');
      expect(read(cgroup('freezer', id, 'freezer.state'))).toBe('FROZEN');
      await openstackOk(demo, 'server', 'unpause', id);
      await waitStatus(id, 'ACTIVE');
      expect(read(cgroup('freezer', id, 'freezer.state'))).toBe('THAWED');
    });

    it('reboots into a new init process', async () => {
      const pid = runtimeState(id)!.pid;
      await openstackOk(demo, 'server', 'reboot', '--wait', id);
      await waitStatus(id, 'ACTIVE');
      const after = runtimeState(id)!;
      expect(after.status).toBe('running');
      expect(after.pid).not.toBe(pid);
      expect(processGone(pid)).toBe(true);
    });

    it('deletes the server and leaves nothing of Novum on the host', async () => {
      const pid = runtimeState(id)!.pid;
      await openstackOk(demo, 'server', 'delete', '--wait', id);
      expect(processGone(pid)).toBe(true);
      expect(runtimeState(id)).toBeUndefined();
      for (const controller of CONTROLLERS) expect(existsSync(cgroup(controller, id))).toBe(false);
      expect(novumMounts()).toHaveLength(0);
      expect(readdirSync(join(cloud.dataDir, 'containers', 'instances'))).toEqual([]);
      expect(readdirSync(runtimeRoot())).toEqual([]);
    });
  },
);
