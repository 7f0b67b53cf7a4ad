import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { CloudHandle, startCloud, testMode } from './support/cloud';
import { debianCloudImage, missingDebianPrerequisites } from './support/debian-image';
import {
  containerHostLeftovers,
  hostTestSkip,
  missingHostTools,
  removeContainerLeftovers,
  RUNTIME,
} from './support/host';
import { api, issueToken } from './support/keystone';
import { openstackJson, openstackOk } from './support/openstack';

/** Booting Debian under TCG takes minutes; building the image (once per host) as long again. */
const BOOT_TIMEOUT_MS = 10 * 60_000;
const BUILD_TIMEOUT_MS = 20 * 60_000;
jest.setTimeout(BOOT_TIMEOUT_MS);

const missing =
  process.env.NOVUM_SLOW_TESTS === '1'
    ? (missingDebianPrerequisites() ?? missingHostTools([RUNTIME], RUNTIME))
    : 'slow (set NOVUM_SLOW_TESTS=1)';
const skip = process.env.NOVUM_SLOW_TESTS === '1' ? hostTestSkip('kvm debian', missing) : missing;

const sh = (command: string, ...args: string[]) =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * The Debian cloud image of ops/images/build-vm-debian.sh as a KVM server (TCG here): cloud-init reads the
 * config drive, runs the user data and installs the key pair; the guest answers SSH on its fixed IP. The
 * host has no address on the network's bridge, and the bridge's firewall drops what comes from a device that
 * is no port, so the host's ssh runs in the network namespace of a neighbour: a container server (busybox,
 * NOVUM_COMPUTE_DRIVERS=kvm,container,fake) on the same network and in the same security group.
 * Slow (minutes): runs only with NOVUM_SLOW_TESTS=1.
 */
