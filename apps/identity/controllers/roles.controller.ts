import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Patch,
  Post,
  Put,
  Query,
} from '@nestjs/common';
import { Auth, AuthContext, authorize, isAdmin } from '@novum/auth';
import { NotFoundError } from '@novum/common';
import { RoleAssignmentEntity } from '@novum/db';
import { ResourceService } from '../resource.service';
import { RoleService } from '../role.service';
import { IDENTITY_BASE_URL, Links } from '../serializers';
import { UserService } from '../user.service';
import { queryBool, queryString, RoleCreateBody, RoleUpdateBody } from './dto';

@Controller('v3')
export class RolesController {
  private readonly links: Links;

  constructor(
    private readonly roles: RoleService,
    private readonly resources: ResourceService,
    private readonly users: UserService,
    @Inject(IDENTITY_BASE_URL) base: string,
  ) {
    this.links = new Links(base);
  }

  @Get('roles')
  async list(@Auth() auth: AuthContext, @Query() query: Record<string, unknown>) {
    authorize('identity:list_roles', isAdmin(auth));
    const roles = await this.roles.listRoles({
      name: queryString(query.name, 'name'),
      domain_id: queryString(query.domain_id, 'domain_id'),
    });
    return { roles: roles.map((r) => this.links.role(r)), links: this.links.collection('roles') };
  }

  @Post('roles')
  @HttpCode(201)
  async create(@Auth() auth: AuthContext, @Body() body: RoleCreateBody) {
    authorize('identity:create_role', isAdmin(auth));
    return { role: this.links.role(await this.roles.createRole(body.role)) };
  }

  @Get('roles/:id')
  async get(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:get_role', isAdmin(auth));
    return { role: this.links.role(await this.roles.getRole(id)) };
  }

  @Patch('roles/:id')
  async update(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: RoleUpdateBody) {
    authorize('identity:update_role', isAdmin(auth));
    return { role: this.links.role(await this.roles.updateRole(id, body.role)) };
  }

  @Delete('roles/:id')
  @HttpCode(204)
  async delete(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:delete_role', isAdmin(auth));
    await this.roles.deleteRole(id);
  }

  @Get('roles/:id/implies')
  async implies(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:list_implied_roles', isAdmin(auth));
    const prior = await this.roles.getRole(id);
    return {
      role_inference: this.inference(prior, await this.roles.impliedOf(id)),
      links: this.links.self(`roles/${id}/implies`),
    };
  }

  @Put('roles/:id/implies/:implied')
  @HttpCode(201)
  async addImplied(@Auth() auth: AuthContext, @Param('id') id: string, @Param('implied') implied: string) {
    authorize('identity:create_implied_role', isAdmin(auth));
    await this.roles.addImplied(id, implied);
    return {
      role_inference: {
        prior_role: this.ref(await this.roles.getRole(id)),
        implies: this.ref(await this.roles.getRole(implied)),
      },
    };
  }

  @Get('roles/:id/implies/:implied')
  async getImplied(@Auth() auth: AuthContext, @Param('id') id: string, @Param('implied') implied: string) {
    authorize('identity:get_implied_role', isAdmin(auth));
    const found = (await this.roles.impliedOf(id)).find((r) => r.id === implied);
    if (!found) throw new NotFoundError(`Could not find implied role: ${id} implies ${implied}.`);
    return {
      role_inference: { prior_role: this.ref(await this.roles.getRole(id)), implies: this.ref(found) },
    };
  }

  @Delete('roles/:id/implies/:implied')
  @HttpCode(204)
  async removeImplied(@Auth() auth: AuthContext, @Param('id') id: string, @Param('implied') implied: string) {
    authorize('identity:delete_implied_role', isAdmin(auth));
    await this.roles.removeImplied(id, implied);
  }

  @Get('role_inferences')
  async inferences(@Auth() auth: AuthContext) {
    authorize('identity:list_role_inference_rules', isAdmin(auth));
    const all = await this.roles.allInferences();
    return {
      role_inferences: all.map(({ prior, implies }) => this.inference(prior, implies)),
      links: this.links.self('role_inferences'),
    };
  }

  /** GET /v3/role_assignments with Keystone's filters; a non-admin may list their own. */
  @Get('role_assignments')
  async assignmentList(@Auth() auth: AuthContext, @Query() query: Record<string, unknown>) {
    const userId = queryString(query['user.id'], 'user.id');
    authorize('identity:list_role_assignments', isAdmin(auth), userId === auth.userId);
    const rows = await this.roles.list({
      userId,
      projectId: queryString(query['scope.project.id'], 'scope.project.id'),
      domainId: queryString(query['scope.domain.id'], 'scope.domain.id'),
      roleId: queryString(query['role.id'], 'role.id'),
      effective: queryBool(query.effective, 'effective'),
    });
    const withNames = queryBool(query.include_names, 'include_names') ?? false;
    return {
      role_assignments: await Promise.all(rows.map((row) => this.assignment(row, withNames))),
      links: this.links.collection('role_assignments'),
    };
  }

  private ref(role: { id: string; name: string }) {
    return { id: role.id, name: role.name, links: this.links.self(`roles/${role.id}`) };
  }

  private inference(prior: { id: string; name: string }, implies: { id: string; name: string }[]) {
    return { prior_role: this.ref(prior), implies: implies.map((r) => this.ref(r)) };
  }

  private async assignment(row: RoleAssignmentEntity, withNames: boolean) {
    const kind = row.type === 'UserProject' ? 'project' : 'domain';
    const role: Record<string, unknown> = { id: row.roleId };
    const user: Record<string, unknown> = { id: row.actorId };
    const target: Record<string, unknown> = { id: row.targetId };
    if (withNames) {
      const [r, u] = await Promise.all([this.roles.getRole(row.roleId), this.users.getUser(row.actorId)]);
      role.name = r.name;
      user.name = u.name;
      user.domain = { id: u.domainId, name: (await this.resources.getDomain(u.domainId)).name };
      if (kind === 'project') {
        const p = await this.resources.getProject(row.targetId);
        target.name = p.name;
        target.domain = { id: p.domainId, name: (await this.resources.getDomain(p.domainId)).name };
      } else {
        target.name = (await this.resources.getDomain(row.targetId)).name;
      }
    }
    return {
      role,
      user,
      scope: { [kind]: target },
      links: {
        assignment: this.links.url(`${kind}s/${row.targetId}/users/${row.actorId}/roles/${row.roleId}`),
      },
    };
  }
}
