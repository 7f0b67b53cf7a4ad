import { Injectable } from '@nestjs/common';

/**
 * Read-through cache for what token validation looks up on every API call (user, project, roles,
 * catalog). Writes in this process clear it at once; other processes sharing the database see a change
 * within `ttlMs`.
 */
@Injectable()
export class IdentityCache {
  private readonly entries = new Map<string, { value: unknown; until: number }>();
  ttlMs = 2000;

  async get<T>(key: string, load: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.until > now) return hit.value as T;
    const value = await load();
    this.entries.set(key, { value, until: now + this.ttlMs });
    if (this.entries.size > 50_000) this.entries.clear();
    return value;
  }

  invalidate(): void {
    this.entries.clear();
  }
}
