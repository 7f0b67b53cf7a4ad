import { Readable } from 'node:stream';
import { containsNul } from './http-app';

describe('containsNul', () => {
  it('finds a NUL in strings, keys and nested values', () => {
    expect(containsNul('a\u0000b')).toBe(true);
    expect(containsNul({ user: { name: ['x', 'y\u0000'] } })).toBe(true);
    expect(containsNul({ ['k\u0000']: 1 })).toBe(true);
    expect(containsNul({ user: { name: 'plain', n: 1, b: null } })).toBe(false);
    expect(containsNul(undefined)).toBe(false);
  });

  it('leaves streams and other class instances alone', () => {
    expect(containsNul(Readable.from(['a\u0000']))).toBe(false);
    expect(containsNul(Buffer.from([0]))).toBe(false);
  });
});
