import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Patch,
  Post,
  Put,
  Query,
  Req,
  Res,
  UseFilters,
} from '@nestjs/common';
import { Auth, AuthContext, isAdmin } from '@novum/auth';
import { BadRequestError, ForbiddenError, NotFoundError } from '@novum/common';
import { HeatStackEntity } from '@novum/db';
import { functionsOf, conditionFunctionsOf, HotVersion, resolveVersion, templateVersions } from '@novum/hot';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { bindStack, dependencyGraph, environmentOf, MAX_NESTED_DEPTH, typeFor } from '../engine';
import { EngineRegistry } from '../engine-rpc';
import { functionDescription } from '../function-descriptions';
import { OrchestrationErrorFilter } from '../hot-error.filter';
import { RESOURCE_TYPES } from '../resources/registry';
import { typeSchema } from '../resources/types';
import { stackActionOf, StackRequest, StackService } from '../stack.service';
import { eventView, outputsOf, resourceView, snapshotView, stackDetail, stackSummary } from '../views';

type QueryMap = Record<string, string | string[]>;

function baseUrl(request: FastifyRequest, tenant: string): string {
  return `${request.protocol}://${request.headers.host}/heat-api/v1/${tenant}`;
}

function checkTenant(auth: AuthContext, tenant: string): void {
  if (tenant !== auth.projectId && !isAdmin(auth)) {
    throw new ForbiddenError('You are not authorized to complete this action.', 'Forbidden');
  }
}

function first(query: QueryMap, key: string): string | undefined {
  const value = query[key];
  return Array.isArray(value) ? value[0] : value;
}

function queryString(request: FastifyRequest): string {
  const index = request.url.indexOf('?');
  return index < 0 ? '' : request.url.slice(index);
}

/** Heat API v1 stacks: `/heat-api/v1/{tenant_id}/stacks/...` with name lookups answered by redirects. */
@Controller('v1/:tenant/stacks')
@UseFilters(OrchestrationErrorFilter)
export class StacksController {
  constructor(private readonly stacks: StackService) {}

  @Get()
  async list(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Query() query: QueryMap,
    @Req() request: FastifyRequest,
  ) {
    checkTenant(auth, tenant);
    const base = baseUrl(request, tenant);
    const stacks = await this.stacks.list(auth, query);
    return { stacks: stacks.map((stack) => stackSummary(base, stack)) };
  }

  @Post()
  @HttpCode(201)
  async create(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Body() body: StackRequest,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    checkTenant(auth, tenant);
    const stack = await this.stacks.create(auth, body ?? {});
    const href = `${baseUrl(request, tenant)}/stacks/${encodeURIComponent(stack.name)}/${stack.id}`;
    reply.header('location', href);
    return { stack: { id: stack.id, links: [{ href, rel: 'self' }] } };
  }

  @Post('preview')
  @HttpCode(200)
  async preview(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Body() body: StackRequest,
    @Req() request: FastifyRequest,
  ) {
    checkTenant(auth, tenant);
    const { stack, bound, resources } = await this.stacks.preview(auth, body ?? {});
    const detail = stackDetail(baseUrl(request, tenant), stack, bound, false);
    return { stack: { ...detail, stack_status: null, stack_status_reason: null, resources } };
  }

  /** Heat's stack lookup: by name or id, answered with a redirect to the stack's canonical URL. */
  @Get(':name')
  async lookup(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Query() query: QueryMap,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ) {
    return this.redirect(auth, tenant, name, '', query, request, reply);
  }

  @Get([
    ':name/resources',
    ':name/events',
    ':name/template',
    ':name/environment',
    ':name/files',
    ':name/outputs',
  ])
  async lookupPath(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Query() query: QueryMap,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ) {
    const path = request.url.split('?')[0].split('/').pop() as string;
    return this.redirect(auth, tenant, name, `/${path}`, query, request, reply);
  }

  private async redirect(
    auth: AuthContext,
    tenant: string,
    name: string,
    path: string,
    query: QueryMap,
    request: FastifyRequest,
    reply: FastifyReply,
  ) {
    checkTenant(auth, tenant);
    const stack = await this.stacks.lookup(
      auth,
      name,
      first(query, 'show_deleted') === 'True' || first(query, 'show_deleted') === 'true',
    );
    const location = `${baseUrl(request, tenant)}/stacks/${encodeURIComponent(stack.name)}/${stack.id}${path}${queryString(request)}`;
    const href = `${baseUrl(request, tenant)}/stacks/${encodeURIComponent(stack.name)}/${stack.id}`;
    reply
      .status(302)
      .header('location', location)
      .header('content-type', 'application/json')
      .send(
        JSON.stringify({
          explanation: 'The resource was found at',
          code: 302,
          title: 'Found',
          location: href,
        }),
      );
  }

