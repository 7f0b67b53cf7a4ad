import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudHandle, startCloud, testMode } from './support/cloud';
import { api, issueToken } from './support/keystone';
import { openstack, openstackJson, openstackOk } from './support/openstack';
import { openSerialConsole, upgradeStatus } from './support/serial-console';

jest.setTimeout(60_000);

/** Seconds a console token lives in this cloud: short, so that the expiry is seen. */
const TOKEN_TTL = 6;

/**
 * The serial console API and its websocket proxy on the fake driver (its serial port echoes what it is sent):
 * `openstack console url show --serial`, the proxy's token checks, shared sessions, Nova's error codes.
 * The KVM guest's real console is test/e2e/kvm-console.e2e-spec.ts.
 */
describe(`serial console proxy on the fake driver (${testMode()})`, () => {
  let cloud: CloudHandle;
  let demo: Record<string, string>;
  let demoToken: string;
  let altToken: string;
  let adminToken: string;
  let id: string;

  const compute = (
    method: string,
    path: string,
    token: string,
    body?: unknown,
    version = '2.1',
  ): ReturnType<typeof api> =>
    api(cloud.services.compute, method, path, {
      token,
      body,
      headers: { 'openstack-api-version': `compute ${version}` },
    });
  const remoteConsole = (token: string, body: unknown, server = id) =>
    compute('POST', `/servers/${server}/remote-consoles`, token, body, '2.6');
  const serialUrl = async (): Promise<string> => {
    const response = await remoteConsole(demoToken, {
      remote_console: { protocol: 'serial', type: 'serial' },
    });
    expect(response.status).toBe(200);
    return response.body.remote_console.url;
  };
  const waitStatus = async (server: string, status: string) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const shown = (await compute('GET', `/servers/${server}`, demoToken)).body.server;
      if (shown.status === status && !shown['OS-EXT-STS:task_state']) return;
      if (Date.now() > deadline) throw new Error(`${server} is ${shown.status}, not ${status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 25700, extraEnv: { NOVUM_CONSOLE_TOKEN_TTL: String(TOKEN_TTL) } });
    const admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
    demo = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-demo' };
    const password = cloud.demoPassword;
    demoToken = (await issueToken(cloud.identityUrl, { user: 'demo', password, project: 'demo' })).token;
    altToken = (await issueToken(cloud.identityUrl, { user: 'alt_demo', password, project: 'alt_demo' }))
      .token;
    adminToken = (
      await issueToken(cloud.identityUrl, { user: 'admin', password: cloud.adminPassword, project: 'admin' })
    ).token;
    const file = join(cloud.dataDir, 'tiny.raw');
    writeFileSync(file, Buffer.alloc(4096, 1));
    await openstackOk(
      admin,
      ...['image', 'create', '--disk-format', 'raw', '--container-format', 'bare', '--public'],
      ...['--file', file, 'tiny'],
    );
    const created = await openstackJson(
      demo,
      ...['server', 'create', '--flavor', 'm1.tiny', '--image', 'tiny', '--network', 'private', '--wait'],
      'console-vm',
    );
    id = created.id;
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('gives a console URL to `openstack console url show --serial` that reaches the guest', async () => {
    const shown = await openstackJson(demo, 'console', 'url', 'show', '--serial', 'console-vm');
    expect(shown).toMatchObject({
      type: 'serial',
      url: expect.stringMatching(/^ws:\/\/127\.0\.0\.1:25705\/\?token=/),
    });
    const session = await openSerialConsole(shown.url);
    session.send('novum-hello\r\n');
    await session.waitFor(/novum-hello/);
    await session.close();
  });

  it('lets a client reconnect with its token until it expires, and shares the port between clients', async () => {
    const url = await serialUrl();
    const first = await openSerialConsole(url);
    const second = await openSerialConsole(url);
    first.send('from-the-first\n');
    await second.waitFor(/from-the-first/);
    await first.waitFor(/from-the-first/);
    await first.close();
    second.send('still-there\n');
    await second.waitFor(/still-there/);
    await second.close();
    await new Promise((r) => setTimeout(r, (TOKEN_TTL + 1) * 1000));
    expect(await upgradeStatus(url)).toBe(401);
  });

  it('refuses a bad token, no token, and a page from another origin', async () => {
    const url = await serialUrl();
    const base = url.slice(0, url.indexOf('?'));
    expect(await upgradeStatus(`${base}?token=not-a-token`)).toBe(401);
    expect(await upgradeStatus(base)).toBe(401);
    expect(await upgradeStatus(url, { Origin: 'http://attacker.example' })).toBe(403);
    expect(await upgradeStatus(url, { Origin: 'http://127.0.0.1:8080' })).toBe(101);
    const plain = await fetch(base.replace(/^ws/, 'http'));
    expect(plain.status).toBe(426);
  });

  it('answers os-getSerialConsole below 2.6 only, and validates protocol and type', async () => {
    const legacy = await compute('POST', `/servers/${id}/action`, demoToken, {
      'os-getSerialConsole': { type: 'serial' },
    });
    expect(legacy.status).toBe(200);
    expect(legacy.body).toEqual({ console: { type: 'serial', url: expect.stringContaining('?token=') } });
    const removed = await compute(
      'POST',
      `/servers/${id}/action`,
      demoToken,
      { 'os-getSerialConsole': { type: 'serial' } },
      '2.6',
    );
    expect(removed.status).toBe(404);
    const badType = await compute('POST', `/servers/${id}/action`, demoToken, {
      'os-getSerialConsole': { type: 'novnc' },
    });
    expect(badType.status).toBe(400);
    const vnc = await remoteConsole(demoToken, { remote_console: { protocol: 'vnc', type: 'novnc' } });
    expect(vnc.status).toBe(400);
    expect(vnc.body.badRequest.message).toBe('Unavailable console type novnc.');
    const unknown = await remoteConsole(demoToken, {
      remote_console: { protocol: 'serial', type: 'telnet' },
    });
    expect(unknown.status).toBe(400);
    const created = await remoteConsole(demoToken, {
      remote_console: { protocol: 'serial', type: 'serial' },
    });
    expect(created.body).toEqual({
      remote_console: { protocol: 'serial', type: 'serial', url: expect.stringContaining('?token=') },
    });
  });

  it("gives another project's user 404 for the server", async () => {
    const response = await remoteConsole(altToken, {
      remote_console: { protocol: 'serial', type: 'serial' },
    });
    expect(response.status).toBe(404);
    const legacy = await compute('POST', `/servers/${id}/action`, altToken, {
      'os-getSerialConsole': { type: 'serial' },
    });
    expect(legacy.status).toBe(404);
  });

  it('shows a token to an admin (os-console-auth-tokens, 2.31) and to no one else', async () => {
    const url = await serialUrl();
    const token = new URL(url).searchParams.get('token')!;
    const shown = await compute('GET', `/os-console-auth-tokens/${token}`, adminToken, undefined, '2.31');
    expect(shown.status).toBe(200);
    expect(shown.body).toEqual({
      console: {
        instance_uuid: id,
        host: '127.0.0.1',
        port: expect.any(Number),
        internal_access_path: expect.stringContaining(id),
      },
    });
    expect((await compute('GET', `/os-console-auth-tokens/${token}`, adminToken)).status).toBe(401);
    expect(
      (await compute('GET', `/os-console-auth-tokens/${token}`, demoToken, undefined, '2.31')).status,
    ).toBe(403);
    expect(
      (await compute('GET', `/os-console-auth-tokens/not-a-token`, adminToken, undefined, '2.31')).status,
    ).toBe(404);
  });

  it('answers 409 for a stopped server, and voids the tokens of a deleted one', async () => {
    const url = await serialUrl();
    await openstackOk(demo, 'server', 'stop', 'console-vm');
    await waitStatus(id, 'SHUTOFF');
    const stopped = await remoteConsole(demoToken, {
      remote_console: { protocol: 'serial', type: 'serial' },
    });
    expect(stopped.status).toBe(409);
    const cli = await openstack(demo, 'console', 'url', 'show', '--serial', 'console-vm');
    expect(cli.code).not.toBe(0);
    await openstackOk(demo, 'server', 'delete', '--wait', 'console-vm');
    expect(await upgradeStatus(url)).toBe(401);
  });
});
