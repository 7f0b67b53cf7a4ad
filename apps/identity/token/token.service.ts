import { randomBytes, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { AuthContext, TokenValidator } from '@novum/auth';
import { BadRequestError, NOVUM_CONFIG, NotFoundError, NovumConfig, UnauthorizedError } from '@novum/common';
import {
  ApplicationCredentialEntity,
  DomainEntity,
  ProjectEntity,
  RevocationEventEntity,
  RoleEntity,
  UserEntity,
} from '@novum/db';
import { LessThan } from 'typeorm';
import { AssignmentService } from '../assignment.service';
import { CatalogService } from '../catalog.service';
import { IdentityCache } from '../identity-cache';
import { IdentityStore } from '../identity.store';
import { verifySecret } from '../password';
import {
  ApplicationCredentialMethod,
  Auth,
  AuthRequest,
  NamedRef,
  PasswordUser,
  UNSCOPED,
  UserRef,
} from './auth-request.dto';
import { decodeToken, encodeToken, TokenPayload, tokenKeyId } from './token-codec';
import { TokenKeyRing } from './token-keys';

/** A token after validation: the payload plus everything it refers to, as of now. */
export interface ValidatedToken {
  token: string;
  payload: TokenPayload;
  user: UserEntity;
  userDomain: DomainEntity;
  project?: ProjectEntity;
  projectDomain?: DomainEntity;
  domain?: DomainEntity;
  roles: RoleEntity[];
  applicationCredential?: ApplicationCredentialEntity;
}

class InvalidToken extends Error {}

const GENERIC_401 = 'The request you have made requires authentication.';
const REVOCATION_REFRESH_MS = 1000;

/** Issues, validates and revokes Keystone tokens. */
@Injectable()
export class TokenService extends TokenValidator {
  private revocations: RevocationEventEntity[] = [];
  private revocationsLoadedAt = 0;

  constructor(
    private readonly store: IdentityStore,
    private readonly keys: TokenKeyRing,
    private readonly assignments: AssignmentService,
    private readonly catalog: CatalogService,
    private readonly cache: IdentityCache,
    @Inject(NOVUM_CONFIG) private readonly config: NovumConfig,
  ) {
    super();
  }

  /** POST /v3/auth/tokens: authenticate every listed method, resolve the scope, mint a token. */
  async issue(request: AuthRequest): Promise<ValidatedToken> {
    const { identity, scope } = request.auth;
    const methods = [...new Set(identity.methods)];
    let userId: string | undefined;
    let parent: ValidatedToken | undefined;
    let applicationCredential: ApplicationCredentialEntity | undefined;
    const sameUser = (id: string) => {
      if (userId && userId !== id)
        throw new UnauthorizedError('All authentication methods must identify the same user.');
      userId = id;
    };

    for (const method of methods) {
      if (method === 'password') {
        if (!identity.password)
          throw new BadRequestError("Invalid input for field 'identity/password': required.");
        sameUser((await this.authenticatePassword(identity.password.user)).id);
      } else if (method === 'token') {
        if (!identity.token) throw new BadRequestError("Invalid input for field 'identity/token': required.");
        parent = await this.validateOrFail(
          identity.token.id,
          () => new NotFoundError(`Could not find token: ${identity.token?.id}`),
        );
        if (parent.applicationCredential)
          throw new UnauthorizedError('A token created with an application credential cannot be rescoped.');
        sameUser(parent.user.id);
      } else {
        if (!identity.application_credential) {
          throw new BadRequestError("Invalid input for field 'identity/application_credential': required.");
        }
        applicationCredential = await this.authenticateApplicationCredential(identity.application_credential);
        sameUser(applicationCredential.userId);
      }
    }
    if (!userId) throw new UnauthorizedError(GENERIC_401);

    const now = Date.now();
    const payload: TokenPayload = {
      userId,
      methods: parent ? [...new Set([...methods, ...parent.payload.methods])] : methods,
      auditIds: parent ? [auditId(), parent.payload.auditIds[0]] : [auditId()],
      issuedAt: now,
      expiresAt: parent ? parent.payload.expiresAt : now + this.config.tokenExpirationSeconds * 1000,
    };
    if (applicationCredential) {
      if (scope && scope !== UNSCOPED && (scope.project || scope.domain || scope.system)) {
        throw new UnauthorizedError('Application credentials cannot request a scope.');
      }
      payload.projectId = applicationCredential.projectId;
      payload.applicationCredentialId = applicationCredential.id;
      if (applicationCredential.expiresAt) {
        payload.expiresAt = Math.min(payload.expiresAt, Date.parse(applicationCredential.expiresAt));
      }
    } else {
      await this.resolveScope(payload, scope);
    }
    const token = encodeToken(payload, await this.keys.primaryKey());
    return this.validateOrFail(token, () => new UnauthorizedError(this.scopeFailure(payload)));
  }

  /** The TokenValidator contract every API's guard uses. */
  async validate(token: string): Promise<AuthContext> {
    return toAuthContext(await this.validateOrFail(token, () => new UnauthorizedError(GENERIC_401)));
  }

  /** Validates a token, or throws what `fail` makes (401 for X-Auth-Token, 404 for X-Subject-Token). */
  async validateOrFail(token: string, fail: () => Error): Promise<ValidatedToken> {
    try {
      return await this.resolve(token);
    } catch (error) {
      if (error instanceof InvalidToken) throw fail();
      throw error;
    }
  }

  /** DELETE /v3/auth/tokens: every token sharing this one's audit id is void from now on. */
  async revoke(token: ValidatedToken): Promise<void> {
    await this.addRevocation({ auditId: token.payload.auditIds[0] });
  }

  /** Voids every token of a user issued until now (password change, disabling). */
  async revokeUser(userId: string): Promise<void> {
    await this.addRevocation({ userId });
  }

  private async addRevocation(match: { auditId?: string; userId?: string }): Promise<void> {
    const now = Date.now();
    await this.store.revocations.insert({
      id: randomUUID(),
      auditId: match.auditId ?? null,
      userId: match.userId ?? null,
      projectId: null,
      issuedBefore: new Date(now).toISOString(),
      expiresAt: new Date(now + this.config.tokenExpirationSeconds * 1000).toISOString(),
    });
    await this.store.revocations.delete({ expiresAt: LessThan(new Date(now).toISOString()) });
    this.revocationsLoadedAt = 0;
    this.cache.invalidate();
  }

  private async resolve(token: string): Promise<ValidatedToken> {
    const keyId = tokenKeyId(token);
    const key = keyId === undefined ? undefined : await this.keys.key(keyId);
    const payload = key && decodeToken(token, key);
    if (!payload || payload.expiresAt <= Date.now()) throw new InvalidToken();
    if (await this.isRevoked(payload)) throw new InvalidToken();

    const user = await this.cache.get(`user:${payload.userId}`, () =>
      this.store.users.findOneBy({ id: payload.userId }),
    );
    const userDomain = user && (await this.domain(user.domainId));
    if (!user?.enabled || !userDomain?.enabled) throw new InvalidToken();
    const validated: ValidatedToken = { token, payload, user, userDomain, roles: [] };

    if (payload.projectId) {
      const projectId = payload.projectId;
      const project = await this.cache.get(`project:${projectId}`, () =>
        this.store.projects.findOneBy({ id: projectId }),
      );
      const projectDomain = project && (await this.domain(project.domainId));
      if (!project?.enabled || !projectDomain?.enabled) throw new InvalidToken();
      let roles = await this.assignments.projectRoles(user.id, project.id);
      if (payload.applicationCredentialId) {
        const credentialId = payload.applicationCredentialId;
        const credential = await this.cache.get(`appcred:${credentialId}`, () =>
          this.store.applicationCredentials.findOneBy({ id: credentialId }),
        );
        if (!credential || (credential.expiresAt && Date.parse(credential.expiresAt) <= Date.now()))
          throw new InvalidToken();
        const delegated = new Set(await this.assignments.expandImplied(credential.roles));
        roles = roles.filter((role) => delegated.has(role.id));
        validated.applicationCredential = credential;
      }
      Object.assign(validated, { project, projectDomain, roles });
    } else if (payload.domainId) {
      const domain = await this.domain(payload.domainId);
      if (!domain?.enabled) throw new InvalidToken();
      Object.assign(validated, { domain, roles: await this.assignments.domainRoles(user.id, domain.id) });
    }
    if ((payload.projectId || payload.domainId) && validated.roles.length === 0) throw new InvalidToken();
    return validated;
  }

  private async isRevoked(payload: TokenPayload): Promise<boolean> {
    const now = Date.now();
    if (now - this.revocationsLoadedAt > REVOCATION_REFRESH_MS) {
      this.revocations = await this.store.revocations.find();
      this.revocationsLoadedAt = now;
    }
    return this.revocations.some(
      (event) =>
        payload.issuedAt <= Date.parse(event.issuedBefore) &&
        (event.auditId === null || payload.auditIds.includes(event.auditId)) &&
        (event.userId === null || event.userId === payload.userId) &&
        (event.projectId === null || event.projectId === payload.projectId),
    );
  }

  private domain(id: string): Promise<DomainEntity | null> {
    return this.cache.get(`domain:${id}`, () => this.store.domains.findOneBy({ id }));
  }

  private async findDomain(ref: NamedRef | undefined, what: string): Promise<DomainEntity> {
    const domain = ref?.id
      ? await this.store.domains.findOneBy({ id: ref.id })
      : ref?.name
        ? await this.store.domains.findOneBy({ name: ref.name })
        : null;
    if (!ref?.id && !ref?.name)
      throw new BadRequestError(`Invalid input for field '${what}': a domain id or name is required.`);
    if (!domain) throw new UnauthorizedError(`Could not find domain: ${ref.id ?? ref.name}.`);
    return domain;
  }

  private async findUser(ref: UserRef): Promise<UserEntity | null> {
    if (ref.id) return this.store.users.findOneBy({ id: ref.id });
    if (!ref.name)
      throw new BadRequestError(
        "Invalid input for field 'user': an id, or a name and a domain, is required.",
      );
    const domain = await this.findDomain(ref.domain, 'user/domain');
    return this.store.users.findOneBy({ name: ref.name, domainId: domain.id });
  }

  private async authenticatePassword(ref: PasswordUser): Promise<UserEntity> {
    const user = await this.findUser(ref);
    const domain = user && (await this.store.domains.findOneBy({ id: user.domainId }));
    // Unknown user, disabled user and wrong password all get the same answer, as Keystone gives.
    if (
      !user ||
      !user.enabled ||
      !domain?.enabled ||
      !(await verifySecret(ref.password, user.passwordHash))
    ) {
      throw new UnauthorizedError(GENERIC_401);
    }
    return user;
  }

  private async authenticateApplicationCredential(
    ref: ApplicationCredentialMethod,
  ): Promise<ApplicationCredentialEntity> {
    let credential: ApplicationCredentialEntity | null = null;
    if (ref.id) credential = await this.store.applicationCredentials.findOneBy({ id: ref.id });
    else if (ref.name && ref.user) {
      const user = await this.findUser(ref.user);
      credential =
        user && (await this.store.applicationCredentials.findOneBy({ name: ref.name, userId: user.id }));
    } else {
      throw new BadRequestError(
        "Invalid input for field 'application_credential': an id, or a name and a user, is required.",
      );
    }
    const expired = credential?.expiresAt && Date.parse(credential.expiresAt) <= Date.now();
    if (!credential || expired || !(await verifySecret(ref.secret, credential.secretHash))) {
      throw new UnauthorizedError(GENERIC_401);
    }
    return credential;
  }

  private async resolveScope(payload: TokenPayload, scope: Auth['scope']): Promise<void> {
    // An explicitly unscoped request gets no project, not even the user's default one (as Keystone).
    if (scope === UNSCOPED) return;
    if (scope?.system) throw new UnauthorizedError('System-scoped tokens are not supported by this cloud.');
    if (scope?.project) {
      const ref = scope.project;
      let project: ProjectEntity | null;
      if (ref.id) project = await this.store.projects.findOneBy({ id: ref.id });
      else if (ref.name) {
        const domain = await this.findDomain(ref.domain, 'scope/project/domain');
        project = await this.store.projects.findOneBy({ name: ref.name, domainId: domain.id });
      } else {
        throw new BadRequestError(
          "Invalid input for field 'scope/project': an id, or a name and a domain, is required.",
        );
      }
      if (!project) throw new UnauthorizedError(`Could not find project: ${ref.id ?? ref.name}.`);
      payload.projectId = project.id;
    } else if (scope?.domain) {
      payload.domainId = (await this.findDomain(scope.domain, 'scope/domain')).id;
    } else {
      const user = await this.store.users.findOneBy({ id: payload.userId });
      if (
        user?.defaultProjectId &&
        (await this.assignments.projectRoles(user.id, user.defaultProjectId)).length
      ) {
        payload.projectId = user.defaultProjectId;
      }
    }
  }

  private scopeFailure(payload: TokenPayload): string {
    if (payload.projectId) return `User ${payload.userId} has no access to project ${payload.projectId}.`;
    if (payload.domainId) return `User ${payload.userId} has no access to domain ${payload.domainId}.`;
    return GENERIC_401;
  }

  /** The catalog a token carries: empty for an unscoped token, as in Keystone. */
  async catalogFor(validated: ValidatedToken) {
    if (!validated.project && !validated.domain) return [];
    return projectCatalog(await this.catalog.catalog(), validated.project?.id);
  }
}

/**
 * Keystone's endpoint URL substitution: `$(project_id)s` (and the older `$(tenant_id)s`) become the token's
 * project; an endpoint that needs a project is left out of a token without one (Heat's `/v1/$(project_id)s`).
 */
export function projectCatalog<T extends { endpoints: { url: string }[] }>(
  catalog: T[],
  projectId?: string,
): T[] {
  const substitute = (url: string) =>
    projectId ? url.replace(/\$\((project_id|tenant_id)\)s/g, projectId) : url;
  return catalog.map((service) => ({
    ...service,
    endpoints: service.endpoints
      .map((endpoint) => ({ ...endpoint, url: substitute(endpoint.url) }))
      .filter((endpoint) => !endpoint.url.includes('$(')),
  }));
}

function auditId(): string {
  return randomBytes(16).toString('base64url').slice(0, 22);
}

export function toAuthContext(v: ValidatedToken): AuthContext {
  return {
    token: v.token,
    userId: v.user.id,
    userName: v.user.name,
    userDomainId: v.user.domainId,
    projectId: v.project?.id,
    projectName: v.project?.name,
    projectDomainId: v.project?.domainId,
    domainId: v.domain?.id,
    roles: v.roles.map((role) => role.name),
    methods: v.payload.methods,
    auditIds: v.payload.auditIds,
    expiresAt: new Date(v.payload.expiresAt).toISOString(),
    issuedAt: new Date(v.payload.issuedAt).toISOString(),
    applicationCredentialId: v.applicationCredential?.id,
    restricted: v.applicationCredential ? !v.applicationCredential.unrestricted : undefined,
  };
}
