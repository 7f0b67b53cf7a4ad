import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudHandle, startCloud } from './support/cloud';
import { api } from './support/keystone';
import { openstack, openstackJson, openstackOk } from './support/openstack';

/** Acceptance of the compute API's first slice (everything but servers) with the real client. */
describe('compute with /usr/bin/openstack', () => {
  let cloud: CloudHandle;
  let admin: Record<string, string>;
  let demo: Record<string, string>;

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 23200 });
    admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
    demo = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-demo' };
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('lists the compute endpoint in the catalog at /compute/v2.1', async () => {
    const catalog = await openstackJson<any[]>(admin, 'catalog', 'list');
    const compute = catalog.find((entry) => entry.Type === 'compute');
    expect(compute).toMatchObject({ Name: 'nova' });
    expect(compute.Endpoints.map((e: any) => e.url)).toContain(cloud.services.compute);
    expect(cloud.services.compute).toMatch(/\/compute\/v2\.1$/);
  }, 60_000);

  it('starts with the bootstrap flavors, each naming its driver', async () => {
    const flavors = await openstackJson<any[]>(admin, 'flavor', 'list', '--long');
    const byName = Object.fromEntries(flavors.map((f) => [f.Name, f]));
    for (const name of ['m1.tiny', 'm1.small', 'm1.medium', 'm1.large', 'c1.tiny', 'c1.small', 'c1.medium']) {
      expect(byName[name]).toBeDefined();
    }
    expect(byName['m1.tiny']).toMatchObject({ ID: '1', RAM: 512, VCPUs: 1, Disk: 1 });
    expect(byName['m1.tiny'].Properties).toEqual({ 'novum:driver': 'kvm' });
    expect(byName['c1.tiny'].Properties).toEqual({ 'novum:driver': 'container' });
  }, 60_000);

  it('creates, sets properties on, shows, lists and deletes a flavor', async () => {
    const created = await openstackJson(
      admin,
      'flavor',
      'create',
      '--ram',
      '1024',
      '--disk',
      '5',
      '--vcpus',
      '2',
      '--ephemeral',
      '1',
      '--swap',
      '512',
      '--description',
      'for the CLI test',
      '--property',
      'hw:cpu_policy=shared',
      'cli.flavor',
    );
    expect(created).toMatchObject({
      name: 'cli.flavor',
      ram: 1024,
      disk: 5,
      vcpus: 2,
      swap: 512,
      'OS-FLV-EXT-DATA:ephemeral': 1,
      'os-flavor-access:is_public': true,
      description: 'for the CLI test',
      properties: { 'hw:cpu_policy': 'shared' },
    });
    await openstackOk(admin, 'flavor', 'set', '--property', 'novum:driver=container', 'cli.flavor');
    const shown = await openstackJson(admin, 'flavor', 'show', 'cli.flavor');
    expect(shown.properties).toEqual({ 'hw:cpu_policy': 'shared', 'novum:driver': 'container' });
    await openstackOk(admin, 'flavor', 'unset', '--property', 'hw:cpu_policy', 'cli.flavor');
    expect((await openstackJson(admin, 'flavor', 'show', created.id)).properties).toEqual({
      'novum:driver': 'container',
    });

    // A driver Novum does not have is refused by name.
    const bad = await openstack(admin, 'flavor', 'set', '--property', 'novum:driver=xen', 'cli.flavor');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('novum:driver');

    const listed = await openstackJson<any[]>(demo, 'flavor', 'list');
    expect(listed.map((f) => f.Name)).toContain('cli.flavor');
    await openstackOk(admin, 'flavor', 'delete', 'cli.flavor');
    const gone = await openstack(admin, 'flavor', 'show', 'cli.flavor');
    expect(gone.code).not.toBe(0);
  }, 120_000);

  it('shares a private flavor with a project', async () => {
    const flavor = await openstackJson(
      admin,
      'flavor',
      'create',
      '--private',
      '--ram',
      '256',
      '--disk',
      '1',
      '--vcpus',
      '1',
      'cli.private',
    );
    expect(flavor['os-flavor-access:is_public']).toBe(false);
    // Without access, the demo project does not see it at all.
    expect((await openstackJson<any[]>(demo, 'flavor', 'list')).map((f) => f.Name)).not.toContain(
      'cli.private',
    );
    expect((await openstack(demo, 'flavor', 'show', flavor.id)).code).not.toBe(0);

    await openstackOk(admin, 'flavor', 'set', '--project', 'demo', 'cli.private');
    const shown = await openstackJson(admin, 'flavor', 'show', 'cli.private');
    expect(shown.access_project_ids).toHaveLength(1);
    expect((await openstackJson(demo, 'flavor', 'show', flavor.id)).name).toBe('cli.private');
    expect((await openstackJson<any[]>(admin, 'flavor', 'list', '--private')).map((f) => f.Name)).toEqual([
      'cli.private',
    ]);

    await openstackOk(admin, 'flavor', 'unset', '--project', 'demo', 'cli.private');
    expect((await openstack(demo, 'flavor', 'show', flavor.id)).code).not.toBe(0);
    await openstackOk(admin, 'flavor', 'delete', flavor.id);
  }, 120_000);

  it('refuses flavor management to a member', async () => {
    const result = await openstack(demo, 'flavor', 'create', '--ram', '64', '--vcpus', '1', 'nope');
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("Policy doesn't allow os_compute_api:os-flavor-manage:create");
    expect(result.stderr).toContain('403: Client Error');
  }, 60_000);

  it('generates, imports, lists, shows and deletes key pairs', async () => {
    const privateKeyFile = join(cloud.dataDir, 'generated.pem');
    const generated = await openstackJson(
      demo,
      'keypair',
      'create',
      '--private-key',
      privateKeyFile,
      'cli-generated',
    );
    expect(generated).toMatchObject({ name: 'cli-generated', type: 'ssh' });
    chmodSync(privateKeyFile, 0o600);
    // The private key is a real one: ssh-keygen derives from it the fingerprint the cloud reports.
    const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'md5', '-f', privateKeyFile], {
      encoding: 'utf8',
    });
    expect(fingerprint).toContain(`MD5:${generated.fingerprint}`);

    const keyFile = join(cloud.dataDir, 'imported');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'me@example', '-f', keyFile]);
    const imported = await openstackJson(
      demo,
      'keypair',
      'create',
      '--public-key',
      `${keyFile}.pub`,
      'cli-imported',
    );
    const expected = execFileSync('ssh-keygen', ['-l', '-E', 'md5', '-f', `${keyFile}.pub`], {
      encoding: 'utf8',
    });
    expect(expected).toContain(`MD5:${imported.fingerprint}`);

    const listed = await openstackJson<any[]>(demo, 'keypair', 'list');
    expect(listed.map((k) => k.Name).sort()).toEqual(['cli-generated', 'cli-imported']);
    const shown = await openstackJson(demo, 'keypair', 'show', 'cli-imported');
    expect(shown).toMatchObject({ name: 'cli-imported', fingerprint: imported.fingerprint, type: 'ssh' });
    const publicKey = await openstackOk(demo, 'keypair', 'show', '--public-key', 'cli-imported');
    expect(publicKey.trim()).toBe(readFileSync(`${keyFile}.pub`, 'utf8').trim());

    // Key pairs belong to users: the admin has none of demo's.
    expect(await openstackJson<any[]>(admin, 'keypair', 'list')).toEqual([]);
    expect((await openstack(admin, 'keypair', 'show', 'cli-imported')).code).not.toBe(0);

    const duplicate = await openstack(
      demo,
      'keypair',
      'create',
      '--public-key',
      `${keyFile}.pub`,
      'cli-imported',
    );
    expect(duplicate.stderr).toContain('409: Client Error');

    await openstackOk(demo, 'keypair', 'delete', 'cli-generated', 'cli-imported');
    expect(await openstackJson<any[]>(demo, 'keypair', 'list')).toEqual([]);
  }, 120_000);

  it('shows and sets quotas, and shows absolute limits', async () => {
    const shown = await openstackJson(admin, 'quota', 'show', 'demo');
    expect(shown).toMatchObject({
      instances: 10,
      cores: 20,
      ram: 51200,
      'key-pairs': 100,
      'server-groups': 10,
    });
    await openstackOk(admin, 'quota', 'set', '--instances', '7', '--cores', '14', '--key-pairs', '3', 'demo');
    expect(await openstackJson(admin, 'quota', 'show', 'demo')).toMatchObject({
      instances: 7,
      cores: 14,
      'key-pairs': 3,
      ram: 51200,
    });
    const limits = await openstackJson<any[]>(demo, 'limits', 'show', '--absolute');
    const byName = Object.fromEntries(limits.map((l) => [l.Name, l.Value]));
    expect(byName).toMatchObject({
      maxTotalInstances: 7,
      maxTotalCores: 14,
      maxTotalKeypairs: 3,
      totalInstancesUsed: 0,
    });

    // The key pair quota is enforced with Nova's message.
    for (const name of ['q1', 'q2', 'q3']) await openstackOk(demo, 'keypair', 'create', name);
    const over = await openstack(demo, 'keypair', 'create', 'q4');
    expect(over.stderr).toContain('Quota exceeded, too many key pairs.');
    await openstackOk(demo, 'keypair', 'delete', 'q1', 'q2', 'q3');
  }, 120_000);

  it("forgets a deleted project's quotas, groups and flavor access, and a deleted user's key pairs", async () => {
    const project = await openstackJson(admin, 'project', 'create', 'short-lived');
    const user = await openstackJson(
      admin,
      'user',
      'create',
      '--password',
      'secret-pass',
      '--project',
      project.id,
      'transient',
    );
    await openstackOk(admin, 'role', 'add', '--user', user.id, '--project', project.id, 'member');
    const env = {
      OS_AUTH_URL: `${cloud.identityUrl}/v3`,
      OS_IDENTITY_API_VERSION: '3',
      OS_USERNAME: 'transient',
      OS_PASSWORD: 'secret-pass',
      OS_PROJECT_ID: project.id,
      OS_USER_DOMAIN_NAME: 'Default',
      OS_PROJECT_DOMAIN_NAME: 'Default',
    };
    await openstackOk(env, 'keypair', 'create', 'doomed-key');
    await openstackOk(env, 'server', 'group', 'create', '--policy', 'affinity', 'doomed-group');
    await openstackOk(admin, 'quota', 'set', '--instances', '3', project.id);
    const flavor = await openstackJson(
      admin,
      'flavor',
      'create',
      '--private',
      '--ram',
      '64',
      '--vcpus',
      '1',
      'doomed.flavor',
    );
    await openstackOk(admin, 'flavor', 'set', '--project', project.id, flavor.id);

    await openstackOk(admin, 'user', 'delete', user.id);
    await openstackOk(admin, 'project', 'delete', project.id);

    const adminToken = (await openstackJson(admin, 'token', 'issue')).id;
    const call = (path: string) =>
      api(cloud.services.compute, 'GET', path, {
        token: adminToken,
        headers: { 'openstack-api-version': 'compute 2.10' },
      });
    const deadline = Date.now() + 20_000;
    for (;;) {
      const keys = (await call(`/os-keypairs?user_id=${user.id}`)).body.keypairs;
      const groups = (await call('/os-server-groups?all_projects=true')).body.server_groups;
      const quota = (await call(`/os-quota-sets/${project.id}`)).body.quota_set;
      const access = (await call(`/flavors/${flavor.id}/os-flavor-access`)).body.flavor_access;
      const clean =
        keys.length === 0 &&
        !groups.some((g: any) => g.name === 'doomed-group') &&
        quota.instances === 10 &&
        access.length === 0;
      if (clean) break;
      if (Date.now() > deadline) throw new Error(JSON.stringify({ keys, groups, quota, access }));
      await new Promise((r) => setTimeout(r, 200));
    }
    await openstackOk(admin, 'flavor', 'delete', flavor.id);
  }, 120_000);

  it('lists the availability zones', async () => {
    const zones = await openstackJson<any[]>(demo, 'availability', 'zone', 'list', '--compute');
    expect(zones).toEqual([{ 'Zone Name': 'nova', 'Zone Status': 'available' }]);
  }, 60_000);

  it('creates, lists, shows and deletes server groups', async () => {
    const group = await openstackJson(
      demo,
      'server',
      'group',
      'create',
      '--policy',
      'anti-affinity',
      'cli-group',
    );
    expect(group).toMatchObject({ name: 'cli-group', policy: 'anti-affinity', members: [] });
    const soft = await openstackJson(
      demo,
      'server',
      'group',
      'create',
      '--policy',
      'soft-affinity',
      'cli-soft',
    );
    const listed = await openstackJson<any[]>(demo, 'server', 'group', 'list');
    expect(listed.map((g) => g.Name).sort()).toEqual(['cli-group', 'cli-soft']);
    expect(await openstackJson(demo, 'server', 'group', 'show', group.id)).toMatchObject({
      id: group.id,
      policy: 'anti-affinity',
    });
    // Another project does not see them.
    expect(await openstackJson<any[]>(admin, 'server', 'group', 'list')).toEqual([]);
    expect((await openstackJson<any[]>(admin, 'server', 'group', 'list', '--all-projects')).length).toBe(2);
    await openstackOk(demo, 'server', 'group', 'delete', 'cli-group', soft.id);
    expect(await openstackJson<any[]>(demo, 'server', 'group', 'list')).toEqual([]);
  }, 120_000);
});
