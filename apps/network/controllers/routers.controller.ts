import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query } from '@nestjs/common';
import { Auth, AuthContext, isAdmin } from '@novum/auth';
import { FloatingIpEntity, RouterEntity } from '@novum/db';
import { list, pick, requestedFields } from '../listing';
import { floatingIpNotFound, routerNotFound, RouterService } from '../router.service';
import {
  FLOATING_IP_ATTRIBUTES,
  floatingIpView,
  NETWORK_BASE_URL,
  ROUTER_ATTRIBUTES,
  routerView,
} from '../serializers';
import {
  FLOATING_IP_INPUT,
  FloatingIpBody,
  onlyKnown,
  updatable,
  ROUTER_INPUT,
  RouterBody,
  RouterInterfaceBody,
} from './dto';

@Controller('v2.0/routers')
export class RoutersController {
  constructor(
    private readonly routers: RouterService,
    @Inject(NETWORK_BASE_URL) private readonly base: string,
  ) {}

  private async views(auth: AuthContext, routers: RouterEntity[]) {
    const gateways = await this.routers.gatewayAllocations(routers);
    return routers.map((r) => routerView(r, gateways.get(r.gatewayPortId ?? '') ?? [], isAdmin(auth)));
  }

  @Get()
  async list(@Auth() auth: AuthContext, @Query() query: Record<string, unknown>) {
    return list(await this.views(auth, await this.routers.listRouters(auth)), query, {
      collection: 'routers',
      url: `${this.base}/v2.0/routers`,
      attributes: ROUTER_ATTRIBUTES,
      notFound: routerNotFound,
    });
  }

  @Post()
  @HttpCode(201)
  async create(@Auth() auth: AuthContext, @Body() body: RouterBody) {
    onlyKnown(body.router, ROUTER_INPUT);
    const [view] = await this.views(auth, [await this.routers.createRouter(auth, body.router)]);
    return { router: view };
  }

  @Get(':id')
  async get(@Auth() auth: AuthContext, @Param('id') id: string, @Query() query: Record<string, unknown>) {
    const [view] = await this.views(auth, [await this.routers.getRouter(auth, id)]);
    return { router: pick(view, requestedFields(query)) };
  }

  @Put(':id')
  async update(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: RouterBody) {
    onlyKnown(body.router, updatable(ROUTER_INPUT));
    const [view] = await this.views(auth, [await this.routers.updateRouter(auth, id, body.router)]);
    return { router: view };
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Auth() auth: AuthContext, @Param('id') id: string) {
    await this.routers.deleteRouter(auth, id);
  }

  @Put(':id/add_router_interface')
  async addInterface(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: RouterInterfaceBody) {
    onlyKnown(body, ['subnet_id', 'port_id']);
    return this.routers.addInterface(auth, id, body);
  }

  @Put(':id/remove_router_interface')
  async removeInterface(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Body() body: RouterInterfaceBody,
  ) {
    onlyKnown(body, ['subnet_id', 'port_id']);
    return this.routers.removeInterface(auth, id, body);
  }
}

@Controller('v2.0/floatingips')
export class FloatingIpsController {
  constructor(
    private readonly routers: RouterService,
    @Inject(NETWORK_BASE_URL) private readonly base: string,
  ) {}

  private async views(fips: FloatingIpEntity[]) {
    const ports = await this.routers.portsOf(fips);
    return fips.map((f) => floatingIpView(f, ports.get(f.portId ?? '') ?? null));
  }

  @Get()
  async list(@Auth() auth: AuthContext, @Query() query: Record<string, unknown>) {
    return list(await this.views(await this.routers.listFloatingIps(auth)), query, {
      collection: 'floatingips',
      url: `${this.base}/v2.0/floatingips`,
      attributes: FLOATING_IP_ATTRIBUTES,
      notFound: floatingIpNotFound,
    });
  }

  @Post()
  @HttpCode(201)
  async create(@Auth() auth: AuthContext, @Body() body: FloatingIpBody) {
    onlyKnown(body.floatingip, FLOATING_IP_INPUT);
    const [view] = await this.views([await this.routers.createFloatingIp(auth, body.floatingip)]);
    return { floatingip: view };
  }

  @Get(':id')
  async get(@Auth() auth: AuthContext, @Param('id') id: string, @Query() query: Record<string, unknown>) {
    const [view] = await this.views([await this.routers.getFloatingIp(auth, id)]);
    return { floatingip: pick(view, requestedFields(query)) };
  }

  @Put(':id')
  async update(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: FloatingIpBody) {
    onlyKnown(body.floatingip, updatable(FLOATING_IP_INPUT));
    const [view] = await this.views([await this.routers.updateFloatingIp(auth, id, body.floatingip)]);
    return { floatingip: view };
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Auth() auth: AuthContext, @Param('id') id: string) {
    await this.routers.deleteFloatingIp(auth, id);
  }
}
