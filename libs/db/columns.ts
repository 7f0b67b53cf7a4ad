import { ValueTransformer } from 'typeorm';

/**
 * Timestamps are stored as ISO 8601 UTC strings (`2026-11-28T07:30:00.000Z`): one column type that means
 * the same on SQLite and PostgreSQL and that sorts and compares correctly as text.
 */
export const isoTimestamp = { type: 'varchar', length: 32 } as const;

export function nowIso(): string {
  return new Date().toISOString();
}

/** Booleans survive SQLite's 0/1 storage unchanged on both engines. */
export const booleanTransformer: ValueTransformer = {
  to: (value: boolean | undefined) => value,
  from: (value: unknown) => (value === null || value === undefined ? value : Boolean(value)),
};
