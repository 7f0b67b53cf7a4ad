import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuthContext, authorize } from '@novum/auth';
import { BadRequestError, ConflictError, NotFoundError } from '@novum/common';
import { DefaultSecurityGroupEntity, nowIso, SecurityGroupEntity, SecurityGroupRuleEntity } from '@novum/db';
import { In } from 'typeorm';
import { canRead, canWrite, isAdmin, owningProject } from './access';
import { SecurityGroupInput, SecurityGroupRuleInput } from './controllers/dto';
import { formatIp, IP_PROTOCOL_NUMBERS, normalizeCidr, parseCidr, parseIp } from '@novum/common';
import { uniqueTags } from './tag-set';
import { NetworkStore, NetworkTables } from './network.store';
import { NetworkNotifier } from './port-events';
import { QuotaService } from './quota.service';

export function securityGroupNotFound(id: string): NotFoundError {
  return new NotFoundError(`Security group ${id} does not exist`, 'SecurityGroupNotFound');
}
export function ruleNotFound(id: string): NotFoundError {
  return new NotFoundError(`Security group rule ${id} does not exist`, 'SecurityGroupRuleNotFound');
}

/** Protocol names Neutron accepts, with their IP protocol numbers. */
const PROTOCOLS: Readonly<Record<string, number>> = IP_PROTOCOL_NUMBERS;
const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'dccp', 'sctp', 'udplite', '6', '17', '33', '132', '136']);
const ICMP_PROTOCOLS = new Set(['icmp', 'icmpv6', 'ipv6-icmp', '1', '58']);

type RuleSpec = Omit<SecurityGroupRuleEntity, 'id' | 'createdAt' | 'updatedAt' | 'revisionNumber'>;

/** Security groups and their rules; each project gets its `default` group on first use. */
@Injectable()
export class SecurityGroupService {
  constructor(
    private readonly store: NetworkStore,
    private readonly quotas: QuotaService,
    private readonly notifier: NetworkNotifier,
  ) {}

  /**
   * The project's `default` group, created on first use with Neutron's default rules: all egress, and
   * ingress from members of the same group. The `default_security_group` primary key settles races.
   */
  async ensureDefault(projectId: string | undefined): Promise<string | undefined> {
    if (!projectId) return undefined;
    const existing = await this.store.defaultSecurityGroups.findOneBy({ projectId });
    if (existing) return existing.securityGroupId;
    const groupId = randomUUID();
    return this.store.transaction(async (t) => {
      await t.insertIfAbsent(DefaultSecurityGroupEntity, { projectId, securityGroupId: groupId });
      const winner = await t.defaultSecurityGroups.findOneBy({ projectId });
      if (winner?.securityGroupId !== groupId) return winner?.securityGroupId;
      await this.insertGroup(
        t,
        {
          id: groupId,
          projectId,
          name: 'default',
          description: 'Default security group',
          stateful: true,
          tags: [],
        },
        true,
      );
      return groupId;
    });
  }

  private async insertGroup(
    t: NetworkTables,
    group: Pick<SecurityGroupEntity, 'id' | 'projectId' | 'name' | 'description' | 'stateful' | 'tags'>,
    isDefault: boolean,
  ): Promise<void> {
    const now = nowIso();
    await t.securityGroups.insert({ ...group, revisionNumber: 1, createdAt: now, updatedAt: now });
    const rules: RuleSpec[] = [];
    for (const ethertype of ['IPv4', 'IPv6']) {
      const base = {
        projectId: group.projectId,
        securityGroupId: group.id,
        ethertype,
        protocol: null,
        portRangeMin: null,
        portRangeMax: null,
        remoteIpPrefix: null,
        description: '',
      };
      rules.push({ ...base, direction: 'egress', remoteGroupId: null });
      if (isDefault) rules.push({ ...base, direction: 'ingress', remoteGroupId: group.id });
    }
    await t.securityGroupRules.insert(
      rules.map((rule) => ({ ...rule, id: randomUUID(), revisionNumber: 0, createdAt: now, updatedAt: now })),
    );
  }

  async listGroups(auth: AuthContext): Promise<SecurityGroupEntity[]> {
    await this.ensureDefault(auth.projectId);
    if (isAdmin(auth)) return this.store.securityGroups.find();
    return this.store.securityGroups.findBy({ projectId: auth.projectId ?? '' });
  }

