import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Post, Query, Res } from '@nestjs/common';
import { Auth, AuthContext, authorize, isAdmin, Public } from '@novum/auth';
import { NotFoundError } from '@novum/common';
import type { FastifyReply } from 'fastify';
import { ResourceService } from '../resource.service';
import { RoleService } from '../role.service';
import { IDENTITY_BASE_URL, keystoneTime, Links } from '../serializers';
import { UserService } from '../user.service';
import { AuthRequest } from '../token/auth-request.dto';
import { TokenService, ValidatedToken } from '../token/token.service';

@Controller('v3/auth')
export class AuthController {
  private readonly links: Links;

  constructor(
    private readonly tokens: TokenService,
    private readonly resources: ResourceService,
    private readonly users: UserService,
    private readonly roles: RoleService,
    @Inject(IDENTITY_BASE_URL) base: string,
  ) {
    this.links = new Links(base);
  }

  @Post('tokens')
  @Public()
  @HttpCode(201)
  async issue(
    @Body() body: AuthRequest,
    @Query('nocatalog') nocatalog: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const token = await this.tokens.issue(body);
    reply.header('x-subject-token', token.token);
    return this.render(token, nocatalog === undefined);
  }

  @Get('tokens')
  async check(
    @Auth() auth: AuthContext,
    @Headers('x-subject-token') subject: string | undefined,
    @Query('nocatalog') nocatalog: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const token = await this.subject(auth, subject);
    reply.header('x-subject-token', token.token);
    return this.render(token, nocatalog === undefined);
  }

  @Delete('tokens')
  @HttpCode(204)
  async revoke(@Auth() auth: AuthContext, @Headers('x-subject-token') subject: string | undefined) {
    await this.tokens.revoke(await this.subject(auth, subject));
  }

  @Get('catalog')
  async catalog(@Auth() auth: AuthContext) {
    const token = await this.tokens.validateOrFail(
      auth.token,
      () => new NotFoundError('Could not find token.'),
    );
    return { catalog: await this.tokens.catalogFor(token), links: this.links.collection('auth/catalog') };
  }

  @Get('projects')
  async projects(@Auth() auth: AuthContext) {
    const projects = (await this.users.userProjects(auth.userId)).filter((p) => p.enabled);
    return {
      projects: projects.map((p) => this.links.project(p)),
      links: this.links.collection('auth/projects'),
    };
  }

  /** Domains on which the caller holds a role. */
  @Get('domains')
  async domains(@Auth() auth: AuthContext) {
    const grants = await this.roles.list({ userId: auth.userId });
    const ids = [...new Set(grants.filter((g) => g.type === 'UserDomain').map((g) => g.targetId))];
    const domains = (await Promise.all(ids.map((id) => this.resources.getDomain(id)))).filter(
      (d) => d.enabled,
    );
    return {
      domains: domains.map((d) => this.links.domain(d)),
      links: this.links.collection('auth/domains'),
    };
  }

  /** The token named by X-Subject-Token, which a caller may inspect if it is their own or they are admin. */
  private async subject(auth: AuthContext, subject: string | undefined): Promise<ValidatedToken> {
    if (!subject) throw new NotFoundError('Could not find token: an X-Subject-Token header is required.');
    const token = await this.tokens.validateOrFail(
      subject,
      () => new NotFoundError(`Could not find token: ${subject}.`),
    );
    authorize('identity:validate_token', isAdmin(auth), token.user.id === auth.userId);
    return token;
  }

  private async render(token: ValidatedToken, withCatalog: boolean) {
    const { payload, user, userDomain, project, projectDomain, domain, roles, applicationCredential } = token;
    return {
      token: {
        methods: payload.methods,
        user: {
          domain: { id: userDomain.id, name: userDomain.name },
          id: user.id,
          name: user.name,
          password_expires_at: user.passwordExpiresAt ? keystoneTime(user.passwordExpiresAt) : null,
        },
        audit_ids: payload.auditIds,
        expires_at: keystoneTime(payload.expiresAt),
        issued_at: keystoneTime(payload.issuedAt),
        ...(project && projectDomain
          ? {
              project: {
                domain: { id: projectDomain.id, name: projectDomain.name },
                id: project.id,
                name: project.name,
              },
              is_domain: false,
            }
          : {}),
        ...(domain ? { domain: { id: domain.id, name: domain.name } } : {}),
        ...(project || domain ? { roles: roles.map((r) => ({ id: r.id, name: r.name })) } : {}),
        ...(applicationCredential
          ? {
              application_credential: {
                id: applicationCredential.id,
                name: applicationCredential.name,
                restricted: !applicationCredential.unrestricted,
              },
            }
          : {}),
        ...(withCatalog ? { catalog: await this.tokens.catalogFor(token) } : {}),
      },
    };
  }
}
