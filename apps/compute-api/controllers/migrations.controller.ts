import { Controller, Get, Inject, Param } from '@nestjs/common';
import { Auth, AuthContext, isAdmin } from '@novum/auth';
import { BadRequestError, NotFoundError } from '@novum/common';
import { MigrationEntity } from '@novum/db';
import { limitQuery, page } from '../admin-query';
import { LIVE_MIGRATION_IN_PROGRESS, migrationView, serverMigrationView } from '../admin-views';
import { ComputeStore } from '../compute.store';
import { ApiVersion, Microversion } from '../microversion';
import { allow } from '../policy';
import { NovaQuery, NovaQueryParams } from '../query';
import { COMPUTE_ROOT_URL, ComputeLinks } from '../serializers';
import { ServerService } from '../server.service';
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

/**
 * Nova's server-migrations (admin, 2.23): `GET /servers/{id}/migrations` lists the server's live migrations
 * in progress (queued, preparing, running), `GET /servers/{id}/migrations/{migration_id}` shows one (404
 * once it has ended, as Nova's). Aborting one (DELETE, 2.24) and force_complete are not offered yet.
 */
@Controller('v2.1/servers')
export class ServerMigrationsController {
  constructor(
    private readonly store: ComputeStore,
    private readonly servers: ServerService,
  ) {}

  @Get(':id/migrations')
  async list(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    this.supported(v);
    allow('os_compute_api:servers:migrations:index', isAdmin(auth));
    const instance = await this.servers.get(auth, id);
    const rows = await this.store.migrations.find({
      where: { instanceUuid: instance.uuid, migrationType: 'live-migration' },
      order: { id: 'ASC' },
    });
    return {
      migrations: rows
        .filter((m) => LIVE_MIGRATION_IN_PROGRESS.includes(m.status))
        .map((m) => serverMigrationView(m, v)),
    };
  }

  @Get(':id/migrations/:migrationId')
  async show(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Param('migrationId') migrationId: string,
    @Microversion() v: ApiVersion,
  ) {
    this.supported(v);
    allow('os_compute_api:servers:migrations:show', isAdmin(auth));
    const instance = await this.servers.get(auth, id);
    const row = /^\d{1,9}$/.test(migrationId)
      ? await this.store.migrations.findOneBy({ id: Number(migrationId), instanceUuid: instance.uuid })
      : null;
    if (!row) {
      throw new NotFoundError(`Migration ${migrationId} for instance ${instance.uuid} could not be found.`);
    }
    if (row.migrationType !== 'live-migration' || !LIVE_MIGRATION_IN_PROGRESS.includes(row.status)) {
      throw new NotFoundError(
        `In-progress live migration ${migrationId} is not found for server ${instance.uuid}.`,
      );
    }
    return { migration: serverMigrationView(row, v) };
  }

  private supported(v: ApiVersion): void {
    if (!v.atLeast('2.23')) {
      throw new NotFoundError(`API version ${v.toString()} is not supported on this method.`);
    }
  }
}
