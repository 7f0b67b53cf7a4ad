import { Injectable } from '@nestjs/common';
import { AuthContext, isAdmin } from '@novum/auth';
import { BadRequestError } from '@novum/common';
import { ImageEntity, MemberStatus } from '@novum/db';
import { Brackets } from 'typeorm';
import { ImageStore } from './image.store';
import { ImageView } from './image.service';
import { MEMBER_STATUSES, VISIBILITIES } from './model';
import { canSeeImage, inDefaultList } from './policy';

const DEFAULT_LIMIT = 25;
const MAX_LIMIT = 1000;
const STATUSES = [
  'queued',
  'saving',
  'uploading',
  'importing',
  'active',
  'deactivated',
  'killed',
  'deleted',
  'pending_delete',
];

/** Sort keys Glance accepts, with how to read each from an image. */
const SORT_KEYS: Record<string, (image: ImageEntity) => string | number | boolean | null> = {
  name: (i) => i.name,
  status: (i) => i.status,
  container_format: (i) => i.containerFormat,
  disk_format: (i) => i.diskFormat,
  size: (i) => i.size,
  virtual_size: (i) => i.virtualSize,
  id: (i) => i.id,
  created_at: (i) => i.createdAt,
  updated_at: (i) => i.updatedAt,
  visibility: (i) => i.visibility,
  owner: (i) => i.owner,
  min_disk: (i) => i.minDisk,
  min_ram: (i) => i.minRam,
  os_hidden: (i) => i.osHidden,
  protected: (i) => i.protected,
};

/** Query parameters that are not property filters. */
const CONTROL = new Set(['limit', 'marker', 'sort', 'sort_key', 'sort_dir', 'visibility', 'member_status']);

type Query = Record<string, string | string[] | undefined>;

export interface ImagePage {
  views: ImageView[];
  /** The query of the next page (marker included), when there is one. */
  next?: URLSearchParams;
  first: URLSearchParams;
}

function single(query: Query, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw new BadRequestError(`Query parameter '${name}' may be given once.`);
  return value;
}

function bool(query: Query, name: string): boolean | undefined {
  const value = single(query, name);
  if (value === undefined) return undefined;
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  if (/^(false|0|no|off)$/i.test(value)) return false;
  throw new BadRequestError(`Invalid value '${value}' for '${name}': expected true or false.`);
}

function int(query: Query, name: string): number | undefined {
  const value = single(query, name);
  if (value === undefined) return undefined;
  if (!/^\d{1,15}$/.test(value)) throw new BadRequestError(`${name} param must be a non-negative integer`);
  return Number(value);
}

/** `in:a,b` matches any of the values; a plain value matches itself. */
function matcher(value: string): (actual: string | null) => boolean {
  if (value.startsWith('in:')) {
    const options = value.slice(3).split(',');
    return (actual) => actual !== null && options.includes(actual);
  }
  return (actual) => actual === value;
}

/** `gt:2026-01-01T00:00:00Z` and friends on a timestamp. */
function timeMatcher(name: string, value: string): (actual: string) => boolean {
  const match = /^(gt|gte|lt|lte|eq|neq):(.+)$/.exec(value) ?? [value, 'eq', value];
  const at = Date.parse(match[2]);
  if (Number.isNaN(at)) throw new BadRequestError(`Invalid value '${value}' for '${name}': expected a time.`);
  const op = match[1];
  return (actual) => {
    const t = Date.parse(actual);
    if (op === 'gt') return t > at;
    if (op === 'gte') return t >= at;
    if (op === 'lt') return t < at;
    if (op === 'lte') return t <= at;
    if (op === 'neq') return t !== at;
    return t === at;
  };
}

function parseSort(query: Query): { key: string; dir: 'asc' | 'desc' }[] {
  const sort = single(query, 'sort');
  const keys = [query.sort_key ?? []].flat();
  const dirs = [query.sort_dir ?? []].flat();
  if (sort !== undefined && (keys.length || dirs.length))
    throw new BadRequestError("The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir'.");
  let order: { key: string; dir: string }[];
  if (sort !== undefined) {
    order = sort.split(',').map((part) => {
      const [key, dir = 'desc', ...rest] = part.trim().split(':');
      if (rest.length) throw new BadRequestError(`Invalid sort value '${part}'.`);
      return { key, dir };
    });
  } else {
    if (dirs.length > 1 && dirs.length !== keys.length)
      throw new BadRequestError('Number of sort dirs does not match the number of sort keys.');
    order = keys.map((key, i) => ({ key, dir: dirs[dirs.length === 1 ? 0 : i] ?? 'desc' }));
    if (!keys.length && dirs.length) order = [{ key: 'created_at', dir: dirs[0] }];
  }
  for (const { key, dir } of order) {
    if (!(key in SORT_KEYS)) throw new BadRequestError(`Invalid sort key: ${key}.`);
    if (dir !== 'asc' && dir !== 'desc')
      throw new BadRequestError(`Invalid sort direction: ${dir}. It must be 'asc' or 'desc'.`);
  }
  const result = order as { key: string; dir: 'asc' | 'desc' }[];
  if (!result.length) result.push({ key: 'created_at', dir: 'desc' });
  if (!result.some((s) => s.key === 'id')) result.push({ key: 'id', dir: result[result.length - 1].dir });
  return result;
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  return (a as number) < (b as number) ? -1 : 1;
}

/** `GET /v2/images`: Glance's visibility defaults, filters, sorting and marker paging. */
@Injectable()
export class ImageListService {
  constructor(private readonly store: ImageStore) {}

