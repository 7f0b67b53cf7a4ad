import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  missingVmPrerequisites,
  VM_IMAGE_BANNER,
  VM_IMAGE_BOOTLOADER,
  vmTestImage,
} from '../../libs/virt/testing/vm-image';
import { CloudHandle, startCloud, testMode } from './support/cloud';
import { hostTestSkip } from './support/host';
import { api, issueToken } from './support/keystone';
import { openstackJson, openstackOk } from './support/openstack';

jest.setTimeout(120_000);

const skip = hostTestSkip('kvm server', missingVmPrerequisites());

/**
 * m1.* servers as QEMU virtual machines (NOVUM_COMPUTE_DRIVERS=kvm,fake, TCG here), driven by
 * /usr/bin/openstack. One guest serves every test: TCG boots take seconds.
 */
(skip ? describe.skip : describe)(
  `kvm servers with /usr/bin/openstack (${testMode()}${skip ? `; skipped: ${skip}` : ''})`,
  () => {
    let cloud: CloudHandle;
    let admin: Record<string, string>;
    let demo: Record<string, string>;
    let token: string;
    let id: string;
    /** The host device of the server's port. */
    let tap: string | undefined;

    const instances = () => join(cloud.dataDir, 'kvm', 'instances');
    const pidOf = (uuid: string): number | undefined => {
      try {
        return Number(readFileSync(join(instances(), uuid, 'qemu.pid'), 'utf8').trim());
      } catch {
        return undefined;
      }
    };
    /** The live QEMU of the server: its pid, when the process exists (not a zombie) and runs this guest. */
    const qemuOf = (uuid: string): number | undefined => {
      const pid = pidOf(uuid);
      if (!pid) return undefined;
      try {
        if (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].startsWith('Z')) return undefined;
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(uuid) ? pid : undefined;
      } catch {
        return undefined;
      }
    };
    const gone = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].startsWith('Z');
      } catch {
        return true;
      }
    };
    /** The server as the API shows it (polled over HTTP: the CLI takes a second or two per call). */
    const show = async (server: string) =>
      (await api(cloud.services.compute, 'GET', `/servers/${server}`, { token })).body.server;
    const waitStatus = async (server: string, status: string) => {
      const deadline = Date.now() + 60_000;
      let shown: any;
      do {
        shown = await show(server);
        if (shown.status === status && !shown['OS-EXT-STS:task_state']) return shown;
        await new Promise((r) => setTimeout(r, 100));
      } while (Date.now() < deadline);
      throw new Error(`${server} is ${shown.status}/${shown['OS-EXT-STS:task_state']}, not ${status}`);
    };
    /** os-getConsoleOutput over HTTP, for polling; the first test reads it with the CLI too. */
    const consoleLog = async (): Promise<string> =>
      (
        await api(cloud.services.compute, 'POST', `/servers/${id}/action`, {
          token,
          body: { 'os-getConsoleOutput': {} },
        })
      ).body.output;
    const count = (text: string, part: string) => text.split(part).length - 1;
    /** The console once it shows `part` at least `times` times (the guest booted that often). */
    const waitConsole = async (part: string, times: number) => {
      const deadline = Date.now() + 60_000;
      let output = '';
      while (Date.now() < deadline) {
        output = await consoleLog();
        if (count(output, part) >= times) return output;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`the console shows "${part}" fewer than ${times} times:\n${output.slice(-1500)}`);
    };

    beforeAll(async () => {
      const image = vmTestImage();
      cloud = await startCloud({
        portBase: 24400,
        extraEnv: { NOVUM_COMPUTE_DRIVERS: 'kvm,fake', NOVUM_KVM_ACCEL: 'tcg' },
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
        'image',
        'create',
        '--disk-format',
        'qcow2',
        '--container-format',
        'bare',
        '--public',
        '--file',
        image,
        'tiny',
      );
    }, 120_000);

    afterAll(async () => {
      if (!cloud) return;
      // A failed test must not leave a QEMU running.
      for (const uuid of existsSync(instances()) ? readdirSync(instances()) : []) {
        const pid = qemuOf(uuid);
        if (pid) process.kill(pid, 'SIGKILL');
      }
      await cloud.destroy();
    }, 60_000);

    it('creates an m1.tiny server as a running QEMU guest that reads its config drive', async () => {
      const started = Date.now();
      const created = await openstackJson(
        demo,
        'server',
        'create',
        '--flavor',
        'm1.tiny',
        '--image',
        'tiny',
        '--network',
        'private',
        '--wait',
        'vm1',
      );
      const took = Date.now() - started;
      expect(created).toMatchObject({ name: 'vm1', status: 'ACTIVE' });
      id = created.id;
      process.stdout.write(`kvm server create --wait (CLI, first boot of the image): ${took} ms\n`);

      const pid = qemuOf(id);
      expect(pid).toBeDefined();
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      expect(cmdline).toEqual(
        expect.arrayContaining(['-accel', 'tcg,tb-size=128', '-m', '512M', '-smp', '1']),
      );
      expect((await show(id))['OS-EXT-STS:power_state']).toBe(1);
      // Its port is a virtio NIC with the port's MAC on the tap the host network made for it.
      const { ports } = (await api(cloud.services.network, 'GET', `/v2.0/ports?device_id=${id}`, { token }))
        .body;
      expect(ports).toHaveLength(1);
      expect(cmdline.find((arg) => arg.startsWith('virtio-net-pci,'))).toContain(
        `mac=${ports[0].mac_address}`,
      );
      tap = /ifname=([^,]+)/.exec(cmdline.find((arg) => arg.startsWith('tap,')) ?? '')?.[1];
      expect(tap).toMatch(/^novum/);
      expect(existsSync(`/sys/class/net/${tap}/master`)).toBe(true);
      expect(
        readFileSync(join('/sys/fs/cgroup/memory/novum', id, 'memory.limit_in_bytes'), 'utf8').trim(),
      ).toBe(String((512 + 256) * 1024 * 1024));

      await waitConsole('novum-guest ready', 1);
      const output = await openstackOk(demo, 'console', 'log', 'show', id);
      expect(output).toContain(VM_IMAGE_BANNER);
      expect(output).toContain(`novum-guest hostname=vm1 uuid=${id}`);
      process.stdout.write(
        `kvm server create → guest ready on the serial console: ${Date.now() - started} ms\n`,
      );
    });

    it('stops the guest cleanly (no process left) and starts it again (a new boot)', async () => {
      const pid = qemuOf(id)!;
      await openstackOk(demo, 'server', 'stop', id);
      await waitStatus(id, 'SHUTOFF');
      expect(gone(pid)).toBe(true);
      expect(qemuOf(id)).toBeUndefined();
      expect((await show(id))['OS-EXT-STS:power_state']).toBe(4);
      // A clean shutdown: the guest answered the ACPI power button.
      expect(await consoleLog()).toContain('novum-guest: power button, powering off');

      await openstackOk(demo, 'server', 'start', id);
      await waitStatus(id, 'ACTIVE');
      expect(qemuOf(id)).toBeDefined();
      expect(qemuOf(id)).not.toBe(pid);
      await waitConsole(VM_IMAGE_BOOTLOADER, 2);
    });

    it('reboots hard: the same QEMU resets the guest, whose boot loader runs again', async () => {
      const pid = qemuOf(id);
      await openstackOk(demo, 'server', 'reboot', '--hard', '--wait', id);
      await waitStatus(id, 'ACTIVE');
      expect(qemuOf(id)).toBe(pid);
      await waitConsole(VM_IMAGE_BOOTLOADER, 3);
    });

    it('pauses and unpauses the guest', async () => {
      await openstackOk(demo, 'server', 'pause', id);
      const paused = await waitStatus(id, 'PAUSED');
      expect(paused['OS-EXT-STS:power_state']).toBe(3);
      expect(qemuOf(id)).toBeDefined();
      await openstackOk(demo, 'server', 'unpause', id);
      const running = await waitStatus(id, 'ACTIVE');
      expect(running['OS-EXT-STS:power_state']).toBe(1);
    });

    it('suspends the guest to a file (no process) and resumes it where it was', async () => {
      const pid = qemuOf(id)!;
      const boots = count(await consoleLog(), VM_IMAGE_BOOTLOADER);
      await openstackOk(demo, 'server', 'suspend', id);
      const suspended = await waitStatus(id, 'SUSPENDED');
      expect(suspended['OS-EXT-STS:power_state']).toBe(7);
      expect(gone(pid)).toBe(true);
      expect(existsSync(join(instances(), id, 'suspended.state'))).toBe(true);

      await openstackOk(demo, 'server', 'resume', id);
      await waitStatus(id, 'ACTIVE');
      expect(qemuOf(id)).toBeDefined();
      expect(existsSync(join(instances(), id, 'suspended.state'))).toBe(false);
      // The guest went on where it was: no boot loader ran again.
      expect(count(await consoleLog(), VM_IMAGE_BOOTLOADER)).toBe(boots);
    });

    let readyBeforeResize = 0;
    /** The arguments after each `option` on the command line of the server's QEMU. */
    const argOf = (option: string) => {
      const args = readFileSync(`/proc/${qemuOf(id)}/cmdline`, 'utf8').split('\0');
      return args.flatMap((arg, i) => (arg === option ? [args[i + 1]] : []));
    };

    it('resizes to a bigger flavour (a new QEMU with its vCPUs and RAM) and confirms', async () => {
      await openstackOk(
        admin,
        'flavor',
        'create',
        '--vcpus',
        '2',
        '--ram',
        '640',
        '--disk',
        '2',
        '--property',
        'novum:driver=kvm',
        'm1.resize-test',
      );
      const pid = qemuOf(id)!;
      readyBeforeResize = count(await consoleLog(), 'novum-guest ready');
      await openstackOk(demo, 'server', 'resize', '--flavor', 'm1.resize-test', id);
      await waitStatus(id, 'VERIFY_RESIZE');
      expect(gone(pid)).toBe(true);
      expect(argOf('-smp')).toEqual(['2']);
      expect(argOf('-m')).toEqual(['640M']);
      expect(existsSync(join(instances(), id, 'disk.resize-orig'))).toBe(true);

      await openstackOk(demo, 'server', 'resize', 'confirm', id);
      await waitStatus(id, 'ACTIVE');
      expect(existsSync(join(instances(), id, 'disk.resize-orig'))).toBe(false);
      expect(argOf('-smp')).toEqual(['2']);
    });

    it('reports diagnostics from QEMU (admin, 2.48)', async () => {
      const { token: adminToken } = await issueToken(cloud.identityUrl, {
        user: 'admin',
        password: cloud.adminPassword,
        project: 'admin',
      });
      const { status, body } = await api(cloud.services.compute, 'GET', `/servers/${id}/diagnostics`, {
        token: adminToken,
        headers: { 'OpenStack-API-Version': 'compute 2.48' },
      });
      expect(status).toBe(200);
      expect(body).toMatchObject({ state: 'running', hypervisor: 'qemu', num_cpus: 2, num_nics: 1 });
      expect(body.memory_details.maximum).toBe(640);
      expect(body.nic_details[0].mac_address).toMatch(/^fa:16:3e:/);
    });

    it('rescues the server (the rescue image boots first, its disk second) and unrescues it', async () => {
      // Booted since the resize, so that it answers the ACPI power button rescue presses.
      await waitConsole('novum-guest ready', readyBeforeResize + 1);
      await openstackOk(demo, 'server', 'rescue', id);
      await waitStatus(id, 'RESCUE');
      expect(argOf('-device').filter((arg) => arg.includes('bootindex'))).toEqual([
        'virtio-blk-pci,drive=rescue,id=rescue-disk,bootindex=1',
      ]);
      expect(argOf('-blockdev').map((arg) => /node-name=(\w+)/.exec(arg)?.[1])).toEqual([
        'rescue',
        'root',
        'config',
      ]);

      await openstackOk(demo, 'server', 'unrescue', id);
      await waitStatus(id, 'ACTIVE');
      expect(existsSync(join(instances(), id, 'disk.rescue'))).toBe(false);
      expect(argOf('-device').filter((arg) => arg.includes('bootindex'))).toEqual([
        'virtio-blk-pci,drive=root,id=root-disk,bootindex=1',
      ]);
    });

    it('deletes the server and leaves no process, cgroup, tap or file behind', async () => {
      const pid = qemuOf(id)!;
      await openstackOk(demo, 'server', 'delete', '--wait', id);
      expect(gone(pid)).toBe(true);
      expect(existsSync(join('/sys/fs/cgroup/memory/novum', id))).toBe(false);
      expect(existsSync(`/sys/class/net/${tap}`)).toBe(false);
      expect(readdirSync(instances())).toEqual([]);
    });
  },
);
