/** Seeded generators of hostile JSON for fuzzing tests: reproducible from the seed a failure prints. */
export class Rng {
  constructor(private state: number) {}
  next(): number {
    // mulberry32
    let t = (this.state += 0x6d2b79f5);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

const STRINGS = [
  '',
  ' ',
  'a'.repeat(70_000),
  '\u0000',
  '💥',
  '../../etc/passwd',
  "' OR 1=1 --",
  '%s%n',
  'null',
  'true',
  '{}',
  'default',
  'admin',
];

const KEYS = ['id', 'name', 'domain', 'password', 'methods', 'x', '__proto__', 'constructor'];

/** Keys of the compute servers API, for fuzzing its bodies (`randomValue(rng, 0, SERVER_KEYS)`). */
export const SERVER_KEYS = [
  ...KEYS,
  'server',
  'imageRef',
  'flavorRef',
  'networks',
  'uuid',
  'port',
  'fixed_ip',
  'metadata',
  'meta',
  'tags',
  'min_count',
  'max_count',
  'type',
  'adminPass',
  'locked_reason',
  'block_device_mapping_v2',
  'security_groups',
  'user_data',
];

export function randomValue(rng: Rng, depth = 0, keys: readonly string[] = KEYS): unknown {
  switch (rng.int(depth > 3 ? 6 : 8)) {
    case 0:
      return null;
    case 1:
      return rng.next() < 0.5;
    case 2:
      return rng.pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER]);
    case 3:
      return rng.pick(STRINGS);
    case 4:
      return Math.random().toString(36).slice(2);
    case 5:
      return [];
    case 6:
      return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth + 1, keys));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i--) object[rng.pick(keys)] = randomValue(rng, depth + 1, keys);
      return object;
    }
  }
}

/** A copy of `value` with one random change somewhere inside: a value replaced, a key dropped or added. */
export function mutate(rng: Rng, value: unknown, vocabulary: readonly string[] = KEYS): unknown {
  if (value === null || typeof value !== 'object' || rng.next() < 0.2) return randomValue(rng, 0, vocabulary);
  const copy: any = Array.isArray(value) ? [...value] : { ...(value as object) };
  const keys = Object.keys(copy);
  const action = rng.int(4);
  if (keys.length === 0 || action === 0) {
    copy[
      Array.isArray(copy)
        ? copy.length
        : rng.pick(['extra', 'id', 'name', 'scope', 'domain', ...vocabulary.slice(KEYS.length)])
    ] = randomValue(rng, 0, vocabulary);
  } else if (action === 1) {
    delete copy[rng.pick(keys)];
  } else {
    const key = rng.pick(keys);
    copy[key] = mutate(rng, copy[key], vocabulary);
  }
  return copy;
}

export function randomBytesString(rng: Rng): string {
  return Array.from({ length: rng.int(200) }, () => String.fromCharCode(rng.int(256))).join('');
}

/** Runs `count` jobs with at most `concurrency` in flight. */
export async function pool(
  count: number,
  concurrency: number,
  job: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await job(next++);
    }),
  );
}

/**
 * A random value as a query parameter: its JSON, cut to `max` characters (code points, so that a cut never
 * splits a surrogate pair, which encodeURIComponent refuses with URIError), URI-encoded.
 */
export function queryValue(value: unknown, max: number): string {
  return encodeURIComponent([...String(JSON.stringify(value))].slice(0, max).join(''));
}
