import { Controller, Get, Inject } from '@nestjs/common';
import { Auth, AuthContext, isAdmin } from '@novum/auth';
import { BadRequestError } from '@novum/common';
import { MigrationEntity } from '@novum/db';
import { limitQuery, page } from '../admin-query';
import { migrationView } from '../admin-views';
import { ComputeStore } from '../compute.store';
import { ApiVersion, Microversion } from '../microversion';
import { allow } from '../policy';
import { NovaQuery, NovaQueryParams } from '../query';
import { COMPUTE_ROOT_URL, ComputeLinks } from '../serializers';
import { toNovaBoolean } from './dto';

const RULE = 'os_compute_api:os-migrations';

function isoParam(name: string, raw: string): string {
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(raw) ? raw : `${raw}Z`);
  if (Number.isNaN(ms))
    throw new BadRequestError(
      `Invalid input for query parameters ${name}. Value: ${raw}. '${raw}' is not a 'date-time'`,
    );
  return new Date(ms).toISOString();
}

/** Nova's migration filters (`migration_get_all_by_filters`), over rows already read. */
export function filterMigrations(
  rows: MigrationEntity[],
  query: NovaQueryParams,
  v: ApiVersion,
): MigrationEntity[] {
  const hidden = query.hidden !== undefined ? toNovaBoolean(query.hidden) : false;
  const since =
    v.atLeast('2.59') && query['changes-since']
      ? isoParam('changes-since', query['changes-since'])
      : undefined;
  const before =
    v.atLeast('2.66') && query['changes-before']
      ? isoParam('changes-before', query['changes-before'])
      : undefined;
  if (since && before && before < since) {
    throw new BadRequestError('The value of changes-since must be less than or equal to changes-before.');
  }
  const changed = (m: MigrationEntity) => m.updatedAt ?? m.createdAt;
  return rows.filter(
    (m) =>
      m.hidden === (hidden ?? false) &&
      (!query.status || m.status === query.status) &&
      (!query.host || m.sourceCompute === query.host || m.destCompute === query.host) &&
      (!query.source_compute || m.sourceCompute === query.source_compute) &&
      (!query.instance_uuid || m.instanceUuid === query.instance_uuid) &&
      (!query.migration_type || m.migrationType === query.migration_type) &&
      (!since || changed(m) >= since) &&
      (!before || changed(m) <= before) &&
      (!v.atLeast('2.80') || !query.user_id || m.userId === query.user_id) &&
      (!v.atLeast('2.80') || !query.project_id || m.projectId === query.project_id),
  );
}

/** `GET /os-migrations` (admin): resizes, migrations and evacuations, with 2.23, 2.59 and 2.80 fields. */
@Controller('v2.1/os-migrations')
export class MigrationsController {
  private readonly links: ComputeLinks;

  constructor(
    private readonly store: ComputeStore,
    @Inject(COMPUTE_ROOT_URL) private readonly root: string,
  ) {
    this.links = new ComputeLinks(root);
  }

  @Get()
  async list(@Auth() auth: AuthContext, @NovaQuery() query: NovaQueryParams, @Microversion() v: ApiVersion) {
    allow(`${RULE}:index`, isAdmin(auth));
    const paged = v.atLeast('2.59');
    // Newest first from 2.59 (Nova's created_at, id descending); by id before.
    const rows = await this.store.migrations.find({
      order: paged ? { createdAt: 'DESC', id: 'DESC' } : { id: 'ASC' },
    });
    let migrations = filterMigrations(rows, query, v);
    let more = false;
    if (paged)
      ({ items: migrations, more } = page(migrations, (m) => m.uuid, limitQuery(query), query.marker));
    const body: Record<string, unknown> = {
      migrations: migrations.map((m) => migrationView(m, v, this.root)),
    };
    if (more)
      body.migrations_links = this.links.next('os-migrations', query, migrations[migrations.length - 1].uuid);
    return body;
  }
}
