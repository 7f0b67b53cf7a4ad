import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { missingVmPrerequisites, vmTestImage } from '../../libs/virt/testing/vm-image';
import { CloudHandle, startCloud, testMode } from './support/cloud';
import { hostTestSkip } from './support/host';
import { api, issueToken } from './support/keystone';
import { openstackJson, openstackOk } from './support/openstack';

jest.setTimeout(120_000);

/** The unprivileged user QEMU drops to (NOVUM_KVM_USER's default; ops/install.sh creates it). */
const QEMU_USER = 'novum-qemu';

function qemuUserId(): { uid: number; gid: number } | undefined {
  const id = (flag: string) =>
    Number(execFileSync('id', [flag, QEMU_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    return undefined;
  }
}

const skip = hostTestSkip(
  'kvm confinement',
  missingVmPrerequisites() ?? (qemuUserId() ? undefined : `no user ${QEMU_USER} (bash ops/install.sh)`),
);

/**
 * Each guest's QEMU as the unprivileged user `novum-qemu` (`-runas`, after it opened its disks, taps and
 * sockets as root), with `-sandbox on` and in its own memory cgroup; what a user's QEMU must still do works:
 * suspend writes its state file, resume reads it, the process ends cleanly on stop, and nothing is left.
 */
(skip ? describe.skip : describe)(
  `kvm guests confined (${testMode()}${skip ? `; skipped: ${skip}` : ''})`,
  () => {
    let cloud: CloudHandle;
    let demo: Record<string, string>;
    let token: string;
    let id: string;
    const user = qemuUserId()!;

    const instances = () => join(cloud.dataDir, 'kvm', 'instances');
    const qemuOf = (uuid: string): number | undefined => {
      try {
        const pid = Number(readFileSync(join(instances(), uuid, 'qemu.pid'), 'utf8').trim());
        if (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].startsWith('Z')) return undefined;
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(uuid) ? pid : undefined;
      } catch {
        return undefined;
      }
    };
    /** The real, effective, saved and file-system ids of a process (`Uid:`/`Gid:` of its status). */
    const idsOf = (pid: number, field: 'Uid' | 'Gid') =>
      new RegExp(`^${field}:\\s+(.*)$`, 'm')
        .exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]
        .split(/\s+/)
        .map(Number);
    const waitStatus = async (status: string) => {
      const deadline = Date.now() + 60_000;
      let shown: any;
      do {
        shown = (await api(cloud.services.compute, 'GET', `/servers/${id}`, { token })).body.server;
        if (shown.status === status && !shown['OS-EXT-STS:task_state']) return shown;
        await new Promise((r) => setTimeout(r, 100));
      } while (Date.now() < deadline);
      throw new Error(`${id} is ${shown.status}/${shown['OS-EXT-STS:task_state']}, not ${status}`);
    };
    const waitConsole = async (part: string) => {
      const deadline = Date.now() + 60_000;
      let output = '';
      while (Date.now() < deadline) {
        output = (
          await api(cloud.services.compute, 'POST', `/servers/${id}/action`, {
            token,
            body: { 'os-getConsoleOutput': {} },
          })
        ).body.output;
        if (output.includes(part)) return output;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`the console never shows "${part}":\n${output.slice(-1500)}`);
    };

    beforeAll(async () => {
      const image = vmTestImage();
      cloud = await startCloud({
        portBase: 26700,
        extraEnv: { NOVUM_COMPUTE_DRIVERS: 'kvm,fake', NOVUM_KVM_ACCEL: 'tcg', NOVUM_KVM_USER: QEMU_USER },
      });
      const admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
      demo = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-demo' };
      ({ token } = await issueToken(cloud.identityUrl, {
        user: 'demo',
        password: cloud.demoPassword,
        project: 'demo',
      }));
      await openstackOk(
        admin,
        ...['image', 'create', '--disk-format', 'qcow2', '--container-format', 'bare', '--public'],
        ...['--file', image, 'tiny'],
      );
    }, 120_000);

    afterAll(async () => {
      if (!cloud) return;
      for (const uuid of existsSync(instances()) ? readdirSync(instances()) : []) {
        const pid = qemuOf(uuid);
        if (pid) process.kill(pid, 'SIGKILL');
      }
      await cloud.destroy();
    }, 60_000);

    it('runs the guest QEMU as novum-qemu, sandboxed, in its memory cgroup', async () => {
      const created = await openstackJson(
        demo,
        ...['server', 'create', '--flavor', 'm1.tiny', '--image', 'tiny', '--network', 'private'],
        ...['--wait', 'confined'],
      );
      expect(created.status).toBe('ACTIVE');
      id = created.id;
      const pid = qemuOf(id)!;
      expect(pid).toBeDefined();
      expect(idsOf(pid, 'Uid')).toEqual([user.uid, user.uid, user.uid, user.uid]);
      expect(idsOf(pid, 'Gid')).toEqual([user.gid, user.gid, user.gid, user.gid]);
      // No capabilities left, and seccomp in filter mode.
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(/^CapEff:\s+(\w+)$/m.exec(status)![1]).toMatch(/^0+$/);
      expect(/^Seccomp:\s+(\d)$/m.exec(status)![1]).toBe('2');
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      expect(cmdline).toEqual(expect.arrayContaining(['-runas', QEMU_USER]));
      expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toMatch(new RegExp(`memory:/novum/${id}$`, 'm'));
      expect(statSync(join(instances(), id)).uid).toBe(user.uid);
      // The guest runs: it booted and read its config drive.
      await waitConsole(`novum-guest hostname=confined uuid=${id}`);
    });

    it('suspends (the unprivileged QEMU writes its state) and resumes as the same user', async () => {
      await waitConsole('novum-guest ready');
      const pid = qemuOf(id)!;
      await openstackOk(demo, 'server', 'suspend', id);
      await waitStatus('SUSPENDED');
      const state = join(instances(), id, 'suspended.state');
      expect(statSync(state).size).toBeGreaterThan(0);
      expect(qemuOf(id)).toBeUndefined();
      expect(existsSync(`/proc/${pid}/cmdline`) && qemuOf(id) === pid).toBe(false);

      await openstackOk(demo, 'server', 'resume', id);
      await waitStatus('ACTIVE');
      const resumed = qemuOf(id)!;
      expect(resumed).toBeDefined();
      expect(idsOf(resumed, 'Uid')[0]).toBe(user.uid);
      expect(existsSync(state)).toBe(false);
    });

    it('stops and starts the guest, then deletes it leaving nothing behind', async () => {
      const pid = qemuOf(id)!;
      await openstackOk(demo, 'server', 'stop', id);
      await waitStatus('SHUTOFF');
      expect(qemuOf(id)).toBeUndefined();
      await openstackOk(demo, 'server', 'start', id);
      await waitStatus('ACTIVE');
      const started = qemuOf(id)!;
      expect(started).not.toBe(pid);
      expect(idsOf(started, 'Uid')[0]).toBe(user.uid);

      await openstackOk(demo, 'server', 'delete', '--wait', id);
      expect(qemuOf(id)).toBeUndefined();
      expect(existsSync(join('/sys/fs/cgroup/memory/novum', id))).toBe(false);
      expect(readdirSync(instances())).toEqual([]);
    });
  },
);
