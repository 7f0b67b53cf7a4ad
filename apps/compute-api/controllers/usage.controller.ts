import { Controller, Get, Inject, Param } from '@nestjs/common';
import { Auth, AuthContext, hasRole, isAdmin } from '@novum/auth';
import { BadRequestError } from '@novum/common';
import { InstanceEntity } from '@novum/db';
import { limitQuery, onlyQueryParams } from '../admin-query';
import { ComputeStore } from '../compute.store';
import { ApiVersion, Microversion } from '../microversion';
import { adminOnly, allow } from '../policy';
import { NovaQuery, NovaQueryParams } from '../query';
import { COMPUTE_ROOT_URL, ComputeLinks } from '../serializers';
import { parseUsageTime, tenantUsages } from '../usage';

const RULE = 'os_compute_api:os-simple-tenant-usage';

/** `os-simple-tenant-usage`: hours, vCPU, RAM and disk use per project over a window, from the instance rows. */
@Controller('v2.1/os-simple-tenant-usage')
export class SimpleTenantUsageController {
  private readonly links: ComputeLinks;

  constructor(
    private readonly store: ComputeStore,
    @Inject(COMPUTE_ROOT_URL) root: string,
  ) {
    this.links = new ComputeLinks(root);
  }

  @Get()
  async list(@Auth() auth: AuthContext, @NovaQuery() query: NovaQueryParams, @Microversion() v: ApiVersion) {
    adminOnly(auth, `${RULE}:list`);
    const window = this.window(query, v);
    const instances = await this.instances(window.start, window.stop, undefined, window.limit, window.marker);
    const { usages, servers } = tenantUsages(
      instances,
      window.start,
      window.stop,
      window.detailed,
      Date.now(),
    );
    const body: Record<string, unknown> = { tenant_usages: usages };
    if (window.limit !== undefined && window.limit > 0 && servers.length === window.limit) {
      body.tenant_usages_links = this.links.next(
        'os-simple-tenant-usage',
        query,
        servers[servers.length - 1].instance_id,
      );
    }
    return body;
  }

  @Get(':tenant')
  async show(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @NovaQuery() query: NovaQueryParams,
    @Microversion() v: ApiVersion,
  ) {
    allow(`${RULE}:show`, isAdmin(auth), hasRole(auth, 'reader') && auth.projectId === tenant);
    const window = this.window(query, v);
    const instances = await this.instances(window.start, window.stop, tenant, window.limit, window.marker);
    const { usages, servers } = tenantUsages(instances, window.start, window.stop, true, Date.now());
    const body: Record<string, unknown> = { tenant_usage: usages[0] ?? {} };
    if (window.limit !== undefined && window.limit > 0 && servers.length === window.limit) {
      body.tenant_usage_links = this.links.next(
        `os-simple-tenant-usage/${tenant}`,
        query,
        servers[servers.length - 1].instance_id,
      );
    }
    return body;
  }

  private window(query: NovaQueryParams, v: ApiVersion) {
    if (v.atLeast('2.75')) onlyQueryParams(query, ['start', 'end', 'detailed', 'limit', 'marker']);
    const now = Date.now();
    const start = parseUsageTime(query.start, now);
    let stop = parseUsageTime(query.end, now);
    // Nova reads "now" twice when neither is given, so that window is never refused.
    const bothNow = !query.start && !query.end;
    if (!(start < stop) && !bothNow) {
      throw new BadRequestError('Invalid start time. The start time cannot occur after the end time.');
    }
    stop = Math.min(stop, now);
    const paging = v.atLeast('2.40');
    return {
      start,
      stop,
      detailed: query.detailed === '1',
      limit: paging ? limitQuery(query) : undefined,
      marker: paging ? query.marker : undefined,
    };
  }

  /** Nova's instance_get_active_by_window_joined: launched before the end, not terminated before the start. */
  private async instances(start: number, stop: number, project?: string, limit?: number, marker?: string) {
    const qb = this.store.dataSource
      .getRepository(InstanceEntity)
      .createQueryBuilder('i')
      .where('(i.terminated_at IS NULL OR i.terminated_at > :start)', {
        start: new Date(start).toISOString(),
      })
      .andWhere('i.launched_at < :stop', { stop: new Date(stop).toISOString() })
      .orderBy('i.created_at', 'ASC')
      .addOrderBy('i.uuid', 'ASC');
    if (project !== undefined) qb.andWhere('i.project_id = :project', { project });
    let rows = await qb.getMany();
    if (marker !== undefined) {
      const at = rows.findIndex((r) => r.uuid === marker);
      if (at < 0) {
        const exists = await this.store.dataSource.getRepository(InstanceEntity).existsBy({ uuid: marker });
        if (!exists) throw new BadRequestError(`Marker ${marker} could not be found.`);
      }
      rows = rows.slice(at + 1);
    }
    return limit !== undefined ? rows.slice(0, limit) : rows;
  }
}
