import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query, UseFilters } from '@nestjs/common';
import { Auth, AuthContext, isAdmin } from '@novum/auth';
import { ForbiddenError } from '@novum/common';
import { OrchestrationErrorFilter } from '../hot-error.filter';
import {
  SoftwareConfigService,
  softwareConfigView,
  softwareDeploymentView,
} from '../software-config.service';

type QueryMap = Record<string, string | string[]>;
type Body = Record<string, unknown>;

function checkTenant(auth: AuthContext, tenant: string): void {
  if (tenant !== auth.projectId && !isAdmin(auth)) {
    throw new ForbiddenError('You are not authorized to complete this action.', 'Forbidden');
  }
}

function first(query: QueryMap, key: string): string | undefined {
  const value = query[key];
  return Array.isArray(value) ? value[0] : value;
}

function bodyOf(body: unknown): Body {
  return body && typeof body === 'object' && !Array.isArray(body) ? (body as Body) : {};
}

/** Heat API v1 software configs: `/heat-api/v1/{tenant_id}/software_configs` (create answers 200, as Heat). */
@Controller('v1/:tenant/software_configs')
@UseFilters(OrchestrationErrorFilter)
export class SoftwareConfigsController {
  constructor(private readonly service: SoftwareConfigService) {}

  @Get()
  async list(@Auth() auth: AuthContext, @Param('tenant') tenant: string, @Query() query: QueryMap) {
    checkTenant(auth, tenant);
    const rows = await this.service.listConfigs(auth, first(query, 'limit'), first(query, 'marker'));
    return { software_configs: rows.map((row) => softwareConfigView(row, false, isAdmin(auth))) };
  }

  @Post()
  @HttpCode(200)
  async create(@Auth() auth: AuthContext, @Param('tenant') tenant: string, @Body() body: unknown) {
    checkTenant(auth, tenant);
    return { software_config: softwareConfigView(await this.service.createConfig(auth, bodyOf(body))) };
  }

  @Get(':id')
  async show(@Auth() auth: AuthContext, @Param('tenant') tenant: string, @Param('id') id: string) {
    checkTenant(auth, tenant);
    return { software_config: softwareConfigView(await this.service.config(auth, id)) };
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Auth() auth: AuthContext, @Param('tenant') tenant: string, @Param('id') id: string) {
    checkTenant(auth, tenant);
    await this.service.deleteConfig(auth, id);
  }
}

/** Heat API v1 software deployments: `/heat-api/v1/{tenant_id}/software_deployments`. */
@Controller('v1/:tenant/software_deployments')
@UseFilters(OrchestrationErrorFilter)
export class SoftwareDeploymentsController {
  constructor(private readonly service: SoftwareConfigService) {}

  @Get()
  async list(@Auth() auth: AuthContext, @Param('tenant') tenant: string, @Query() query: QueryMap) {
    checkTenant(auth, tenant);
    const rows = await this.service.listDeployments(auth, first(query, 'server_id'));
    return { software_deployments: rows.map(softwareDeploymentView) };
  }

  @Post()
  @HttpCode(200)
  async create(@Auth() auth: AuthContext, @Param('tenant') tenant: string, @Body() body: unknown) {
    checkTenant(auth, tenant);
    return {
      software_deployment: softwareDeploymentView(await this.service.createDeployment(auth, bodyOf(body))),
    };
  }

  @Get('metadata/:server')
  async metadata(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('server') server: string,
  ) {
    checkTenant(auth, tenant);
    return { metadata: await this.service.serverMetadata(auth, server) };
  }

  @Get(':id')
  async show(@Auth() auth: AuthContext, @Param('tenant') tenant: string, @Param('id') id: string) {
    checkTenant(auth, tenant);
    return { software_deployment: softwareDeploymentView(await this.service.deployment(auth, id)) };
  }

  @Put(':id')
  async update(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('id') id: string,
    @Body() body: unknown,
  ) {
    checkTenant(auth, tenant);
    return {
      software_deployment: softwareDeploymentView(
        await this.service.updateDeployment(auth, id, bodyOf(body)),
      ),
    };
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Auth() auth: AuthContext, @Param('tenant') tenant: string, @Param('id') id: string) {
    checkTenant(auth, tenant);
    await this.service.deleteDeployment(auth, id);
  }
}
