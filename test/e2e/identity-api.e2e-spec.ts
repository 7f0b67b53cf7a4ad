import { CloudHandle, startCloud } from './support/cloud';
import { api, issueToken } from './support/keystone';

const TOKEN_LIFETIME_S = 4;

/** The Keystone API directly: error formats, token lifecycle edge cases, policy, request ids, restarts. */
describe('identity API', () => {
  let cloud: CloudHandle;
  const adminToken = async () =>
    (await issueToken(cloud.identityUrl, { user: 'admin', password: cloud.adminPassword, project: 'admin' }))
      .token;
  const demoToken = async () =>
    (await issueToken(cloud.identityUrl, { user: 'demo', password: cloud.demoPassword, project: 'demo' }))
      .token;

  beforeAll(async () => {
    cloud = await startCloud({
      portBase: 21100,
      extraEnv: { NOVUM_TOKEN_EXPIRATION: String(TOKEN_LIFETIME_S) },
    });
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it("lists no groups (Novum has none yet): admin only, and a user's groups to the user", async () => {
    const admin = await adminToken();
    const demo = await demoToken();
    const listed = await api(cloud.identityUrl, 'GET', '/v3/groups?domain_id=default', { token: admin });
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual({ groups: [], links: expect.objectContaining({ next: null }) });
    expect((await api(cloud.identityUrl, 'GET', '/v3/groups', { token: demo })).status).toBe(403);
    const missing = await api(cloud.identityUrl, 'GET', '/v3/groups/nope', { token: admin });
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 404, message: 'Could not find group: nope.' });
    const self = await api(cloud.identityUrl, 'GET', '/v3/auth/tokens', {
      token: demo,
      headers: { 'x-subject-token': demo },
    });
    const demoId = self.body.token.user.id;
    const mine = await api(cloud.identityUrl, 'GET', `/v3/users/${demoId}/groups`, { token: demo });
    expect(mine.status).toBe(200);
    expect(mine.body.groups).toEqual([]);
    expect((await api(cloud.identityUrl, 'GET', '/v3/users/nobody/groups', { token: admin })).status).toBe(
      404,
    );
  });

  describe('bad input gets 400 in Keystone format', () => {
    const cases: [string, string | undefined, unknown][] = [
      ['malformed JSON', '{"auth": {', undefined],
      ['a JSON array', '[]', undefined],
      ['null', 'null', undefined],
      ['missing auth', undefined, {}],
      ['auth of the wrong type', undefined, { auth: 'x' }],
      ['no methods', undefined, { auth: { identity: { methods: [] } } }],
      ['an unknown method', undefined, { auth: { identity: { methods: ['kerberos'] } } }],
      ['methods not a list', undefined, { auth: { identity: { methods: 'password' } } }],
      ['password method without its body', undefined, { auth: { identity: { methods: ['password'] } } }],
      [
        'password of the wrong type',
        undefined,
        {
          auth: {
            identity: {
              methods: ['password'],
              password: { user: { name: 'admin', domain: { id: 'default' }, password: 42 } },
            },
          },
        },
      ],
      [
        'user without id or name',
        undefined,
        { auth: { identity: { methods: ['password'], password: { user: { password: 'x' } } } } },
      ],
    ];
    it.each(cases)('%s', async (_name, raw, body) => {
      const response = await api(cloud.identityUrl, 'POST', '/v3/auth/tokens', { raw, body });
      expect(response.status).toBe(400);
      expect(response.body.error).toEqual({ code: 400, title: 'Bad Request', message: expect.any(String) });
    });

    it('names the offending field', async () => {
      const response = await api(cloud.identityUrl, 'POST', '/v3/auth/tokens', {
        body: {
          auth: {
            identity: {
              methods: ['password'],
              password: { user: { name: 'admin', domain: { id: 'default' }, password: 42 } },
            },
          },
        },
      });
      expect(response.body.error.message).toContain('password');
    });

    it('refuses bad admin bodies with 400 and duplicates with 409', async () => {
      const token = await adminToken();
      expect(
        (await api(cloud.identityUrl, 'POST', '/v3/projects', { token, body: { project: { name: 7 } } }))
          .status,
      ).toBe(400);
      expect(
        (await api(cloud.identityUrl, 'POST', '/v3/projects', { token, body: { project: {} } })).status,
      ).toBe(400);
      expect(
        (
          await api(cloud.identityUrl, 'POST', '/v3/users', {
            token,
            body: { user: { name: 'x', enabled: 'yes' } },
          })
        ).status,
      ).toBe(400);
      expect(
        (
          await api(cloud.identityUrl, 'POST', '/v3/endpoints', {
            token,
            body: { endpoint: { service_id: 'x', interface: 'sideways', url: 'http://x' } },
          })
        ).status,
      ).toBe(400);
      const duplicate = await api(cloud.identityUrl, 'POST', '/v3/projects', {
        token,
        body: { project: { name: 'demo' } },
      });
      expect(duplicate.status).toBe(409);
      expect(duplicate.body.error).toMatchObject({ code: 409, title: 'Conflict' });
      expect((await api(cloud.identityUrl, 'GET', '/v3/projects?enabled=maybe', { token })).status).toBe(400);
    });
  });

  describe('authentication failures get 401', () => {
    it('wrong password, unknown user and unknown project', async () => {
      for (const user of [
        { name: 'admin', domain: { id: 'default' }, password: 'wrong' },
        { name: 'nobody', domain: { id: 'default' }, password: 'x' },
        { id: 'no-such-id', password: 'x' },
      ]) {
        const response = await api(cloud.identityUrl, 'POST', '/v3/auth/tokens', {
          body: { auth: { identity: { methods: ['password'], password: { user } } } },
        });
        expect(response.status).toBe(401);
        expect(response.body.error).toEqual({
          code: 401,
          title: 'Unauthorized',
          message: 'The request you have made requires authentication.',
        });
      }
      const noProject = await api(cloud.identityUrl, 'POST', '/v3/auth/tokens', {
        body: {
          auth: {
            identity: {
              methods: ['password'],
              password: { user: { name: 'demo', domain: { id: 'default' }, password: cloud.demoPassword } },
            },
            scope: { project: { name: 'admin', domain: { id: 'default' } } },
          },
        },
      });
      expect(noProject.status).toBe(401);
    });

    it('missing, forged and expired tokens, with the Keystone challenge', async () => {
      const missing = await api(cloud.identityUrl, 'GET', '/v3/projects');
      expect(missing.status).toBe(401);
      expect(missing.headers.get('www-authenticate')).toBe(`Keystone uri="${cloud.identityUrl}"`);

      const token = await adminToken();
      const raw = Buffer.from(token, 'base64url');
      raw[raw.length - 1] ^= 1;
      for (const forged of [
        raw.toString('base64url'),
        token.slice(0, -4),
        'gAAAAABnot-a-token',
        token + 'A',
      ]) {
        const response = await api(cloud.identityUrl, 'GET', '/v3/projects', { token: forged });
        expect(response.status).toBe(401);
        expect(response.body.error.code).toBe(401);
      }

      await new Promise((r) => setTimeout(r, TOKEN_LIFETIME_S * 1000 + 200));
      const expired = await api(cloud.identityUrl, 'GET', '/v3/projects', { token });
      expect(expired.status).toBe(401);
    }, 30_000);

    it('a revoked token, and a token whose subject is validated by another user', async () => {
      const admin = await adminToken();
      const demo = await demoToken();
      const check = await api(cloud.identityUrl, 'GET', '/v3/auth/tokens', {
        token: admin,
        headers: { 'x-subject-token': demo },
      });
      expect(check.status).toBe(200);
      expect(check.headers.get('x-subject-token')).toBe(demo);
      expect(check.body.token.roles.map((r: any) => r.name).sort()).toEqual(['member', 'reader']);
      expect(check.body.token.catalog.length).toBeGreaterThan(0);
      const noCatalog = await api(cloud.identityUrl, 'GET', '/v3/auth/tokens?nocatalog', {
        token: admin,
        headers: { 'x-subject-token': demo },
      });
      expect(noCatalog.body.token.catalog).toBeUndefined();
      expect(
        (
          await api(cloud.identityUrl, 'HEAD', '/v3/auth/tokens', {
            token: admin,
            headers: { 'x-subject-token': demo },
          })
        ).status,
      ).toBe(200);

      // demo may not inspect admin's token
      const peek = await api(cloud.identityUrl, 'GET', '/v3/auth/tokens', {
        token: demo,
        headers: { 'x-subject-token': admin },
      });
      expect(peek.status).toBe(403);

      expect(
        (
          await api(cloud.identityUrl, 'DELETE', '/v3/auth/tokens', {
            token: demo,
            headers: { 'x-subject-token': demo },
          })
        ).status,
      ).toBe(204);
      expect(
        (
          await api(cloud.identityUrl, 'GET', '/v3/auth/tokens', {
            token: admin,
            headers: { 'x-subject-token': demo },
          })
        ).status,
      ).toBe(404);
      expect((await api(cloud.identityUrl, 'GET', '/v3/auth/projects', { token: demo })).status).toBe(401);
    });

    it('a rescoped token keeps the audit chain and dies with its parent', async () => {
      const unscoped = await api(cloud.identityUrl, 'POST', '/v3/auth/tokens', {
        body: {
          auth: {
            identity: {
              methods: ['password'],
              password: {
                user: { name: 'admin', domain: { name: 'Default' }, password: cloud.adminPassword },
              },
            },
          },
        },
      });
      // admin's default project is admin, so an unscoped request gets a project token (Keystone's behaviour)
      expect(unscoped.body.token.project.name).toBe('admin');
      const parent = unscoped.headers.get('x-subject-token')!;
      const rescoped = await api(cloud.identityUrl, 'POST', '/v3/auth/tokens', {
        body: {
          auth: {
            identity: { methods: ['token'], token: { id: parent } },
            scope: { domain: { id: 'default' } },
          },
        },
      });
      // admin holds no role on the domain itself
      expect(rescoped.status).toBe(401);
      const toProject = await api(cloud.identityUrl, 'POST', '/v3/auth/tokens', {
        body: {
          auth: {
            identity: { methods: ['token'], token: { id: parent } },
            scope: { project: { name: 'admin2', domain: { id: 'default' } } },
          },
        },
      });
      expect(toProject.status).toBe(401);

      const child = await api(cloud.identityUrl, 'POST', '/v3/auth/tokens', {
        body: {
          auth: {
            identity: { methods: ['token'], token: { id: parent } },
            scope: { project: { name: 'admin', domain: { id: 'default' } } },
          },
        },
      });
      expect(child.status).toBe(201);
      expect(child.body.token.audit_ids).toEqual([expect.any(String), unscoped.body.token.audit_ids[0]]);
      expect(child.body.token.expires_at).toBe(unscoped.body.token.expires_at);
      const childToken = child.headers.get('x-subject-token')!;
      expect((await api(cloud.identityUrl, 'GET', '/v3/auth/projects', { token: childToken })).status).toBe(
        200,
      );
      await api(cloud.identityUrl, 'DELETE', '/v3/auth/tokens', {
        token: parent,
        headers: { 'x-subject-token': parent },
      });
      expect((await api(cloud.identityUrl, 'GET', '/v3/auth/projects', { token: childToken })).status).toBe(
        401,
      );
    });
  });

  it('voids tokens at once when their user or project is disabled', async () => {
    const admin = await adminToken();
    const project = (
      await api(cloud.identityUrl, 'POST', '/v3/projects', {
        token: admin,
        body: { project: { name: 'short-lived' } },
      })
    ).body.project;
    const user = (
      await api(cloud.identityUrl, 'POST', '/v3/users', {
        token: admin,
        body: { user: { name: 'temp', password: 'pw' } },
      })
    ).body.user;
    const roles = (await api(cloud.identityUrl, 'GET', '/v3/roles?name=member', { token: admin })).body.roles;
    expect(
      (
        await api(
          cloud.identityUrl,
          'PUT',
          `/v3/projects/${project.id}/users/${user.id}/roles/${roles[0].id}`,
          { token: admin },
        )
      ).status,
    ).toBe(204);
    const projectToken = (
      await issueToken(cloud.identityUrl, { user: 'temp', password: 'pw', project: 'short-lived' })
    ).token;
    expect((await api(cloud.identityUrl, 'GET', '/v3/auth/projects', { token: projectToken })).status).toBe(
      200,
    );

    await api(cloud.identityUrl, 'PATCH', `/v3/projects/${project.id}`, {
      token: admin,
      body: { project: { enabled: false } },
    });
    expect((await api(cloud.identityUrl, 'GET', '/v3/auth/projects', { token: projectToken })).status).toBe(
      401,
    );
    await api(cloud.identityUrl, 'PATCH', `/v3/projects/${project.id}`, {
      token: admin,
      body: { project: { enabled: true } },
    });
    expect((await api(cloud.identityUrl, 'GET', '/v3/auth/projects', { token: projectToken })).status).toBe(
      200,
    );

    await api(cloud.identityUrl, 'PATCH', `/v3/users/${user.id}`, {
      token: admin,
      body: { user: { enabled: false } },
    });
    expect((await api(cloud.identityUrl, 'GET', '/v3/auth/projects', { token: projectToken })).status).toBe(
      401,
    );
    await api(cloud.identityUrl, 'PATCH', `/v3/users/${user.id}`, {
      token: admin,
      body: { user: { enabled: true } },
    });
    // disabling revoked the user's tokens, so re-enabling does not bring the old one back
    expect((await api(cloud.identityUrl, 'GET', '/v3/auth/projects', { token: projectToken })).status).toBe(
      401,
    );
  });

  describe('policy', () => {
    it('a member reads its own project and user, and nothing of the admin API', async () => {
      const demo = await demoToken();
      const me = await api(cloud.identityUrl, 'GET', '/v3/auth/projects', { token: demo });
      expect(me.body.projects.map((p: any) => p.name)).toEqual(['demo']);
      const demoProject = me.body.projects[0];
      expect(
        (await api(cloud.identityUrl, 'GET', `/v3/projects/${demoProject.id}`, { token: demo })).status,
      ).toBe(200);
      for (const [method, path] of [
        ['GET', '/v3/projects'],
        ['GET', '/v3/users'],
        ['POST', '/v3/projects'],
        ['GET', '/v3/role_assignments'],
        ['GET', '/v3/services'],
      ]) {
        const response = await api(cloud.identityUrl, method, path, {
          token: demo,
          body: method === 'POST' ? { project: { name: 'x' } } : undefined,
        });
        expect({ path, status: response.status }).toEqual({ path, status: 403 });
        expect(response.body.error.title).toBe('Forbidden');
      }
    });
  });

  it('answers every response with a request id, keeps a caller global request id out of its own', async () => {
    const response = await api(cloud.identityUrl, 'GET', '/v3');
    expect(response.headers.get('x-openstack-request-id')).toMatch(/^req-[0-9a-f-]{36}$/);
    const global = 'req-11111111-2222-3333-4444-555555555555';
    const tagged = await api(cloud.identityUrl, 'GET', '/v3', {
      headers: { 'x-openstack-request-id': global },
    });
    expect(tagged.headers.get('x-openstack-request-id')).toMatch(/^req-/);
    expect(tagged.headers.get('x-openstack-request-id')).not.toBe(global);
    const unknown = await api(cloud.identityUrl, 'GET', '/v3/no-such-thing', { token: await adminToken() });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe(404);
    const health = await fetch(`${cloud.identityUrl.replace('/identity', '')}/healthcheck`);
    expect(health.status).toBe(200);
  });

  it('keeps users, projects, keys and revocations across a restart', async () => {
    // Tokens that outlive a restart: a loaded machine restarts the cloud in more than the file's 4 s.
    expect(await cloud.stop('SIGTERM')).toBe(0);
    cloud.env.NOVUM_TOKEN_EXPIRATION = '600';
    await cloud.start();
    const admin = await adminToken();
    const created = await api(cloud.identityUrl, 'POST', '/v3/projects', {
      token: admin,
      body: { project: { name: 'survivor' } },
    });
    expect(created.status).toBe(201);
    const revoked = await adminToken();
    await api(cloud.identityUrl, 'DELETE', '/v3/auth/tokens', {
      token: admin,
      headers: { 'x-subject-token': revoked },
    });

    expect(await cloud.stop('SIGTERM')).toBe(0);
    await cloud.start();

    // the token issued before the restart still validates: the keys live in the database
    const projects = await api(cloud.identityUrl, 'GET', '/v3/projects?name=survivor', { token: admin });
    expect(projects.status).toBe(200);
    expect(projects.body.projects).toEqual([
      expect.objectContaining({ id: created.body.project.id, name: 'survivor' }),
    ]);
    expect((await api(cloud.identityUrl, 'GET', '/v3/projects', { token: revoked })).status).toBe(401);
    // bootstrap at the second start changed nothing
    const users = await api(cloud.identityUrl, 'GET', '/v3/users?name=admin', { token: admin });
    expect(users.body.users).toHaveLength(1);
  }, 120_000);
});