  async rulesOf(groupIds: string[]): Promise<Map<string, SecurityGroupRuleEntity[]>> {
    const rules = groupIds.length
      ? await this.store.securityGroupRules.find({
          where: { securityGroupId: In(groupIds) },
          order: { createdAt: 'ASC', id: 'ASC' },
        })
      : [];
    const byGroup = new Map<string, SecurityGroupRuleEntity[]>(groupIds.map((id) => [id, []]));
    for (const rule of rules) byGroup.get(rule.securityGroupId)?.push(rule);
    return byGroup;
  }

  async getGroup(auth: AuthContext, id: string): Promise<SecurityGroupEntity> {
    const group = await this.store.securityGroups.findOneBy({ id });
    if (!group || !canRead(auth, group.projectId)) throw securityGroupNotFound(id);
    return group;
  }

  async createGroup(auth: AuthContext, input: SecurityGroupInput): Promise<SecurityGroupEntity> {
    const projectId = owningProject(auth, 'create_security_group', input);
    if (input.name === 'default') {
      throw new ConflictError('Default security group already exists.', 'SecurityGroupDefaultAlreadyExists');
    }
    await this.ensureDefault(projectId);
    await this.quotas.check(projectId, 'security_group', () =>
      this.store.securityGroups.countBy({ projectId }),
    );
    const group = {
      id: randomUUID(),
      projectId,
      name: input.name ?? '',
      description: input.description ?? '',
      stateful: input.stateful ?? true,
      tags: uniqueTags(input.tags),
    };
    await this.store.transaction((t) => this.insertGroup(t, group, false));
    return (await this.store.securityGroups.findOneBy({ id: group.id }))!;
  }

  async updateGroup(auth: AuthContext, id: string, input: SecurityGroupInput): Promise<SecurityGroupEntity> {
    const group = await this.getGroup(auth, id);
    authorize('update_security_group', canWrite(auth, group.projectId));
    if (input.project_id !== undefined || input.tenant_id !== undefined) {
      throw new BadRequestError('Cannot update read-only attribute project_id');
    }
    const isDefault = await this.isDefault(group);
    if (isDefault && input.name !== undefined && input.name !== 'default') {
      throw new ConflictError(
        'Updating default security group not allowed.',
        'SecurityGroupCannotUpdateDefault',
      );
    }
    if (!isDefault && input.name === 'default') {
      throw new ConflictError('Default security group already exists.', 'SecurityGroupDefaultAlreadyExists');
    }
    Object.assign(group, {
      name: input.name ?? group.name,
      description: input.description ?? group.description,
      stateful: input.stateful ?? group.stateful,
      revisionNumber: group.revisionNumber + 1,
      updatedAt: nowIso(),
    });
    await this.store.securityGroups.save(group);
    return group;
  }

  async deleteGroup(auth: AuthContext, id: string): Promise<void> {
    const group = await this.getGroup(auth, id);
    authorize('delete_security_group', canWrite(auth, group.projectId));
    if ((await this.isDefault(group)) && !isAdmin(auth)) {
      throw new ConflictError(
        'Insufficient rights for removing default security group.',
        'SecurityGroupCannotRemoveDefault',
      );
    }
    await this.store.transaction(async (t) => {
      const inUse = await t.ports
        .createQueryBuilder('port')
        .where('port.security_groups LIKE :id', { id: `%"${id}"%` })
        .getCount();
      if (inUse > 0) throw new ConflictError(`Security Group ${id} in use.`, 'SecurityGroupInUse');
      await t.securityGroupRules.delete({ securityGroupId: id });
      await t.securityGroupRules.delete({ remoteGroupId: id });
      await t.defaultSecurityGroups.delete({ securityGroupId: id });
      await t.securityGroups.delete({ id });
    });
    this.notifier.emit('security_group.delete.end', { security_group_id: id });
  }

  private async isDefault(group: SecurityGroupEntity): Promise<boolean> {
    return (await this.store.defaultSecurityGroups.countBy({ securityGroupId: group.id })) > 0;
  }

