import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Res } from '@nestjs/common';
import { Auth, AuthContext, hasRole, isAdmin } from '@novum/auth';
import { canonicalIp, NOVUM_CONFIG, NovumConfig, requestContext } from '@novum/common';
import { isServiceUp } from '@novum/compute';
import { InstanceEntity, InstanceTagEntity } from '@novum/db';
import type { FastifyReply } from 'fastify';
import { In } from 'typeorm';
import { ApiVersion, Microversion } from '../microversion';
import { allow } from '../policy';
import { NovaQuery, NovaQueryParams } from '../query';
import { COMPUTE_ROOT_URL, ComputeLinks } from '../serializers';
import { listServers } from '../server-list';
import {
  checkDescription,
  checkName,
  invalid,
  onlyKeys,
  parseServerCreate,
  requireObject,
} from '../server-schemas';
import { ServerService } from '../server.service';
import { serverBrief, serverView, ViewContext, ViewKind } from '../server-view';
import { isIP } from 'node:net';

export function currentRequestId(): string {
  return requestContext.getStore()?.requestId ?? `req-${crypto.randomUUID()}`;
}

/** `/servers`: create, list (brief and detail), show, update, delete (Nova's servers controller). */
@Controller('v2.1/servers')
export class ServersController {
  private readonly links: ComputeLinks;

  constructor(
    private readonly servers: ServerService,
    @Inject(COMPUTE_ROOT_URL) root: string,
    @Inject(NOVUM_CONFIG) private readonly config: NovumConfig,
  ) {
    this.links = new ComputeLinks(root);
  }

  /** The policy-dependent parts of a server view, decided once per request. */
  async viewContext(auth: AuthContext, v: ApiVersion, instance?: InstanceEntity): Promise<ViewContext> {
    const admin = isAdmin(auth);
    const ctx: ViewContext = {
      links: this.links,
      version: v,
      extendedAttributes: admin,
      hostStatus: admin,
      flavorExtraSpecs: hasRole(auth, 'reader') || admin,
      isAdmin: admin,
    };
    if (admin && v.atLeast('2.16')) {
      const services = await this.servers.store.services.findBy({ binary: 'nova-compute' });
      const now = Date.now();
      const byHost = new Map(services.map((s) => [s.host, s]));
      // Nova's _get_instance_host_status: DOWN is an admin's word (forced down), MAINTENANCE a disabled
      // service, UNKNOWN one that stopped reporting (a host cut off or crashed), '' a host with no service.
      ctx.hostState = (host) => {
        const service = byHost.get(host);
        if (!service) return '';
        if (service.forcedDown) return 'DOWN';
        if (service.disabled) return 'MAINTENANCE';
        return isServiceUp(service, now, this.config.serviceDownTimeSeconds) ? 'UP' : 'UNKNOWN';
      };
    }
    if (instance && v.atLeast('2.71')) {
      const members = await this.servers.store.serverGroupMembers.findBy({ instanceUuid: instance.uuid });
      ctx.serverGroups = members.map((m) => m.groupId);
    }
    return ctx;
  }

  async render(auth: AuthContext, v: ApiVersion, instance: InstanceEntity, kind: ViewKind) {
    const record = await this.servers.record(instance);
    return serverView(record, await this.viewContext(auth, v, instance), kind);
  }

  @Post()
  @HttpCode(202)
  async create(
    @Auth() auth: AuthContext,
    @Body() body: unknown,
    @Microversion() v: ApiVersion,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    allow('os_compute_api:servers:create', hasRole(auth, 'member'), isAdmin(auth));
    const request = parseServerCreate(body, v);
    const created = await this.servers.create(auth, request, currentRequestId());
    if (request.returnReservationId) return { reservation_id: created.reservationId };
    const first = created.instances[0];
    const links = this.links.resource('servers', first.uuid);
    // Nova's _add_location: the self link as Location.
    reply.header('location', links[0].href);
    const server: Record<string, unknown> = {
      id: first.uuid,
      links,
      'OS-DCF:diskConfig': first.autoDiskConfig ? 'AUTO' : 'MANUAL',
      security_groups: (request.securityGroups.length ? request.securityGroups : ['default']).map((name) => ({
        name,
      })),
      adminPass: created.adminPass,
    };
    return { server };
  }

  @Get()
  async list(@Auth() auth: AuthContext, @NovaQuery() query: NovaQueryParams, @Microversion() v: ApiVersion) {
    return this.listing(auth, query, v, false);
  }

  @Get('detail')
  async detail(
    @Auth() auth: AuthContext,
    @NovaQuery() query: NovaQueryParams,
    @Microversion() v: ApiVersion,
  ) {
    return this.listing(auth, query, v, true);
  }

