import { CredentialSeal, StackCredential } from './cloud';

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
