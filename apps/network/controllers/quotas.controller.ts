import { Body, Controller, Delete, Get, HttpCode, Param, Put } from '@nestjs/common';
import { Auth, AuthContext, authorize, canReadProject, isAdmin } from '@novum/auth';
import { QuotaService } from '../quota.service';
import { DEFAULT_QUOTAS } from '../quota.service';
import { QuotaBody } from './dto';

@Controller('v2.0/quotas')
export class QuotasController {
  constructor(private readonly quotas: QuotaService) {}

  @Get()
  async list(@Auth() auth: AuthContext) {
    authorize('get_quota', isAdmin(auth));
    const projects = await this.quotas.projectsWithOverrides();
    const quotas = [];
    for (const projectId of projects) {
      quotas.push({ ...(await this.quotas.limits(projectId)), project_id: projectId, tenant_id: projectId });
    }
    return { quotas };
  }

  @Get(':project/default')
  defaults(@Auth() auth: AuthContext, @Param('project') project: string) {
    authorize('get_quota', canReadProject(auth, project));
    return { quota: DEFAULT_QUOTAS };
  }

  @Get(':project/details')
  async details(@Auth() auth: AuthContext, @Param('project') project: string) {
    authorize('get_quota', canReadProject(auth, project));
    const limits = await this.quotas.limits(project);
    const used = await this.quotas.usage(project);
    return {
      quota: Object.fromEntries(
        Object.entries(limits).map(([resource, limit]) => [
          resource,
          { limit, used: used[resource] ?? 0, reserved: 0 },
        ]),
      ),
    };
  }

  @Get(':project')
  async get(@Auth() auth: AuthContext, @Param('project') project: string) {
    authorize('get_quota', canReadProject(auth, project));
    return { quota: await this.quotas.limits(project) };
  }

  @Put(':project')
  async update(@Auth() auth: AuthContext, @Param('project') project: string, @Body() body: QuotaBody) {
    authorize('update_quota', isAdmin(auth));
    return { quota: await this.quotas.update(project, body.quota) };
  }

  @Delete(':project')
  @HttpCode(204)
  async reset(@Auth() auth: AuthContext, @Param('project') project: string) {
    authorize('delete_quota', isAdmin(auth));
    await this.quotas.reset(project);
  }
}
