import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query } from '@nestjs/common';
import { Auth, AuthContext, authorize, isAdmin } from '@novum/auth';
import { BadRequestError, ForbiddenError } from '@novum/common';
import { IDENTITY_BASE_URL, Links } from '../serializers';
import { UserService } from '../user.service';
import {
  ApplicationCredentialCreateBody,
  extraAttributes,
  PasswordChangeBody,
  queryBool,
  queryString,
  USER_FIELDS,
  UserCreateBody,
  UserUpdateBody,
} from './dto';

@Controller('v3/users')
export class UsersController {
  private readonly links: Links;

  constructor(
    private readonly users: UserService,
    @Inject(IDENTITY_BASE_URL) base: string,
  ) {
    this.links = new Links(base);
  }

  @Get()
  async list(@Auth() auth: AuthContext, @Query() query: Record<string, unknown>) {
    authorize('identity:list_users', isAdmin(auth));
    const users = await this.users.listUsers({
      name: queryString(query.name, 'name'),
      domain_id: queryString(query.domain_id, 'domain_id'),
      enabled: queryBool(query.enabled, 'enabled'),
    });
    return { users: users.map((u) => this.links.user(u)), links: this.links.collection('users') };
  }

  @Post()
  @HttpCode(201)
  async create(@Auth() auth: AuthContext, @Body() body: UserCreateBody) {
    authorize('identity:create_user', isAdmin(auth));
    const extra = extraAttributes(body.user, USER_FIELDS);
    return { user: this.links.user(await this.users.createUser({ ...body.user, extra })) };
  }

  @Get(':id')
  async get(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:get_user', isAdmin(auth), auth.userId === id);
    return { user: this.links.user(await this.users.getUser(id)) };
  }

  @Patch(':id')
  async update(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: UserUpdateBody) {
    authorize('identity:update_user', isAdmin(auth));
    const extra = extraAttributes(body.user, USER_FIELDS);
    return { user: this.links.user(await this.users.updateUser(id, { ...body.user, extra })) };
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:delete_user', isAdmin(auth));
    await this.users.deleteUser(id);
  }

  @Post(':id/password')
  @HttpCode(204)
  async changePassword(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: PasswordChangeBody) {
    authorize('identity:change_password', auth.userId === id);
    await this.users.changePassword(id, body.user.original_password, body.user.password);
  }

  @Get(':id/projects')
  async projects(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:list_user_projects', isAdmin(auth), auth.userId === id);
    const projects = await this.users.userProjects(id);
    return {
      projects: projects.map((p) => this.links.project(p)),
      links: this.links.collection(`users/${id}/projects`),
    };
  }

  /** The user's groups: none, as Novum has no groups yet (see GroupsController). */
  @Get(':id/groups')
  async groups(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:list_groups_for_user', isAdmin(auth), auth.userId === id);
    await this.users.getUser(id);
    return { groups: [], links: this.links.collection(`users/${id}/groups`) };
  }

  @Get(':id/application_credentials')
  async listCredentials(@Auth() auth: AuthContext, @Param('id') id: string, @Query('name') name: unknown) {
    authorize('identity:list_application_credentials', isAdmin(auth), auth.userId === id);
    const credentials = await this.users.listApplicationCredentials(id, queryString(name, 'name'));
    return {
      application_credentials: await Promise.all(
        credentials.map(async (c) => this.links.applicationCredential(c, await this.users.rolesOf(c))),
      ),
      links: this.links.collection(`users/${id}/application_credentials`),
    };
  }

  @Post(':id/application_credentials')
  @HttpCode(201)
  async createCredential(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Body() body: ApplicationCredentialCreateBody,
  ) {
    authorize('identity:create_application_credential', auth.userId === id);
    if (!auth.projectId)
      throw new BadRequestError('An application credential is created with a project-scoped token.');
    if (auth.applicationCredentialId && auth.restricted) {
      throw new ForbiddenError(
        'A restricted application credential cannot create another application credential.',
      );
    }
    const { credential, secret } = await this.users.createApplicationCredential(
      id,
      auth.projectId,
      body.application_credential,
    );
    return {
      application_credential: this.links.applicationCredential(
        credential,
        await this.users.rolesOf(credential),
        secret,
      ),
    };
  }

  @Get(':id/application_credentials/:credential')
  async getCredential(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Param('credential') credentialId: string,
  ) {
    authorize('identity:get_application_credential', isAdmin(auth), auth.userId === id);
    const credential = await this.users.getApplicationCredential(id, credentialId);
    return {
      application_credential: this.links.applicationCredential(
        credential,
        await this.users.rolesOf(credential),
      ),
    };
  }

  @Delete(':id/application_credentials/:credential')
  @HttpCode(204)
  async deleteCredential(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Param('credential') credentialId: string,
  ) {
    authorize('identity:delete_application_credential', isAdmin(auth), auth.userId === id);
    await this.users.deleteApplicationCredential(id, credentialId);
  }
}
