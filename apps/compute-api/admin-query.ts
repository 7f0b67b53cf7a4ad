import { BadRequestError, NotFoundError } from '@novum/common';
import { toNovaBoolean, toNovaInt } from './controllers/dto';
import { NovaQueryParams } from './query';

/** What Nova answers for a route that the requested microversion does not have. */
export function versionNotFound(): NotFoundError {
  return new NotFoundError('The resource could not be found.');
}

/** Nova's query schema with `additionalProperties: false`: any other parameter is 400. */
export function onlyQueryParams(query: NovaQueryParams, allowed: readonly string[]): void {
  const extra = Object.keys(query).filter((key) => !allowed.includes(key));
  if (extra.length) {
    throw new BadRequestError(
      `Invalid input for query parameters. Additional properties are not allowed (${extra
        .map((k) => `'${k}'`)
        .join(', ')} ${extra.length > 1 ? 'were' : 'was'} unexpected)`,
    );
  }
}

/** A strict boolean query parameter (`with_servers`); absent: false. */
export function boolQuery(query: NovaQueryParams, name: string): boolean {
  const raw = query[name];
  if (raw === undefined) return false;
  const value = toNovaBoolean(raw);
  if (value === undefined) {
    throw new BadRequestError(
      `Invalid input for query parameters ${name}. Value: ${raw}. ${raw} is not a boolean`,
    );
  }
  return value;
}

/** Nova's `limit` (an integer >= 0) as `common.get_limit_and_marker` reads it. */
export function limitQuery(query: NovaQueryParams): number | undefined {
  const raw = query.limit;
  if (raw === undefined) return undefined;
  const limit = toNovaInt(raw);
  if (limit === undefined || limit < 0) {
    throw new BadRequestError(
      `Invalid input for query parameters limit. Value: ${raw}. must be an integer >= 0`,
    );
  }
  return limit;
}

/**
 * One page of `items` after the one whose key is `marker` (400 `marker [x] not found` when none is), at most
 * `limit` long; `more` says whether a next link belongs (the page is full).
 */
export function page<T>(
  items: T[],
  key: (item: T) => string,
  limit: number | undefined,
  marker: string | undefined,
): { items: T[]; more: boolean } {
  let start = 0;
  if (marker !== undefined) {
    const at = items.findIndex((item) => key(item) === marker);
    if (at < 0) throw new BadRequestError(`marker [${marker}] not found`);
    start = at + 1;
  }
  const rest = items.slice(start);
  if (limit === undefined) return { items: rest, more: false };
  const slice = rest.slice(0, limit);
  return { items: slice, more: limit > 0 && slice.length === limit };
}

export const UUID_PATTERN = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
