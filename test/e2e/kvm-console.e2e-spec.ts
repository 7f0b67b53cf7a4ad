import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingVmPrerequisites, vmTestImage } from '../../libs/virt/testing/vm-image';
import { CloudHandle, startCloud, testMode } from './support/cloud';
import { hostTestSkip } from './support/host';
import { api, issueToken } from './support/keystone';
import { openstackJson, openstackOk } from './support/openstack';
import { openSerialConsole, upgradeStatus } from './support/serial-console';

jest.setTimeout(120_000);

const skip = hostTestSkip('kvm console', missingVmPrerequisites());

/**
 * The interactive serial console of a real QEMU guest (TCG here): the URL from
 * `openstack console url show --serial`, a websocket to the serial console proxy, a command typed into the
 * tiny image's shell on ttyS0 and its answer, while the console log (os-getConsoleOutput) keeps recording.
 */
(skip ? describe.skip : describe)(
  `kvm serial console with /usr/bin/openstack (${testMode()}${skip ? `; skipped: ${skip}` : ''})`,
  () => {
    let cloud: CloudHandle;
    let demo: Record<string, string>;
    let token: string;
    let altToken: string;
    let id: string;

    const instances = () => join(cloud.dataDir, 'kvm', 'instances');
    const compute = (method: string, path: string, as: string, body?: unknown, version = '2.6') =>
      api(cloud.services.compute, method, path, {
        token: as,
        body,
        headers: { 'openstack-api-version': `compute ${version}` },
      });
    const consoleLog = async (): Promise<string> =>
      (await compute('POST', `/servers/${id}/action`, token, { 'os-getConsoleOutput': {} })).body.output;
    const waitConsole = async (part: string) => {
      const deadline = Date.now() + 90_000;
      let output = '';
      while (Date.now() < deadline) {
        output = await consoleLog();
        if (output.includes(part)) return output;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`the console log never showed "${part}":\n${output.slice(-1500)}`);
    };
    const waitStatus = async (status: string) => {
      const deadline = Date.now() + 90_000;
      for (;;) {
        const shown = (await compute('GET', `/servers/${id}`, token)).body.server;
        if (shown.status === status && !shown['OS-EXT-STS:task_state']) return;
        if (Date.now() > deadline) throw new Error(`the server is ${shown.status}, not ${status}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const serialUrl = async (): Promise<string> =>
      (await openstackJson(demo, 'console', 'url', 'show', '--serial', 'kvmcon')).url;

    beforeAll(async () => {
      const image = vmTestImage();
      cloud = await startCloud({
        portBase: 25600,
        extraEnv: { NOVUM_COMPUTE_DRIVERS: 'kvm,fake', NOVUM_KVM_ACCEL: 'tcg' },
      });
      const admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
      demo = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-demo' };
      const password = cloud.demoPassword;
      ({ token } = await issueToken(cloud.identityUrl, { user: 'demo', password, project: 'demo' }));
      altToken = (await issueToken(cloud.identityUrl, { user: 'alt_demo', password, project: 'alt_demo' }))
        .token;
      await openstackOk(
        admin,
        ...['image', 'create', '--disk-format', 'qcow2', '--container-format', 'bare', '--public'],
        ...['--file', image, 'tiny'],
      );
      const created = await openstackJson(
        demo,
        ...['server', 'create', '--flavor', 'm1.tiny', '--image', 'tiny', '--network', 'private', '--wait'],
        'kvmcon',
      );
      id = created.id;
      await waitConsole('novum-guest ready');
    }, 240_000);

    afterAll(async () => {
      if (!cloud) return;
      // A failed test must not leave a QEMU running.
      for (const uuid of existsSync(instances()) ? readdirSync(instances()) : []) {
        try {
          const pid = Number(readFileSync(join(instances(), uuid, 'qemu.pid'), 'utf8').trim());
          if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(uuid))
            process.kill(pid, 'SIGKILL');
        } catch {
          // no QEMU left for this guest
        }
      }
      await cloud.destroy();
    }, 60_000);

    it("runs a command in the guest's shell over the websocket, and the console log keeps it", async () => {
      const url = await serialUrl();
      expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:25605\/\?token=/);
      const session = await openSerialConsole(url);
      session.send('\n');
      session.send('echo serial-$(hostname)-$((6*7))\n');
      // The typed line echoes as `$((6*7))`: only the shell's answer has 42.
      await session.waitFor(/serial-kvmcon-42/, 30_000);
      await session.close();
      expect(await consoleLog()).toContain('serial-kvmcon-42');
      // QEMU's socket takes the next client once the first left; the token is good until it expires.
      const again = await openSerialConsole(url);
      again.send('echo again-$((40+2))\n');
      await again.waitFor(/again-42/, 30_000);
      await again.close();
    });

    it("refuses a bad token and gives another project's user 404 for the server", async () => {
      const url = await serialUrl();
      expect(await upgradeStatus(url.replace(/token=.*/, 'token=forged'))).toBe(401);
      const other = await compute('POST', `/servers/${id}/remote-consoles`, altToken, {
        remote_console: { protocol: 'serial', type: 'serial' },
      });
      expect(other.status).toBe(404);
    });

    it('answers 409 while the server is stopped, and a console again once it runs', async () => {
      await openstackOk(demo, 'server', 'stop', 'kvmcon');
      await waitStatus('SHUTOFF');
      const stopped = await compute('POST', `/servers/${id}/remote-consoles`, token, {
        remote_console: { protocol: 'serial', type: 'serial' },
      });
      expect(stopped.status).toBe(409);
      await openstackOk(demo, 'server', 'start', 'kvmcon');
      await waitStatus('ACTIVE');
      const session = await openSerialConsole(await serialUrl());
      // The shell comes back once the guest has booted again; until then Enter brings nothing.
      const deadline = Date.now() + 90_000;
      for (;;) {
        session.send('echo back-$((40+2))\n');
        try {
          await session.waitFor(/back-42/, 3_000);
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
        }
      }
      await session.close();
      await openstackOk(demo, 'server', 'delete', '--wait', 'kvmcon');
      expect(existsSync(join(instances(), id))).toBe(false);
    });
  },
);
