import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query } from '@nestjs/common';
import { Auth, AuthContext, authorize, isAdmin } from '@novum/auth';
import { CatalogService } from '../catalog.service';
import { IDENTITY_BASE_URL, Links } from '../serializers';
import {
  EndpointCreateBody,
  EndpointUpdateBody,
  queryString,
  RegionCreateBody,
  RegionUpdateBody,
  ServiceCreateBody,
  ServiceUpdateBody,
} from './dto';

/** Regions (readable by anyone authenticated), services and endpoints (admin). */
@Controller('v3')
export class CatalogController {
  private readonly links: Links;

  constructor(
    private readonly catalog: CatalogService,
    @Inject(IDENTITY_BASE_URL) base: string,
  ) {
    this.links = new Links(base);
  }

  @Get('regions')
  async regions(@Query('parent_region_id') parent: unknown) {
    const regions = await this.catalog.listRegions({
      parent_region_id: queryString(parent, 'parent_region_id'),
    });
    return { regions: regions.map((r) => this.links.region(r)), links: this.links.collection('regions') };
  }

  @Post('regions')
  @HttpCode(201)
  async createRegion(@Auth() auth: AuthContext, @Body() body: RegionCreateBody) {
    authorize('identity:create_region', isAdmin(auth));
    return { region: this.links.region(await this.catalog.createRegion(body.region)) };
  }

  @Get('regions/:id')
  async region(@Param('id') id: string) {
    return { region: this.links.region(await this.catalog.getRegion(id)) };
  }

  @Patch('regions/:id')
  async updateRegion(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: RegionUpdateBody) {
    authorize('identity:update_region', isAdmin(auth));
    return { region: this.links.region(await this.catalog.updateRegion(id, body.region)) };
  }

  @Delete('regions/:id')
  @HttpCode(204)
  async deleteRegion(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:delete_region', isAdmin(auth));
    await this.catalog.deleteRegion(id);
  }

  @Get('services')
  async services(@Auth() auth: AuthContext, @Query() query: Record<string, unknown>) {
    authorize('identity:list_services', isAdmin(auth));
    const services = await this.catalog.listServices({
      type: queryString(query.type, 'type'),
      name: queryString(query.name, 'name'),
    });
    return { services: services.map((s) => this.links.service(s)), links: this.links.collection('services') };
  }

  @Post('services')
  @HttpCode(201)
  async createService(@Auth() auth: AuthContext, @Body() body: ServiceCreateBody) {
    authorize('identity:create_service', isAdmin(auth));
    return { service: this.links.service(await this.catalog.createService(body.service)) };
  }

  @Get('services/:id')
  async service(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:get_service', isAdmin(auth));
    return { service: this.links.service(await this.catalog.getService(id)) };
  }

  @Patch('services/:id')
  async updateService(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: ServiceUpdateBody) {
    authorize('identity:update_service', isAdmin(auth));
    return { service: this.links.service(await this.catalog.updateService(id, body.service)) };
  }

  @Delete('services/:id')
  @HttpCode(204)
  async deleteService(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:delete_service', isAdmin(auth));
    await this.catalog.deleteService(id);
  }

  @Get('endpoints')
  async endpoints(@Auth() auth: AuthContext, @Query() query: Record<string, unknown>) {
    authorize('identity:list_endpoints', isAdmin(auth));
    const endpoints = await this.catalog.listEndpoints({
      interface: queryString(query.interface, 'interface'),
      service_id: queryString(query.service_id, 'service_id'),
      region_id: queryString(query.region_id, 'region_id'),
    });
    return {
      endpoints: endpoints.map((e) => this.links.endpoint(e)),
      links: this.links.collection('endpoints'),
    };
  }

  @Post('endpoints')
  @HttpCode(201)
  async createEndpoint(@Auth() auth: AuthContext, @Body() body: EndpointCreateBody) {
    authorize('identity:create_endpoint', isAdmin(auth));
    return { endpoint: this.links.endpoint(await this.catalog.createEndpoint(body.endpoint)) };
  }

  @Get('endpoints/:id')
  async endpoint(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:get_endpoint', isAdmin(auth));
    return { endpoint: this.links.endpoint(await this.catalog.getEndpoint(id)) };
  }

  @Patch('endpoints/:id')
  async updateEndpoint(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: EndpointUpdateBody) {
    authorize('identity:update_endpoint', isAdmin(auth));
    return { endpoint: this.links.endpoint(await this.catalog.updateEndpoint(id, body.endpoint)) };
  }

  @Delete('endpoints/:id')
  @HttpCode(204)
  async deleteEndpoint(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:delete_endpoint', isAdmin(auth));
    await this.catalog.deleteEndpoint(id);
  }
}
