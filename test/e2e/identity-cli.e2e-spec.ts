import { CloudHandle, startCloud } from './support/cloud';
import { api } from './support/keystone';
import { openstack, openstackJson, openstackOk } from './support/openstack';

/** Acceptance of the identity service with the real client, /usr/bin/openstack. */
describe('identity with /usr/bin/openstack', () => {
  let cloud: CloudHandle;
  let admin: Record<string, string>;

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 21000 });
    admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('issues a token that the API accepts, and revokes it', async () => {
    const token = await openstackJson(admin, 'token', 'issue');
    expect(token.id).toEqual(expect.any(String));
    expect(Date.parse(token.expires)).toBeGreaterThan(Date.now());
    const projects = await api(cloud.identityUrl, 'GET', '/v3/projects', { token: token.id });
    expect(projects.status).toBe(200);
    expect(token.project_id).toBe(projects.body.projects.find((p: any) => p.name === 'admin').id);

    await openstackOk(admin, 'token', 'revoke', token.id);
    const after = await api(cloud.identityUrl, 'GET', '/v3/projects', { token: token.id });
    expect(after.status).toBe(401);
    expect(after.body.error).toMatchObject({ code: 401, title: 'Unauthorized' });
  }, 60_000);

  it('lists the catalog with the identity endpoint on this cloud', async () => {
    const catalog = await openstackJson<any[]>(admin, 'catalog', 'list');
    const identity = catalog.find((entry) => entry.Type === 'identity');
    expect(identity).toBeDefined();
    const urls = identity.Endpoints.map((e: any) => e.url);
    expect(urls).toContain(cloud.identityUrl);
    expect(identity.Endpoints.map((e: any) => e.interface).sort()).toEqual(['admin', 'internal', 'public']);
  }, 60_000);

  it('creates a project and a user, grants a role, and lists the assignment', async () => {
    const project = await openstackJson(
      admin,
      'project',
      'create',
      'cli-project',
      '--description',
      'made by the e2e test',
    );
    expect(project).toMatchObject({
      name: 'cli-project',
      domain_id: 'default',
      enabled: true,
      description: 'made by the e2e test',
    });
    expect((await openstackJson<any[]>(admin, 'project', 'list')).map((p) => p.Name)).toContain(
      'cli-project',
    );

    const user = await openstackJson(
      admin,
      'user',
      'create',
      '--password',
      'cli-secret',
      '--project',
      'cli-project',
      'cli-user',
    );
    expect(user).toMatchObject({ name: 'cli-user', domain_id: 'default', enabled: true });
    await openstackOk(admin, 'role', 'add', '--user', 'cli-user', '--project', 'cli-project', 'member');

    const assignments = await openstackJson<any[]>(
      admin,
      'role',
      'assignment',
      'list',
      '--user',
      'cli-user',
      '--names',
    );
    expect(assignments).toEqual([
      expect.objectContaining({ Role: 'member', User: 'cli-user@Default', Project: 'cli-project@Default' }),
    ]);

    const effective = await openstackJson<any[]>(
      admin,
      'role',
      'assignment',
      'list',
      '--user',
      'cli-user',
      '--effective',
      '--names',
    );
    expect(effective.map((a) => a.Role).sort()).toEqual(['member', 'reader']);

    // The new user can now log in to the project and sees member and the implied reader role.
    const userEnv = {
      OS_AUTH_URL: `${cloud.identityUrl}/v3`,
      OS_USERNAME: 'cli-user',
      OS_PASSWORD: 'cli-secret',
      OS_PROJECT_NAME: 'cli-project',
      OS_USER_DOMAIN_NAME: 'Default',
      OS_PROJECT_DOMAIN_NAME: 'Default',
      OS_IDENTITY_API_VERSION: '3',
    };
    const token = await openstackJson(userEnv, 'token', 'issue');
    expect(token.project_id).toBe(project.id);
    expect(token.user_id).toBe(user.id);

    // A member is not an admin: Keystone's policy refuses the admin API.
    const denied = await openstack(userEnv, 'user', 'list');
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/403|not authorized/i);

    await openstackOk(admin, 'role', 'remove', '--user', 'cli-user', '--project', 'cli-project', 'member');
    const refused = await openstack(userEnv, 'token', 'issue');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/401|has no access/i);

    await openstackOk(admin, 'user', 'delete', 'cli-user');
    await openstackOk(admin, 'project', 'delete', 'cli-project');
    expect((await openstackJson<any[]>(admin, 'project', 'list')).map((p) => p.Name)).not.toContain(
      'cli-project',
    );
  }, 120_000);

  it('creates an application credential and authenticates a command with it', async () => {
    const credential = await openstackJson(
      admin,
      'application',
      'credential',
      'create',
      'cli-credential',
      '--role',
      'reader',
    );
    expect(credential.secret).toEqual(expect.any(String));
    expect(credential.roles).toBe('reader');
    const credentialEnv = {
      OS_AUTH_TYPE: 'v3applicationcredential',
      OS_AUTH_URL: `${cloud.identityUrl}/v3`,
      OS_APPLICATION_CREDENTIAL_ID: credential.id,
      OS_APPLICATION_CREDENTIAL_SECRET: credential.secret,
      OS_IDENTITY_API_VERSION: '3',
    };
    const token = await openstackJson(credentialEnv, 'token', 'issue');
    expect(token.project_id).toBe(credential.project_id);
    // Delegated reader only: the admin API is closed to this credential although its creator is admin.
    const denied = await openstack(credentialEnv, 'project', 'create', 'should-not-exist');
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/403|not authorized/i);

    const wrong = await openstack(
      { ...credentialEnv, OS_APPLICATION_CREDENTIAL_SECRET: 'wrong' },
      'token',
      'issue',
    );
    expect(wrong.code).not.toBe(0);

    await openstackOk(admin, 'application', 'credential', 'delete', 'cli-credential');
    const gone = await openstack(credentialEnv, 'token', 'issue');
    expect(gone.code).not.toBe(0);
  }, 120_000);
});