  /** Heat's stack_lookup_subpath_post: `POST /stacks/{name}/actions` redirected to the stack's own path. */
  @Post(':name/actions')
  async lookupActions(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Query() query: QueryMap,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ) {
    return this.redirect(auth, tenant, name, '/actions', query, request, reply);
  }

  /** Heat's ActionController: suspend, resume, check, cancel_update, cancel_without_rollback; 200, `null`. */
  @Post(':name/:id/actions')
  @HttpCode(200)
  async action(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Body() body: unknown,
    @Res() reply: FastifyReply,
  ) {
    const action = stackActionOf(body);
    await this.stacks.act(auth, await this.identify(auth, tenant, name, id), action);
    reply.status(200).header('content-type', 'application/json').send('null');
  }

  @Put(':name')
  @HttpCode(202)
  async updateByName(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Body() body: StackRequest,
  ) {
    checkTenant(auth, tenant);
    await this.stacks.update(auth, await this.stacks.lookup(auth, name), body ?? {}, false);
  }

  @Patch(':name')
  @HttpCode(202)
  async patchByName(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Body() body: StackRequest,
  ) {
    checkTenant(auth, tenant);
    await this.stacks.update(auth, await this.stacks.lookup(auth, name), body ?? {}, true);
  }

  @Delete(':name')
  @HttpCode(204)
  async deleteByName(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
  ) {
    checkTenant(auth, tenant);
    await this.stacks.delete(auth, await this.stacks.lookup(auth, name));
  }

  @Get(':name/:id')
  async show(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Query() query: QueryMap,
    @Req() request: FastifyRequest,
  ) {
    const stack = await this.identify(auth, tenant, name, id);
    const resolve = !['false', 'False', '0'].includes(first(query, 'resolve_outputs') ?? 'true');
    return { stack: stackDetail(baseUrl(request, tenant), stack, await this.stacks.bound(stack), resolve) };
  }

  @Put(':name/:id')
  @HttpCode(202)
  async update(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Body() body: StackRequest,
  ) {
    await this.stacks.update(auth, await this.identify(auth, tenant, name, id), body ?? {}, false);
  }

  @Patch(':name/:id')
  @HttpCode(202)
  async patch(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Body() body: StackRequest,
  ) {
    await this.stacks.update(auth, await this.identify(auth, tenant, name, id), body ?? {}, true);
  }

  @Delete(':name/:id')
  @HttpCode(204)
  async delete(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
  ) {
    await this.stacks.delete(auth, await this.identify(auth, tenant, name, id));
  }

  /** Heat's stack abandon: 200 with the stack's abandon data; the stack goes, its resources stay. */
  @Delete(':name/:id/abandon')
  @HttpCode(200)
  async abandon(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
  ) {
    checkTenant(auth, tenant);
    return this.stacks.abandon(auth, () => this.identify(auth, tenant, name, id));
  }

  /** Heat's stack export: the abandon data, the stack left as it is. */
  @Get(':name/:id/export')
  async export(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
  ) {
    checkTenant(auth, tenant);
    return this.stacks.export(auth, () => this.identify(auth, tenant, name, id));
  }

  /** Heat's stack snapshot: 200 with the new snapshot (CREATE_IN_PROGRESS), taken in the background. */
  @Post(':name/:id/snapshots')
  @HttpCode(200)
  async snapshot(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Body() body: unknown,
  ) {
    const stack = await this.identify(auth, tenant, name, id);
    return snapshotView(await this.stacks.snapshot(auth, stack, body));
  }

  @Get(':name/:id/snapshots')
  async snapshots(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
  ) {
    const stack = await this.identify(auth, tenant, name, id);
    return { snapshots: (await this.stacks.snapshots(auth, stack)).map(snapshotView) };
  }

  @Get(':name/:id/snapshots/:snapshot')
  async showSnapshot(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Param('snapshot') snapshotId: string,
  ) {
    const stack = await this.identify(auth, tenant, name, id);
    return { snapshot: snapshotView(await this.stacks.snapshotOf(auth, stack, snapshotId)) };
  }

