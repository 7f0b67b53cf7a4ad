import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import {
  BadRequestError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  UnauthorizedError,
} from '@novum/common';
import { ApplicationCredentialEntity, nowIso, ProjectEntity, RoleEntity, UserEntity } from '@novum/db';
import { In } from 'typeorm';
import { AssignmentService } from './assignment.service';
import { definedOnly } from './catalog.service';
import { IdentityCache } from './identity-cache';
import { IdentityStore, isUniqueViolation } from './identity.store';
import { IdentityNotifier } from './notifier';
import { hashSecret, verifySecret } from './password';
import { DEFAULT_DOMAIN_ID, newId, ResourceService } from './resource.service';
import { TokenService } from './token/token.service';

export interface UserInput {
  name?: string;
  domain_id?: string;
  password?: string | null;
  enabled?: boolean;
  description?: string;
  default_project_id?: string | null;
  extra?: Record<string, unknown>;
}

/** Users, their passwords and their application credentials. */
@Injectable()
export class UserService {
  constructor(
    private readonly store: IdentityStore,
    private readonly cache: IdentityCache,
    private readonly resources: ResourceService,
    private readonly assignments: AssignmentService,
    private readonly tokens: TokenService,
    private readonly notifier: IdentityNotifier,
  ) {}

  listUsers(filter: { name?: string; domain_id?: string; enabled?: boolean }): Promise<UserEntity[]> {
    return this.store.users.find({
      where: definedOnly({ name: filter.name, domainId: filter.domain_id, enabled: filter.enabled }),
      order: { name: 'ASC' },
    });
  }

  async getUser(id: string): Promise<UserEntity> {
    const user = await this.store.users.findOneBy({ id });
    if (!user) throw new NotFoundError(`Could not find user: ${id}.`);
    return user;
  }

