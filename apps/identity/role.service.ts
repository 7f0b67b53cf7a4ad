import { Injectable } from '@nestjs/common';
import { ConflictError, NotFoundError } from '@novum/common';
import { AssignmentType, RoleAssignmentEntity, RoleEntity } from '@novum/db';
import { AssignmentService } from './assignment.service';
import { definedOnly } from './catalog.service';
import { IdentityCache } from './identity-cache';
import { IdentityStore, isUniqueViolation } from './identity.store';
import { IdentityNotifier } from './notifier';
import { newId, ResourceService } from './resource.service';

export interface AssignmentFilter {
  userId?: string;
  projectId?: string;
  domainId?: string;
  roleId?: string;
  effective?: boolean;
}

/** Roles, role implications and role assignments (grants). */
@Injectable()
export class RoleService {
  constructor(
    private readonly store: IdentityStore,
    private readonly cache: IdentityCache,
    private readonly resources: ResourceService,
    private readonly assignments: AssignmentService,
    private readonly notifier: IdentityNotifier,
  ) {}

  listRoles(filter: { name?: string; domain_id?: string }): Promise<RoleEntity[]> {
    return this.store.roles.find({
      where: { ...definedOnly({ name: filter.name }), domainId: filter.domain_id ?? '' },
      order: { name: 'ASC' },
    });
  }

  async getRole(id: string): Promise<RoleEntity> {
    const role = await this.store.roles.findOneBy({ id });
    if (!role) throw new NotFoundError(`Could not find role: ${id}.`);
    return role;
  }

  async createRole(input: {
    id?: string;
    name: string;
    domain_id?: string | null;
    description?: string;
  }): Promise<RoleEntity> {
    if (input.domain_id) await this.resources.getDomain(input.domain_id);
    const role: RoleEntity = {
      id: input.id ?? newId(),
      name: input.name,
      domainId: input.domain_id ?? '',
      description: input.description ?? '',
      extra: {},
    };
    try {
      await this.store.roles.insert(role);
    } catch (error) {
      if (isUniqueViolation(error))
        throw new ConflictError(
          `Conflict occurred attempting to store role - Duplicate entry found with name ${input.name}.`,
        );
      throw error;
    }
    return role;
  }

  async updateRole(id: string, input: { name?: string; description?: string }): Promise<RoleEntity> {
    const role = await this.getRole(id);
    Object.assign(role, definedOnly(input));
    try {
      await this.store.roles.save(role);
    } catch (error) {
      if (isUniqueViolation(error))
        throw new ConflictError(
          `Conflict occurred attempting to store role - Duplicate entry found with name ${input.name}.`,
        );
      throw error;
    }
    this.cache.invalidate();
    return role;
  }

  async deleteRole(id: string): Promise<void> {
    await this.getRole(id);
    await this.store.assignments.delete({ roleId: id });
    await this.store.impliedRoles.delete({ priorRoleId: id });
    await this.store.impliedRoles.delete({ impliedRoleId: id });
    await this.store.roles.delete({ id });
    this.cache.invalidate();
  }

  async addImplied(priorId: string, impliedId: string): Promise<void> {
    await this.getRole(priorId);
    await this.getRole(impliedId);
    if ((await this.assignments.expandImplied([impliedId])).includes(priorId)) {
      throw new ConflictError(`Role ${impliedId} already implies ${priorId}: the rule would make a cycle.`);
    }
    if (!(await this.store.impliedRoles.existsBy({ priorRoleId: priorId, impliedRoleId: impliedId }))) {
      await this.store.impliedRoles.insert({ priorRoleId: priorId, impliedRoleId: impliedId });
    }
    this.cache.invalidate();
  }

  async impliedOf(priorId: string): Promise<RoleEntity[]> {
    const rules = await this.store.impliedRoles.findBy({ priorRoleId: priorId });
    return this.assignments.rolesByIds(rules.map((r) => r.impliedRoleId));
  }

  async allInferences(): Promise<{ prior: RoleEntity; implies: RoleEntity[] }[]> {
    const rules = await this.store.impliedRoles.find();
    const priors = [...new Set(rules.map((r) => r.priorRoleId))];
    return Promise.all(
      priors.map(async (id) => ({ prior: await this.getRole(id), implies: await this.impliedOf(id) })),
    );
  }