  @Delete(':name/:id/snapshots/:snapshot')
  @HttpCode(204)
  async deleteSnapshot(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Param('snapshot') snapshotId: string,
  ) {
    await this.stacks.deleteSnapshot(auth, await this.identify(auth, tenant, name, id), snapshotId);
  }

  /** Heat's restore_snapshot: 202 with webob's Accepted body, as Heat answers it. */
  @Post(':name/:id/snapshots/:snapshot/restore')
  @HttpCode(202)
  async restoreSnapshot(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Param('snapshot') snapshotId: string,
  ) {
    await this.stacks.restore(auth, await this.identify(auth, tenant, name, id), snapshotId);
    return {
      code: '202 Accepted',
      message: 'The request is accepted for processing.<br /><br />\n\n\n',
      title: 'Accepted',
    };
  }

  @Put(':name/:id/preview')
  @HttpCode(200)
  async previewUpdate(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Body() body: StackRequest,
  ) {
    return this.stacks.previewUpdate(auth, await this.identify(auth, tenant, name, id), body ?? {}, false);
  }

  @Patch(':name/:id/preview')
  @HttpCode(200)
  async previewPatch(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Body() body: StackRequest,
  ) {
    return this.stacks.previewUpdate(auth, await this.identify(auth, tenant, name, id), body ?? {}, true);
  }

  @Get(':name/:id/template')
  async template(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
  ) {
    return (await this.identify(auth, tenant, name, id)).template;
  }

  @Get(':name/:id/environment')
  async environment(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
  ) {
    return environmentOf(await this.identify(auth, tenant, name, id));
  }

  @Get(':name/:id/files')
  async files(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
  ) {
    return (await this.identify(auth, tenant, name, id)).files;
  }

  @Get(':name/:id/outputs')
  async outputs(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
  ) {
    const stack = await this.identify(auth, tenant, name, id);
    const bound = await this.stacks.bound(stack);
    return {
      outputs: (bound?.outputs() ?? []).map((o) => ({
        output_key: o.name,
        description: o.description ?? 'No description given',
      })),
    };
  }

  @Get(':name/:id/outputs/:key')
  async output(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Param('key') key: string,
  ) {
    const stack = await this.identify(auth, tenant, name, id);
    const bound = await this.stacks.bound(stack);
    const output = bound ? outputsOf(bound).find((o) => o.output_key === key) : undefined;
    if (!output) throw new NotFoundError(`Specified output key ${key} not found.`, 'NotFound');
    return { output };
  }

  @Get(':name/:id/resources')
  async resources(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Query() query: QueryMap,
    @Req() request: FastifyRequest,
  ) {
    const stack = await this.identify(auth, tenant, name, id);
    const depthText = first(query, 'nested_depth') ?? '0';
    const depth = Number(depthText);
    if (!/^\d+$/.test(depthText)) throw new BadRequestError(`Only integer is acceptable by 'nested_depth'.`);
    const detail = ['true', 'True', '1'].includes(first(query, 'with_detail') ?? '');
    type Row = Awaited<ReturnType<StackService['resources']>>[number];
    const filter = (key: string, value: (row: Row) => string) => {
      const wanted = query[key] === undefined ? [] : ([] as string[]).concat(query[key]);
      return (row: Row) => !wanted.length || wanted.includes(value(row));
    };
    const keep = [
      filter('name', (r) => r.name),
      filter('status', (r) => r.status),
      filter('action', (r) => r.action),
      filter('type', (r) => r.type),
      filter('id', (r) => r.id),
    ];
    const base = baseUrl(request, tenant);
    const views: ReturnType<typeof resourceView>[] = [];
    // Heat's iter_resources: each resource, then (down to nested_depth) its nested stack's resources.
    const walk = async (current: HeatStackEntity, level: number, parentResource?: string) => {
      const rows = await this.stacks.resources(current);
      const children = new Map((await this.stacks.children(current)).map((child) => [child.id, child]));
      const requiredBy = this.requiredBy(current);
      for (const row of rows) {
        const nestedStack = row.physicalId ? children.get(row.physicalId) : undefined;
        if (keep.every((k) => k(row))) {
          views.push(
            resourceView(base, current, row, requiredBy(row.name), detail, { nestedStack, parentResource }),
          );
        }
        if (nestedStack && level < Math.min(depth, MAX_NESTED_DEPTH))
          await walk(nestedStack, level + 1, row.name);
      }
    };
    await walk(stack, 0);
    return { resources: views };
  }

