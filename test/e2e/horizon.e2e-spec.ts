import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createConnection, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, BrowserServer, Locator, Page } from 'playwright-core';
import { missingVmPrerequisites, VM_IMAGE_BANNER, vmTestImage } from '../../libs/virt/testing/vm-image';
import { CloudHandle, startCloud, testMode, waitForHttp } from './support/cloud';
import {
  containerHostLeftovers,
  hostTestSkip,
  missingHostTools,
  removeContainerLeftovers,
  RUNTIME,
  runtimeState,
  startContainerCloud,
} from './support/host';
import { openstackJson, openstackOk } from './support/openstack';

jest.setTimeout(180_000);

const ROOT = resolve(__dirname, '../..');
const PORT_BASE = 26800;
const HORIZON_PORT = PORT_BASE + 10;
const HORIZON = `http://127.0.0.1:${HORIZON_PORT}`;
const CHROMIUM = '/usr/bin/chromium';
const NOVUM_SETTINGS = '/etc/openstack-dashboard/local_settings.d/_9900_novum.py';
const SCREENSHOTS = join(process.env.NOVUM_TEST_OUTPUT_DIR ?? join(ROOT, 'test-output'), 'horizon');

function missingHorizon(): string | undefined {
  const tools = missingHostTools([CHROMIUM, '/usr/sbin/apache2'], 'chromium apache2');
  if (tools) return tools;
  if (!existsSync('/usr/share/openstack-dashboard/wsgi.py') || !existsSync(NOVUM_SETTINGS))
    return 'Horizon is not installed for Novum (bash ops/horizon/install.sh)';
  return undefined;
}

const skip = hostTestSkip('Horizon', missingHorizon());
/** Real containers when this host runs them (root, runc, busybox); the fake driver otherwise. */
const containers = !missingHostTools([RUNTIME, 'busybox', 'setfattr'], 'runc busybox-static attr');
/** QEMU guests (TCG without hardware KVM) beside the containers when this host can run them. */
const vms = containers && !missingVmPrerequisites();
/** The Glance image of the tiny VM of ops/images/build-vm-busybox.sh. */
const VM_IMAGE = 'tiny';
/** demo's key pair, made in Horizon and given to the instances by the wizard. */
const KEY_PAIR = 'horizon-key';

/** A guest as the host sees it, through its driver's own tools. */
interface GuestOnHost {
  /** The process that runs the guest (the container's init, or QEMU), undefined while none does. */
  pid(): number | undefined;
  /** Whether the guest's code runs: the container is running, the VM's shell answers on its serial console. */
  runs(): Promise<boolean>;
  /** Whether the guest is held: the container is frozen, the VM's shell does not answer though QEMU lives. */
  paused(): Promise<boolean>;
  /** What of the guest is left on the host ([] once it is deleted). */
  leftovers(): string[];
}

/** Whether a process has ended (gone, or a zombie its parent has not reaped yet). */
function processGone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].startsWith('Z');
  } catch {
    return true;
  }
}

/**
 * The real Horizon (Debian's openstack-dashboard and heat-dashboard, served by ops/horizon/serve.sh) against a
 * Novum cloud, clicked through in Debian's chromium. Any error banner, Horizon error page or failing dashboard
 * call fails the test; every page is kept as a screenshot.
 */
