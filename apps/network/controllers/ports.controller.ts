import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query } from '@nestjs/common';
import { Auth, AuthContext, isAdmin } from '@novum/auth';
import { PortEntity } from '@novum/db';
import { list, pick, requestedFields, values } from '../listing';
import { portNotFound, PortService } from '../port.service';
import { NETWORK_BASE_URL, PORT_ATTRIBUTES, portView } from '../serializers';
import { onlyKnown, updatable, PORT_INPUT, PortBody } from './dto';

@Controller('v2.0/ports')
export class PortsController {
  constructor(
    private readonly ports: PortService,
    @Inject(NETWORK_BASE_URL) private readonly base: string,
  ) {}

  private async views(auth: AuthContext, ports: PortEntity[]) {
    const allocations = await this.ports.allocationsOf(ports.map((p) => p.id));
    return ports.map((p) => portView(p, allocations.get(p.id) ?? [], isAdmin(auth)));
  }

  @Get()
  async list(@Auth() auth: AuthContext, @Query() query: Record<string, unknown>) {
    // The filters on plain string attributes narrow the query itself; list() then applies every filter
    // (those again, to the same effect) to the views.
    const narrowing = (key: string) => (query[key] === undefined ? undefined : values(query[key]));
    const ports = await this.ports.listPorts(auth, {
      ids: narrowing('id'),
      networkIds: narrowing('network_id'),
      deviceIds: narrowing('device_id'),
      deviceOwners: narrowing('device_owner'),
      securityGroups: narrowing('security_groups'),
    });
    return list(await this.views(auth, ports), query, {
      collection: 'ports',
      url: `${this.base}/v2.0/ports`,
      attributes: PORT_ATTRIBUTES,
      notFound: portNotFound,
    });
  }

  @Post()
  @HttpCode(201)
  async create(@Auth() auth: AuthContext, @Body() body: PortBody) {
    onlyKnown(body.port, PORT_INPUT);
    const [view] = await this.views(auth, [await this.ports.createPort(auth, body.port)]);
    return { port: view };
  }

  @Get(':id')
  async get(@Auth() auth: AuthContext, @Param('id') id: string, @Query() query: Record<string, unknown>) {
    const [view] = await this.views(auth, [await this.ports.getPort(auth, id)]);
    return { port: pick(view, requestedFields(query)) };
  }

  @Put(':id')
  async update(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: PortBody) {
    onlyKnown(body.port, updatable(PORT_INPUT));
    const [view] = await this.views(auth, [await this.ports.updatePort(auth, id, body.port)]);
    return { port: view };
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Auth() auth: AuthContext, @Param('id') id: string) {
    await this.ports.deletePort(auth, id);
  }
}
