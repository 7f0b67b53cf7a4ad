import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Res } from '@nestjs/common';
import { Auth, AuthContext, hasRole, isAdmin } from '@novum/auth';
import { BadRequestError, ForbiddenError, NotFoundError } from '@novum/common';
import { InstanceActionEntity, InstanceEntity, InstanceTagEntity, inTransaction } from '@novum/db';
import { isUniqueViolation } from '../compute.store';
import type { FastifyReply } from 'fastify';
import { ApiVersion, Microversion } from '../microversion';
import { allow } from '../policy';
import { NovaQuery, NovaQueryParams } from '../query';
import { QuotaService } from '../quota.service';
import { checkMetadata, checkTag, checkTags, invalid, onlyKeys, requireObject } from '../server-schemas';
import { ServerService } from '../server.service';
import { hostId, serverAddresses } from '../server-view';
import { asApiError, PeerServices } from '../peers';
import { NeutronGroup, securityGroupView } from '../proxy-views';
import { remoteGroupRefs } from './security-groups.controller';

const reader = (auth: AuthContext) => hasRole(auth, 'reader') || isAdmin(auth);
const member = (auth: AuthContext) => hasRole(auth, 'member') || isAdmin(auth);

/** Nova's MAX_INSTANCE_TAGS. */
const MAX_TAGS = 50;

/** What a server has beside itself: metadata, tags, addresses, actions, security groups, password, volumes. */
@Controller('v2.1/servers/:id')
export class ServerResourcesController {
  constructor(
    private readonly servers: ServerService,
    private readonly quotas: QuotaService,
    private readonly peers: PeerServices,
  ) {}

  // ---- metadata (os_compute_api:server-metadata) ----

  @Get('metadata')
  async metadata(@Auth() auth: AuthContext, @Param('id') id: string) {
    allow('os_compute_api:server-metadata:index', reader(auth));
    return { metadata: (await this.servers.get(auth, id)).metadata };
  }

  @Put('metadata')
  async replaceMetadata(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: unknown) {
    allow('os_compute_api:server-metadata:update_all', member(auth));
    const metadata = this.metadataBody(body);
    return { metadata: await this.writeMetadata(auth, id, () => metadata) };
  }

  @Post('metadata')
  @HttpCode(200)
  async mergeMetadata(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: unknown) {
    allow('os_compute_api:server-metadata:create', member(auth));
    const metadata = this.metadataBody(body);
    return { metadata: await this.writeMetadata(auth, id, (old) => ({ ...old, ...metadata })) };
  }

  @Get('metadata/:key')
  async metadataItem(@Auth() auth: AuthContext, @Param('id') id: string, @Param('key') key: string) {
    allow('os_compute_api:server-metadata:show', reader(auth));
    const instance = await this.servers.get(auth, id);
    if (!Object.hasOwn(instance.metadata, key)) throw new NotFoundError('Metadata item was not found');
    return { meta: { [key]: instance.metadata[key] } };
  }

  @Put('metadata/:key')
  async setMetadataItem(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Param('key') key: string,
    @Body() body: unknown,
  ) {
    allow('os_compute_api:server-metadata:update', member(auth));
    const root = requireObject('root', body);
    onlyKeys('root', root, ['meta']);
    const meta = checkMetadata('meta', root.meta);
    if (Object.keys(meta).length !== 1) throw new BadRequestError('Request body contains too many items');
    if (!Object.hasOwn(meta, key)) throw new BadRequestError('Request body and URI mismatch');
    await this.writeMetadata(auth, id, (old) => ({ ...old, ...meta }));
    return { meta };
  }

  @Delete('metadata/:key')
  @HttpCode(204)
  async deleteMetadataItem(@Auth() auth: AuthContext, @Param('id') id: string, @Param('key') key: string) {
    allow('os_compute_api:server-metadata:delete', member(auth));
    const instance = await this.servers.get(auth, id);
    if (!Object.hasOwn(instance.metadata, key)) throw new NotFoundError('Metadata item was not found');
    await this.writeMetadata(auth, id, (old) => {
      const copy = { ...old };
      delete copy[key];
      return copy;
    });
  }

  private metadataBody(body: unknown): Record<string, string> {
    const root = requireObject('root', body);
    onlyKeys('root', root, ['metadata']);
    if (root.metadata === undefined) throw invalid('root', root, "'metadata' is a required property");
    return checkMetadata('metadata', root.metadata);
  }