(skip ? describe.skip : describe)(
  `Horizon in chromium (${testMode()}, ${containers ? 'container' : 'fake'} driver${skip ? `; skipped: ${skip}` : ''})`,
  () => {
    let cloud: CloudHandle;
    let admin: Record<string, string>;
    let demo: Record<string, string>;
    let horizonDir: string;
    let apache: ChildProcess | undefined;
    let apacheExited: Promise<unknown> = Promise.resolve();
    let browserServer: BrowserServer | undefined;
    let browser: Browser;
    const image = containers ? 'busybox' : 'cirros';
    const flavor = containers ? 'c1.tiny' : 'm1.tiny';
    /** Dashboard calls that failed (5xx), collected from every page, as `METHOD URL STATUS`. */
    const failedCalls: string[] = [];
    let shot = 0;

    const screenshot = async (page: Page, name: string) => {
      await page.screenshot({
        path: join(SCREENSHOTS, `${String(++shot).padStart(2, '0')}-${name}.png`),
        fullPage: true,
      });
    };

    /** Fails on an error banner or toast, on Horizon's error pages, and on any failed dashboard call. */
    const assertNoErrors = async (page: Page, where: string) => {
      await page.waitForLoadState('networkidle');
      const banners = await page
        .locator('.alert-danger:visible, .alert-error:visible, .messages .error:visible')
        .allInnerTexts();
      const title = await page.title();
      const problems = [
        ...banners.map((text) => `banner: ${text.trim()}`),
        ...(/error|not found|forbidden|unauthori[sz]ed/i.test(title) ? [`error page: ${title}`] : []),
        ...failedCalls.splice(0).map((call) => `failed call: ${call}`),
      ];
      expect({ where, problems }).toEqual({ where, problems: [] });
    };

    const openPage = async (page: Page, path: string, name: string) => {
      const response = await page.goto(HORIZON + path);
      expect({ path, status: response?.status() }).toEqual({ path, status: 200 });
      await assertNoErrors(page, path);
      await screenshot(page, name);
    };

    const login = async (user: 'demo' | 'admin') => {
      const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
      const page = await context.newPage();
      page.on('response', (response) => {
        if (response.url().startsWith(HORIZON) && response.status() >= 500)
          failedCalls.push(`${response.request().method()} ${response.url()} ${response.status()}`);
      });
      await page.goto(`${HORIZON}/auth/login/`);
      await page.fill('#id_username', user);
      await page.fill('#id_password', user === 'demo' ? cloud.demoPassword : cloud.adminPassword);
      await Promise.all([
        page.waitForURL((url) => !url.pathname.startsWith('/auth/login')),
        page.click('#loginBtn'),
      ]);
      await assertNoErrors(page, `login as ${user}`);
      return page;
    };

    /** The text of each cell of each row of a Horizon table (`id` is its Meta name). */
    const cellsOf = async (page: Page, id: string) =>
      (await page.locator(`#${id} tbody tr`).allInnerTexts()).map((row) =>
        row.split('\t').map((cell) => cell.trim()),
      );

    /** The row of an instance in the Instances table, found by name. */
    const instanceRow = (page: Page, name: string) => page.locator(`#instances tr[data-display="${name}"]`);

    /** Runs an action of a table's row (its button, or an item of its menu), confirming it when asked. */
    const rowAction = async (page: Page, row: Locator, action: string, confirmed = true) => {
      const button = row.locator('td.actions_column .btn-group > :is(a, button)', { hasText: action });
      if (await button.count()) {
        await button.first().click();
      } else {
        await row.locator('.dropdown-toggle').click();
        await row.locator('.dropdown-menu :is(a, button)', { hasText: action }).click();
      }
      if (!confirmed) return;
      const confirm = page.locator('.modal-footer .btn', { hasText: action });
      const asked = await confirm
        .waitFor({ timeout: 3_000 })
        .then(() => true)
        .catch(() => false);
      if (asked) await confirm.click();
    };

    /** Launches an instance with the Launch Instance wizard and waits for its row to turn Active. */
    const launchInstance = async (page: Page, name: string, source: string, size: string) => {
      await openPage(page, '/project/instances/', `instances-before-${name}`);
      await page.click('#instances__action_launch-ng');
      const wizard = page.locator('.modal-dialog');
      const step = async (title: string) => {
        await wizard.locator('.wizard-nav a, .nav-pills a', { hasText: title }).first().click();
      };
      const allocate = (text: string) =>
        wizard.locator('tr', { hasText: text }).locator('button.fa-arrow-up').first().click();
      await wizard.locator('input[name="name"]').fill(name);
      await step('Source');
      await allocate(source);
      await step('Flavor');
      await wizard.locator('tr', { hasText: size }).first().waitFor();
      await allocate(size);
      await step('Networks');
      // The only network demo may boot on is allocated by the wizard itself.
      await wizard.locator('tr', { hasText: 'private' }).first().waitFor();
      await screenshot(page, `${name}-wizard-networks`);
      await step('Key Pair');
      // As the only key pair, the wizard allocates it itself.
      await wizard.locator('tr', { hasText: KEY_PAIR }).first().waitFor();
      const available = wizard.locator('tr', { hasText: KEY_PAIR }).locator('button.fa-arrow-up');
      if (await available.count()) await available.first().click();
      await screenshot(page, `${name}-wizard-key-pair`);
      await assertNoErrors(page, 'the Launch Instance wizard');
      await wizard.locator('button.finish').click();
      await wizard.waitFor({ state: 'detached' });

      const row = instanceRow(page, name);
      await row.waitFor();
      // Horizon polls the row until the server leaves its transitional state.
      await row.filter({ hasText: 'Active' }).waitFor({ timeout: 90_000 });
      await assertNoErrors(page, 'the instance table after the launch');
      await screenshot(page, `${name}-active`);
      const server = await openstackJson(demo, 'server', 'show', name);
      expect(server).toMatchObject({
        status: 'ACTIVE',
        flavor: expect.stringContaining(size),
        key_name: KEY_PAIR,
      });
      return { row, server };
    };

    /** Deletes an instance from its row's menu; done when neither the table nor the API lists it. */
    const deleteInstance = async (page: Page, row: Locator, name: string) => {
      await openPage(page, '/project/instances/', `${name}-before-delete`);
      await rowAction(page, row, 'Delete Instance');
      await row.waitFor({ state: 'detached', timeout: 90_000 });
      await assertNoErrors(page, 'the instance table after the delete');
      await screenshot(page, `${name}-deleted`);
      const deadline = Date.now() + 30_000;
      let left: unknown[];
      do {
        left = await openstackJson(demo, 'server', 'list', '--name', name);
        if (left.length) await new Promise((r) => setTimeout(r, 500));
      } while (left.length && Date.now() < deadline);
      expect(left).toEqual([]);
    };

    /** `openstack image show` of demo's image once it is active, or as it is at the deadline. */
    const activeImage = async (name: string) => {
      const deadline = Date.now() + 90_000;
      let image: any;
      do {
        image = await openstackJson(demo, 'image', 'show', name);
        if (image.status !== 'active') await new Promise((r) => setTimeout(r, 500));
      } while (image.status !== 'active' && Date.now() < deadline);
      return image;
    };

    /** The instances the wizard launched, for the Network Topology page and the deletes. */
    const launched: { name: string; uuid: string; guest?: GuestOnHost }[] = [];

    /** The instance's Log tab, reloaded until it shows `text`: it shows the console as it is when it loads. */
    const logTabShows = async (page: Page, uuid: string, text: string, name: string) => {
      const log = `/project/instances/${uuid}/?tab=instance_details__log`;
      const deadline = Date.now() + 60_000;
      await page.goto(HORIZON + log);
      while (!(await page.locator('pre.logs').innerText()).includes(text) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 1_000));
        await page.reload();
      }
      expect(await page.locator('pre.logs').innerText()).toContain(text);
      await assertNoErrors(page, `the Log tab of ${name}`);
      await screenshot(page, name);
    };

    /** A container as runc sees it. */
    const containerOnHost = (uuid: string): GuestOnHost => ({
      pid: () => runtimeState(cloud, uuid)?.pid,
      runs: async () => runtimeState(cloud, uuid)?.status === 'running',
      paused: async () => runtimeState(cloud, uuid)?.status === 'paused',
      leftovers: () => containerHostLeftovers(cloud, [uuid]),
    });

    const vmDir = (uuid: string) => join(cloud.dataDir, 'kvm', 'instances', uuid);

    /** The live QEMU of a guest: its pid, when the process exists (not a zombie) and runs this guest. */
    const qemuOf = (uuid: string): number | undefined => {
      const pidFile = join(vmDir(uuid), 'qemu.pid');
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
      if (!pid || processGone(pid)) return undefined;
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(uuid) ? pid : undefined;
      } catch {
        return undefined;
      }
    };

    /**
     * Whether the guest's shell answers a command typed on its serial console within `withinMs`. QEMU's serial
     * socket takes one client, and the agent only holds it while someone uses the serial console. The command is
     * typed again every two seconds: a guest still booting misses some, and one resumed after a pause may first
     * read the half of an earlier command that its UART kept.
     */
    const shellAnswers = (uuid: string, withinMs: number) =>
      new Promise<boolean>((answered) => {
        const deadline = Date.now() + withinMs;
        let output = '';
        let socket: Socket | undefined;
        let typed = 0;
        const finish = (result: boolean) => {
          clearInterval(typing);
          socket?.destroy();
          answered(result);
        };
        const type = () => {
          if (Date.now() >= deadline) return finish(false);
          if (!socket || socket.destroyed) {
            socket = createConnection(join(vmDir(uuid), 'serial.sock'));
            socket.on('data', (data) => {
              output += data.toString('latin1');
              // The answer, not the echo of the command (which shows `$((...))`).
              if (/novum-probe-\d+-answered/.test(output)) finish(true);
            });
            socket.on('error', () => socket?.destroy());
          }
          socket.write(`echo novum-probe-$((${++typed} + 1000))-answered\n`);
        };
        const typing = setInterval(type, 2_000);
        type();
      });

    /** A QEMU guest as the host sees it: its process, and its shell on the serial console. */
    const vmOnHost = (uuid: string): GuestOnHost => ({
      pid: () => qemuOf(uuid),
      runs: () => shellAnswers(uuid, 60_000),
      paused: async () => qemuOf(uuid) !== undefined && !(await shellAnswers(uuid, 5_000)),
      leftovers: () => (existsSync(vmDir(uuid)) ? [vmDir(uuid)] : []),
    });

    /**
     * Stop, Start, Soft Reboot, Pause and Resume from the instance's Actions menu, then Create Snapshot. Each
     * settles in the table (its status, and no task), in the API, and on the host: whether the guest has a
     * process, a new one or the same, and whether it runs, is paused or is stopped.
     */
    const runActions = async (page: Page, row: Locator, name: string, uuid: string, guest?: GuestOnHost) => {
      // The action; the Status and Power State columns and the API's status after it; the guest's process on
      // the host (none, a new one or the same as before) and whether it runs.
      const steps: [
        string,
        string,
        string,
        string,
        'none' | 'new' | 'same',
        'stopped' | 'running' | 'paused',
      ][] = [
        ['Shut Off Instance', 'Shutoff', 'Shut Down', 'SHUTOFF', 'none', 'stopped'],
        ['Start Instance', 'Active', 'Running', 'ACTIVE', 'new', 'running'],
        // Both drivers reboot softly by stopping the guest cleanly and starting it afresh.
        ['Soft Reboot Instance', 'Active', 'Running', 'ACTIVE', 'new', 'running'],
        ['Pause Instance', 'Paused', 'Paused', 'PAUSED', 'same', 'paused'],
        ['Resume Instance', 'Active', 'Running', 'ACTIVE', 'same', 'running'],
      ];
      await openPage(page, '/project/instances/', `${name}-before-actions`);
      // Settled: the status shown, no task in the Task column (after the zone), and the power state.
      const settled = (shown: string, power: string) =>
        page
          .locator(`#instances tr[data-display="${name}"]`, {
            hasText: new RegExp(`${shown}\\s+\\S+\\s+None\\s+${power}`),
          })
          .waitFor({ timeout: 90_000 });
      const onHost = async (action: string, before: number | undefined, expected: string) => {
        const pid = guest!.pid();
        let runs = 'stopped';
        if (pid !== undefined && expected === 'paused')
          runs = (await guest!.paused()) ? 'paused' : 'not paused';
        else if (pid !== undefined) runs = (await guest!.runs()) ? 'running' : 'not answering';
        return {
          action,
          process: pid === undefined ? 'none' : pid === before ? 'same' : 'new',
          previousGone: before === undefined || pid === before || processGone(before),
          runs,
        };
      };
      for (const [action, shown, power, status, process, runs] of steps) {
        const before = guest?.pid();
        await rowAction(page, row, action);
        await settled(shown, power);
        await assertNoErrors(page, `the instance table after ${action}`);
        await screenshot(page, `${name}-${action.toLowerCase().replace(/ /g, '-')}`);
        expect({ action, status: (await openstackJson(demo, 'server', 'show', uuid)).status }).toEqual({
          action,
          status,
        });
        if (guest)
          expect(await onHost(action, before, runs)).toEqual({ action, process, previousGone: true, runs });
      }

      const before = guest?.pid();
      const snapshot = `${name}-snap`;
      await rowAction(page, row, 'Create Snapshot', false);
      await page.locator('.modal-dialog #id_name').fill(snapshot);
      await page.locator('.modal-footer .btn-primary').click();
      await page.waitForURL(/\/project\/images\//);
      await assertNoErrors(page, 'the snapshot form');
      expect(await activeImage(snapshot)).toMatchObject({
        status: 'active',
        properties: expect.objectContaining({ image_type: 'snapshot', instance_uuid: uuid }),
      });
      await openPage(page, '/project/images/', `${name}-snapshot`);
      await page.locator('tr', { hasText: snapshot }).filter({ hasText: 'Active' }).first().waitFor();
      // The guest ran on through its snapshot.
      await openPage(page, '/project/instances/', `${name}-after-snapshot`);
      await settled('Active', 'Running');
      if (guest)
        expect(await onHost('Create Snapshot', before, 'running')).toEqual({
          action: 'Create Snapshot',
          process: 'same',
          previousGone: true,
          runs: 'running',
        });
    };

    beforeAll(async () => {
      rmSync(SCREENSHOTS, { recursive: true, force: true });
      mkdirSync(SCREENSHOTS, { recursive: true });
      if (containers) {
        ({ cloud, admin, demo } = await startContainerCloud(
          PORT_BASE,
          // QEMU keeps root: confinement is kvm-confinement's subject, and needs the user ops/install.sh makes.
          vms ? { NOVUM_COMPUTE_DRIVERS: 'container,kvm,fake', NOVUM_KVM_USER: 'none' } : {},
        ));
        if (vms)
          await openstackOk(
            admin,
            ...['image', 'create', '--disk-format', 'qcow2', '--container-format', 'bare', '--public'],
            ...['--file', vmTestImage(), VM_IMAGE],
          );
      } else {
        cloud = await startCloud({ portBase: PORT_BASE });
        admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
        demo = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-demo' };
        const file = join(cloud.dataDir, 'cirros.raw');
        writeFileSync(file, Buffer.alloc(8192, 1));
        await openstackOk(
          admin,
          ...['image', 'create', '--disk-format', 'raw', '--container-format', 'bare', '--public'],
          ...['--file', file, 'cirros'],
        );
      }

      horizonDir = mkdtempSync(join(tmpdir(), 'novum-horizon-'));
      const log = openSync(join(horizonDir, 'serve.log'), 'a');
      apache = spawn(
        'bash',
        [
          join(ROOT, 'ops/horizon/serve.sh'),
          ...['--foreground', '--port', String(HORIZON_PORT), '--dir', horizonDir],
          ...['--keystone-url', `${cloud.identityUrl}/v3`],
        ],
        { stdio: ['ignore', log, log] },
      );
      apacheExited = new Promise((done) => apache!.once('exit', done));
      await waitForHttp(`${HORIZON}/auth/login/`, 60_000);

      browserServer = await (
        await import('playwright-core')
      ).chromium.launchServer({
        executablePath: CHROMIUM,
        // Root cannot use chromium's sandbox; the browser only visits the loopback dashboard.
        args: ['--no-sandbox'],
      });
      browser = await (await import('playwright-core')).chromium.connect(browserServer.wsEndpoint());
    }, 180_000);

    afterAll(async () => {
      const chromiumPid = browserServer?.process().pid;
      await browser?.close().catch(() => undefined);
      await browserServer?.close().catch(() => undefined);
      if (chromiumPid) {
        try {
          process.kill(chromiumPid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      if (apache?.pid && apache.exitCode === null && apache.signalCode === null) {
        // SIGTERM to Apache's parent stops its workers and WSGI daemons with it.
        process.kill(apache.pid, 'SIGTERM');
        await Promise.race([apacheExited, new Promise((r) => setTimeout(r, 15_000))]);
        if (apache.exitCode === null && apache.signalCode === null) process.kill(apache.pid, 'SIGKILL');
      }
      if (horizonDir) {
        const errors = join(horizonDir, 'error.log');
        if (existsSync(errors)) writeFileSync(join(SCREENSHOTS, 'horizon-error.log'), readFileSync(errors));
        rmSync(horizonDir, { recursive: true, force: true });
      }
      if (cloud) {
        if (containers) removeContainerLeftovers(cloud);
        // A failed test's QEMU guests, which outlive the cloud as they outlive an agent restart.
        const guests = join(cloud.dataDir, 'kvm', 'instances');
        for (const uuid of existsSync(guests) ? readdirSync(guests) : []) {
          const pid = qemuOf(uuid);
          if (pid) process.kill(pid, 'SIGKILL');
        }
        await cloud.destroy();
      }
    }, 90_000);

    it('logs demo in and shows the Project pages without an error', async () => {
      const page = await login('demo');
      await openPage(page, '/project/', 'overview');
      expect(await page.locator('body').innerText()).toMatch(/Instances\s+Used 0 of 10/);
      await openPage(page, '/project/instances/', 'instances');
      await openPage(page, '/project/images/', 'images');
      expect(await page.locator('body').innerText()).toContain(image);
      await openPage(page, '/project/key_pairs/', 'key-pairs');
      await openPage(page, '/project/server_groups/', 'server-groups');
      await openPage(page, '/project/networks/', 'networks');
      expect(await page.locator('body').innerText()).toContain('private');
      await openPage(page, '/project/security_groups/', 'security-groups');
      await openPage(page, '/project/stacks/', 'stacks');
      await page.context().close();
    });

    it('uploads an image from a local file with Create Image, which becomes Active', async () => {
      const file = join(horizonDir, 'upload.qcow2');
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, '1M']);
      const data = readFileSync(file);
      const page = await login('demo');
      await openPage(page, '/project/images/', 'images-before-upload');
      await page.locator('button', { hasText: 'Create Image' }).first().click();
      const wizard = page.locator('.modal-dialog');
      await wizard.locator('#imageForm-name').fill('horizon-upload');
      const [chooser] = await Promise.all([
        page.waitForEvent('filechooser'),
        wizard.locator('#imageForm-image_file').click(),
      ]);
      await chooser.setFiles(file);
      await wizard.locator('#imageForm-format').selectOption({ label: 'QCOW2 - QEMU Emulator' });
      await screenshot(page, 'create-image-form');
      await wizard.locator('button.finish').click();
      await wizard.waitFor({ state: 'detached' });
      await assertNoErrors(page, 'the Create Image form');
      expect(await activeImage('horizon-upload')).toMatchObject({
        status: 'active',
        disk_format: 'qcow2',
        size: data.length,
        checksum: createHash('md5').update(data).digest('hex'),
      });
      await openPage(page, '/project/images/', 'image-uploaded');
      await page.locator('tr', { hasText: 'horizon-upload' }).filter({ hasText: 'Active' }).first().waitFor();
      await page.context().close();
    });

    it('creates a key pair with Create Key Pair', async () => {
      const page = await login('demo');
      await openPage(page, '/project/key_pairs/', 'key-pairs-before-create');
      await page.locator('button, a', { hasText: 'Create Key Pair' }).first().click();
      await page.locator('.modal-dialog #name').fill(KEY_PAIR);
      await page.locator('.modal-footer .btn-primary', { hasText: 'Create Key Pair' }).click();
      await page.locator('tr', { hasText: KEY_PAIR }).first().waitFor();
      await assertNoErrors(page, 'the key pair form');
      await screenshot(page, 'key-pair-created');
      const keypair = await openstackJson(demo, 'keypair', 'show', KEY_PAIR);
      expect(keypair).toMatchObject({ name: KEY_PAIR, type: 'ssh' });
      await page.context().close();
    });

    it('launches a container instance with the wizard, shows its console on the Log tab, and runs its Actions', async () => {
      const page = await login('demo');
      const name = 'horizon-one';
      const { row, server } = await launchInstance(page, name, image, flavor);
      const guest = containers ? containerOnHost(server.id) : undefined;
      launched.push({ name, uuid: server.id, guest });
      if (guest) expect(await guest.runs()).toBe(true);
      // The image's command greets with the container's hostname, the server's name.
      await logTabShows(page, server.id, containers ? `hello from ${name}` : '', `${name}-log`);
      await runActions(page, row, name, server.id, guest);
      await page.context().close();
    });

    (vms ? it : it.skip)(
      'launches an instance with a KVM flavour, shows its boot on the Log tab, and runs its Actions',
      async () => {
        const page = await login('demo');
        const name = 'horizon-vm';
        const { row, server } = await launchInstance(page, name, VM_IMAGE, 'm1.tiny');
        const guest = vmOnHost(server.id);
        launched.push({ name, uuid: server.id, guest });
        expect(guest.pid()).toBeDefined();
        // TCG boots the guest in seconds; its init prints the banner on the serial console.
        await logTabShows(page, server.id, VM_IMAGE_BANNER, `${name}-log`);

        // The Console tab: Horizon's serial console (term.js over the serial proxy's websocket) in a frame. What
        // is typed there reaches the guest's shell, whose answer shows in the terminal and in the console log.
        await openPage(
          page,
          `/project/instances/${server.id}/?tab=instance_details__console`,
          `${name}-console`,
        );
        const terminal = page.frameLocator('#console_embed');
        await terminal.locator('text=Status: Open').waitFor();
        await terminal.locator('.terminal').click();
        const answer = '42-typed-in-horizon';
        const deadline = Date.now() + 30_000;
        let shown = '';
        do {
          // (A shell still starting misses the first lines.)
          await page.keyboard.type('echo $((6*7))-typed-in-horizon\n');
          await new Promise((r) => setTimeout(r, 1_000));
          shown = await terminal.locator('.terminal').innerText();
        } while (!shown.includes(answer) && Date.now() < deadline);
        expect(shown).toContain(answer);
        await assertNoErrors(page, 'the Console tab of the VM');
        await screenshot(page, `${name}-console-typed`);
        expect(await openstackOk(demo, 'console', 'log', 'show', server.id)).toContain(answer);

        await runActions(page, row, name, server.id, guest);
        await page.context().close();
      },
    );

    it('creates a network and its subnet, and shows them and the instances on the Network Topology page', async () => {
      const page = await login('demo');
      await openPage(page, '/project/networks/', 'networks-before-create');
      await page.locator('a, button', { hasText: 'Create Network' }).first().click();
      const form = page.locator('.modal-dialog');
      await form.locator('#id_net_name').fill('horizon-net');
      await form.locator('.btn', { hasText: 'Next' }).click();
      await form.locator('#id_subnet_name').fill('horizon-subnet');
      await form.locator('#id_cidr').fill('192.168.99.0/24');
      await form.locator('.btn', { hasText: 'Next' }).click();
      await form.locator('.modal-footer .btn-primary', { hasText: 'Create' }).click();
      await page.locator('#networks tr', { hasText: 'horizon-net' }).first().waitFor();
      await assertNoErrors(page, 'the network form');
      await screenshot(page, 'network-created');
      const subnet = await openstackJson(demo, 'subnet', 'show', 'horizon-subnet');
      expect(subnet).toMatchObject({ cidr: '192.168.99.0/24', gateway_ip: '192.168.99.1' });

      await openPage(page, '/project/network_topology/', 'network-topology');
      await page.locator('text=horizon-net').first().waitFor();
      const privateNet = await openstackJson(demo, 'network', 'show', 'private');
      // Each instance drawn on `private`; hovering it opens its balloon with its full name and status.
      for (const { name, uuid } of launched) {
        const device = page.locator(`g.network[id="id_${privateNet.id}"] g.device[id="id_${uuid}"]`);
        // (Its icon: the middle of the whole device is its port's line, which takes no pointer.)
        await device.locator('.icon').hover();
        await page.locator('.topologyBalloon', { hasText: name }).filter({ hasText: 'Active' }).waitFor();
        await screenshot(page, `network-topology-${name}`);
      }
      await assertNoErrors(page, 'the network topology');
      await page.context().close();
    });

    it('deletes the instances from their Actions menus: gone from the table, the API and the host', async () => {
      expect(launched.length).toBeGreaterThan(0);
      const page = await login('demo');
      for (const { name, guest } of launched) {
        const pid = guest?.pid();
        await deleteInstance(page, instanceRow(page, name), name);
        if (guest)
          expect({
            name,
            processGone: pid === undefined || processGone(pid),
            left: guest.leftovers(),
          }).toEqual({
            name,
            processGone: true,
            left: [],
          });
      }
      await page.context().close();
    });

    it('launches a stack from a template, shows its Overview, Resources and Events, and deletes it', async () => {
      const page = await login('demo');
      await openPage(page, '/project/stacks/', 'stacks-before-launch');
      await page.locator('#stacks__action_launch').click();
      const form = page.locator('.modal-dialog');
      // Horizon's themable select: a hidden <select> behind a dropdown.
      await form.locator('.themable-select:has(#id_template_source) .dropdown-toggle').click();
      await form.locator('.themable-select:has(#id_template_source) a[data-select-value="raw"]').click();
      const template = [
        "heat_template_version: '2018-08-31'",
        'parameters:',
        '  flavor: {type: string, default: ' + flavor + '}',
        'resources:',
        '  suffix: {type: OS::Heat::RandomString, properties: {length: 6}}',
        '  server:',
        '    type: OS::Nova::Server',
        '    properties:',
        '      image: ' + image,
        '      flavor: {get_param: flavor}',
        '      networks: [{network: private}]',
        '      name: {list_join: [-, [horizon-stack, {get_resource: suffix}]]}',
        'outputs:',
        '  server_id: {value: {get_resource: server}}',
      ].join('\n');
      await form.locator('#id_template_data').fill(template);
      await form.locator('.modal-footer .btn-primary').click();
      await form.locator('#id_stack_name').fill('horizon-stack');
      await form.locator('#id___param_flavor').waitFor();
      if (await form.locator('#id_password').count())
        await form.locator('#id_password').fill(cloud.demoPassword);
      await screenshot(page, 'launch-stack-form');
      await form.locator('.modal-footer .btn-primary').click();
      const row = page.locator('#stacks tr[data-display="horizon-stack"]');
      await row.waitFor();
      await page
        .locator('#stacks tr[data-display="horizon-stack"]', { hasText: 'Create Complete' })
        .waitFor({ timeout: 120_000 });
      await assertNoErrors(page, 'the stack table after the launch');
      await screenshot(page, 'stack-create-complete');
      const stack = await openstackJson(demo, 'stack', 'show', 'horizon-stack');
      expect(stack).toMatchObject({ stack_status: 'CREATE_COMPLETE' });
      const resources = await openstackJson(demo, 'stack', 'resource', 'list', 'horizon-stack');
      const server = resources.find((r: any) => r.resource_name === 'server');
      expect(server).toMatchObject({ resource_type: 'OS::Nova::Server', resource_status: 'CREATE_COMPLETE' });
      if (containers) expect(runtimeState(cloud, server.physical_resource_id)?.status).toBe('running');

      const detail = `/project/stacks/stack/${stack.id}/`;
      await openPage(page, `${detail}?tab=stack_details__overview`, 'stack-overview');
      const overview = await page.locator('body').innerText();
      expect(overview).toContain('horizon-stack');
      expect(overview).toContain(server.physical_resource_id);
      await openPage(page, `${detail}?tab=stack_details__resources`, 'stack-resources');
      const resourcesTab = page.locator('#resources');
      expect(await resourcesTab.innerText()).toMatch(/server[\s\S]*OS::Nova::Server/);
      expect(await resourcesTab.innerText()).toContain('suffix');
      await openPage(page, `${detail}?tab=stack_details__events`, 'stack-events');
      expect(await page.locator('#events').innerText()).toMatch(/Create Complete/);
      await openPage(page, `${detail}?tab=stack_details__stack_template`, 'stack-template');
      expect(await page.locator('body').innerText()).toContain('OS::Heat::RandomString');

      await openPage(page, '/project/stacks/', 'stacks-before-delete');
      await row.locator('.dropdown-toggle').click();
      await row.locator('.dropdown-menu :is(a, button)', { hasText: 'Delete Stack' }).click();
      await page.locator('.modal-footer .btn', { hasText: 'Delete Stack' }).click();
      await row.waitFor({ state: 'detached', timeout: 120_000 });
      await assertNoErrors(page, 'the stack table after the delete');
      const deadline = Date.now() + 60_000;
      let left: unknown[];
      do {
        left = await openstackJson(demo, 'stack', 'list');
        if (left.length) await new Promise((r) => setTimeout(r, 500));
      } while (left.length && Date.now() < deadline);
      expect(left).toEqual([]);
      if (containers) expect(runtimeState(cloud, server.physical_resource_id)).toBeUndefined();
      await page.context().close();
    });

    it('creates a flavor with an extra spec, a project and a user, and makes the user a member, as admin', async () => {
      const page = await login('admin');
      await openPage(page, '/admin/flavors/', 'flavors-before-create');
      await page.locator('#flavors__action_create').click();
      const form = page.locator('.modal-dialog');
      await form.locator('#id_name').fill('horizon.flavor');
      await form.locator('#id_vcpus').fill('1');
      await form.locator('#id_memory_mb').fill('128');
      await form.locator('#id_disk_gb').fill('1');
      await form.locator('.modal-footer .btn-primary').click();
      const flavorRow = page.locator('#flavors tr', { hasText: 'horizon.flavor' }).first();
      await flavorRow.waitFor();
      await assertNoErrors(page, 'the flavor form');
      await screenshot(page, 'flavor-created');
      // The metadata modal's Custom item: a key of one's own, then its value.
      await rowAction(page, flavorRow, 'Update Metadata', false);
      // (Typed before the modal's Angular form binds its model, the key is lost and "+" adds nothing: then again.)
      const value = form.locator('.metadata-tree-item input[name="property"]');
      for (let attempt = 1; ; attempt++) {
        await form.locator('input[name="customItem"]').fill('quota:cpu_shares');
        await form.locator('[ng-form="customItemForm"] button').click();
        const shown = await value.waitFor({ timeout: 5_000 }).then(
          () => true,
          () => false,
        );
        if (shown || attempt === 3) break;
      }
      await value.fill('512');
      await screenshot(page, 'flavor-metadata');
      await form.locator('.modal-footer .btn-primary').click();
      await form.waitFor({ state: 'detached' });
      await flavorRow.filter({ hasText: /Yes\s+Yes/ }).waitFor();
      await assertNoErrors(page, 'the flavor metadata form');
      expect(await openstackJson(admin, 'flavor', 'show', 'horizon.flavor')).toMatchObject({
        vcpus: 1,
        ram: 128,
        disk: 1,
        properties: { 'quota:cpu_shares': '512' },
      });

      await openPage(page, '/identity/', 'projects-before-create');
      await page.locator('#tenants__action_create').click();
      await form.locator('#id_name').fill('horizon-project');
      await form.locator('.modal-footer .btn-primary').click();
      await page.locator('#tenants tr', { hasText: 'horizon-project' }).first().waitFor();
      await assertNoErrors(page, 'the project form');
      await screenshot(page, 'project-created');
      expect(await openstackJson(admin, 'project', 'show', 'horizon-project')).toMatchObject({
        enabled: true,
      });

      await openPage(page, '/identity/users/', 'users-before-create');
      await page.locator('#users__action_create').click();
      await form.locator('#id_name').fill('horizon-user');
      await form.locator('#id_password').fill('horizon-secret-1');
      await form.locator('#id_confirm_password').fill('horizon-secret-1');
      await form.locator('.modal-footer .btn-primary').click();
      await page.locator('#users tr', { hasText: 'horizon-user' }).first().waitFor();
      await assertNoErrors(page, 'the user form');
      await screenshot(page, 'user-created');
      expect(await openstackJson(admin, 'user', 'show', 'horizon-user')).toMatchObject({ enabled: true });

      await openPage(page, '/identity/', 'projects-before-members');
      await rowAction(
        page,
        page.locator('#tenants tr', { hasText: 'horizon-project' }).first(),
        'Manage Members',
        false,
      );
      const available = form.locator('ul.available_update_members ul.nav', { hasText: 'horizon-user' });
      await available.locator('a[href="#add_remove"]').click();
      await form.locator('ul.update_members_members ul.nav', { hasText: 'horizon-user' }).waitFor();
      await screenshot(page, 'project-members');
      await form.locator('.modal-footer .btn-primary').click();
      await form.waitFor({ state: 'detached' });
      await assertNoErrors(page, 'the project members form');
      expect(
        await openstackJson(admin, 'role', 'assignment', 'list', '--project', 'horizon-project', '--names'),
      ).toEqual([expect.objectContaining({ Role: 'member', User: 'horizon-user@Default' })]);
      await page.context().close();
    });

    it("shows admin the host's usage, the compute services, every project's instances and the Identity pages", async () => {
      // One server of each project; with containers, demo's is a container and admin's an m1 (kvm) server,
      // a QEMU guest (or, when the host cannot run one, a guest of its fake driver): two drivers of one host.
      const servers = ['horizon-of-demo', 'horizon-of-admin'];
      const boot = (env: Record<string, string>, source: string, size: string, name: string) =>
        openstackJson(
          env,
          'server',
          'create',
          '--image',
          source,
          '--flavor',
          size,
          '--network',
          'private',
          '--wait',
          name,
        );
      const created = await Promise.all([
        boot(demo, image, flavor, servers[0]),
        boot(admin, vms ? VM_IMAGE : image, 'm1.tiny', servers[1]),
      ]);
      expect(created.map((server) => server.status)).toEqual(['ACTIVE', 'ACTIVE']);
      const [hypervisor] = await openstackJson(admin, 'hypervisor', 'list', '--long');
      // The host's one hypervisor names each of its drivers' types.
      if (vms) expect(hypervisor['Hypervisor Type']).toBe(`${RUNTIME},QEMU,fake`);
      // running_vms comes from the agent's periodic report (as from Nova's resource tracker), which may not
      // have run since both guests started: wait for the one that counts them.
      const runningVms = async () =>
        Number(
          (await openstackJson(admin, 'hypervisor', 'show', hypervisor['Hypervisor Hostname'])).running_vms,
        );
      for (const until = Date.now() + 60_000; (await runningVms()) !== 2 && Date.now() < until;)
        await new Promise((resolve) => setTimeout(resolve, 1000));
      const page = await login('admin');
      await openPage(page, '/admin/hypervisors/', 'admin-hypervisors');
      // Hostname, Type, VCPUs (used), VCPUs (total), RAM (used), RAM (total), Local Storage (used and total), Instances.
      expect(await cellsOf(page, 'hypervisors')).toEqual([
        [
          hypervisor['Hypervisor Hostname'],
          hypervisor['Hypervisor Type'],
          '2',
          String(hypervisor.vCPUs),
          expect.any(String),
          expect.any(String),
          expect.any(String),
          expect.any(String),
          '2',
        ],
      ]);
      expect(await page.locator('body').innerText()).toMatch(/VCPU Usage\s+Used 2 of/);
      await page.locator('#hypervisors tbody tr a').first().click();
      await assertNoErrors(page, 'the hypervisor page');
      await screenshot(page, 'admin-hypervisor-servers');
      for (const server of created) await page.locator('tr', { hasText: server.id }).waitFor();
      await openPage(page, '/admin/hypervisors/?tab=hypervisor_info__compute_host', 'admin-compute-host');
      await page.locator('#compute_host tbody tr', { hasText: /Enabled\s+Up/ }).waitFor();
      await openPage(page, '/admin/info/?tab=system_info__nova_services', 'admin-compute-services');
      // Name, Host, Zone, Status, State, Last Updated.
      const services = (await cellsOf(page, 'nova_services')).map(([name, , , status, state]) => [
        name,
        status,
        state,
      ]);
      expect(services.sort()).toEqual(
        ['nova-compute', 'nova-conductor', 'nova-scheduler'].map((name) => [name, 'Enabled', 'Up']),
      );
      await openPage(page, '/admin/flavors/', 'admin-flavors');
      expect(await page.locator('body').innerText()).toContain(flavor);
      await openPage(page, '/admin/instances/', 'admin-instances');
      await page.locator('#instances tr', { hasText: /demo[\s\S]*horizon-of-demo/ }).waitFor();
      await page.locator('#instances tr', { hasText: /admin[\s\S]*horizon-of-admin/ }).waitFor();
      await openstackOk(admin, 'server', 'delete', '--wait', ...created.map((server) => server.id));
      await openPage(page, '/admin/info/', 'admin-system-information');
      // Projects is the Identity dashboard's default panel.
      await openPage(page, '/identity/', 'identity-projects');
      expect(await page.locator('body').innerText()).toContain('demo');
      await openPage(page, '/identity/users/', 'identity-users');
      await page.context().close();
    });
  },
);
