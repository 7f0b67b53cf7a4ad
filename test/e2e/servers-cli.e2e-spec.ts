import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudHandle, startCloud, testMode } from './support/cloud';
import { openstack, openstackJson, openstackOk } from './support/openstack';

jest.setTimeout(120_000);

/** The servers API with the real client: `openstack server ...` and what it reads besides. */
describe(`servers with /usr/bin/openstack (${testMode()})`, () => {
  let cloud: CloudHandle;
  let admin: Record<string, string>;
  let demo: Record<string, string>;
  let id: string;

  const limit = async (name: string) => {
    const limits = await openstackJson<any[]>(demo, 'limits', 'show', '--absolute');
    return limits.find((l) => l.Name === name).Value as number;
  };
  const show = (server: string) => openstackJson(demo, 'server', 'show', server);
  /** `server show` until the status is reached and no task runs (for commands without --wait). */
  const waitStatus = async (server: string, status: string) => {
    const deadline = Date.now() + 30_000;
    let shown: any;
    do {
      shown = await show(server);
      if (shown.status === status && !shown['OS-EXT-STS:task_state']) return shown;
      await new Promise((r) => setTimeout(r, 200));
    } while (Date.now() < deadline);
    throw new Error(`${server} is ${shown.status}/${shown['OS-EXT-STS:task_state']}, not ${status}`);
  };

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 23720 });
    admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
    demo = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-demo' };
    const file = join(cloud.dataDir, 'cirros.raw');
    writeFileSync(file, Buffer.alloc(8192, 1));
    for (const name of ['cirros-cli', 'cirros-other'])
      await openstackOk(
        admin,
        'image',
        'create',
        '--disk-format',
        'raw',
        '--container-format',
        'bare',
        '--public',
        '--file',
        file,
        name,
      );
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('creates a server by image, flavor and network names and waits for it', async () => {
    const before = await limit('totalInstancesUsed');
    const created = await openstackJson(
      demo,
      'server',
      'create',
      '--image',
      'cirros-cli',
      '--flavor',
      'm1.tiny',
      '--network',
      'private',
      '--property',
      'owner=cli',
      '--wait',
      'cli-vm',
    );
    expect(created).toMatchObject({
      name: 'cli-vm',
      status: 'ACTIVE',
      flavor: expect.stringContaining('m1.tiny'),
    });
    expect(created.addresses).toHaveProperty('private');
    id = created.id;
    expect(await limit('totalInstancesUsed')).toBe(before + 1);

    const listed = await openstackJson<any[]>(demo, 'server', 'list');
    expect(listed).toEqual([
      expect.objectContaining({ ID: id, Name: 'cli-vm', Status: 'ACTIVE', Image: 'cirros-cli' }),
    ]);
    const long = await openstackJson<any[]>(demo, 'server', 'list', '--long', '--name', '^cli-');
    expect(long[0]).toMatchObject({ ID: id, 'Power State': 1 });
    const shown = await show('cli-vm');
    expect(shown).toMatchObject({ id, status: 'ACTIVE', properties: { owner: 'cli' } });
  });

  it('sets and unsets properties, name and description', async () => {
    await openstackOk(demo, 'server', 'set', '--property', 'tier=web', '--name', 'cli-vm2', id);
    await openstackOk(
      demo,
      '--os-compute-api-version',
      '2.19',
      'server',
      'set',
      '--description',
      'from the CLI',
      id,
    );
    let shown = await openstackJson(demo, '--os-compute-api-version', '2.19', 'server', 'show', id);
    expect(shown).toMatchObject({ name: 'cli-vm2', description: 'from the CLI' });
    expect(shown.properties).toEqual({ owner: 'cli', tier: 'web' });
    await openstackOk(demo, 'server', 'unset', '--property', 'owner', id);
    shown = await show(id);
    expect(shown.properties).toEqual({ tier: 'web' });
  });

  it('stops, starts, pauses, suspends, reboots, locks and rebuilds', async () => {
    await openstackOk(demo, 'server', 'stop', id);
    expect((await waitStatus(id, 'SHUTOFF'))['OS-EXT-STS:power_state']).toBe(4);
    await openstackOk(demo, 'server', 'start', id);
    await waitStatus(id, 'ACTIVE');
    await openstackOk(demo, 'server', 'pause', id);
    await waitStatus(id, 'PAUSED');
    const wrong = await openstack(demo, 'server', 'suspend', id);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain(`Cannot 'suspend' instance ${id} while it is in vm_state paused`);
    await openstackOk(demo, 'server', 'unpause', id);
    await waitStatus(id, 'ACTIVE');
    await openstackOk(demo, 'server', 'suspend', id);
    await waitStatus(id, 'SUSPENDED');
    await openstackOk(demo, 'server', 'resume', id);
    await waitStatus(id, 'ACTIVE');
    await openstackOk(demo, 'server', 'reboot', '--wait', id);
    await openstackOk(demo, 'server', 'reboot', '--hard', '--wait', id);
    expect((await show(id)).status).toBe('ACTIVE');

    await openstackOk(demo, '--os-compute-api-version', '2.73', 'server', 'lock', '--reason', 'cli test', id);
    const locked = await openstackJson(demo, '--os-compute-api-version', '2.73', 'server', 'show', id);
    expect(locked).toMatchObject({ locked: true, locked_reason: 'cli test' });
    const refused = await openstack(demo, 'server', 'delete', id);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('is locked');
    await openstackOk(demo, 'server', 'unlock', id);

    await openstackOk(demo, 'server', 'rebuild', '--image', 'cirros-other', '--wait', id);
    expect((await show(id)).status).toBe('ACTIVE');
    expect((await show(id)).image).toContain('cirros-other');
  });

  it('resizes and confirms, resizes and reverts', async () => {
    await openstackOk(demo, 'server', 'resize', '--flavor', 'm1.small', '--wait', id);
    expect((await show(id)).status).toBe('VERIFY_RESIZE');
    await openstackOk(demo, 'server', 'resize', 'confirm', id);
    expect((await waitStatus(id, 'ACTIVE')).flavor).toContain('m1.small');

    await openstackOk(demo, 'server', 'resize', '--flavor', 'm1.medium', '--wait', id);
    expect((await show(id)).flavor).toContain('m1.medium');
    await openstackOk(demo, 'server', 'resize', 'revert', id);
    expect((await waitStatus(id, 'ACTIVE')).flavor).toContain('m1.small');
  });

  it('shelves and unshelves, rescues and unrescues, and makes an image', async () => {
    await openstackOk(demo, 'server', 'shelve', id);
    await waitStatus(id, 'SHELVED_OFFLOADED');
    await openstackOk(demo, 'server', 'unshelve', id);
    await waitStatus(id, 'ACTIVE');
    await openstackOk(demo, 'server', 'rescue', id);
    await waitStatus(id, 'RESCUE');
    await openstackOk(demo, 'server', 'unrescue', id);
    await waitStatus(id, 'ACTIVE');

    const image = await openstackJson(demo, 'server', 'image', 'create', '--name', 'cli-snap', '--wait', id);
    expect(image).toMatchObject({ name: 'cli-snap', status: 'active' });
    await waitStatus(id, 'ACTIVE');
  });

  it('adds and removes a security group, on the server and on its port', async () => {
    await openstackOk(demo, 'security', 'group', 'create', 'cli-web');
    await openstackOk(demo, 'server', 'add', 'security', 'group', id, 'cli-web');
    const names = async () => ((await show(id)).security_groups as { name: string }[]).map((g) => g.name);
    expect(await names()).toEqual(expect.arrayContaining(['default', 'cli-web']));
    const [port] = await openstackJson<any[]>(demo, 'port', 'list', '--server', id);
    const shown = await openstackJson(demo, 'port', 'show', port.ID);
    expect(shown.security_group_ids).toContain(
      (await openstackJson(demo, 'security', 'group', 'show', 'cli-web')).id,
    );
    await openstackOk(demo, 'server', 'remove', 'security', 'group', id, 'cli-web');
    expect(await names()).toEqual(['default']);
  });

  it('lists and shows server events, and shows the console log', async () => {
    const events = await openstackJson<any[]>(demo, 'server', 'event', 'list', id);
    const actions = events.map((e) => e.Action);
    for (const action of ['create', 'stop', 'start', 'reboot', 'rebuild', 'resize', 'shelve', 'rescue'])
      expect(actions).toContain(action);
    const stop = events.find((e) => e.Action === 'stop');
    const shown = await openstackJson(admin, 'server', 'event', 'show', id, stop['Request ID']);
    expect(shown).toMatchObject({ action: 'stop', request_id: stop['Request ID'] });
    expect(shown.events.length).toBeGreaterThan(0);
    const log = await openstackOk(demo, 'console', 'log', 'show', id);
    expect(log.length).toBeGreaterThan(0);
  });

  it('boots into a server group', async () => {
    const group = await openstackJson(
      demo,
      'server',
      'group',
      'create',
      '--policy',
      'anti-affinity',
      'cli-group',
    );
    const member = await openstackJson(
      demo,
      'server',
      'create',
      '--image',
      'cirros-cli',
      '--flavor',
      'm1.tiny',
      '--network',
      'private',
      '--hint',
      `group=${group.id}`,
      '--wait',
      'cli-grouped',
    );
    expect(member.status).toBe('ACTIVE');
    const shownGroup = await openstackJson(demo, 'server', 'group', 'show', 'cli-group');
    expect(shownGroup.members).toContain(member.id);
    await openstackOk(demo, 'server', 'delete', '--wait', member.id);
  });

  it('sets the instances quota, counts usage in limits, and lists usage', async () => {
    await openstackOk(admin, 'quota', 'set', '--instances', '1', 'demo');
    const quota = await openstackJson(admin, 'quota', 'show', 'demo');
    expect(quota.instances).toBe(1);
    expect(await limit('maxTotalInstances')).toBe(1);
    expect(await limit('totalInstancesUsed')).toBe(1);
    const over = await openstack(
      demo,
      'server',
      'create',
      '--image',
      'cirros-cli',
      '--flavor',
      'm1.tiny',
      '--network',
      'private',
      'cli-over',
    );
    expect(over.code).not.toBe(0);
    expect(over.stderr).toContain('Quota exceeded for instances');
    const project = (await openstackJson(admin, 'project', 'show', 'demo')).id;
    const usage = await openstackJson<any[]>(admin, 'usage', 'list');
    const demoUsage = usage.find((u) => [project, 'demo'].includes(u.Project));
    expect(demoUsage.Servers.map((x: any) => x.instance_id)).toContain(id);
    await openstackOk(admin, 'quota', 'set', '--instances', '10', 'demo');
  });

  it('deletes with --wait and the instance count drops', async () => {
    const before = await limit('totalInstancesUsed');
    await openstackOk(demo, 'server', 'delete', '--wait', id);
    expect(await openstackJson<any[]>(demo, 'server', 'list')).toEqual([]);
    expect(await limit('totalInstancesUsed')).toBe(before - 1);
    const gone = await openstack(demo, 'server', 'show', id);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain('No server with a name or ID');
  });
});
