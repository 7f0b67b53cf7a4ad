import { AuthContext, isAdmin } from '@novum/auth';
import { BadRequestError } from '@novum/common';
import { InstanceEntity } from '@novum/db';
import { statesFromStatus } from '@novum/virt';
import { DataSource } from 'typeorm';
import { toNovaBoolean, toNovaInt } from './controllers/dto';
import { ApiVersion } from './microversion';
import { NovaQueryParams } from './query';
import { imageIdFromRef } from './server-schemas';

/** Nova's `[api] max_limit`. */
export const MAX_LIMIT = 1000;

/** Sort keys Nova accepts (a subset of its list), mapped to the row's field. */
const SORT_KEYS: Record<string, keyof InstanceEntity> = {
  created_at: 'createdAt',
  updated_at: 'updatedAt',
  display_name: 'displayName',
  uuid: 'uuid',
  vm_state: 'vmState',
  task_state: 'taskState',
  power_state: 'powerState',
  launched_at: 'launchedAt',
  terminated_at: 'terminatedAt',
  hostname: 'hostname',
  availability_zone: 'availabilityZone',
  key_name: 'keyName',
  project_id: 'projectId',
  user_id: 'userId',
  host: 'host',
  node: 'node',
  locked: 'locked',
  image_ref: 'imageRef',
  launch_index: 'launchIndex',
  reservation_id: 'reservationId',
};

/** Columns no server view or list filter reads, left out of the listing's query (it may load 1,000 rows). */
const UNLISTED: readonly (keyof InstanceEntity)[] = ['keyData', 'systemMetadata', 'schedulerHints'];

/** The tag filters of 2.26, matched here. */
const TAG_FILTERS = ['tags', 'tags-any', 'not-tags', 'not-tags-any'];

/** Sort keys a non-admin may not use (Nova's _get_server_search_options / SERVER_LIST_IGNORE_SORT_KEY). */
const ADMIN_SORT_KEYS = ['host', 'node'];