  @Get(':name/:id/resources/:resource')
  async resource(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Param('resource') resourceName: string,
    @Req() request: FastifyRequest,
  ) {
    const stack = await this.identify(auth, tenant, name, id);
    const row = await this.stacks.resource(stack, resourceName);
    const nestedStack = (await this.stacks.children(stack)).find((child) => child.id === row.physicalId);
    const view = resourceView(baseUrl(request, tenant), stack, row, this.requiredBy(stack)(row.name), true, {
      nestedStack,
    });
    const type = typeFor(environmentOf(stack), row.type, stack.files);
    const bound = await this.stacks.bound(stack);
    if (type && bound && row.physicalId) {
      const attribute = (attr: string) => {
        try {
          return bound.resourceAttr(row.name, attr);
        } catch {
          return null;
        }
      };
      view.attributes = Object.fromEntries(
        [...Object.keys(type.attributes), 'show'].map((attr) => [attr, attribute(attr)]),
      );
    }
    return { resource: view };
  }

  @Get(':name/:id/resources/:resource/metadata')
  async metadata(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Param('resource') resourceName: string,
  ) {
    const stack = await this.identify(auth, tenant, name, id);
    return { metadata: (await this.stacks.resource(stack, resourceName)).metadata };
  }

  @Get(':name/:id/events')
  async events(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Query() query: QueryMap,
    @Req() request: FastifyRequest,
  ) {
    return this.eventList(auth, tenant, name, id, undefined, query, request);
  }

  @Get(':name/:id/resources/:resource/events')
  async resourceEvents(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Param('resource') resourceName: string,
    @Query() query: QueryMap,
    @Req() request: FastifyRequest,
  ) {
    return this.eventList(auth, tenant, name, id, resourceName, query, request);
  }

  @Get(':name/:id/resources/:resource/events/:event')
  async event(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Param('resource') resourceName: string,
    @Param('event') eventId: string,
    @Req() request: FastifyRequest,
  ) {
    const stack = await this.identify(auth, tenant, name, id);
    const event = (await this.stacks.events(stack, resourceName)).find((e) => e.id === eventId);
    if (!event) throw new NotFoundError(`The Event (${eventId}) could not be found.`, 'EntityNotFound');
    return {
      event: {
        ...eventView(baseUrl(request, tenant), stack, event),
        resource_type: event.resourceType,
        resource_properties: {},
      },
    };
  }

  private async eventList(
    auth: AuthContext,
    tenant: string,
    name: string,
    id: string,
    resourceName: string | undefined,
    query: QueryMap,
    request: FastifyRequest,
  ) {
    const stack = await this.identify(auth, tenant, name, id);
    if (resourceName)
      await this.stacks.resource(stack, resourceName).catch(async (error) => {
        if (!(await this.stacks.events(stack, resourceName)).length) throw error;
      });
    let events = await this.stacks.events(stack, resourceName);
    const wanted = (key: string) => (query[key] === undefined ? [] : ([] as string[]).concat(query[key]));
    const filters: [string, (e: (typeof events)[number]) => string][] = [
      ['resource_action', (e) => e.action],
      ['resource_status', (e) => e.status],
      ['resource_name', (e) => e.resourceName],
      ['resource_type', (e) => e.resourceType],
    ];
    for (const [key, value] of filters) {
      const values = wanted(key);
      if (values.length) events = events.filter((e) => values.includes(value(e)));
    }
    if ((first(query, 'sort_dir') ?? 'asc').toLowerCase() === 'desc') events.reverse();
    const marker = first(query, 'marker');
    if (marker) {
      const index = events.findIndex((e) => e.id === marker);
      if (index < 0) throw new NotFoundError(`The Event (${marker}) could not be found.`, 'EntityNotFound');
      events = events.slice(index + 1);
    }
    const limit = first(query, 'limit');
    if (limit !== undefined && Number.isInteger(Number(limit))) events = events.slice(0, Number(limit));
    const base = baseUrl(request, tenant);
    return { events: events.map((e) => eventView(base, stack, e)) };
  }

