import { Controller, Delete, Get, HttpCode, Inject, Param, Put } from '@nestjs/common';
import { Auth, AuthContext, authorize, isAdmin } from '@novum/auth';
import { NotFoundError } from '@novum/common';
import { AssignmentType } from '@novum/db';
import { RoleService } from '../role.service';
import { IDENTITY_BASE_URL, Links } from '../serializers';

const TARGETS: Record<string, AssignmentType> = { projects: 'UserProject', domains: 'UserDomain' };

function assignmentType(kind: string): AssignmentType {
  const type = TARGETS[kind];
  if (!type) throw new NotFoundError(`The resource could not be found.`);
  return type;
}

/** `/v3/{projects|domains}/{id}/users/{user}/roles[/{role}]`: list, grant, check and revoke role assignments. */
@Controller('v3/:kind/:id/users/:user/roles')
export class GrantsController {
  private readonly links: Links;

  constructor(
    private readonly roles: RoleService,
    @Inject(IDENTITY_BASE_URL) base: string,
  ) {
    this.links = new Links(base);
  }

  @Get()
  async list(
    @Auth() auth: AuthContext,
    @Param('kind') kind: string,
    @Param('id') id: string,
    @Param('user') user: string,
  ) {
    const type = assignmentType(kind);
    authorize('identity:list_grants', isAdmin(auth));
    const roles = await this.roles.grantedRoles(type, user, id);
    return {
      roles: roles.map((r) => this.links.role(r)),
      links: this.links.collection(`${kind}/${id}/users/${user}/roles`),
    };
  }

  @Put(':role')
  @HttpCode(204)
  async grant(@Auth() auth: AuthContext, @Param() p: Record<'kind' | 'id' | 'user' | 'role', string>) {
    const type = assignmentType(p.kind);
    authorize('identity:create_grant', isAdmin(auth));
    await this.roles.grant(type, p.user, p.id, p.role);
  }

  @Get(':role')
  @HttpCode(204)
  async check(@Auth() auth: AuthContext, @Param() p: Record<'kind' | 'id' | 'user' | 'role', string>) {
    const type = assignmentType(p.kind);
    authorize('identity:check_grant', isAdmin(auth));
    await this.roles.checkGrant(type, p.user, p.id, p.role);
  }

  @Delete(':role')
  @HttpCode(204)
  async revoke(@Auth() auth: AuthContext, @Param() p: Record<'kind' | 'id' | 'user' | 'role', string>) {
    const type = assignmentType(p.kind);
    authorize('identity:revoke_grant', isAdmin(auth));
    await this.roles.revoke(type, p.user, p.id, p.role);
  }
}