/** Python's iso8601 parse as Nova uses it for changes-since / changes-before. */
function parseTime(name: string, raw: string): string {
  const ms = Date.parse(raw.includes('T') || raw.includes(' ') ? raw : `${raw}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}/.test(raw) || Number.isNaN(ms)) {
    throw new BadRequestError(
      `Invalid input for query parameters ${name}. Value: ${raw}. '${raw}' is not a 'date-time'`,
    );
  }
  const withZone = /([zZ]|[+-]\d{2}:?\d{2})$/.test(raw) ? ms : Date.parse(`${raw.replace(' ', 'T')}Z`);
  return new Date(Number.isNaN(withZone) ? ms : withZone).toISOString();
}

function regex(name: string, raw: string): RegExp {
  try {
    return new RegExp(raw);
  } catch {
    throw new BadRequestError(
      `Invalid input for query parameters ${name}. Value: ${raw}. invalid regular expression`,
    );
  }
}

export interface ListResult {
  instances: InstanceEntity[];
  /** The marker of the next page when a limit cut the list. */
  next?: string;
}

/**
 * `GET /servers(/detail)` with Nova's filters, sorting and paging. The database narrows by project, deletion,
 * state, image and host; regular expressions, IPs and tags are matched here, as Nova matches some in Python.
 */
export async function listServers(
  dataSource: DataSource,
  auth: AuthContext,
  query: NovaQueryParams,
  v: ApiVersion,
  tagsOf: (uuids: string[]) => Promise<Map<string, string[]>>,
): Promise<ListResult> {
  const admin = isAdmin(auth);
  const repository = dataSource.getRepository(InstanceEntity);
  const qb = repository
    .createQueryBuilder('i')
    .select(
      repository.metadata.columns
        .filter((column) => !UNLISTED.includes(column.propertyName as keyof InstanceEntity))
        .map((column) => `i.${column.propertyName}`),
    );

  const allTenants = query.all_tenants !== undefined && (toNovaBoolean(query.all_tenants) ?? true) !== false;
  const project = query.project_id ?? query.tenant_id;
  if (admin && project !== undefined && (allTenants || query.project_id !== undefined)) {
    qb.andWhere('i.project_id = :project', { project });
  } else if (!(admin && allTenants)) {
    qb.andWhere('i.project_id = :project', { project: auth.projectId ?? '' });
  }

  let changesSince: string | undefined;
  let changesBefore: string | undefined;
  if (query['changes-since'] !== undefined) changesSince = parseTime('changes-since', query['changes-since']);
  if (query['changes-before'] !== undefined && v.atLeast('2.66')) {
    changesBefore = parseTime('changes-before', query['changes-before']);
  }
  if (changesSince && changesBefore && changesSince > changesBefore) {
    throw new BadRequestError(
      `The value of changes-since (${query['changes-since']}) must be earlier than or equal to changes-before (${query['changes-before']}).`,
    );
  }
  const deletedWanted = admin && query.deleted !== undefined && toNovaBoolean(query.deleted) === true;
  // Nova shows deleted servers in a changes-since/before listing, so that a poller sees them go.
  if (!changesSince && !changesBefore && !deletedWanted) qb.andWhere('i.deleted_at IS NULL');
  if (deletedWanted) qb.andWhere('i.deleted_at IS NOT NULL');
  if (changesSince) qb.andWhere('i.updated_at >= :since', { since: changesSince });
  if (changesBefore) qb.andWhere('i.updated_at <= :before', { before: changesBefore });

  if (query.status !== undefined) {
    const statuses = query.status.split(',');
    const { vmStates, taskStates } = statesFromStatus(statuses);
    if (!vmStates.length) {
      if (v.atLeast('2.38')) throw new BadRequestError(`Invalid status value`);
      return { instances: [] };
    }
    qb.andWhere('i.vm_state IN (:...vmStates)', { vmStates });
    if (taskStates?.length) qb.andWhere('i.task_state IN (:...taskStates)', { taskStates });
    if (statuses.every((s) => s.toUpperCase() === 'DELETED')) {
      // A DELETED status asks for soft-deleted servers only (Nova), which listing without admin cannot see.
    }
  }
  if (query.image !== undefined) {
    qb.andWhere('i.image_ref = :image', { image: imageIdFromRef(query.image) ?? query.image });
  }
  if (query.reservation_id !== undefined)
    qb.andWhere('i.reservation_id = :rid', { rid: query.reservation_id });
  if (admin && query.host !== undefined) qb.andWhere('i.host = :host', { host: query.host });
  if (admin && query.node !== undefined) qb.andWhere('i.node = :node', { node: query.node });
  const openFilters = admin || v.atLeast('2.83');
  if (openFilters && query.user_id !== undefined) qb.andWhere('i.user_id = :uid', { uid: query.user_id });
  if (openFilters && query.availability_zone !== undefined) {
    qb.andWhere('i.availability_zone = :az', { az: query.availability_zone });
  }
  if (openFilters && query.key_name !== undefined) qb.andWhere('i.key_name = :kn', { kn: query.key_name });
  if (openFilters && query.vm_state !== undefined) qb.andWhere('i.vm_state = :vs', { vs: query.vm_state });
  if (openFilters && query.task_state !== undefined)
    qb.andWhere('i.task_state = :ts', { ts: query.task_state });
  if (query.locked !== undefined && v.atLeast('2.73')) {
    const locked = toNovaBoolean(query.locked);
    if (locked === undefined) {
      throw new BadRequestError(
        `Invalid input for query parameters locked. Value: ${query.locked}. is not a boolean`,
      );
    }
    qb.andWhere('i.locked = :locked', { locked });
  }

  const sortKeys = (query.sort_key ?? 'created_at').split(',');
  const sortDirs = (query.sort_dir ?? 'desc').split(',');
  for (const key of sortKeys) {
    if (!Object.hasOwn(SORT_KEYS, key) || (!admin && ADMIN_SORT_KEYS.includes(key))) {
      throw new BadRequestError(`Invalid input for query parameters sort_key. Value: ${key}.`);
    }
  }
  for (const dir of sortDirs) {
    if (dir !== 'asc' && dir !== 'desc') {
      throw new BadRequestError(
        `Invalid input for query parameters sort_dir. Value: ${dir}. must be 'asc' or 'desc'`,
      );
    }
  }
  const keys: SortKey[] = sortKeys.map((key, index) => ({
    field: SORT_KEYS[key],
    dir: sortDirs[Math.min(index, sortDirs.length - 1)] === 'asc' ? 1 : -1,
  }));
  keys.push({ field: 'uuid', dir: keys[0].dir });

  const inMemoryFilters =
    query.flavor !== undefined ||
    query.name !== undefined ||
    query.ip !== undefined ||
    query.ip6 !== undefined ||
    (v.atLeast('2.26') && TAG_FILTERS.some((k) => query[k] !== undefined));
  if (!inMemoryFilters) {
    // Only the sort keys of every matching server, then the whole rows of the page: an admin's listing of
    // 10,000 servers turns 1,000 rows into entities, not all of them.
    const fields = [...new Set<keyof InstanceEntity>(['uuid', ...keys.map((key) => key.field)])];
    const ordered = sortInstances(
      await qb
        .clone()
        .select(fields.map((f) => `i.${f}`))
        .getMany(),
      keys,
    );
    const { page, next } = pageOf(
      ordered,
      query,
      keys,
      await markerOutside(dataSource, ordered, query, fields),
    );
    if (!page.length) return { instances: [], next };
    const rows = new Map((await qb.andWhereInIds(page.map((i) => i.uuid)).getMany()).map((i) => [i.uuid, i]));
    // A server deleted between the two reads is left out of the page.
    const instances = page.flatMap((i) => rows.get(i.uuid) ?? []);
    return { instances, next };
  }

  let instances = await qb.getMany();

  if (query.flavor !== undefined) {
    const flavor = query.flavor.split('/').pop();
    instances = instances.filter((i) => i.flavor?.id === flavor);
  }
  if (query.name !== undefined) {
    const pattern = regex('name', query.name);
    instances = instances.filter((i) => pattern.test(i.displayName));
  }
  if (query.ip !== undefined || query.ip6 !== undefined) {
    const ip4 = query.ip !== undefined ? regex('ip', query.ip) : undefined;
    const ip6 = query.ip6 !== undefined ? regex('ip6', query.ip6) : undefined;
    instances = instances.filter((i) =>
      (i.networkInfo ?? []).some((vif) =>
        vif.ips.some((ip) => (ip.version === 4 ? ip4 : ip6)?.test(ip.address)),
      ),
    );
  }
  if (v.atLeast('2.26') && TAG_FILTERS.some((k) => query[k] !== undefined)) {
    const tags = await tagsOf(instances.map((i) => i.uuid));
    const list = (raw?: string) => (raw === undefined ? undefined : raw.split(','));
    const all = list(query.tags);
    const any = list(query['tags-any']);
    const notAll = list(query['not-tags']);
    const notAny = list(query['not-tags-any']);
    instances = instances.filter((i) => {
      const own = new Set(tags.get(i.uuid) ?? []);
      if (all && !all.every((t) => own.has(t))) return false;
      if (any && !any.some((t) => own.has(t))) return false;
      if (notAll && notAll.every((t) => own.has(t))) return false;
      if (notAny && notAny.some((t) => own.has(t))) return false;
      return true;
    });
  }

  const sorted = sortInstances(instances, keys);
  const fields: (keyof InstanceEntity)[] = ['uuid', ...keys.map((key) => key.field)];
  const { page, next } = pageOf(sorted, query, keys, await markerOutside(dataSource, sorted, query, fields));
  return { instances: page, next };
}

/**
 * The marker's sort keys when it is not among the listed servers: Nova looks the marker up among deleted
 * servers too (`read_deleted='yes'`), so a client paging through a list whose last server was deleted meanwhile
 * gets the servers after it rather than a 400.
 */
async function markerOutside(
  dataSource: DataSource,
  listed: Partial<InstanceEntity>[],
  query: NovaQueryParams,
  fields: (keyof InstanceEntity)[],
): Promise<Partial<InstanceEntity> | undefined> {
  if (query.marker === undefined || listed.some((i) => i.uuid === query.marker)) return undefined;
  const row = await dataSource
    .getRepository(InstanceEntity)
    .createQueryBuilder('i')
    .select([...new Set(fields)].map((f) => `i.${f}`))
    .where('i.uuid = :marker', { marker: query.marker })
    .getOne();
  return row ?? undefined;
}

interface SortKey {
  field: keyof InstanceEntity;
  /** 1 ascending, -1 descending. */
  dir: number;
}

/** Nova's order: by each key in turn (nulls first ascending, last descending), then by uuid. */
function sortInstances<T extends Partial<InstanceEntity>>(instances: T[], keys: SortKey[]): T[] {
  return instances.sort((a, b) => compareInstances(a, b, keys));
}

function compareInstances(a: Partial<InstanceEntity>, b: Partial<InstanceEntity>, keys: SortKey[]): number {
  for (const { field, dir } of keys) {
    const x = a[field] as unknown;
    const y = b[field] as unknown;
    if (x === y) continue;
    if (x === null || x === undefined) return -dir;
    if (y === null || y === undefined) return dir;
    return (x < y ? -1 : 1) * dir;
  }
  return 0;
}

/** The page after `marker`, at most `limit` (Nova's max_limit) long, and the next page's marker. */
function pageOf<T extends Partial<InstanceEntity> & { uuid: string }>(
  instances: T[],
  query: NovaQueryParams,
  keys: SortKey[],
  /** The marker's row when it is not in the list (a deleted server), or undefined. */
  outside: Partial<InstanceEntity> | undefined,
): { page: T[]; next?: string } {
  if (query.marker !== undefined) {
    let start: number;
    if (outside) {
      // The page starts with the first server that sorts after the marker.
      const after = instances.findIndex((i) => compareInstances(i, outside, keys) > 0);
      start = after < 0 ? instances.length : after;
    } else {
      const at = instances.findIndex((i) => i.uuid === query.marker);
      if (at < 0) throw new BadRequestError(`marker [${query.marker}] not found`);
      start = at + 1;
    }
    instances = instances.slice(start);
  }
  let limit: number | undefined;
  if (query.limit !== undefined) {
    const parsed = toNovaInt(query.limit);
    if (parsed === undefined || parsed < 0 || !/^\s*\+?\d+\s*$/.test(query.limit)) {
      throw new BadRequestError(
        `Invalid input for query parameters limit. Value: ${query.limit}. must be an integer >= 0`,
      );
    }
    limit = Math.min(parsed, MAX_LIMIT);
  }
  const cut = limit ?? MAX_LIMIT;
  if (instances.length > cut || (limit !== undefined && instances.length === limit && limit > 0)) {
    const page = instances.slice(0, cut);
    return { page, next: page.length ? page[page.length - 1].uuid : undefined };
  }
  return { page: instances };
}
