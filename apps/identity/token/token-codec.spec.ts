import { randomBytes } from 'node:crypto';
import { decodeToken, encodeToken, TokenPayload, tokenKeyId } from './token-codec';

const key = { id: 7, secret: randomBytes(32) };
const payload: TokenPayload = {
  userId: 'u1',
  methods: ['password'],
  projectId: 'p1',
  auditIds: ['a1'],
  issuedAt: 1_000,
  expiresAt: 2_000,
};

describe('token codec', () => {
  it('round-trips a payload and names its key', () => {
    const token = encodeToken(payload, key);
    expect(tokenKeyId(token)).toBe(7);
    expect(decodeToken(token, key)).toEqual({
      ...payload,
      domainId: undefined,
      applicationCredentialId: undefined,
    });
  });

  it('hides the payload', () => {
    const token = encodeToken(payload, key);
    expect(Buffer.from(token, 'base64url').toString('latin1')).not.toContain('u1');
  });

  it('rejects every single flipped bit', () => {
    const raw = Buffer.from(encodeToken(payload, key), 'base64url');
    for (let i = 0; i < raw.length; i++) {
      const forged = Buffer.from(raw);
      forged[i] ^= 0x01;
      expect(decodeToken(forged.toString('base64url'), key)).toBeUndefined();
    }
  });

  it('rejects a token encrypted with another key, and garbage', () => {
    const other = { id: 7, secret: randomBytes(32) };
    expect(decodeToken(encodeToken(payload, other), key)).toBeUndefined();
    expect(decodeToken('not-a-token', key)).toBeUndefined();
    expect(tokenKeyId('')).toBeUndefined();
  });
});
