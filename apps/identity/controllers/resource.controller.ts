import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query } from '@nestjs/common';
import { Auth, AuthContext, authorize, isAdmin } from '@novum/auth';
import { ResourceService } from '../resource.service';
import { IDENTITY_BASE_URL, Links } from '../serializers';
import {
  DomainCreateBody,
  DomainUpdateBody,
  extraAttributes,
  PROJECT_FIELDS,
  ProjectCreateBody,
  ProjectUpdateBody,
  queryBool,
  queryString,
} from './dto';

@Controller('v3/domains')
export class DomainsController {
  private readonly links: Links;

  constructor(
    private readonly resources: ResourceService,
    @Inject(IDENTITY_BASE_URL) base: string,
  ) {
    this.links = new Links(base);
  }

  @Get()
  async list(@Auth() auth: AuthContext, @Query() query: Record<string, unknown>) {
    authorize('identity:list_domains', isAdmin(auth));
    const domains = await this.resources.listDomains({
      name: queryString(query.name, 'name'),
      enabled: queryBool(query.enabled, 'enabled'),
    });
    return { domains: domains.map((d) => this.links.domain(d)), links: this.links.collection('domains') };
  }

  @Post()
  @HttpCode(201)
  async create(@Auth() auth: AuthContext, @Body() body: DomainCreateBody) {
    authorize('identity:create_domain', isAdmin(auth));
    return { domain: this.links.domain(await this.resources.createDomain(body.domain)) };
  }

  @Get(':id')
  async get(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:get_domain', isAdmin(auth), auth.domainId === id, auth.projectDomainId === id);
    return { domain: this.links.domain(await this.resources.getDomain(id)) };
  }

  @Patch(':id')
  async update(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: DomainUpdateBody) {
    authorize('identity:update_domain', isAdmin(auth));
    return { domain: this.links.domain(await this.resources.updateDomain(id, body.domain)) };
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:delete_domain', isAdmin(auth));
    await this.resources.deleteDomain(id);
  }
}

@Controller('v3/projects')
export class ProjectsController {
  private readonly links: Links;

  constructor(
    private readonly resources: ResourceService,
    @Inject(IDENTITY_BASE_URL) base: string,
  ) {
    this.links = new Links(base);
  }

  @Get()
  async list(@Auth() auth: AuthContext, @Query() query: Record<string, unknown>) {
    authorize('identity:list_projects', isAdmin(auth));
    const projects = await this.resources.listProjects({
      name: queryString(query.name, 'name'),
      domain_id: queryString(query.domain_id, 'domain_id'),
      parent_id: queryString(query.parent_id, 'parent_id'),
      enabled: queryBool(query.enabled, 'enabled'),
    });
    return { projects: projects.map((p) => this.links.project(p)), links: this.links.collection('projects') };
  }

  @Post()
  @HttpCode(201)
  async create(@Auth() auth: AuthContext, @Body() body: ProjectCreateBody) {
    authorize('identity:create_project', isAdmin(auth));
    const extra = extraAttributes(body.project, PROJECT_FIELDS);
    return { project: this.links.project(await this.resources.createProject({ ...body.project, extra })) };
  }

  @Get(':id')
  async get(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:get_project', isAdmin(auth), auth.projectId === id);
    return { project: this.links.project(await this.resources.getProject(id)) };
  }

  @Patch(':id')
  async update(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: ProjectUpdateBody) {
    authorize('identity:update_project', isAdmin(auth));
    const extra = extraAttributes(body.project, PROJECT_FIELDS);
    return {
      project: this.links.project(await this.resources.updateProject(id, { ...body.project, extra })),
    };
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:delete_project', isAdmin(auth));
    await this.resources.deleteProject(id);
  }
}
