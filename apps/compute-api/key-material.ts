import { createHash, generateKeyPair, KeyObject, randomBytes, sign, X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';

/** Key generation runs on libuv's thread pool: an RSA key takes tens of milliseconds, too long to block. */
const newKeyPair = promisify(generateKeyPair);

/**
 * Key material for Nova key pairs: OpenSSH public keys and their MD5 fingerprints, x509 certificates and
 * their SHA-1 fingerprints, computed exactly as Nova does (nova/crypto.py).
 */
export type SshKeyAlgorithm = 'rsa' | 'ed25519';

export interface GeneratedKey {
  publicKey: string;
  privateKey: string;
  fingerprint: string;
}

export class InvalidKeyError extends Error {}

function sshString(data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
}

/** An SSH mpint: big-endian, with a zero byte in front when the high bit would make it negative. */
function sshMpint(unsigned: Buffer): Buffer {
  let bytes = unsigned;
  while (bytes.length > 1 && bytes[0] === 0) bytes = bytes.subarray(1);
  return sshString(bytes[0] & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}

function colonHex(digest: Buffer): string {
  return digest.toString('hex').replace(/(..)(?!$)/g, '$1:');
}

/** The OpenSSH public key line (`ssh-rsa AAAA... comment`) of a Node public key. */
export function opensshPublicKey(key: KeyObject, comment: string): string {
  const jwk = key.export({ format: 'jwk' }) as {
    kty: string;
    crv?: string;
    n?: string;
    e?: string;
    x?: string;
  };
  let blob: Buffer;
  let type: string;
  if (jwk.kty === 'RSA') {
    type = 'ssh-rsa';
    blob = Buffer.concat([
      sshString(type),
      sshMpint(Buffer.from(jwk.e!, 'base64url')),
      sshMpint(Buffer.from(jwk.n!, 'base64url')),
    ]);
  } else if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    type = 'ssh-ed25519';
    blob = Buffer.concat([sshString(type), sshString(Buffer.from(jwk.x!, 'base64url'))]);
  } else {
    throw new Error(`no OpenSSH encoding for ${jwk.kty} keys`);
  }
  return `${type} ${blob.toString('base64')} ${comment}`;
}

/** A new SSH key pair: RSA 2048 (Nova's choice, PKCS#1 PEM private key) or Ed25519 (OpenSSH format). */
export async function generateSshKey(algorithm: SshKeyAlgorithm = 'rsa'): Promise<GeneratedKey> {
  const pair =
    algorithm === 'rsa' ? await newKeyPair('rsa', { modulusLength: 2048 }) : await newKeyPair('ed25519');
  const publicKey = opensshPublicKey(pair.publicKey, 'Generated-by-Nova');
  const privateKey =
    algorithm === 'rsa'
      ? (pair.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string)
      : opensshEd25519PrivateKey(pair.privateKey, 'Generated-by-Nova');
  return { publicKey, privateKey, fingerprint: sshFingerprint(publicKey) };
}

/** An Ed25519 private key in OpenSSH's own format (`-----BEGIN OPENSSH PRIVATE KEY-----`), unencrypted. */
function opensshEd25519PrivateKey(key: KeyObject, comment: string): string {
  const jwk = key.export({ format: 'jwk' }) as { d: string; x: string };
  const seed = Buffer.from(jwk.d, 'base64url');
  const pub = Buffer.from(jwk.x, 'base64url');
  const type = 'ssh-ed25519';
  const publicBlob = Buffer.concat([sshString(type), sshString(pub)]);
  const check = randomBytes(4);
  let secret = Buffer.concat([
    check,
    check,
    sshString(type),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(comment),
  ]);
  const padding = Buffer.from(Array.from({ length: (8 - (secret.length % 8)) % 8 }, (_, i) => i + 1));
  secret = Buffer.concat([secret, padding]);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(1);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    count,
    sshString(publicBlob),
    sshString(secret),
  ]);
  const base64 = body
    .toString('base64')
    .replace(/(.{70})/g, '$1\n')
    .trimEnd();
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${base64}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

const SSH_TYPES = new Set([
  'ssh-rsa',
  'ssh-dss',
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
]);
/** Nova refuses RSA keys above 16384 bits (cryptography's limit is the reason; the test is the same). */
const MAX_RSA_BITS = 16384;

