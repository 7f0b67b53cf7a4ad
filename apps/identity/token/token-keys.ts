import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { nowIso } from '@novum/db';
import { IdentityStore, isUniqueViolation } from '../identity.store';
import { TokenKey } from './token-codec';

const KEYS_KEPT = 3;

/**
 * Token encryption keys, kept in the database so every identity process shares them. The newest key
 * encrypts; the older ones it keeps still decrypt, so a rotation never voids a live token.
 */
@Injectable()
export class TokenKeyRing {
  private keys = new Map<number, TokenKey>();
  private primary: TokenKey | undefined;

  constructor(private readonly store: IdentityStore) {}

  async primaryKey(): Promise<TokenKey> {
    if (!this.primary) await this.load();
    if (!this.primary) await this.rotate();
    return this.primary as TokenKey;
  }

  /** The key with this id; reloads once, since another process may have rotated. */
  async key(id: number): Promise<TokenKey | undefined> {
    if (!this.keys.has(id)) await this.load();
    return this.keys.get(id);
  }

  /** Adds a new primary key and drops the oldest beyond the few kept. */
  async rotate(): Promise<void> {
    await this.load();
    const next = Math.max(0, ...this.keys.keys()) + 1;
    try {
      await this.store.tokenKeys.insert({
        id: next,
        secret: randomBytes(32).toString('base64'),
        createdAt: nowIso(),
      });
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
    }
    const all = await this.store.tokenKeys.find({ order: { id: 'DESC' } });
    const stale = all.slice(KEYS_KEPT).map((k) => k.id);
    if (stale.length) await this.store.tokenKeys.delete(stale);
    await this.load();
  }

  private async load(): Promise<void> {
    const rows = await this.store.tokenKeys.find({ order: { id: 'DESC' } });
    this.keys = new Map(
      rows.map((row) => [row.id, { id: row.id, secret: Buffer.from(row.secret, 'base64') }]),
    );
    this.primary = rows.length ? this.keys.get(rows[0].id) : undefined;
  }
}
