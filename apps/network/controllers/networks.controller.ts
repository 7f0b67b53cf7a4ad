import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query } from '@nestjs/common';
import { Auth, AuthContext, isAdmin } from '@novum/auth';
import { NetworkEntity } from '@novum/db';
import { list, pick, requestedFields } from '../listing';
import { NetworkService, networkNotFound, subnetNotFound } from '../network.service';
import {
  NETWORK_ATTRIBUTES,
  NETWORK_BASE_URL,
  networkView,
  SUBNET_ATTRIBUTES,
  subnetView,
} from '../serializers';
import { NETWORK_INPUT, NetworkBody, onlyKnown, updatable, SUBNET_INPUT, SubnetBody } from './dto';

@Controller('v2.0/networks')
export class NetworksController {
  constructor(
    private readonly networks: NetworkService,
    @Inject(NETWORK_BASE_URL) private readonly base: string,
  ) {}

  private async views(auth: AuthContext, networks: NetworkEntity[]) {
    const subnets = await this.networks.subnetIdsByNetwork(networks.map((n) => n.id));
    return networks.map((n) => networkView(n, subnets.get(n.id) ?? [], isAdmin(auth)));
  }

  @Get()
  async list(@Auth() auth: AuthContext, @Query() query: Record<string, unknown>) {
    return list(await this.views(auth, await this.networks.listNetworks(auth)), query, {
      collection: 'networks',
      url: `${this.base}/v2.0/networks`,
      attributes: NETWORK_ATTRIBUTES,
      notFound: networkNotFound,
    });
  }

  @Post()
  @HttpCode(201)
  async create(@Auth() auth: AuthContext, @Body() body: NetworkBody) {
    onlyKnown(body.network, NETWORK_INPUT);
    const [view] = await this.views(auth, [await this.networks.createNetwork(auth, body.network)]);
    return { network: view };
  }

  @Get(':id')
  async get(@Auth() auth: AuthContext, @Param('id') id: string, @Query() query: Record<string, unknown>) {
    const [view] = await this.views(auth, [await this.networks.getNetwork(auth, id)]);
    return { network: pick(view, requestedFields(query)) };
  }

  @Put(':id')
  async update(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: NetworkBody) {
    onlyKnown(body.network, updatable(NETWORK_INPUT));
    const [view] = await this.views(auth, [await this.networks.updateNetwork(auth, id, body.network)]);
    return { network: view };
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Auth() auth: AuthContext, @Param('id') id: string) {
    await this.networks.deleteNetwork(auth, id);
  }
}

@Controller('v2.0/subnets')
export class SubnetsController {
  constructor(
    private readonly networks: NetworkService,
    @Inject(NETWORK_BASE_URL) private readonly base: string,
  ) {}

  @Get()
  async list(@Auth() auth: AuthContext, @Query() query: Record<string, unknown>) {
    return list((await this.networks.listSubnets(auth)).map(subnetView), query, {
      collection: 'subnets',
      url: `${this.base}/v2.0/subnets`,
      attributes: SUBNET_ATTRIBUTES,
      notFound: subnetNotFound,
    });
  }

  @Post()
  @HttpCode(201)
  async create(@Auth() auth: AuthContext, @Body() body: SubnetBody) {
    onlyKnown(body.subnet, SUBNET_INPUT);
    return { subnet: subnetView(await this.networks.createSubnet(auth, body.subnet)) };
  }

  @Get(':id')
  async get(@Auth() auth: AuthContext, @Param('id') id: string, @Query() query: Record<string, unknown>) {
    return { subnet: pick(subnetView(await this.networks.getSubnet(auth, id)), requestedFields(query)) };
  }

  @Put(':id')
  async update(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: SubnetBody) {
    onlyKnown(body.subnet, updatable(SUBNET_INPUT));
    return { subnet: subnetView(await this.networks.updateSubnet(auth, id, body.subnet)) };
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Auth() auth: AuthContext, @Param('id') id: string) {
    await this.networks.deleteSubnet(auth, id);
  }
}