function readSshFields(blob: Buffer): Buffer[] {
  const fields: Buffer[] = [];
  let offset = 0;
  while (offset < blob.length) {
    if (offset + 4 > blob.length) throw new InvalidKeyError('truncated key');
    const length = blob.readUInt32BE(offset);
    offset += 4;
    if (offset + length > blob.length) throw new InvalidKeyError('truncated key');
    fields.push(blob.subarray(offset, offset + length));
    offset += length;
  }
  return fields;
}

/**
 * Checks an OpenSSH public key line and returns its MD5 fingerprint (`aa:bb:...`), as Nova's
 * generate_fingerprint does. Throws InvalidKeyError for anything that is not a well-formed key.
 */
export function sshFingerprint(publicKey: string): string {
  const parts = publicKey.trim().split(/\s+/);
  if (parts.length < 2 || !SSH_TYPES.has(parts[0]) || !/^[A-Za-z0-9+/]+={0,2}$/.test(parts[1])) {
    throw new InvalidKeyError('not an OpenSSH public key');
  }
  const blob = Buffer.from(parts[1], 'base64');
  const fields = readSshFields(blob);
  if (fields[0]?.toString() !== parts[0]) throw new InvalidKeyError('key type mismatch');
  const expectedFields: Record<string, number> = {
    'ssh-rsa': 3,
    'ssh-dss': 5,
    'ssh-ed25519': 2,
  };
  const want = expectedFields[parts[0]] ?? 3;
  if (fields.length !== want) throw new InvalidKeyError('malformed key');
  if (parts[0] === 'ssh-ed25519' && fields[1].length !== 32) throw new InvalidKeyError('malformed key');
  if (parts[0] === 'ssh-rsa') {
    let modulus = fields[2];
    while (modulus.length > 0 && modulus[0] === 0) modulus = modulus.subarray(1);
    const bits = modulus.length * 8 - Math.clz32(modulus[0] ?? 0) + 24;
    if (modulus.length === 0 || bits < 512 || bits > MAX_RSA_BITS) throw new InvalidKeyError('bad RSA size');
  }
  return colonHex(createHash('md5').update(blob).digest());
}

/** SHA-1 fingerprint of a PEM certificate, lowercase and colon-separated as Nova writes it. */
export function x509Fingerprint(pem: string): string {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pem);
  } catch {
    throw new InvalidKeyError('not a PEM certificate');
  }
  return colonHex(createHash('sha1').update(certificate.raw).digest());
}

function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  let length: Buffer;
  if (body.length < 0x80) length = Buffer.from([body.length]);
  else {
    const bytes: number[] = [];
    for (let n = body.length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
    length = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), length, body]);
}

const SEQUENCE = 0x30;
const SHA256_WITH_RSA = Buffer.from('06092a864886f70d01010b0500', 'hex');
const COMMON_NAME_OID = Buffer.from('0603550403', 'hex');

function derTime(date: Date): Buffer {
  const text = date.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  return der(0x17, Buffer.from(text));
}

/** A self-signed RSA certificate and its key, like Nova's x509 key pair generation. */
export async function generateX509Key(commonName: string): Promise<GeneratedKey> {
  const pair = await newKeyPair('rsa', { modulusLength: 2048 });
  const serial = randomBytes(8);
  serial[0] &= 0x7f;
  const name = der(
    SEQUENCE,
    der(0x31, der(SEQUENCE, COMMON_NAME_OID, der(0x0c, Buffer.from(commonName.slice(0, 64))))),
  );
  const now = new Date();
  const tbs = der(
    SEQUENCE,
    der(0xa0, der(0x02, Buffer.from([2]))),
    der(0x02, serial),
    der(SEQUENCE, SHA256_WITH_RSA),
    name,
    der(SEQUENCE, derTime(now), derTime(new Date(now.getTime() + 10 * 365 * 86400_000))),
    name,
    pair.publicKey.export({ type: 'spki', format: 'der' }),
  );
  const signature = sign('sha256', tbs, pair.privateKey);
  const certificate = der(
    SEQUENCE,
    tbs,
    der(SEQUENCE, SHA256_WITH_RSA),
    der(0x03, Buffer.concat([Buffer.from([0]), signature])),
  );
  const base64 = certificate
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .trimEnd();
  const publicKey = `-----BEGIN CERTIFICATE-----\n${base64}\n-----END CERTIFICATE-----\n`;
  const privateKey = pair.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
  return { publicKey, privateKey, fingerprint: x509Fingerprint(publicKey) };
}
