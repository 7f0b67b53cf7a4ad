import { NovumConfig } from '@novum/common';
import { CloudSession, CredentialSeal, IdentityClient, StackCredential } from './cloud';

describe('stack credentials at rest', () => {
  const credential: StackCredential = {
    kind: 'application_credential',
    id: 'b1c2',
    secret: 'the-application-credential-secret',
    userId: 'u1',
  };

  it('keeps no secret in the stored form, and opens it with the same key only', () => {
    const seal = new CredentialSeal('cloud key');
    const stored = seal.seal(credential);
    expect(Object.keys(stored)).toEqual(['sealed']);
    expect(JSON.stringify(stored)).not.toContain('the-application-credential-secret');
    expect(JSON.stringify(stored)).not.toContain('b1c2');
    // A fresh nonce each time: two seals of one credential differ.
    expect(seal.seal(credential).sealed).not.toBe(stored.sealed);
    expect(new CredentialSeal('cloud key').open(JSON.parse(JSON.stringify(stored)))).toEqual(credential);
    expect(() => new CredentialSeal('another key').open(stored)).toThrow(
      "The stack's credential does not open with this auth encryption key.",
    );
  });

  it('refuses a tampered or missing credential', () => {
    const seal = new CredentialSeal('cloud key');
    const parts = seal.seal({ kind: 'token', token: 't' }).sealed.split('.');
    const data = Buffer.from(parts[3], 'base64');
    data[0] ^= 1;
    parts[3] = data.toString('base64');
    expect(() => seal.open({ sealed: parts.join('.') })).toThrow('does not open');
    expect(() => seal.open({ kind: 'token', token: 't' })).toThrow('The stack keeps no sealed credential.');
    expect(() => seal.open(null)).toThrow('The stack keeps no sealed credential.');
  });
});

describe('stack sessions', () => {
  const credential: StackCredential = { kind: 'token', token: 't' };
  const identity = () =>
    new IdentityClient({
      identityUrl: 'http://keystone.invalid/identity',
      authEncryptionKey: 'unit-test-key',
    } as unknown as NovumConfig);

  it('authenticates once for the resources of a stack that start side by side, then keeps the session', async () => {
    const client = identity();
    const session = new CloudSession('token-1', [], 'project-1');
    let finish: () => void = () => undefined;
    const authenticate = jest.spyOn(client, 'authenticate').mockImplementation(
      () =>
        new Promise((resolve) => {
          finish = () => resolve({ session, expiresAt: Date.now() + 3_600_000 });
        }),
    );
    const waiting = Array.from({ length: 5 }, () => client.session('stack-1', credential));
    finish();
    expect(await Promise.all(waiting)).toEqual(Array(5).fill(session));
    expect(await client.session('stack-1', credential)).toBe(session);
    expect(authenticate).toHaveBeenCalledTimes(1);
  });

  it('tries again after a failed authentication, and forgets a dropped stack', async () => {
    const client = identity();
    const session = new CloudSession('token-2', [], 'project-1');
    const authenticate = jest
      .spyOn(client, 'authenticate')
      .mockRejectedValueOnce(new Error('identity down'))
      .mockResolvedValue({ session, expiresAt: Date.now() + 3_600_000 });
    await expect(
      Promise.all([client.session('stack-2', credential), client.session('stack-2', credential)]),
    ).rejects.toThrow('identity down');
    expect(await client.session('stack-2', credential)).toBe(session);
    client.dropSession('stack-2');
    expect(await client.session('stack-2', credential)).toBe(session);
    expect(authenticate).toHaveBeenCalledTimes(3);
  });
});