  async list(auth: AuthContext, query: Query): Promise<ImagePage> {
    const limit = Math.min(int(query, 'limit') ?? DEFAULT_LIMIT, MAX_LIMIT);
    const marker = single(query, 'marker');
    const sort = parseSort(query);
    const visibility = single(query, 'visibility');
    if (
      visibility !== undefined &&
      visibility !== 'all' &&
      !(VISIBILITIES as readonly string[]).includes(visibility)
    )
      throw new BadRequestError(`Invalid visibility value: ${visibility}`);
    const memberStatus = single(query, 'member_status') ?? 'accepted';
    if (memberStatus !== 'all' && !(MEMBER_STATUSES as readonly string[]).includes(memberStatus))
      throw new BadRequestError(`Invalid status value: ${memberStatus}`);
    const filters = this.filters(query);

    const memberships = new Map<string, MemberStatus>();
    if (auth.projectId) {
      const rows = await this.store.members.findBy({ memberId: auth.projectId });
      for (const row of rows) memberships.set(row.imageId, row.status);
    }
    const candidates = await this.candidates(auth);
    const matches = candidates.filter((image) => {
      const membership = memberships.get(image.id);
      if (!canSeeImage(auth, image, membership)) return false;
      if (visibility === undefined) {
        if (!inDefaultList(auth, image, membership, memberStatus as MemberStatus | 'all')) return false;
      } else if (visibility !== 'all') {
        if (image.visibility !== visibility) return false;
        if (
          visibility === 'shared' &&
          !isAdmin(auth) &&
          image.owner !== auth.projectId &&
          memberStatus !== 'all' &&
          membership !== memberStatus
        )
          return false;
      }
      return filters.every((filter) => filter(image));
    });
    const tags = await this.store.tagsOf(matches.map((i) => i.id));
    const wantedTags = [query.tag ?? []].flat();
    const tagged = matches.filter((image) => wantedTags.every((t) => tags.get(image.id)?.includes(t)));
    tagged.sort((a, b) => {
      for (const { key, dir } of sort) {
        const order = compare(SORT_KEYS[key](a), SORT_KEYS[key](b));
        if (order) return dir === 'asc' ? order : -order;
      }
      return 0;
    });
    let start = 0;
    if (marker !== undefined) {
      const index = tagged.findIndex((image) => image.id === marker);
      if (index < 0) throw new BadRequestError(`Invalid marker. Image ${marker} could not be found.`);
      start = index + 1;
    }
    const page = tagged.slice(start, start + limit);
    const first = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (key === 'marker' || value === undefined) continue;
      for (const v of [value].flat()) first.append(key, v);
    }
    let next: URLSearchParams | undefined;
    if (start + limit < tagged.length && page.length) {
      next = new URLSearchParams(first);
      next.set('marker', page[page.length - 1].id);
      if (!next.has('limit')) next.set('limit', String(limit));
    }
    return { views: page.map((image) => ({ image, tags: tags.get(image.id) ?? [] })), first, next };
  }

  /** The images the caller could possibly see, narrowed in SQL; the rest of the rules run on them. */
  private candidates(auth: AuthContext): Promise<ImageEntity[]> {
    const query = this.store.images.createQueryBuilder('i');
    if (!isAdmin(auth)) {
      query.where(
        new Brackets((where) => {
          where.where("i.visibility IN ('public', 'community')");
          if (auth.projectId) {
            where
              .orWhere('i.owner = :project', { project: auth.projectId })
              .orWhere(
                "i.visibility = 'shared' AND i.id IN (SELECT m.image_id FROM image_member m WHERE m.member_id = :project)",
                { project: auth.projectId },
              );
          }
        }),
      );
    }
    return query.getMany();
  }

  private filters(query: Query): ((image: ImageEntity) => boolean)[] {
    const filters: ((image: ImageEntity) => boolean)[] = [];
    const hidden = bool(query, 'os_hidden') ?? false;
    filters.push((i) => i.osHidden === hidden);
    const isProtected = bool(query, 'protected');
    if (isProtected !== undefined) filters.push((i) => i.protected === isProtected);
    const columns: Record<string, (i: ImageEntity) => string | null> = {
      id: (i) => i.id,
      name: (i) => i.name,
      owner: (i) => i.owner,
      disk_format: (i) => i.diskFormat,
      container_format: (i) => i.containerFormat,
    };
    for (const [name, read] of Object.entries(columns)) {
      const value = single(query, name);
      if (value !== undefined) {
        const matches = matcher(value);
        filters.push((i) => matches(read(i)));
      }
    }
    const status = single(query, 'status');
    if (status !== undefined) {
      const wanted = status.startsWith('in:') ? status.slice(3).split(',') : [status];
      for (const s of wanted)
        if (!STATUSES.includes(s)) throw new BadRequestError(`Invalid status value: ${s}`);
      filters.push((i) => wanted.includes(i.status));
    }
    const sizeMin = int(query, 'size_min');
    const sizeMax = int(query, 'size_max');
    if (sizeMin !== undefined) filters.push((i) => i.size !== null && i.size >= sizeMin);
    if (sizeMax !== undefined) filters.push((i) => i.size !== null && i.size <= sizeMax);
    for (const name of ['created_at', 'updated_at'] as const) {
      const value = single(query, name);
      if (value === undefined) continue;
      const matches = timeMatcher(name, value);
      filters.push((i) => matches(name === 'created_at' ? i.createdAt : i.updatedAt));
    }
    const known = new Set([
      ...CONTROL,
      'tag',
      'os_hidden',
      'protected',
      'status',
      'size_min',
      'size_max',
      'created_at',
      'updated_at',
      ...Object.keys(columns),
    ]);
    for (const name of Object.keys(query)) {
      if (known.has(name) || query[name] === undefined) continue;
      const value = single(query, name);
      filters.push((i) => i.properties[name] === value);
    }
    return filters;
  }
}