  async removeImplied(priorId: string, impliedId: string): Promise<void> {
    const result = await this.store.impliedRoles.delete({ priorRoleId: priorId, impliedRoleId: impliedId });
    if (!result.affected)
      throw new NotFoundError(`Could not find implied role: ${priorId} implies ${impliedId}.`);
    this.cache.invalidate();
  }

  async grant(type: AssignmentType, userId: string, targetId: string, roleId: string): Promise<void> {
    await this.checkGrantParts(type, userId, targetId, roleId);
    if (!(await this.hasGrant(type, userId, targetId, roleId))) {
      try {
        await this.store.assignments.insert({ type, actorId: userId, targetId, roleId });
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
      }
      this.notifier.emit('role_assignment', 'created', assignmentInfo(type, userId, targetId, roleId));
    }
    this.cache.invalidate();
  }

  async checkGrant(type: AssignmentType, userId: string, targetId: string, roleId: string): Promise<void> {
    await this.checkGrantParts(type, userId, targetId, roleId);
    if (!(await this.hasGrant(type, userId, targetId, roleId))) {
      throw new NotFoundError(
        `Could not find role assignment with role: ${roleId}, user or group: ${userId}, project, domain, or system: ${targetId}.`,
      );
    }
  }

  async revoke(type: AssignmentType, userId: string, targetId: string, roleId: string): Promise<void> {
    await this.checkGrant(type, userId, targetId, roleId);
    await this.store.assignments.delete({ type, actorId: userId, targetId, roleId });
    this.cache.invalidate();
    this.notifier.emit('role_assignment', 'deleted', assignmentInfo(type, userId, targetId, roleId));
  }

  async grantedRoles(type: AssignmentType, userId: string, targetId: string): Promise<RoleEntity[]> {
    await this.checkGrantParts(type, userId, targetId);
    const grants = await this.store.assignments.findBy({ type, actorId: userId, targetId });
    return this.assignments.rolesByIds(grants.map((g) => g.roleId));
  }

  /** GET /v3/role_assignments; `effective` adds the roles implied by each direct grant. */
  async list(filter: AssignmentFilter): Promise<RoleAssignmentEntity[]> {
    const type = filter.projectId ? 'UserProject' : filter.domainId ? 'UserDomain' : undefined;
    const direct = await this.store.assignments.findBy(
      definedOnly({ type, actorId: filter.userId, targetId: filter.projectId ?? filter.domainId }),
    );
    let rows = direct;
    if (filter.effective) {
      const expanded: RoleAssignmentEntity[] = [];
      for (const grant of direct) {
        for (const roleId of await this.assignments.expandImplied([grant.roleId])) {
          if (
            !expanded.some(
              (e) =>
                e.type === grant.type &&
                e.actorId === grant.actorId &&
                e.targetId === grant.targetId &&
                e.roleId === roleId,
            )
          ) {
            expanded.push({ ...grant, roleId });
          }
        }
      }
      rows = expanded;
    }
    return filter.roleId ? rows.filter((row) => row.roleId === filter.roleId) : rows;
  }

  private hasGrant(type: AssignmentType, userId: string, targetId: string, roleId: string): Promise<boolean> {
    return this.store.assignments.existsBy({ type, actorId: userId, targetId, roleId });
  }

  private async checkGrantParts(
    type: AssignmentType,
    userId: string,
    targetId: string,
    roleId?: string,
  ): Promise<void> {
    if (type === 'UserProject') await this.resources.getProject(targetId);
    else await this.resources.getDomain(targetId);
    if (!(await this.store.users.existsBy({ id: userId })))
      throw new NotFoundError(`Could not find user: ${userId}.`);
    if (roleId) await this.getRole(roleId);
  }
}

function assignmentInfo(
  type: AssignmentType,
  user: string,
  target: string,
  role: string,
): Record<string, string> {
  return type === 'UserProject' ? { user, project: target, role } : { user, domain: target, role };
}