(skip ? describe.skip : describe)(
  `kvm debian cloud image with /usr/bin/openstack (${testMode()}${skip ? `; skipped: ${skip}` : ''})`,
  () => {
    let cloud: CloudHandle;
    let admin: Record<string, string>;
    let demo: Record<string, string>;
    let token: string;
    let id: string;
    let keyFile: string;
    const marker = `NOVUM-USER-DATA-${randomBytes(4).toString('hex')}`;
    /** The container server whose network namespace ssh runs in. */
    let probeId: string;

    const instances = () => join(cloud.dataDir, 'kvm', 'instances');
    const consoleLog = async (): Promise<string> =>
      (
        await api(cloud.services.compute, 'POST', `/servers/${id}/action`, {
          token,
          body: { 'os-getConsoleOutput': {} },
        })
      ).body.output ?? '';
    const waitConsole = async (part: string): Promise<string> => {
      const deadline = Date.now() + BOOT_TIMEOUT_MS - 30_000;
      let output = '';
      while (Date.now() < deadline) {
        output = await consoleLog();
        if (output.includes(part)) return output;
        await new Promise((r) => setTimeout(r, 2000));
      }
      throw new Error(`the console never shows "${part}":\n${output.slice(-3000)}`);
    };

    beforeAll(async () => {
      const image = await debianCloudImage();
      cloud = await startCloud({
        portBase: 26600,
        extraEnv: {
          NOVUM_COMPUTE_DRIVERS: 'kvm,container,fake',
          NOVUM_KVM_ACCEL: 'tcg',
          NOVUM_CONTAINER_RUNTIME: RUNTIME,
        },
      });
      admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
      demo = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-demo' };
      ({ token } = await issueToken(cloud.identityUrl, {
        user: 'demo',
        password: cloud.demoPassword,
        project: 'demo',
      }));
      await openstackOk(
        admin,
        ...['image', 'create', '--disk-format', 'qcow2', '--container-format', 'bare', '--public'],
        ...['--file', image, 'debian'],
      );
      const busybox = join(cloud.dataDir, 'busybox.tar');
      execFileSync(resolve(__dirname, '../../ops/images/build-busybox.sh'), [busybox], { stdio: 'ignore' });
      await openstackOk(
        admin,
        ...['image', 'create', '--disk-format', 'raw', '--container-format', 'docker', '--public'],
        ...['--file', busybox, 'busybox'],
      );
      await openstackOk(
        admin,
        ...['flavor', 'create', '--vcpus', '1', '--ram', '1024', '--disk', '4', '--public', 'm1.debian'],
      );
    }, BUILD_TIMEOUT_MS);

    afterAll(async () => {
      if (!cloud) return;
      for (const uuid of existsSync(instances()) ? readdirSync(instances()) : []) {
        try {
          process.kill(Number(readFileSync(join(instances(), uuid, 'qemu.pid'), 'utf8')), 'SIGKILL');
        } catch {
          /* not running */
        }
      }
      // The cloud first, so that its agents plug nothing again (a router) while its leftovers go.
      await cloud.stop();
      removeContainerLeftovers(cloud);
      await cloud.destroy();
    }, 60_000);

    it('boots the image: cloud-init runs the user data and sets the host name from the config drive', async () => {
      keyFile = join(cloud.dataDir, 'deb-key');
      await openstackOk(demo, 'keypair', 'create', '--private-key', keyFile, 'k');
      chmodSync(keyFile, 0o600);
      const userData = join(cloud.dataDir, 'ud.sh');
      writeFileSync(userData, `#!/bin/sh\necho "${marker} host=$(hostname)"\n`);
      const started = Date.now();
      const created = await openstackJson(
        demo,
        ...['server', 'create', '--flavor', 'm1.debian', '--image', 'debian', '--network', 'private'],
        ...['--key-name', 'k', '--user-data', userData, '--wait', 'deb1'],
      );
      expect(created).toMatchObject({ name: 'deb1', status: 'ACTIVE' });
      id = created.id;
      process.stdout.write(`debian server create --wait: ${Date.now() - started} ms\n`);

      const output = await waitConsole(`${marker} host=deb1`);
      process.stdout.write(`debian server create → user data ran (TCG): ${Date.now() - started} ms\n`);
      // cloud-init itself says it took its data from the config drive.
      expect(output).toMatch(/Cloud-init v\. [\d.]+/);
      expect(output).not.toContain(`${marker} host=debian`);
    });

    it('answers SSH on its fixed IP with the key pair, from a neighbour on the network', async () => {
      const { token: adminToken } = await issueToken(cloud.identityUrl, {
        user: 'admin',
        password: cloud.adminPassword,
        project: 'admin',
      });
      const [port] = (
        await api(cloud.services.network, 'GET', `/v2.0/ports?device_id=${id}`, { token: adminToken })
      ).body.ports;
      const guestIp: string = port.fixed_ips[0].ip_address;
      const bridge: string = port['binding:vif_details'].bridge_name;
      expect(existsSync(`/sys/class/net/${bridge}/bridge`)).toBe(true);
      // The host has no address on the bridge: the guest is reachable from inside the network only.
      expect(sh('ip', '-o', 'addr', 'show', 'dev', bridge)).not.toContain('inet ');

      // The neighbour: a container server on the same network, whose network namespace the host's ssh runs in.
      const neighbour = await openstackJson(
        demo,
        ...['server', 'create', '--flavor', 'c1.tiny', '--image', 'busybox', '--network', 'private'],
        ...['--wait', 'ssh-client'],
      );
      probeId = neighbour.id;
      const namespace = `novum-${probeId}`;
      const ssh = (key: string, ...command: string[]) =>
        promisify(execFile)(
          'ip',
          [
            ...['netns', 'exec', namespace, 'ssh', '-i', key, '-o', 'BatchMode=yes'],
            ...['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'],
            ...['-o', 'ConnectTimeout=10', `root@${guestIp}`, ...command],
          ],
          { timeout: 60_000 },
        );
      const deadline = Date.now() + 5 * 60_000;
      let answer = '';
      let error = '';
      while (Date.now() < deadline) {
        try {
          answer = (await ssh(keyFile, 'hostname')).stdout;
          break;
        } catch (e) {
          error = String((e as { stderr?: string }).stderr ?? e);
          await new Promise((r) => setTimeout(r, 3000));
        }
      }
      expect({ answer: answer.trim(), error: answer ? '' : error }).toEqual({ answer: 'deb1', error: '' });
      // The key pair is what cloud-init wrote to root's keys from the config drive.
      const publicKey = (await openstackOk(demo, 'keypair', 'show', '--public-key', 'k')).trim();
      expect((await ssh(keyFile, 'cat', '/root/.ssh/authorized_keys')).stdout.trim()).toBe(publicKey);

      // Another key is refused.
      const other = join(cloud.dataDir, 'other-key');
      sh('ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', other);
      await expect(ssh(other, 'hostname')).rejects.toThrow(/Permission denied/);
    });

    it('deletes the servers and leaves no process, tap, namespace or file behind', async () => {
      const pid = Number(readFileSync(join(instances(), id, 'qemu.pid'), 'utf8'));
      const tap = /ifname=([^,]+)/.exec(
        readFileSync(`/proc/${pid}/cmdline`, 'utf8')
          .split('\0')
          .find((arg) => arg.startsWith('tap,')) ?? '',
      )?.[1];
      expect(tap).toMatch(/^novum/);
      await openstackOk(demo, 'server', 'delete', '--wait', id, probeId);
      expect(
        existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(id),
      ).toBe(false);
      expect(existsSync(`/sys/class/net/${tap}`)).toBe(false);
      expect(readdirSync(instances())).toEqual([]);
      expect(sh('ip', 'netns', 'list')).not.toContain(`novum-${probeId}`);
      expect(containerHostLeftovers(cloud, [probeId])).toEqual([]);
    });
  },
);
