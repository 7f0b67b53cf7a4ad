import { Injectable } from '@nestjs/common';
import { RoleEntity } from '@novum/db';
import { In } from 'typeorm';
import { IdentityCache } from './identity-cache';
import { IdentityStore } from './identity.store';

/** Which roles a user holds on a project or domain, implied roles included (admin ⇒ member ⇒ reader). */
@Injectable()
export class AssignmentService {
  constructor(
    private readonly store: IdentityStore,
    private readonly cache: IdentityCache,
  ) {}

  async projectRoles(userId: string, projectId: string): Promise<RoleEntity[]> {
    return this.cache.get(`roles:${userId}:${projectId}`, () =>
      this.effectiveRoles('UserProject', userId, projectId),
    );
  }

  async domainRoles(userId: string, domainId: string): Promise<RoleEntity[]> {
    return this.cache.get(`roles:${userId}:${domainId}`, () =>
      this.effectiveRoles('UserDomain', userId, domainId),
    );
  }

  /** Role ids reachable from the given ones through implication rules, the given ones first. */
  async expandImplied(roleIds: string[]): Promise<string[]> {
    const rules = await this.cache.get('implied-roles', () => this.store.impliedRoles.find());
    const found = new Set(roleIds);
    const queue = [...roleIds];
    while (queue.length) {
      const prior = queue.shift();
      for (const rule of rules) {
        if (rule.priorRoleId === prior && !found.has(rule.impliedRoleId)) {
          found.add(rule.impliedRoleId);
          queue.push(rule.impliedRoleId);
        }
      }
    }
    return [...found];
  }

  async rolesByIds(ids: string[]): Promise<RoleEntity[]> {
    if (!ids.length) return [];
    const roles = await this.store.roles.findBy({ id: In(ids) });
    return ids.map((id) => roles.find((role) => role.id === id)).filter((role): role is RoleEntity => !!role);
  }

  private async effectiveRoles(type: 'UserProject' | 'UserDomain', userId: string, targetId: string) {
    const direct = await this.store.assignments.findBy({ type, actorId: userId, targetId });
    return this.rolesByIds(await this.expandImplied(direct.map((a) => a.roleId)));
  }
}
