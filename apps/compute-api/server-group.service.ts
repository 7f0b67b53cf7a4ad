import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuthContext, isAdmin } from '@novum/auth';
import { BadRequestError, NotFoundError } from '@novum/common';
import { InstanceEntity, inTransaction, nowIso, ServerGroupEntity, ServerGroupMemberEntity } from '@novum/db';
import { ComputeStore } from './compute.store';
import { ServerGroupCreate, toNovaInt } from './controllers/dto';
import { ApiVersion } from './microversion';
import { QuotaService } from './quota.service';

export interface ServerGroupView extends ServerGroupEntity {
  members: string[];
}

const POLICIES = ['affinity', 'anti-affinity'];
const SOFT_POLICIES = ['soft-affinity', 'soft-anti-affinity'];

/** Server groups: a scheduling policy (affinity, anti-affinity, soft-*) and the servers that follow it. */
@Injectable()
export class ServerGroupService {
  constructor(
    private readonly store: ComputeStore,
    private readonly quotas: QuotaService,
  ) {}

  /** Reads the policy the way the microversion spells it: `policies: [p]` before 2.64, `policy` + `rules` after. */
  parsePolicy(
    input: ServerGroupCreate,
    version: ApiVersion,
  ): { policy: string; rules: Record<string, number> } {
    const allowed = version.atLeast('2.15') ? [...POLICIES, ...SOFT_POLICIES] : POLICIES;
    const invalid = (field: string, value: unknown, why: string) =>
      new BadRequestError(
        `Invalid input for field/attribute ${field}. Value: ${JSON.stringify(value)}. ${why}`,
      );
    if (!version.atLeast('2.64')) {
      if (input.policy !== undefined || input.rules !== undefined) {
        throw invalid(
          'server_group',
          input,
          "Additional properties are not allowed ('policy', 'rules' were unexpected)",
        );
      }
      const policies = input.policies;
      if (!Array.isArray(policies) || policies.length !== 1) {
        throw invalid('policies', policies, 'must be a list with exactly one policy');
      }
      if (typeof policies[0] !== 'string' || !allowed.includes(policies[0])) {
        throw invalid(
          'policies',
          policies,
          `'${String(policies[0])}' is not one of ${JSON.stringify(allowed)}`,
        );
      }
      return { policy: policies[0], rules: {} };
    }
    if (input.policies !== undefined) {
      throw invalid(
        'server_group',
        input,
        "Additional properties are not allowed ('policies' was unexpected)",
      );
    }
    if (input.policy === undefined || !allowed.includes(input.policy)) {
      throw invalid('policy', input.policy, `must be one of ${JSON.stringify(allowed)}`);
    }
    const rules: Record<string, number> = {};
    for (const [key, raw] of Object.entries(input.rules ?? {})) {
      const value = toNovaInt(raw);
      if (key !== 'max_server_per_host') {
        throw invalid(
          'rules',
          input.rules,
          `Additional properties are not allowed ('${key}' was unexpected)`,
        );
      }
      if (value === undefined || value < 1)
        throw invalid('max_server_per_host', raw, 'must be an integer >= 1');
      rules[key] = value;
    }
    if (Object.keys(rules).length && input.policy !== 'anti-affinity') {
      throw new BadRequestError('Only anti-affinity policy supports rules.');
    }
    return { policy: input.policy, rules };
  }

  async create(auth: AuthContext, input: ServerGroupCreate, version: ApiVersion): Promise<ServerGroupView> {
    const { policy, rules } = this.parsePolicy(input, version);
    const projectId = auth.projectId ?? '';
    const used = await this.store.serverGroups.countBy({ projectId });
    await this.quotas.checkOneMore(
      projectId,
      'server_groups',
      used,
      'Quota exceeded, too many server groups.',
    );
    const group = this.store.serverGroups.create({
      id: randomUUID(),
      name: input.name,
      projectId,
      userId: auth.userId,
      policy,
      rules,
      createdAt: nowIso(),
    });
    await this.store.serverGroups.insert(group);
    // Nova's quota recheck: parallel creates may all pass the first check; the count after the insert decides.
    const after = await this.store.serverGroups.countBy({ projectId });
    try {
      await this.quotas.checkOneMore(
        projectId,
        'server_groups',
        after - 1,
        'Quota exceeded, too many server groups.',
      );
    } catch (error) {
      await this.store.serverGroups.delete({ id: group.id });
      throw error;
    }
    return Object.assign(group, { members: [] });
  }

  /** A group the caller may see: its project's, or any for an admin; else 404 as Nova answers. */
  async get(auth: AuthContext, id: string): Promise<ServerGroupView> {
    const group = await this.store.serverGroups.findOneBy({ id });
    if (!group || (!isAdmin(auth) && group.projectId !== auth.projectId)) {
      throw new NotFoundError(`Instance group ${id} could not be found.`);
    }
    const members = await this.liveMembers([id]);
    return Object.assign(group, { members: members.map((m) => m.instanceUuid) });
  }

  /** Members whose server still exists: a deleted server leaves its groups, as in Nova. */
  private async liveMembers(groupIds: string[]) {
    if (!groupIds.length) return [];
    return this.store.serverGroupMembers
      .createQueryBuilder('m')
      .innerJoin(InstanceEntity, 'i', 'i.uuid = m.instance_uuid AND i.deleted_at IS NULL')
      .where('m.group_id IN (:...ids)', { ids: groupIds })
      .getMany();
  }

  async list(
    auth: AuthContext,
    allProjects: boolean,
    limit?: number,
    offset = 0,
  ): Promise<ServerGroupView[]> {
    const groups = await this.store.serverGroups.find({
      where: allProjects && isAdmin(auth) ? {} : { projectId: auth.projectId ?? '' },
      order: { createdAt: 'ASC', id: 'ASC' },
      skip: offset,
      take: limit,
    });
    const members = await this.liveMembers(groups.map((g) => g.id));
    return groups.map((g) =>
      Object.assign(g, { members: members.filter((m) => m.groupId === g.id).map((m) => m.instanceUuid) }),
    );
  }

  async delete(auth: AuthContext, id: string): Promise<void> {
    await this.get(auth, id);
    await inTransaction(this.store.dataSource, async (tx) => {
      await tx.delete(ServerGroupMemberEntity, { groupId: id });
      await tx.delete(ServerGroupEntity, { id });
    });
  }
}
