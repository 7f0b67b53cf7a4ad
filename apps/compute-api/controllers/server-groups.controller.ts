import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { Auth, AuthContext, hasRole, isAdmin } from '@novum/auth';
import { toNovaBoolean, toNovaInt } from './dto';
import { BadRequestError } from '@novum/common';
import { ApiVersion, Microversion } from '../microversion';
import { NovaQuery, NovaQueryParams } from '../query';
import { allow } from '../policy';
import { serverGroupView } from '../serializers';
import { ServerGroupService } from '../server-group.service';
import { CreateServerGroupBody } from './dto';

function offsetParam(name: string, raw: string | undefined, min: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = toNovaInt(raw);
  if (value === undefined || value < min || value > 2147483647) {
    throw new BadRequestError(
      `Invalid input for query parameters ${name}. Value: ${raw}. must be an integer >= ${min}`,
    );
  }
  return value;
}

@Controller('v2.1/os-server-groups')
export class ServerGroupsController {
  constructor(private readonly groups: ServerGroupService) {}

  @Get()
  async list(@Auth() auth: AuthContext, @NovaQuery() query: NovaQueryParams, @Microversion() v: ApiVersion) {
    allow('os_compute_api:os-server-groups:index', hasRole(auth, 'reader'), isAdmin(auth));
    const allProjects = query.all_projects !== undefined && toNovaBoolean(query.all_projects) !== false;
    if (allProjects) allow('os_compute_api:os-server-groups:index:all_projects', isAdmin(auth));
    const groups = await this.groups.list(
      auth,
      allProjects,
      offsetParam('limit', query.limit, 0),
      offsetParam('offset', query.offset, 0),
    );
    return { server_groups: groups.map((g) => serverGroupView(g, v)) };
  }

  @Get(':id')
  async show(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    allow('os_compute_api:os-server-groups:show', hasRole(auth, 'reader'), isAdmin(auth));
    return { server_group: serverGroupView(await this.groups.get(auth, id), v) };
  }

  @Post()
  @HttpCode(200)
  async create(
    @Auth() auth: AuthContext,
    @Body() body: CreateServerGroupBody,
    @Microversion() v: ApiVersion,
  ) {
    allow('os_compute_api:os-server-groups:create', hasRole(auth, 'member'), isAdmin(auth));
    return { server_group: serverGroupView(await this.groups.create(auth, body.server_group, v), v) };
  }

  @Delete(':id')
  @HttpCode(204)
  async remove(@Auth() auth: AuthContext, @Param('id') id: string) {
    allow('os_compute_api:os-server-groups:delete', hasRole(auth, 'member'), isAdmin(auth));
    await this.groups.delete(auth, id);
  }
}
