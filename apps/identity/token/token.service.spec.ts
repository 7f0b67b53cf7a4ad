import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { BUS_TRANSPORT, BusTransport } from '@novum/bus';
import { loadConfig, NovumConfig, UnauthorizedError } from '@novum/common';
import { IdentityModule } from '../identity.module';
import { BootstrapService } from '../bootstrap.service';
import { ResourceService } from '../resource.service';
import { RoleService } from '../role.service';
import { UserService } from '../user.service';
import { TokenKeyRing } from './token-keys';
import { TokenService } from './token.service';

describe('identity services on a real (SQLite) database', () => {
  let dataDir: string;
  let config: NovumConfig;
  let app: INestApplicationContext;
  let tokens: TokenService;

  const password = (name: string, pw: string, project?: string) => ({
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name, domain: { id: 'default' }, password: pw } },
      },
      ...(project ? { scope: { project: { name: project, domain: { id: 'default' } } } } : {}),
    },
  });

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'novum-token-'));
    config = loadConfig({ NOVUM_DATA_DIR: dataDir, NOVUM_LOG_LEVEL: 'silent' });
    const moduleRef = await Test.createTestingModule({ imports: [IdentityModule.forRoot(config)] }).compile();
    app = await moduleRef.init();
    await app.get(BootstrapService).run({
      region: 'RegionOne',
      accounts: [
        { name: 'alice', password: 'pw-a', project: 'alpha', roles: ['member'] },
        { name: 'root', password: 'pw-r', project: 'ops', roles: ['admin'] },
      ],
      services: [
        { type: 'identity', name: 'keystone', description: '', url: 'http://127.0.0.1:5000/identity' },
      ],
    });
    tokens = app.get(TokenService);
  });

  afterAll(async () => {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('issues a project token whose context carries implied roles', async () => {
    const issued = await tokens.issue(password('alice', 'pw-a', 'alpha') as any);
    const context = await tokens.validate(issued.token);
    expect(context).toMatchObject({ userName: 'alice', projectName: 'alpha', methods: ['password'] });
    expect(context.roles.sort()).toEqual(['member', 'reader']);
  });

  it('refuses a wrong password and a project without roles, both as 401', async () => {
    await expect(tokens.issue(password('alice', 'nope', 'alpha') as any)).rejects.toBeInstanceOf(
      UnauthorizedError,
    );
    await expect(tokens.issue(password('alice', 'pw-a', 'ops') as any)).rejects.toThrow(
      /no access to project/,
    );
  });

  it("scopes a token without scope to the user's default project, but not one asking for 'unscoped'", async () => {
    const defaulted = await tokens.validate((await tokens.issue(password('alice', 'pw-a') as any)).token);
    expect(defaulted.projectName).toBe('alpha');
    const request = password('alice', 'pw-a') as any;
    request.auth.scope = 'unscoped';
    const unscoped = await tokens.validate((await tokens.issue(request)).token);
    expect(unscoped).toMatchObject({ userName: 'alice' });
    expect(unscoped.projectId).toBeUndefined();
    expect(unscoped.domainId).toBeUndefined();
  });

  it('stops honouring a token the moment its role is removed', async () => {
    const issued = await tokens.issue(password('alice', 'pw-a', 'alpha') as any);
    const roles = app.get(RoleService);
    const member = (await roles.listRoles({ name: 'member' }))[0];
    await roles.revoke('UserProject', issued.user.id, issued.project!.id, member.id);
    await expect(tokens.validate(issued.token)).rejects.toBeInstanceOf(UnauthorizedError);
    await roles.grant('UserProject', issued.user.id, issued.project!.id, member.id);
    await expect(tokens.validate(issued.token)).resolves.toMatchObject({ userName: 'alice' });
  });

  it('keeps tokens valid across a key rotation', async () => {
    const before = await tokens.issue(password('root', 'pw-r', 'ops') as any);
    await app.get(TokenKeyRing).rotate();
    const after = await tokens.issue(password('root', 'pw-r', 'ops') as any);
    expect(after.token.slice(0, 8)).not.toBe(before.token.slice(0, 8));
    await expect(tokens.validate(before.token)).resolves.toMatchObject({ userName: 'root' });
    await expect(tokens.validate(after.token)).resolves.toMatchObject({ userName: 'root' });
  });

  it('revokes every token of a user whose password changes', async () => {
    const users = app.get(UserService);
    const user = await users.createUser({ name: 'carol', password: 'old' });
    const project = await app.get(ResourceService).createProject({ name: 'carols' });
    const reader = (await app.get(RoleService).listRoles({ name: 'reader' }))[0];
    await app.get(RoleService).grant('UserProject', user.id, project.id, reader.id);
    const issued = await tokens.issue(password('carol', 'old', 'carols') as any);
    await new Promise((r) => setTimeout(r, 5));
    await users.changePassword(user.id, 'old', 'new');
    await expect(tokens.validate(issued.token)).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(tokens.issue(password('carol', 'old', 'carols') as any)).rejects.toBeInstanceOf(
      UnauthorizedError,
    );
    await new Promise((r) => setTimeout(r, 5));
    const fresh = await tokens.issue(password('carol', 'new', 'carols') as any);
    await expect(tokens.validate(fresh.token)).resolves.toMatchObject({ roles: ['reader'] });
  });

  it('limits an application credential to the roles it delegates', async () => {
    const issued = await tokens.issue(password('root', 'pw-r', 'ops') as any);
    const { credential, secret } = await app
      .get(UserService)
      .createApplicationCredential(issued.user.id, issued.project!.id, {
        name: 'ci',
        roles: [{ name: 'reader' }],
      });
    const viaCredential = await tokens.issue({
      auth: {
        identity: {
          methods: ['application_credential'],
          application_credential: { id: credential.id, secret },
        },
      },
    } as any);
    const context = await tokens.validate(viaCredential.token);
    expect(context.roles).toEqual(['reader']);
    expect(context.applicationCredentialId).toBe(credential.id);
    await expect(
      tokens.issue({
        auth: {
          identity: {
            methods: ['application_credential'],
            application_credential: { id: credential.id, secret },
          },
          scope: { project: { id: issued.project!.id } },
        },
      } as any),
    ).rejects.toThrow(/cannot request a scope/);
  });

  it('publishes Keystone notifications on the bus after each change', async () => {
    const events: { event: string; payload: any }[] = [];
    await app.get<BusTransport>(BUS_TRANSPORT).subscribe('notifications', async (event, payload) => {
      events.push({ event, payload });
    });
    const project = await app.get(ResourceService).createProject({ name: 'noisy' });
    const user = await app.get(UserService).createUser({ name: 'dave' });
    const reader = (await app.get(RoleService).listRoles({ name: 'reader' }))[0];
    await app.get(RoleService).grant('UserProject', user.id, project.id, reader.id);
    await app.get(ResourceService).deleteProject(project.id);
    await new Promise((r) => setTimeout(r, 50));
    expect(events).toEqual([
      { event: 'identity.project.created', payload: { resource_info: project.id } },
      { event: 'identity.user.created', payload: { resource_info: user.id } },
      {
        event: 'identity.role_assignment.created',
        payload: { resource_info: { user: user.id, project: project.id, role: reader.id } },
      },
      { event: 'identity.project.deleted', payload: { resource_info: project.id } },
    ]);
  });
});