  private async writeMetadata(
    auth: AuthContext,
    id: string,
    change: (old: Record<string, string>) => Record<string, string>,
  ): Promise<Record<string, string>> {
    const instance = await this.servers.get(auth, id);
    this.servers.checkLocked(auth, instance);
    const metadata = change(instance.metadata ?? {});
    const limit = (await this.quotas.limits(instance.projectId)).metadata_items;
    if (limit >= 0 && Object.keys(metadata).length > limit) {
      throw new ForbiddenError(
        `Quota exceeded for metadata_items: Requested ${Object.keys(metadata).length}, but already used 0 of ${limit} metadata_items`,
      );
    }
    await this.servers.records.update(instance.uuid, { metadata });
    return metadata;
  }

  // ---- tags (2.26) ----

  private tagsRepo() {
    return this.servers.store.dataSource.getRepository(InstanceTagEntity);
  }

  private async tags(uuid: string): Promise<string[]> {
    const rows = await this.tagsRepo().find({ where: { instanceUuid: uuid }, order: { tag: 'ASC' } });
    return rows.map((row) => row.tag);
  }

  private tagged(v: ApiVersion): void {
    if (!v.atLeast('2.26')) throw new NotFoundError('The resource could not be found.');
  }

  @Get('tags')
  async listTags(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    this.tagged(v);
    allow('os_compute_api:os-server-tags:index', reader(auth));
    const instance = await this.servers.get(auth, id);
    return { tags: await this.tags(instance.uuid) };
  }

  @Put('tags')
  async replaceTags(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Body() body: unknown,
    @Microversion() v: ApiVersion,
  ) {
    this.tagged(v);
    allow('os_compute_api:os-server-tags:update_all', member(auth));
    const root = requireObject('root', body);
    onlyKeys('root', root, ['tags']);
    if (root.tags === undefined) throw invalid('root', root, "'tags' is a required property");
    const tags = checkTags('tags', root.tags, MAX_TAGS);
    const instance = await this.servers.get(auth, id);
    // Replaces of one server's tags take turns: on PostgreSQL the server's row is locked first (two at once
    // would meet each other's new keys); SQLite's transactions take turns anyway.
    const dataSource = this.servers.store.dataSource;
    await inTransaction(dataSource, async (tx) => {
      if (dataSource.options.type === 'postgres') {
        await tx.query('SELECT uuid FROM instance WHERE uuid = $1 FOR UPDATE', [instance.uuid]);
      }
      await tx.delete(InstanceTagEntity, { instanceUuid: instance.uuid });
      if (tags.length)
        await tx.insert(
          InstanceTagEntity,
          tags.map((tag) => ({ instanceUuid: instance.uuid, tag })),
        );
    });
    return { tags: [...tags].sort() };
  }

  @Delete('tags')
  @HttpCode(204)
  async deleteTags(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    this.tagged(v);
    allow('os_compute_api:os-server-tags:delete_all', member(auth));
    const instance = await this.servers.get(auth, id);
    await this.tagsRepo().delete({ instanceUuid: instance.uuid });
  }

  @Get('tags/:tag')
  @HttpCode(204)
  async hasTag(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Param('tag') tag: string,
    @Microversion() v: ApiVersion,
  ) {
    this.tagged(v);
    allow('os_compute_api:os-server-tags:show', reader(auth));
    const instance = await this.servers.get(auth, id);
    if (!(await this.tagsRepo().existsBy({ instanceUuid: instance.uuid, tag }))) {
      throw new NotFoundError(`Tag ${tag} could not be found.`);
    }
  }

  @Put('tags/:tag')
  async addTag(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Param('tag') tag: string,
    @Microversion() v: ApiVersion,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    this.tagged(v);
    allow('os_compute_api:os-server-tags:update', member(auth));
    checkTag('tag', tag);
    const instance = await this.servers.get(auth, id);
    const location = `${reply.request.protocol}://${reply.request.headers.host}${reply.request.url}`;
    reply.header('location', location);
    if (await this.tagsRepo().existsBy({ instanceUuid: instance.uuid, tag })) {
      reply.status(204);
      return;
    }
    if ((await this.tagsRepo().countBy({ instanceUuid: instance.uuid })) >= MAX_TAGS) {
      throw new BadRequestError(`The number of tags exceeded the per-server limit ${MAX_TAGS}`);
    }
    try {
      await this.tagsRepo().insert({ instanceUuid: instance.uuid, tag });
    } catch (error) {
      // Added by a concurrent request meanwhile: it exists, as a second PUT would say.
      if (!isUniqueViolation(error)) throw error;
      reply.status(204);
      return;
    }
    reply.status(201);
  }

