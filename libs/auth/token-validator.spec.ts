import { UnauthorizedError } from '@novum/common';
import { RemoteTokenValidator } from './token-validator';

const body = {
  token: {
    methods: ['password'],
    user: { id: 'u1', name: 'alice', domain: { id: 'default' } },
    project: { id: 'p1', name: 'alpha', domain: { id: 'default' } },
    roles: [{ name: 'member' }, { name: 'reader' }],
    audit_ids: ['a1'],
    expires_at: new Date(Date.now() + 3_600_000).toISOString(),
    issued_at: new Date().toISOString(),
  },
};

function fakeIdentity(status: number) {
  const calls: { url: string; headers: Record<string, string> }[] = [];
  const fetchImpl = (async (url: string, init: { headers: Record<string, string> }) => {
    calls.push({ url, headers: init.headers });
    return new Response(status === 200 ? JSON.stringify(body) : '{}', { status });
  }) as unknown as typeof fetch;
  return { calls, fetchImpl };
}

describe('RemoteTokenValidator', () => {
  it('asks Keystone with the token as its own subject and maps the answer', async () => {
    const identity = fakeIdentity(200);
    const validator = new RemoteTokenValidator('http://keystone/identity/', 5, identity.fetchImpl);
    const context = await validator.validate('tok');
    expect(identity.calls[0].url).toBe('http://keystone/identity/v3/auth/tokens?nocatalog');
    expect(identity.calls[0].headers).toEqual({ 'x-auth-token': 'tok', 'x-subject-token': 'tok' });
    expect(context).toMatchObject({
      userId: 'u1',
      projectId: 'p1',
      roles: ['member', 'reader'],
      auditIds: ['a1'],
    });
  });

  it('caches an answer for the configured time only', async () => {
    const identity = fakeIdentity(200);
    const cached = new RemoteTokenValidator('http://keystone/identity', 5, identity.fetchImpl);
    await cached.validate('tok');
    await cached.validate('tok');
    expect(identity.calls).toHaveLength(1);
    const uncached = new RemoteTokenValidator('http://keystone/identity', 0, identity.fetchImpl);
    await uncached.validate('tok');
    await uncached.validate('tok');
    expect(identity.calls).toHaveLength(3);
  });

  it('turns 401 and 404 into UnauthorizedError, and anything else into 503', async () => {
    await expect(
      new RemoteTokenValidator('http://k', 5, fakeIdentity(404).fetchImpl).validate('t'),
    ).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(
      new RemoteTokenValidator('http://k', 5, fakeIdentity(401).fetchImpl).validate('t'),
    ).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(
      new RemoteTokenValidator('http://k', 5, fakeIdentity(503).fetchImpl).validate('t'),
    ).rejects.toMatchObject({ status: 503 });
    const unreachable = (async () => {
      throw new TypeError('fetch failed');
    }) as unknown as typeof fetch;
    await expect(new RemoteTokenValidator('http://k', 5, unreachable).validate('t')).rejects.toMatchObject({
      status: 503,
    });
  });
});