  async listRules(auth: AuthContext): Promise<SecurityGroupRuleEntity[]> {
    await this.ensureDefault(auth.projectId);
    if (isAdmin(auth)) return this.store.securityGroupRules.find();
    const own = (await this.store.securityGroups.findBy({ projectId: auth.projectId ?? '' })).map(
      (g) => g.id,
    );
    return this.store.securityGroupRules.find({
      where: [{ projectId: auth.projectId ?? '' }, ...(own.length ? [{ securityGroupId: In(own) }] : [])],
    });
  }

  async getRule(auth: AuthContext, id: string): Promise<SecurityGroupRuleEntity> {
    const rule = await this.store.securityGroupRules.findOneBy({ id });
    if (!rule) throw ruleNotFound(id);
    if (canRead(auth, rule.projectId)) return rule;
    const group = await this.store.securityGroups.findOneBy({ id: rule.securityGroupId });
    if (!group || !canRead(auth, group.projectId)) throw ruleNotFound(id);
    return rule;
  }

  async createRule(auth: AuthContext, input: SecurityGroupRuleInput): Promise<SecurityGroupRuleEntity> {
    if (!input.security_group_id) {
      throw new BadRequestError(
        "Invalid input for operation: 'security_group_id' is required.",
        'InvalidInput',
      );
    }
    const group = await this.getGroup(auth, input.security_group_id);
    const projectId = owningProject(auth, 'create_security_group_rule', {
      project_id: input.project_id ?? input.tenant_id ?? group.projectId,
    });
    const spec = this.validateRule(input, group.id, projectId);
    if (spec.remoteGroupId) await this.getGroup(auth, spec.remoteGroupId);
    await this.quotas.check(projectId, 'security_group_rule', () =>
      this.store.securityGroupRules.countBy({ projectId }),
    );
    const created = await this.store.transaction(async (t) => {
      const duplicate = (await t.securityGroupRules.findBy({ securityGroupId: group.id })).find(
        (rule) =>
          rule.direction === spec.direction &&
          rule.ethertype === spec.ethertype &&
          rule.protocol === spec.protocol &&
          rule.portRangeMin === spec.portRangeMin &&
          rule.portRangeMax === spec.portRangeMax &&
          normalizeCidr(rule.remoteIpPrefix) === normalizeCidr(spec.remoteIpPrefix) &&
          rule.remoteGroupId === spec.remoteGroupId,
      );
      if (duplicate) {
        throw new ConflictError(
          `Security group rule already exists. Rule id is ${duplicate.id}.`,
          'SecurityGroupRuleExists',
        );
      }
      const now = nowIso();
      const rule: SecurityGroupRuleEntity = {
        ...spec,
        id: randomUUID(),
        revisionNumber: 0,
        createdAt: now,
        updatedAt: now,
      };
      await t.securityGroupRules.insert(rule);
      await t.securityGroups.update(
        { id: group.id },
        { revisionNumber: group.revisionNumber + 1, updatedAt: now },
      );
      return rule;
    });
    this.notifier.emit('security_group_rule.create.end', {
      security_group_rule: { id: created.id, security_group_id: created.securityGroupId },
    });
    return created;
  }

  async deleteRule(auth: AuthContext, id: string): Promise<void> {
    const rule = await this.getRule(auth, id);
    authorize('delete_security_group_rule', canWrite(auth, rule.projectId));
    await this.store.securityGroupRules.delete({ id });
    this.notifier.emit('security_group_rule.delete.end', { security_group_rule_id: id });
  }