  async createUser(input: UserInput & { name: string }): Promise<UserEntity> {
    const domainId = input.domain_id ?? DEFAULT_DOMAIN_ID;
    await this.resources.getDomain(domainId).catch(() => {
      throw new BadRequestError(`Could not find domain: ${domainId}.`);
    });
    if (input.default_project_id) await this.resources.getProject(input.default_project_id);
    const user: UserEntity = {
      id: newId(),
      name: input.name,
      domainId,
      defaultProjectId: input.default_project_id ?? null,
      description: input.description ?? '',
      enabled: input.enabled ?? true,
      passwordHash: input.password ? await hashSecret(input.password) : null,
      passwordExpiresAt: null,
      extra: input.extra ?? {},
      createdAt: nowIso(),
    };
    try {
      await this.store.users.insert(user);
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new ConflictError(
          `Conflict occurred attempting to store user - Duplicate entry found with name ${input.name} at domain ID ${domainId}.`,
        );
      }
      throw error;
    }
    this.notifier.emit('user', 'created', user.id);
    return user;
  }

  async updateUser(id: string, input: UserInput): Promise<UserEntity> {
    const user = await this.getUser(id);
    if (input.domain_id && input.domain_id !== user.domainId)
      throw new BadRequestError('A user cannot move to another domain.');
    if (input.default_project_id) await this.resources.getProject(input.default_project_id);
    Object.assign(
      user,
      definedOnly({
        name: input.name,
        enabled: input.enabled,
        description: input.description,
        defaultProjectId: input.default_project_id,
      }),
    );
    if (input.extra) user.extra = { ...user.extra, ...input.extra };
    if (input.password !== undefined)
      user.passwordHash = input.password ? await hashSecret(input.password) : null;
    try {
      await this.store.users.save(user);
    } catch (error) {
      if (isUniqueViolation(error))
        throw new ConflictError(
          `Conflict occurred attempting to store user - Duplicate entry found with name ${input.name}.`,
        );
      throw error;
    }
    if (input.password !== undefined || input.enabled === false) await this.tokens.revokeUser(id);
    this.cache.invalidate();
    this.notifier.emit('user', 'updated', user.id);
    return user;
  }

  async changePassword(id: string, original: string, password: string): Promise<void> {
    const user = await this.getUser(id);
    if (!(await verifySecret(original, user.passwordHash)))
      throw new UnauthorizedError('The original password is not correct.');
    user.passwordHash = await hashSecret(password);
    await this.store.users.save(user);
    await this.tokens.revokeUser(id);
  }

  async deleteUser(id: string): Promise<void> {
    await this.getUser(id);
    await this.store.assignments.delete({ actorId: id });
    await this.store.applicationCredentials.delete({ userId: id });
    await this.store.users.delete({ id });
    await this.tokens.revokeUser(id);
    this.notifier.emit('user', 'deleted', id);
  }

  /** Projects on which the user holds any role. */
  async userProjects(id: string): Promise<ProjectEntity[]> {
    await this.getUser(id);
    const assignments = await this.store.assignments.findBy({ type: 'UserProject', actorId: id });
    if (!assignments.length) return [];
    return this.resources.listProjects({ ids: [...new Set(assignments.map((a) => a.targetId))] });
  }

  listApplicationCredentials(userId: string, name?: string): Promise<ApplicationCredentialEntity[]> {
    return this.store.applicationCredentials.findBy({ userId, ...(name && { name }) });
  }

  async getApplicationCredential(userId: string, id: string): Promise<ApplicationCredentialEntity> {
    const credential = await this.store.applicationCredentials.findOneBy({ id, userId });
    if (!credential) throw new NotFoundError(`Could not find Application Credential: ${id}.`);
    return credential;
  }

  /**
   * A credential delegates some of the creator's roles on the project the creating token is scoped to
   * (all of them when none are named); the secret is shown only in this answer.
   */
  async createApplicationCredential(
    userId: string,
    projectId: string,
    input: {
      name: string;
      secret?: string;
      description?: string;
      expires_at?: string | null;
      roles?: { id?: string; name?: string }[];
      unrestricted?: boolean;
    },
  ): Promise<{ credential: ApplicationCredentialEntity; secret: string }> {
    const held = await this.assignments.projectRoles(userId, projectId);
    let delegated: RoleEntity[] = held;
    if (input.roles?.length) {
      delegated = input.roles.map((ref) => {
        const role = held.find((r) => (ref.id ? r.id === ref.id : r.name === ref.name));
        if (!role)
          throw new ForbiddenError(
            `Cannot delegate role ${ref.id ?? ref.name}: the user does not hold it on the project.`,
          );
        return role;
      });
    }
    if (input.expires_at && !(Date.parse(input.expires_at) > Date.now())) {
      throw new BadRequestError("Invalid input for field 'expires_at': must be a date-time in the future.");
    }
    const secret = input.secret ?? randomBytes(48).toString('base64url');
    const credential: ApplicationCredentialEntity = {
      id: newId(),
      name: input.name,
      userId,
      projectId,
      secretHash: await hashSecret(secret),
      description: input.description ?? '',
      expiresAt: input.expires_at ? new Date(input.expires_at).toISOString() : null,
      unrestricted: input.unrestricted ?? false,
      roles: delegated.map((r) => r.id),
    };
    try {
      await this.store.applicationCredentials.insert(credential);
    } catch (error) {
      if (isUniqueViolation(error))
        throw new ConflictError(
          `Conflict occurred attempting to store application_credential - Duplicate entry.`,
        );
      throw error;
    }
    return { credential, secret };
  }

  async deleteApplicationCredential(userId: string, id: string): Promise<void> {
    await this.getApplicationCredential(userId, id);
    await this.store.applicationCredentials.delete({ id });
    this.cache.invalidate();
  }

  async rolesOf(credential: ApplicationCredentialEntity): Promise<RoleEntity[]> {
    return credential.roles.length ? this.store.roles.findBy({ id: In(credential.roles) }) : [];
  }
}