  @Delete('tags/:tag')
  @HttpCode(204)
  async deleteTag(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Param('tag') tag: string,
    @Microversion() v: ApiVersion,
  ) {
    this.tagged(v);
    allow('os_compute_api:os-server-tags:delete', member(auth));
    const instance = await this.servers.get(auth, id);
    const result = await this.tagsRepo().delete({ instanceUuid: instance.uuid, tag });
    if (!result.affected) throw new NotFoundError(`Tag ${tag} could not be found.`);
  }

  // ---- ips ----

  @Get('ips')
  async ips(@Auth() auth: AuthContext, @Param('id') id: string) {
    allow('os_compute_api:ips:index', reader(auth));
    const instance = await this.servers.get(auth, id);
    return { addresses: serverAddresses({ instance, fault: null, tags: [] }) };
  }

  @Get('ips/:network')
  async ipsOf(@Auth() auth: AuthContext, @Param('id') id: string, @Param('network') network: string) {
    allow('os_compute_api:ips:show', reader(auth));
    const instance = await this.servers.get(auth, id);
    const addresses = serverAddresses({ instance, fault: null, tags: [] });
    if (!Object.hasOwn(addresses, network))
      throw new NotFoundError('Instance is not a member of specified network');
    return { [network]: addresses[network] };
  }

  // ---- instance actions ----

  @Get('os-instance-actions')
  async actions(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @NovaQuery() query: NovaQueryParams,
    @Microversion() v: ApiVersion,
  ) {
    allow('os_compute_api:os-instance-actions:list', reader(auth));
    const instance = await this.servers.get(auth, id, { deleted: v.atLeast('2.21') });
    let actions = (await this.servers.records.actions(instance.uuid)).reverse();
    if (v.atLeast('2.58')) {
      if (query['changes-since'])
        actions = actions.filter((a) => a.updatedAt >= new Date(query['changes-since']!).toISOString());
      if (v.atLeast('2.66') && query['changes-before']) {
        actions = actions.filter((a) => a.updatedAt <= new Date(query['changes-before']!).toISOString());
      }
      if (query.marker !== undefined) {
        const at = actions.findIndex((a) => a.requestId === query.marker);
        if (at < 0) throw new BadRequestError(`Marker ${query.marker} could not be found.`);
        actions = actions.slice(at + 1);
      }
      if (query.limit !== undefined) {
        const limit = Number(query.limit);
        if (!Number.isInteger(limit) || limit < 0) {
          throw new BadRequestError(`Invalid input for query parameters limit. Value: ${query.limit}.`);
        }
        actions = actions.slice(0, limit);
      }
    }
    return { instanceActions: actions.map((a) => this.actionView(a, v)) };
  }

  @Get('os-instance-actions/:requestId')
  async action(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Param('requestId') requestId: string,
    @Microversion() v: ApiVersion,
  ) {
    allow('os_compute_api:os-instance-actions:show', reader(auth));
    const instance = await this.servers.get(auth, id, { deleted: v.atLeast('2.21') });
    const action = (await this.servers.records.actions(instance.uuid)).find((a) => a.requestId === requestId);
    if (!action) throw new NotFoundError(`Action ${requestId} not found`);
    const view = this.actionView(action, v);
    const admin = isAdmin(auth);
    if (admin || v.atLeast('2.51')) {
      const events = await this.servers.records.events(action.id);
      view.events = events.map((event) => {
        const item: Record<string, unknown> = {
          event: event.event,
          start_time: isoMicros(event.startTime),
          finish_time: event.finishTime ? isoMicros(event.finishTime) : null,
          result: event.result,
        };
        if (admin) item.traceback = event.traceback;
        if (v.atLeast('2.62')) {
          item.hostId = hostId(instance.projectId, event.host);
          if (admin) item.host = event.host;
        }
        if (v.atLeast('2.84') && admin) item.details = event.details;
        return item;
      });
    }
    return { instanceAction: view };
  }

  private actionView(action: InstanceActionEntity, v: ApiVersion): Record<string, unknown> {
    const view: Record<string, unknown> = {
      action: action.action,
      instance_uuid: action.instanceUuid,
      request_id: action.requestId,
      user_id: action.userId ?? '',
      project_id: action.projectId ?? '',
      start_time: isoMicros(action.startTime),
      message: action.message,
    };
    if (v.atLeast('2.58')) view.updated_at = isoMicros(action.updatedAt);
    return view;
  }

  // ---- security groups, password, volumes, interfaces ----

