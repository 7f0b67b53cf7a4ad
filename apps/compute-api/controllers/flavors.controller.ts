import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put } from '@nestjs/common';
import { Auth, AuthContext } from '@novum/auth';
import { BadRequestError, NotFoundError } from '@novum/common';
import { FlavorQuery, FlavorService } from '../flavor.service';
import { ApiVersion, Microversion } from '../microversion';
import { NovaQuery, NovaQueryParams } from '../query';
import { adminOnly } from '../policy';
import { COMPUTE_ROOT_URL, ComputeLinks, flavorBrief, flavorDetail } from '../serializers';
import { CreateFlavorBody, ExtraSpecsBody, FlavorActionBody, UpdateFlavorBody } from './dto';

function flavorQuery(q: NovaQueryParams): FlavorQuery {
  return {
    isPublic: q.is_public,
    minRam: q.minRam,
    minDisk: q.minDisk,
    sortKey: q.sort_key,
    sortDir: q.sort_dir,
    limit: q.limit,
    marker: q.marker,
  };
}

@Controller('v2.1/flavors')
export class FlavorsController {
  private readonly links: ComputeLinks;

  constructor(
    private readonly flavors: FlavorService,
    @Inject(COMPUTE_ROOT_URL) root: string,
  ) {
    this.links = new ComputeLinks(root);
  }

  private page(collection: string, query: NovaQueryParams, ids: string[]) {
    const limit = query.limit === undefined ? undefined : Number(query.limit);
    if (limit === undefined || ids.length === 0 || ids.length < limit) return {};
    return { flavors_links: this.links.next(collection, query, ids[ids.length - 1]) };
  }

  @Get()
  async list(@Auth() auth: AuthContext, @NovaQuery() query: NovaQueryParams, @Microversion() v: ApiVersion) {
    const flavors = await this.flavors.list(auth, flavorQuery(query), false);
    return {
      flavors: flavors.map((f) => flavorBrief(f, this.links, v)),
      ...this.page(
        'flavors',
        query,
        flavors.map((f) => f.id),
      ),
    };
  }

  @Get('detail')
  async detail(
    @Auth() auth: AuthContext,
    @NovaQuery() query: NovaQueryParams,
    @Microversion() v: ApiVersion,
  ) {
    const flavors = await this.flavors.list(auth, flavorQuery(query), v.atLeast('2.61'));
    return {
      flavors: flavors.map((f) => flavorDetail(f, this.links, v)),
      ...this.page(
        'flavors/detail',
        query,
        flavors.map((f) => f.id),
      ),
    };
  }

  @Get(':id')
  async show(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    return { flavor: flavorDetail(await this.flavors.get(auth, id), this.links, v) };
  }

  @Post()
  @HttpCode(200)
  async create(@Auth() auth: AuthContext, @Body() body: CreateFlavorBody, @Microversion() v: ApiVersion) {
    adminOnly(auth, 'os_compute_api:os-flavor-manage:create');
    if (!v.atLeast('2.55') && body.flavor.description !== undefined) {
      throw new BadRequestError(
        "Invalid input for field/attribute flavor. Additional properties are not allowed ('description' was unexpected)",
      );
    }
    return { flavor: flavorDetail(await this.flavors.create(body.flavor), this.links, v) };
  }

  @Put(':id')
  async update(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Body() body: UpdateFlavorBody,
    @Microversion() v: ApiVersion,
  ) {
    if (!v.atLeast('2.55')) throw new NotFoundError('The resource could not be found.');
    adminOnly(auth, 'os_compute_api:os-flavor-manage:update');
    if (body.flavor.description === undefined) {
      throw new BadRequestError(
        "Invalid input for field/attribute flavor. 'description' is a required property",
      );
    }
    const flavor = await this.flavors.updateDescription(auth, id, body.flavor.description);
    return { flavor: flavorDetail(flavor, this.links, v) };
  }

  @Delete(':id')
  @HttpCode(202)
  async remove(@Auth() auth: AuthContext, @Param('id') id: string) {
    adminOnly(auth, 'os_compute_api:os-flavor-manage:delete');
    await this.flavors.delete(id);
  }

  @Get(':id/os-flavor-access')
  async access(@Auth() auth: AuthContext, @Param('id') id: string) {
    adminOnly(auth, 'os_compute_api:os-flavor-access');
    return accessBody(await this.flavors.accessList(id));
  }

  @Post(':id/action')
  @HttpCode(200)
  async action(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: FlavorActionBody) {
    const actions = Object.keys(body);
    if (actions.length !== 1)
      throw new BadRequestError('There is either no action or more than one action in the request.');
    if (body.addTenantAccess) {
      adminOnly(auth, 'os_compute_api:os-flavor-access:add_tenant_access');
      return accessBody(await this.flavors.addAccess(id, body.addTenantAccess.tenant));
    }
    if (body.removeTenantAccess) {
      adminOnly(auth, 'os_compute_api:os-flavor-access:remove_tenant_access');
      return accessBody(await this.flavors.removeAccess(id, body.removeTenantAccess.tenant));
    }
    throw new BadRequestError(`There is no such action: ${actions[0]}`);
  }

  @Get(':id/os-extra_specs')
  async specs(@Auth() auth: AuthContext, @Param('id') id: string) {
    await this.flavors.get(auth, id);
    return { extra_specs: await this.flavors.extraSpecs(id) };
  }

  @Post(':id/os-extra_specs')
  @HttpCode(200)
  async addSpecs(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Body() body: ExtraSpecsBody,
    @Microversion() v: ApiVersion,
  ) {
    adminOnly(auth, 'os_compute_api:os-flavor-extra-specs:create');
    if (Object.keys(body).length !== 1) {
      throw new BadRequestError(
        'Invalid input for field/attribute extra_specs. Additional properties are not allowed',
      );
    }
    return { extra_specs: await this.flavors.setExtraSpecs(id, body.extra_specs, v.atLeast('2.86')) };
  }

  @Get(':id/os-extra_specs/:key')
  async spec(@Auth() auth: AuthContext, @Param('id') id: string, @Param('key') key: string) {
    await this.flavors.get(auth, id);
    const specs = await this.flavors.extraSpecs(id);
    if (!(key in specs)) throw this.flavors.noSpec(id, key);
    return { [key]: specs[key] };
  }

  @Put(':id/os-extra_specs/:key')
  async setSpec(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Param('key') key: string,
    @Body() body: Record<string, unknown>,
    @Microversion() v: ApiVersion,
  ) {
    adminOnly(auth, 'os_compute_api:os-flavor-extra-specs:update');
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new BadRequestError('Malformed request body: a JSON object is required.');
    }
    const keys = Object.keys(body);
    if (keys.length > 1) throw new BadRequestError('Request body contains too many items');
    if (keys[0] !== key) throw new BadRequestError('Request body and URI mismatch');
    return this.flavors.setExtraSpecs(id, body, v.atLeast('2.86'));
  }

  @Delete(':id/os-extra_specs/:key')
  @HttpCode(200)
  async removeSpec(@Auth() auth: AuthContext, @Param('id') id: string, @Param('key') key: string) {
    adminOnly(auth, 'os_compute_api:os-flavor-extra-specs:delete');
    await this.flavors.deleteExtraSpec(id, key);
  }
}

function accessBody(rows: { flavorId: string; projectId: string }[]) {
  return { flavor_access: rows.map((r) => ({ flavor_id: r.flavorId, tenant_id: r.projectId })) };
}