  /** Neutron's rule validation, in its order and with its error types. */
  validateRule(input: SecurityGroupRuleInput, groupId: string, projectId: string): RuleSpec {
    const bad = (message: string, type = 'InvalidInput') => new BadRequestError(message, type);
    if (input.direction !== 'ingress' && input.direction !== 'egress') {
      throw bad(
        `Invalid input for direction. Reason: '${String(input.direction)}' is not in ['ingress', 'egress'].`,
      );
    }
    const ethertype = input.ethertype ?? 'IPv4';
    if (ethertype !== 'IPv4' && ethertype !== 'IPv6') {
      throw bad(`Invalid input for ethertype. Reason: '${ethertype}' is not in ['IPv4', 'IPv6'].`);
    }
    let protocol: string | null = input.protocol ?? null;
    if (protocol !== null) {
      protocol = protocol.toLowerCase();
      if (protocol === 'any') protocol = null;
      else if (/^\d+$/.test(protocol)) {
        if (Number(protocol) > 255)
          throw bad(
            `Security group rule protocol ${protocol} not supported.`,
            'SecurityGroupRuleInvalidProtocol',
          );
        protocol = String(Number(protocol));
      } else if (!Object.hasOwn(PROTOCOLS, protocol)) {
        throw bad(
          `Security group rule protocol ${protocol} not supported. Only protocol values [${Object.keys(PROTOCOLS).join(', ')}] and integer representations [0 to 255] are supported.`,
          'SecurityGroupRuleInvalidProtocol',
        );
      }
    }
    if (protocol !== null && ['icmpv6', 'ipv6-icmp', '58'].includes(protocol) && ethertype === 'IPv4') {
      throw bad(
        `Security group rule for ethertype '${ethertype}' not supported. Allowed values are ['IPv6'].`,
        'SecurityGroupRuleInvalidEtherType',
      );
    }
    const min = input.port_range_min ?? null;
    const max = input.port_range_max ?? null;
    if ((min !== null || max !== null) && protocol === null) {
      throw bad(
        'Must also specify protocol if port range is given.',
        'SecurityGroupProtocolRequiredWithPorts',
      );
    }
    if (protocol !== null && PORT_PROTOCOLS.has(protocol)) {
      if (min !== null && max === null)
        throw bad(
          'For TCP/UDP protocols, port_range_max must be given with port_range_min.',
          'SecurityGroupInvalidPortRange',
        );
      for (const port of [min, max]) {
        if (port !== null && (port < 1 || port > 65535)) {
          throw bad(`Invalid value for port ${port}.`, 'SecurityGroupInvalidPortValue');
        }
      }
      if (min !== null && max !== null && min > max) {
        throw bad(
          'For TCP/UDP protocols, port_range_min must be <= port_range_max',
          'SecurityGroupInvalidPortRange',
        );
      }
    } else if (protocol !== null && ICMP_PROTOCOLS.has(protocol)) {
      for (const [field, value] of [
        ['type', min],
        ['code', max],
      ] as const) {
        if (value !== null && (value < 0 || value > 255)) {
          throw bad(
            `Invalid value for ICMP ${field} (port-range-${field === 'type' ? 'min' : 'max'}): ${value}.`,
            'SecurityGroupInvalidIcmpValue',
          );
        }
      }
      if (min === null && max !== null) {
        throw bad(
          `ICMP code (port-range-max) ${max} is provided but ICMP type (port-range-min) is missing.`,
          'SecurityGroupMissingIcmpType',
        );
      }
    } else if (min !== null || max !== null) {
      throw bad(
        `Invalid protocol ${protocol} for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP.`,
        'SecurityGroupInvalidProtocolForPortRange',
      );
    }
    let remoteIpPrefix: string | null = null;
    if (input.remote_ip_prefix != null) {
      const cidr = parseCidr(
        input.remote_ip_prefix.includes('/')
          ? input.remote_ip_prefix
          : `${input.remote_ip_prefix}/${input.remote_ip_prefix.includes(':') ? 128 : 32}`,
        false,
      );
      if (!cidr)
        throw bad(
          `Invalid input for remote_ip_prefix. Reason: '${input.remote_ip_prefix}' is not a valid IP subnet.`,
        );
      if ((cidr.version === 4 ? 'IPv4' : 'IPv6') !== ethertype) {
        throw bad(
          `Conflicting value ethertype ${ethertype} for CIDR ${input.remote_ip_prefix}`,
          'SecurityGroupRuleParameterConflict',
        );
      }
      // Neutron keeps the prefix as given (host bits too) and shows the network as `normalized_cidr`.
      const address = parseIp(input.remote_ip_prefix.split('/')[0])!;
      remoteIpPrefix = `${formatIp(address)}/${cidr.prefix}`;
    }
    const remoteGroupId = input.remote_group_id ?? null;
    if (remoteIpPrefix && remoteGroupId) {
      throw bad(
        'Only remote_ip_prefix or remote_group_id may be provided.',
        'SecurityGroupRemoteGroupAndRemoteIpPrefix',
      );
    }
    return {
      projectId,
      securityGroupId: groupId,
      direction: input.direction,
      ethertype,
      protocol,
      portRangeMin: min,
      portRangeMax: max,
      remoteIpPrefix,
      remoteGroupId,
      description: input.description ?? '',
    };
  }
}
