import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import {
  generateSshKey,
  generateX509Key,
  InvalidKeyError,
  sshFingerprint,
  x509Fingerprint,
} from './key-material';

describe('key material', () => {
  it('generates RSA keys in OpenSSH format with an MD5 fingerprint of the key blob', async () => {
    const key = await generateSshKey('rsa');
    expect(key.publicKey).toMatch(/^ssh-rsa AAAAB3NzaC1yc2E[A-Za-z0-9+/=]+ Generated-by-Nova$/);
    expect(key.privateKey).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    const blob = Buffer.from(key.publicKey.split(' ')[1], 'base64');
    const md5 = createHash('md5').update(blob).digest('hex');
    expect(key.fingerprint).toBe(md5.match(/../g)!.join(':'));
    // The private key's public half is the one announced.
    const fromPrivate = createPublicKey(key.privateKey).export({ format: 'jwk' }) as { n: string };
    expect(blob.toString('hex')).toContain(Buffer.from(fromPrivate.n, 'base64url').toString('hex'));
  });

  it('generates Ed25519 keys in OpenSSH format', async () => {
    const key = await generateSshKey('ed25519');
    expect(key.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/=]+ Generated-by-Nova$/);
    expect(sshFingerprint(key.publicKey)).toBe(key.fingerprint);
  });

  it('computes the fingerprint of a known key as ssh-keygen -l -E md5 does', () => {
    const key =
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@example';
    const blob = Buffer.from(key.split(' ')[1], 'base64');
    expect(sshFingerprint(key)).toBe(createHash('md5').update(blob).digest('hex').match(/../g)!.join(':'));
  });

  it('refuses what is not a well-formed public key', () => {
    for (const bad of [
      '',
      'ssh-rsa',
      'ssh-rsa !!!',
      `ssh-rsa ${'A'.repeat(2048)} openstack@ubuntu`,
      'ssh-ed25519 AAAAC3NzaC1yc2E= x',
      'ssh-dss AAAAB3NzaC1yc2E= x',
      'not a key at all',
    ]) {
      expect(() => sshFingerprint(bad)).toThrow(InvalidKeyError);
    }
  });

  it('generates self-signed x509 certificates that parse, with a SHA-1 fingerprint', async () => {
    const key = await generateX509Key('my-key');
    const certificate = new X509Certificate(key.publicKey);
    expect(certificate.subject).toBe('CN=my-key');
    expect(certificate.verify(certificate.publicKey)).toBe(true);
    expect(key.fingerprint).toBe(certificate.fingerprint.toLowerCase());
    expect(x509Fingerprint(key.publicKey)).toBe(key.fingerprint);
    expect(() => x509Fingerprint('-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----')).toThrow(
      InvalidKeyError,
    );
  });
});
