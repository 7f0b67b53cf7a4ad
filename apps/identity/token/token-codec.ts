import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** What a token carries; everything else (roles, names, catalog) is looked up when it is validated. */
export interface TokenPayload {
  userId: string;
  methods: string[];
  projectId?: string;
  domainId?: string;
  auditIds: string[];
  issuedAt: number;
  expiresAt: number;
  applicationCredentialId?: string;
}

export interface TokenKey {
  id: number;
  secret: Buffer;
}

const VERSION = 1;
const HEADER = 5; // version byte + key id
const IV = 12;
const TAG = 16;

type Wire = [string, string[], string | 0, string | 0, string[], number, number, string | 0];

/**
 * Tokens are AES-256-GCM encrypted and authenticated (like Keystone's Fernet tokens): unreadable and
 * tamper-proof without the key, and self-contained, so validation needs no token table. The key id in
 * the clear header lets older keys keep validating after a rotation.
 */
export function encodeToken(payload: TokenPayload, key: TokenKey): string {
  const header = Buffer.alloc(HEADER);
  header.writeUInt8(VERSION, 0);
  header.writeUInt32BE(key.id, 1);
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', key.secret, iv);
  cipher.setAAD(header);
  const wire: Wire = [
    payload.userId,
    payload.methods,
    payload.projectId ?? 0,
    payload.domainId ?? 0,
    payload.auditIds,
    payload.issuedAt,
    payload.expiresAt,
    payload.applicationCredentialId ?? 0,
  ];
  const body = Buffer.concat([cipher.update(JSON.stringify(wire), 'utf8'), cipher.final()]);
  return Buffer.concat([header, iv, cipher.getAuthTag(), body]).toString('base64url');
}

/** The key id a token names, or undefined when the token is not one of ours. */
export function tokenKeyId(token: string): number | undefined {
  const raw = Buffer.from(token, 'base64url');
  if (raw.length < HEADER + IV + TAG + 1 || raw.readUInt8(0) !== VERSION) return undefined;
  return raw.readUInt32BE(1);
}

/** Decrypts and authenticates; undefined for anything forged, truncated or encrypted with another key. */
export function decodeToken(token: string, key: TokenKey): TokenPayload | undefined {
  const raw = Buffer.from(token, 'base64url');
  if (raw.length < HEADER + IV + TAG + 1 || raw.readUInt8(0) !== VERSION || raw.readUInt32BE(1) !== key.id) {
    return undefined;
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.secret, raw.subarray(HEADER, HEADER + IV));
    decipher.setAAD(raw.subarray(0, HEADER));
    decipher.setAuthTag(raw.subarray(HEADER + IV, HEADER + IV + TAG));
    const text = Buffer.concat([decipher.update(raw.subarray(HEADER + IV + TAG)), decipher.final()]).toString(
      'utf8',
    );
    const [userId, methods, projectId, domainId, auditIds, issuedAt, expiresAt, appCred] = JSON.parse(
      text,
    ) as Wire;
    return {
      userId,
      methods,
      projectId: projectId || undefined,
      domainId: domainId || undefined,
      auditIds,
      issuedAt,
      expiresAt,
      applicationCredentialId: appCred || undefined,
    };
  } catch {
    return undefined;
  }
}