  @Get('os-security-groups')
  async securityGroups(@Auth() auth: AuthContext, @Param('id') id: string) {
    allow('os_compute_api:os-security-groups:list', reader(auth));
    const instance = await this.servers.get(auth, id);
    // The groups of the server's ports as Neutron has them now (Nova asks Neutron too); by name without ports.
    const ports = await Promise.all(
      (instance.networkInfo ?? []).map((vif) => this.peers.port(auth, vif.portId)),
    );
    const ids = new Set(ports.flatMap((port) => port?.security_groups ?? []));
    const names = new Set(instance.securityGroups ?? []);
    const all = await this.peers
      .call<{ security_groups: NeutronGroup[] }>(
        auth,
        'network',
        'GET',
        `/v2.0/security-groups?project_id=${encodeURIComponent(instance.projectId)}`,
      )
      .catch((error: unknown) => {
        throw asApiError(error);
      });
    const groups = all.security_groups.filter((g) => (ids.size ? ids.has(g.id) : names.has(g.name)));
    const refs = await remoteGroupRefs(this.peers, auth, groups);
    const views = groups.map((group) => securityGroupView(group, refs));
    views.sort((a, b) =>
      a.tenant_id < b.tenant_id ? -1 : a.tenant_id > b.tenant_id ? 1 : a.name < b.name ? -1 : 1,
    );
    return { security_groups: views };
  }

  @Get('os-server-password')
  async password(@Auth() auth: AuthContext, @Param('id') id: string) {
    allow('os_compute_api:os-server-password:show', reader(auth));
    const instance = await this.servers.get(auth, id);
    return { password: instance.systemMetadata?.password ?? '' };
  }

  @Delete('os-server-password')
  @HttpCode(204)
  async clearPassword(@Auth() auth: AuthContext, @Param('id') id: string) {
    allow('os_compute_api:os-server-password:clear', member(auth));
    const instance = await this.servers.get(auth, id);
    const systemMetadata = { ...instance.systemMetadata };
    delete systemMetadata.password;
    await this.servers.records.update(instance.uuid, { systemMetadata });
  }

  @Get('os-volume_attachments')
  async volumes(@Auth() auth: AuthContext, @Param('id') id: string) {
    allow('os_compute_api:os-volumes-attachments:index', reader(auth));
    await this.servers.get(auth, id);
    return { volumeAttachments: [] };
  }

  @Post('os-volume_attachments')
  async attachVolume(@Auth() auth: AuthContext, @Param('id') id: string) {
    allow('os_compute_api:os-volumes-attachments:create', member(auth));
    await this.servers.get(auth, id);
    throw new BadRequestError('Volumes are not available in this cloud: there is no block storage service.');
  }

  @Get('os-volume_attachments/:volume')
  async volume(@Auth() auth: AuthContext, @Param('id') id: string, @Param('volume') volume: string) {
    allow('os_compute_api:os-volumes-attachments:show', reader(auth));
    await this.servers.get(auth, id);
    throw new NotFoundError(`Volume ${volume} is not attached to the server.`);
  }

  @Get('os-interface')
  async interfaces(@Auth() auth: AuthContext, @Param('id') id: string) {
    allow('os_compute_api:os-attach-interfaces:list', reader(auth));
    const instance = await this.servers.get(auth, id);
    const vifs = instance.networkInfo ?? [];
    const subnets = await this.servers.portSubnets(
      auth,
      vifs.map((vif) => vif.portId),
    );
    return { interfaceAttachments: vifs.map((vif) => interfaceView(instance, vif, subnets)) };
  }

  @Get('os-interface/:port')
  async interfaceOf(@Auth() auth: AuthContext, @Param('id') id: string, @Param('port') port: string) {
    allow('os_compute_api:os-attach-interfaces:show', reader(auth));
    const instance = await this.servers.get(auth, id);
    const vif = (instance.networkInfo ?? []).find((item) => item.portId === port);
    if (!vif) throw new NotFoundError(`Port ${port} is not attached`);
    return {
      interfaceAttachment: interfaceView(instance, vif, await this.servers.portSubnets(auth, [port])),
    };
  }
}

function interfaceView(
  instance: InstanceEntity,
  vif: InstanceEntity['networkInfo'][number],
  subnets: Map<string, string>,
) {
  return {
    port_id: vif.portId,
    net_id: vif.networkId,
    mac_addr: vif.macAddress,
    port_state: instance.vmState === 'active' ? 'ACTIVE' : 'DOWN',
    fixed_ips: vif.ips.map((ip) => ({ ip_address: ip.address, subnet_id: subnets.get(ip.address) ?? '' })),
  };
}

/** Nova's instance action times: ISO with microseconds, no zone. */
function isoMicros(iso: string): string {
  const millis = /\.(\d{3})/.exec(iso)?.[1] ?? '000';
  return `${iso.slice(0, 19)}.${millis}000`;
}
