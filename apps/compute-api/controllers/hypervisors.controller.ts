import { Controller, Get, Inject, Param } from '@nestjs/common';
import { Auth, AuthContext } from '@novum/auth';
import { BadRequestError, NotFoundError } from '@novum/common';
import { boolQuery, limitQuery, onlyQueryParams, page, UUID_PATTERN, versionNotFound } from '../admin-query';
import { HypervisorRow, hypervisorStatistics, hypervisorView } from '../admin-views';
import { HypervisorService } from '../hypervisor.service';
import { ApiVersion, Microversion } from '../microversion';
import { adminOnly } from '../policy';
import { NovaQuery, NovaQueryParams } from '../query';
import { COMPUTE_ROOT_URL, ComputeLinks } from '../serializers';

const RULE = 'os_compute_api:os-hypervisors';

/** Nova's hypervisors API (admin): the compute nodes, their state and usage, with 2.33/2.53/2.88 changes. */
@Controller('v2.1/os-hypervisors')
export class HypervisorsController {
  private readonly links: ComputeLinks;

  constructor(
    private readonly hypervisors: HypervisorService,
    @Inject(COMPUTE_ROOT_URL) root: string,
  ) {
    this.links = new ComputeLinks(root);
  }

  @Get()
  list(@Auth() auth: AuthContext, @NovaQuery() query: NovaQueryParams, @Microversion() v: ApiVersion) {
    adminOnly(auth, `${RULE}:list`);
    return this.listing(query, v, false);
  }

  @Get('detail')
  detail(@Auth() auth: AuthContext, @NovaQuery() query: NovaQueryParams, @Microversion() v: ApiVersion) {
    adminOnly(auth, `${RULE}:list-detail`);
    return this.listing(query, v, true);
  }

  @Get('statistics')
  async statistics(@Auth() auth: AuthContext, @Microversion() v: ApiVersion) {
    if (v.atLeast('2.88')) throw versionNotFound();
    adminOnly(auth, `${RULE}:statistics`);
    return { hypervisor_statistics: hypervisorStatistics(await this.hypervisors.rows()) };
  }

  @Get(':id')
  async show(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @NovaQuery() query: NovaQueryParams,
    @Microversion() v: ApiVersion,
  ) {
    adminOnly(auth, `${RULE}:show`);
    let withServers = false;
    if (v.atLeast('2.53')) {
      onlyQueryParams(query, ['with_servers']);
      withServers = boolQuery(query, 'with_servers');
    }
    const row = await this.find(id, v);
    const servers = withServers ? await this.hypervisors.instancesOn(row.node.host) : undefined;
    return {
      hypervisor: hypervisorView(row, true, v, { servers, withServers, uptime: this.uptimeOrNull(row, v) }),
    };
  }

  @Get(':id/uptime')
  async uptime(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    if (v.atLeast('2.88')) throw versionNotFound();
    adminOnly(auth, `${RULE}:uptime`);
    const row = await this.find(id, v);
    return { hypervisor: { ...hypervisorView(row, false, v), uptime: this.hypervisors.uptime(row) } };
  }

  @Get(':pattern/search')
  async search(@Auth() auth: AuthContext, @Param('pattern') pattern: string, @Microversion() v: ApiVersion) {
    if (v.atLeast('2.53')) throw versionNotFound();
    adminOnly(auth, `${RULE}:search`);
    const rows = await this.matching(pattern);
    return { hypervisors: rows.map((row) => hypervisorView(row, false, v)) };
  }

  @Get(':pattern/servers')
  async servers(@Auth() auth: AuthContext, @Param('pattern') pattern: string, @Microversion() v: ApiVersion) {
    if (v.atLeast('2.53')) throw versionNotFound();
    adminOnly(auth, `${RULE}:servers`);
    const rows = await this.matching(pattern);
    const views = [];
    for (const row of rows) {
      const servers = await this.hypervisors.instancesOn(row.node.host);
      views.push(hypervisorView(row, false, v, { servers }));
    }
    return { hypervisors: views };
  }

  private async listing(query: NovaQueryParams, v: ApiVersion, detail: boolean) {
    const paging = v.atLeast('2.33');
    let pattern: string | undefined;
    let withServers = false;
    if (v.atLeast('2.53')) {
      onlyQueryParams(query, ['limit', 'marker', 'hypervisor_hostname_pattern', 'with_servers']);
      pattern = query.hypervisor_hostname_pattern;
      withServers = boolQuery(query, 'with_servers');
    }
    const limit = paging ? limitQuery(query) : undefined;
    const marker = paging ? query.marker : undefined;
    let rows: HypervisorRow[];
    let more = false;
    if (pattern !== undefined) {
      if (query.limit !== undefined || marker !== undefined) {
        throw new BadRequestError(
          'Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported.',
        );
      }
      rows = await this.matching(pattern);
    } else {
      const uuids = v.atLeast('2.53');
      ({ items: rows, more } = page(
        await this.hypervisors.rows(),
        (row) => (uuids ? row.node.uuid : String(row.id)),
        limit,
        marker,
      ));
    }
    const hypervisors = [];
    for (const row of rows) {
      const servers = withServers ? await this.hypervisors.instancesOn(row.node.host) : undefined;
      hypervisors.push(
        hypervisorView(row, detail, v, {
          servers,
          withServers,
          uptime: detail ? this.uptimeOrNull(row, v) : null,
        }),
      );
    }
    const body: Record<string, unknown> = { hypervisors };
    if (paging && more) {
      const last = hypervisors[hypervisors.length - 1];
      body.hypervisors_links = this.links.next(
        detail ? 'os-hypervisors/detail' : 'os-hypervisors',
        query,
        String(last.id),
      );
    }
    return body;
  }

  private async matching(pattern: string): Promise<HypervisorRow[]> {
    const rows = await this.hypervisors.rows(pattern);
    if (!rows.length) throw new NotFoundError(`No hypervisor matching '${pattern}' could be found.`);
    return rows;
  }

  /** Nova's `_validate_id`: a uuid from 2.53 (else 400), an integer before (else 404). */
  private async find(id: string, v: ApiVersion): Promise<HypervisorRow> {
    const uuids = v.atLeast('2.53');
    if (uuids && !UUID_PATTERN.test(id)) throw new BadRequestError(`Invalid uuid ${id}`);
    const row = /^\d+$/.test(id) || uuids ? await this.hypervisors.find(id, uuids) : undefined;
    if (!row) throw new NotFoundError(`Hypervisor with ID '${id}' could not be found.`);
    return row;
  }

  /** 2.88's `uptime` field: null when the host is down. */
  private uptimeOrNull(row: HypervisorRow, v: ApiVersion): string | null {
    if (!v.atLeast('2.88') || !row.up) return null;
    return this.hypervisors.uptime(row);
  }
}
