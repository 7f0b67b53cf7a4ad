import { Body, Controller, Delete, Get, HttpCode, Param, Put } from '@nestjs/common';
import { Auth, AuthContext, canReadProject, isAdmin } from '@novum/auth';
import { ApiVersion, Microversion } from '../microversion';
import { NovaQuery, NovaQueryParams } from '../query';
import { adminOnly, allow } from '../policy';
import { QuotaService, quotaClassResources, quotaSetResources } from '../quota.service';
import { QuotaClassSetBody, QuotaSetBody } from './dto';

function pick(limits: Record<string, number>, resources: string[]): Record<string, number> {
  return Object.fromEntries(resources.map((r) => [r, limits[r]]));
}

@Controller('v2.1/os-quota-sets')
export class QuotaSetsController {
  constructor(private readonly quotas: QuotaService) {}

  @Get(':project/defaults')
  async defaults(@Param('project') project: string, @Microversion() v: ApiVersion) {
    const limits = await this.quotas.classLimits('default');
    return { quota_set: { id: project, ...pick(limits, quotaSetResources(v)) } };
  }

  @Get(':project/detail')
  async detail(@Auth() auth: AuthContext, @Param('project') project: string, @Microversion() v: ApiVersion) {
    allow('os_compute_api:os-quota-sets:detail', canReadProject(auth, project));
    const limits = await this.quotas.limits(project);
    const used = await this.quotas.usage(project, auth.projectId === project ? auth.userId : undefined);
    const detail = Object.fromEntries(
      quotaSetResources(v).map((r) => [r, { limit: limits[r], in_use: used[r] ?? 0, reserved: 0 }]),
    );
    return { quota_set: { id: project, ...detail } };
  }

  @Get(':project')
  async show(@Auth() auth: AuthContext, @Param('project') project: string, @Microversion() v: ApiVersion) {
    allow('os_compute_api:os-quota-sets:show', canReadProject(auth, project));
    const limits = await this.quotas.limits(project);
    return { quota_set: { id: project, ...pick(limits, quotaSetResources(v)) } };
  }

  @Put(':project')
  async update(
    @Auth() auth: AuthContext,
    @Param('project') project: string,
    @Body() body: QuotaSetBody,
    @Microversion() v: ApiVersion,
  ) {
    adminOnly(auth, 'os_compute_api:os-quota-sets:update');
    const resources = quotaSetResources(v);
    const { limits, force } = this.quotas.parseUpdate(body.quota_set, resources, true);
    await this.quotas.update(project, limits, force);
    return { quota_set: pick(await this.quotas.limits(project), resources) };
  }

  @Delete(':project')
  @HttpCode(202)
  async reset(@Auth() auth: AuthContext, @Param('project') project: string) {
    adminOnly(auth, 'os_compute_api:os-quota-sets:delete');
    await this.quotas.reset(project);
  }
}

@Controller('v2.1/os-quota-class-sets')
export class QuotaClassSetsController {
  constructor(private readonly quotas: QuotaService) {}

  @Get(':id')
  async show(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    adminOnly(auth, 'os_compute_api:os-quota-class-sets:show');
    const limits = await this.quotas.classLimits(id);
    return { quota_class_set: { id, ...pick(limits, quotaClassResources(v)) } };
  }

  @Put(':id')
  async update(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Body() body: QuotaClassSetBody,
    @Microversion() v: ApiVersion,
  ) {
    adminOnly(auth, 'os_compute_api:os-quota-class-sets:update');
    const resources = quotaClassResources(v);
    const { limits } = this.quotas.parseUpdate(body.quota_class_set, resources, false);
    await this.quotas.updateClass(id, limits);
    return { quota_class_set: pick(await this.quotas.classLimits(id), resources) };
  }
}

/** `GET /limits`: absolute limits of the caller's project (or an admin's `tenant_id`) and what it uses. */
@Controller('v2.1/limits')
export class LimitsController {
  constructor(private readonly quotas: QuotaService) {}

  @Get()
  async show(@Auth() auth: AuthContext, @NovaQuery() query: NovaQueryParams, @Microversion() v: ApiVersion) {
    const project = query.tenant_id !== undefined && isAdmin(auth) ? query.tenant_id : (auth.projectId ?? '');
    const limits = await this.quotas.limits(project);
    const used = await this.quotas.usage(project, auth.userId);
    const absolute: Record<string, number> = {
      maxTotalInstances: limits.instances,
      maxTotalCores: limits.cores,
      maxTotalRAMSize: limits.ram,
      maxServerMeta: limits.metadata_items,
      maxTotalKeypairs: limits.key_pairs,
      maxServerGroups: limits.server_groups,
      maxServerGroupMembers: limits.server_group_members,
      totalInstancesUsed: used.instances,
      totalCoresUsed: used.cores,
      totalRAMUsed: used.ram,
      totalServerGroupsUsed: used.server_groups,
    };
    if (!v.atLeast('2.36')) {
      Object.assign(absolute, {
        maxTotalFloatingIps: limits.floating_ips,
        maxSecurityGroups: limits.security_groups,
        maxSecurityGroupRules: limits.security_group_rules,
        totalFloatingIpsUsed: 0,
        totalSecurityGroupsUsed: 0,
      });
    }
    if (!v.atLeast('2.39')) absolute.maxImageMeta = limits.metadata_items;
    if (!v.atLeast('2.57')) {
      absolute.maxPersonality = limits.injected_files;
      absolute.maxPersonalitySize = limits.injected_file_content_bytes;
    }
    return { limits: { rate: [], absolute } };
  }
}