  private async identify(
    auth: AuthContext,
    tenant: string,
    name: string,
    id: string,
  ): Promise<HeatStackEntity> {
    checkTenant(auth, tenant);
    return this.stacks.identify(auth, name, id);
  }

  private requiredBy(stack: HeatStackEntity): (name: string) => string[] {
    try {
      const graph = dependencyGraph(bindStack(stack, new Map()), environmentOf(stack), stack.files);
      return (name) => graph.dependents(name);
    } catch {
      return () => [];
    }
  }
}

/** Heat API v1 calls outside stacks: validate, resource types, template versions, build info. */
@Controller('v1/:tenant')
@UseFilters(OrchestrationErrorFilter)
export class OrchestrationInfoController {
  constructor(
    private readonly stacks: StackService,
    private readonly engines: EngineRegistry,
  ) {}

  /**
   * Heat's service list (`openstack orchestration service list`, admin only as Heat's `service:index`): the
   * engines reporting, each `up` while its reports are fresh (and, on this machine, its process runs).
   */
  @Get('services')
  async services(@Auth() auth: AuthContext, @Param('tenant') tenant: string) {
    checkTenant(auth, tenant);
    if (!isAdmin(auth)) throw new ForbiddenError('Access was denied to this resource.');
    const rows = await this.engines.services.find({ order: { createdAt: 'ASC' } });
    return {
      services: rows.map((row) => ({
        id: row.id,
        binary: 'heat-engine',
        engine_id: row.id,
        host: row.hostname,
        hostname: row.hostname,
        topic: 'engine',
        report_interval: row.reportInterval,
        created_at: row.createdAt,
        updated_at: row.updatedAt,
        deleted_at: null,
        status: this.engines.isAlive(row) ? 'up' : 'down',
      })),
    };
  }

  @Post('validate')
  @HttpCode(200)
  async validate(@Auth() auth: AuthContext, @Param('tenant') tenant: string, @Body() body: StackRequest) {
    checkTenant(auth, tenant);
    return this.stacks.validate(auth, body ?? {});
  }

  @Get('resource_types')
  resourceTypes(@Auth() auth: AuthContext, @Param('tenant') tenant: string, @Query() query: QueryMap) {
    checkTenant(auth, tenant);
    let types = [...RESOURCE_TYPES.values()];
    const name = first(query, 'name');
    if (name) {
      let pattern: RegExp;
      try {
        pattern = new RegExp(name);
      } catch {
        throw new BadRequestError(`Invalid regular expression for name: ${name}`);
      }
      types = types.filter((t) => pattern.test(t.name));
    }
    types.sort((a, b) => a.name.localeCompare(b.name));
    if (['true', 'True'].includes(first(query, 'with_description') ?? '')) {
      return { resource_types: types.map((t) => ({ resource_type: t.name, description: t.description })) };
    }
    return { resource_types: types.map((t) => t.name) };
  }

  @Get('resource_types/:type')
  resourceType(@Auth() auth: AuthContext, @Param('tenant') tenant: string, @Param('type') name: string) {
    checkTenant(auth, tenant);
    const type = RESOURCE_TYPES.get(name);
    if (!type) throw new NotFoundError(`The Resource Type (${name}) could not be found.`, 'EntityNotFound');
    return typeSchema(type);
  }

  @Get('template_versions')
  templateVersions(@Auth() auth: AuthContext, @Param('tenant') tenant: string) {
    checkTenant(auth, tenant);
    return { template_versions: templateVersions() };
  }

  @Get('template_versions/:version/functions')
  functions(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('version') version: string,
    @Query() query: QueryMap,
  ) {
    checkTenant(auth, tenant);
    const date = resolveVersion(version.replace(/^heat_template_version\./, '')) as HotVersion | undefined;
    if (!date) throw new NotFoundError(`Template with version ${version} not found`, 'NotFound');
    const names = ['true', 'True'].includes(first(query, 'with_condition_func') ?? '')
      ? [...new Set([...functionsOf(date), ...conditionFunctionsOf(date)])]
      : functionsOf(date);
    return {
      template_functions: names.map((functionName) => ({
        functions: functionName,
        description: functionDescription(functionName, date),
      })),
    };
  }

  @Get('build_info')
  buildInfo(@Auth() auth: AuthContext, @Param('tenant') tenant: string) {
    checkTenant(auth, tenant);
    return { api: { revision: 'novum' }, engine: { revision: 'novum' } };
  }
}
