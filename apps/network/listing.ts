import { BadRequestError, NotFoundError } from '@novum/common';

/** Query parameters that steer a list rather than filter it. */
const CONTROL = new Set(['fields', 'limit', 'marker', 'sort_key', 'sort_dir', 'page_reverse']);
const TAG_FILTERS = new Set(['tags', 'tags-any', 'not-tags', 'not-tags-any']);

export type Resource = Record<string, unknown>;

/** Neutron repeats a parameter for several values (`?id=a&id=b`); Fastify hands those over as arrays. */
export function values(raw: unknown): string[] {
  if (raw === undefined) return [];
  return (Array.isArray(raw) ? raw : [raw]).map((value) => String(value));
}

/** `?fields=id&fields=name`: the attributes to return (undefined: all). */
export function requestedFields(query: Record<string, unknown>): string[] | undefined {
  const fields = values(query.fields)
    .flatMap((field) => field.split(','))
    .filter(Boolean);
  return fields.length ? fields : undefined;
}

export function pick(resource: Resource, fields: string[] | undefined): Resource {
  if (!fields) return resource;
  return Object.fromEntries(Object.entries(resource).filter(([key]) => fields.includes(key)));
}

function matches(actual: unknown, wanted: string[]): boolean {
  if (actual === null || actual === undefined) return wanted.some((w) => w === '' || w === 'None');
  if (typeof actual === 'boolean') return wanted.some((w) => w.toLowerCase() === String(actual));
  if (Array.isArray(actual)) return actual.some((item) => matches(item, wanted));
  if (typeof actual === 'object') return false;
  return wanted.includes(String(actual));
}

/** `fixed_ips=ip_address=10.0.0.5` / `fixed_ips=subnet_id=...`: a port filter Neutron spells as key=value. */
function matchesFixedIps(actual: unknown, wanted: string[]): boolean {
  const fixedIps = (actual ?? []) as { subnet_id: string; ip_address: string }[];
  return wanted.every((condition) => {
    const [key, value] = condition.split('=', 2);
    if (key === 'ip_address') return fixedIps.some((ip) => ip.ip_address === value);
    if (key === 'subnet_id') return fixedIps.some((ip) => ip.subnet_id === value);
    if (key === 'ip_address_substr') return fixedIps.some((ip) => ip.ip_address.includes(value ?? ''));
    throw new BadRequestError(`Invalid input for operation: '${condition}' is not a valid fixed_ips filter.`);
  });
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : 1;
}

export interface ListOptions {
  /** The collection's name, which also names its links (`networks_links`). */
  collection: string;
  /** Public URL of the collection, for the `next`/`previous` links. */
  url: string;
  /** Attributes every resource of the collection has, even when a list is empty. */
  attributes: string[];
  /** The marker's own not-found error. */
  notFound: (id: string) => NotFoundError;
}

/**
 * Neutron's list semantics over serialized resources: any attribute filters (repeated values are
 * alternatives), `fields`, `sort_key`/`sort_dir`, and `limit`/`marker`/`page_reverse` paging with
 * `<collection>_links`. Unknown filter attributes answer 400, as with Neutron's filter validation.
 */
export function list(items: Resource[], query: Record<string, unknown>, options: ListOptions): Resource {
  const known = new Set(options.attributes);
  let result = items;
  for (const [key, raw] of Object.entries(query)) {
    if (CONTROL.has(key)) continue;
    const wanted = values(raw);
    if (TAG_FILTERS.has(key)) {
      const tags = wanted.flatMap((value) => value.split(',')).filter(Boolean);
      result = result.filter((item) => {
        const own = (item.tags ?? []) as string[];
        const all = tags.every((tag) => own.includes(tag));
        const any = tags.some((tag) => own.includes(tag));
        return { tags: all, 'tags-any': any, 'not-tags': !all, 'not-tags-any': !any }[key]!;
      });
      continue;
    }
    if (!known.has(key)) throw new BadRequestError(`[${key}] is invalid attribute for filtering`);
    result = result.filter((item) =>
      key === 'fixed_ips' ? matchesFixedIps(item[key], wanted) : matches(item[key], wanted),
    );
  }

  const sortKeys = values(query.sort_key);
  const sortDirs = values(query.sort_dir);
  if (sortDirs.length > sortKeys.length)
    throw new BadRequestError('The number of sort_keys and sort_dirs must be same');
  for (const key of sortKeys) {
    if (!known.has(key)) throw new BadRequestError(`${key} is invalid attribute for sort_key`);
  }
  for (const dir of sortDirs) {
    if (dir !== 'asc' && dir !== 'desc') {
      throw new BadRequestError(`${dir} is invalid value for sort_dir, valid values are 'asc' and 'desc'`);
    }
  }
  const order: [string, number][] = sortKeys.map((key, i) => [key, sortDirs[i] === 'desc' ? -1 : 1]);
  order.push(['created_at', 1], ['id', 1]);
  result = [...result].sort((a, b) => {
    for (const [key, direction] of order) {
      const c = compare(a[key], b[key]);
      if (c !== 0) return c * direction;
    }
    return 0;
  });

  const limitRaw = values(query.limit);
  const limit = limitRaw.length ? Number(limitRaw[0]) : 0;
  if (!Number.isInteger(limit) || limit < 0) {
    throw new BadRequestError(`Limit must be an integer 0 or greater and not '${limitRaw[0]}'`);
  }
  const marker = values(query.marker)[0];
  const reverse = values(query.page_reverse)[0]?.toLowerCase() === 'true';
  let start = 0;
  let end = result.length;
  if (marker !== undefined) {
    const index = result.findIndex((item) => item.id === marker);
    if (index < 0) throw options.notFound(marker);
    if (reverse) end = index;
    else start = index + 1;
  }
  if (limit > 0) {
    if (reverse) start = Math.max(start, end - limit);
    else end = Math.min(end, start + limit);
  }
  const page = result.slice(start, end);

  const body: Resource = { [options.collection]: page.map((item) => pick(item, requestedFields(query))) };
  if (limit > 0) {
    const links = [];
    const link = (rel: string, markerId: unknown, pageReverse: boolean) => {
      const params = new URLSearchParams();
      for (const [key, raw] of Object.entries(query)) {
        if (key === 'marker' || key === 'page_reverse') continue;
        for (const value of values(raw)) params.append(key, value);
      }
      params.set('marker', String(markerId));
      if (pageReverse) params.set('page_reverse', 'True');
      return { rel, href: `${options.url}?${params.toString()}` };
    };
    const more = reverse ? start > 0 : end < result.length;
    const earlier = reverse ? end < result.length : start > 0;
    if (page.length && (reverse ? earlier : more)) links.push(link('next', page[page.length - 1].id, false));
    if (page.length && (reverse ? more : earlier)) links.push(link('previous', page[0].id, true));
    body[`${options.collection}_links`] = links;
  }
  return body;
}