  private async listing(auth: AuthContext, query: NovaQueryParams, v: ApiVersion, detailed: boolean) {
    allow(
      detailed ? 'os_compute_api:servers:detail' : 'os_compute_api:servers:index',
      hasRole(auth, 'reader'),
      isAdmin(auth),
    );
    const allTenants = query.all_tenants !== undefined;
    if (allTenants) {
      allow(
        detailed
          ? 'os_compute_api:servers:detail:get_all_tenants'
          : 'os_compute_api:servers:index:get_all_tenants',
        isAdmin(auth),
      );
    }
    const result = await listServers(this.servers.store.dataSource, auth, query, v, (uuids) =>
      this.tagsOf(uuids),
    );
    const records = await this.servers.recordsOf(result.instances);
    const ctx = detailed ? await this.viewContext(auth, v) : undefined;
    const response: Record<string, unknown> = {
      servers: records.map((record) =>
        ctx ? serverView(record, ctx, 'detail') : serverBrief(record, this.links),
      ),
    };
    if (result.next) {
      response.servers_links = this.links.next(detailed ? 'servers/detail' : 'servers', query, result.next);
    }
    return response;
  }

  private async tagsOf(uuids: string[]): Promise<Map<string, string[]>> {
    const tags = new Map<string, string[]>();
    if (!uuids.length) return tags;
    const rows = await this.servers.store.dataSource
      .getRepository(InstanceTagEntity)
      .findBy({ instanceUuid: In(uuids) });
    for (const row of rows) tags.set(row.instanceUuid, [...(tags.get(row.instanceUuid) ?? []), row.tag]);
    return tags;
  }

  @Get(':id')
  async show(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    allow('os_compute_api:servers:show', hasRole(auth, 'reader'), isAdmin(auth));
    const instance = await this.servers.get(auth, id);
    return { server: await this.render(auth, v, instance, 'show') };
  }

  @Put(':id')
  async update(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Body() body: unknown,
    @Microversion() v: ApiVersion,
  ) {
    allow('os_compute_api:servers:update', hasRole(auth, 'member'), isAdmin(auth));
    const root = requireObject('root', body);
    onlyKeys('root', root, ['server']);
    if (root.server === undefined) throw invalid('root', root, "'server' is a required property");
    const server = requireObject('server', root.server);
    const allowed = ['name', 'accessIPv4', 'accessIPv6', 'OS-DCF:diskConfig'];
    if (v.atLeast('2.19')) allowed.push('description');
    if (v.atLeast('2.90')) allowed.push('hostname');
    onlyKeys('server', server, allowed);
    const changes: Parameters<ServerService['update']>[2] = {};
    if (server.name !== undefined) changes.name = checkName('name', server.name);
    if (server.description !== undefined) changes.description = checkDescription(server.description);
    if (server.accessIPv4 !== undefined) {
      if (
        typeof server.accessIPv4 !== 'string' ||
        (server.accessIPv4 !== '' && isIP(server.accessIPv4) !== 4)
      ) {
        throw invalid('accessIPv4', server.accessIPv4, "is not a 'ipv4'");
      }
      changes.accessIPv4 = canonicalIp(server.accessIPv4) ?? server.accessIPv4;
    }
    if (server.accessIPv6 !== undefined) {
      if (
        typeof server.accessIPv6 !== 'string' ||
        (server.accessIPv6 !== '' && isIP(server.accessIPv6) !== 6)
      ) {
        throw invalid('accessIPv6', server.accessIPv6, "is not a 'ipv6'");
      }
      changes.accessIPv6 = canonicalIp(server.accessIPv6) ?? server.accessIPv6;
    }
    if (
      server['OS-DCF:diskConfig'] !== undefined &&
      !['AUTO', 'MANUAL'].includes(server['OS-DCF:diskConfig'] as string)
    ) {
      throw invalid('OS-DCF:diskConfig', server['OS-DCF:diskConfig'], "is not one of ['AUTO', 'MANUAL']");
    }
    if (server['OS-DCF:diskConfig'] !== undefined)
      changes.autoDiskConfig = server['OS-DCF:diskConfig'] === 'AUTO';
    if (server.hostname !== undefined) {
      if (
        typeof server.hostname !== 'string' ||
        !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,61}[a-zA-Z0-9])?$/.test(server.hostname)
      ) {
        throw invalid('hostname', server.hostname, 'does not match the hostname pattern');
      }
      changes.hostname = server.hostname;
    }
    const instance = await this.servers.update(auth, id, changes);
    return { server: await this.render(auth, v, instance, 'update') };
  }

  @Delete(':id')
  @HttpCode(204)
  async remove(@Auth() auth: AuthContext, @Param('id') id: string) {
    allow('os_compute_api:servers:delete', hasRole(auth, 'member'), isAdmin(auth));
    await this.servers.delete(auth, id, currentRequestId());
  }
}
