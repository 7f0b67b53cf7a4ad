import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put } from '@nestjs/common';
import { Auth, AuthContext, hasRole, isAdmin } from '@novum/auth';
import { ApiError, BadRequestError, ForbiddenError, NotFoundError } from '@novum/common';
import { ApiVersion, Microversion } from '../microversion';
import { PeerError, PeerServices } from '../peers';
import { allow } from '../policy';
import {
  belowVersion,
  checkSecurityGroupId,
  GroupRef,
  groupRef,
  isUuidLike,
  NeutronGroup,
  NeutronRule,
  neutronRuleBody,
  newIngressRule,
  ruleExists,
  securityGroupRuleView,
  securityGroupView,
} from '../proxy-views';
import { NovaQuery, NovaQueryParams } from '../query';

const RULE = 'os_compute_api:os-security-groups';

function reader(auth: AuthContext): boolean {
  return isAdmin(auth) || hasRole(auth, 'reader');
}
function member(auth: AuthContext): boolean {
  return isAdmin(auth) || hasRole(auth, 'member');
}

/** Nova's `security_group` body: an object with string `name` and `description` of at most 255 characters. */
function groupBody(body: unknown): { name: string; description: string } {
  const group = (body as { security_group?: unknown } | null)?.security_group;
  if (typeof body !== 'object' || body === null || group === undefined) {
    throw new BadRequestError("'security_group' is a required property");
  }
  if (typeof group !== 'object' || group === null || Array.isArray(group)) {
    throw new BadRequestError(
      `Invalid input for field/attribute security_group. Value: ${JSON.stringify(group)}. ${JSON.stringify(group)} is not of type 'object'`,
    );
  }
  const g = group as Record<string, unknown>;
  for (const key of ['name', 'description']) {
    if (g[key] === undefined) throw new BadRequestError(`'${key}' is a required property`);
    if (typeof g[key] !== 'string') {
      throw new BadRequestError(
        `Invalid input for field/attribute ${key}. Value: ${JSON.stringify(g[key])}. ${JSON.stringify(g[key])} is not of type 'string'`,
      );
    }
    if ((g[key] as string).length > 255) {
      throw new BadRequestError(
        `Invalid input for field/attribute ${key}. Value: ${g[key] as string}. '${g[key] as string}' is too long`,
      );
    }
  }
  return { name: g.name as string, description: g.description as string };
}

/** The deprecated security group proxy (below 2.36): Neutron's groups and ingress rules in Nova's view. */
@Controller('v2.1/os-security-groups')
export class SecurityGroupsController {
  constructor(private readonly peers: PeerServices) {}

  @Get()
  async list(@Auth() auth: AuthContext, @NovaQuery() query: NovaQueryParams, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.36');
    allow(`${RULE}:get`, reader(auth));
    const all = isAdmin(auth) && query.all_tenants !== undefined;
    const path = all
      ? '/v2.0/security-groups'
      : `/v2.0/security-groups?project_id=${encodeURIComponent(auth.projectId ?? '')}`;
    const body = await this.neutron<{ security_groups: NeutronGroup[] }>(auth, 'GET', path);
    const groups = limited(body.security_groups, query);
    const refs = await this.remoteGroups(auth, groups);
    const views = groups.map((group) => securityGroupView(group, refs));
    views.sort((a, b) => cmp(a.tenant_id, b.tenant_id) || cmp(a.name, b.name));
    return { security_groups: views };
  }

  @Get(':id')
  async show(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.36');
    allow(`${RULE}:show`, reader(auth));
    checkSecurityGroupId(id);
    const group = await this.group(auth, id);
    return { security_group: securityGroupView(group, await this.remoteGroups(auth, [group])) };
  }

  @Post()
  @HttpCode(200)
  async create(@Auth() auth: AuthContext, @Body() body: unknown, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.36');
    allow(`${RULE}:create`, member(auth));
    const { name, description } = groupBody(body);
    try {
      const created = await this.peers.call<{ security_group: NeutronGroup }>(
        auth,
        'network',
        'POST',
        '/v2.0/security-groups',
        { security_group: { name, description } },
      );
      const group = created.security_group;
      return { security_group: securityGroupView(group, await this.remoteGroups(auth, [group])) };
    } catch (error) {
      if (error instanceof PeerError && error.status === 400) throw new BadRequestError(error.message);
      if (error instanceof PeerError && error.status === 409) throw new ForbiddenError(error.message);
      throw peerFailure(error);
    }
  }

  @Put(':id')
  async update(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Body() body: unknown,
    @Microversion() v: ApiVersion,
  ) {
    belowVersion(v, '2.36');
    allow(`${RULE}:update`, member(auth));
    checkSecurityGroupId(id);
    await this.group(auth, id);
    const { name, description } = groupBody(body);
    const updated = await this.neutron<{ security_group: NeutronGroup }>(
      auth,
      'PUT',
      `/v2.0/security-groups/${id}`,
      { security_group: { name, description } },
    );
    const group = updated.security_group;
    return { security_group: securityGroupView(group, await this.remoteGroups(auth, [group])) };
  }

  @Delete(':id')
  @HttpCode(202)
  async remove(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.36');
    allow(`${RULE}:delete`, member(auth));
    checkSecurityGroupId(id);
    await this.group(auth, id);
    try {
      await this.peers.call(auth, 'network', 'DELETE', `/v2.0/security-groups/${id}`);
    } catch (error) {
      // Neutron's 409 (the default group, a group in use) is Nova's Invalid.
      if (error instanceof PeerError && error.status === 409) throw new BadRequestError(error.message);
      throw peerFailure(error);
    }
  }

  private async group(auth: AuthContext, id: string): Promise<NeutronGroup> {
    const body = await this.neutron<{ security_group: NeutronGroup }>(
      auth,
      'GET',
      `/v2.0/security-groups/${encodeURIComponent(id)}`,
    );
    return body.security_group;
  }

  /** The name and project of every group the rules point at; one that is gone is left out. */
  private async remoteGroups(auth: AuthContext, groups: NeutronGroup[]): Promise<Map<string, GroupRef>> {
    return remoteGroupRefs(this.peers, auth, groups);
  }

  private async neutron<T>(auth: AuthContext, method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await this.peers.call<T>(auth, 'network', method, path, body);
    } catch (error) {
      throw peerFailure(error);
    }
  }
}

/** `/os-security-group-rules` (below 2.36): ingress rules created and deleted in Neutron. */
@Controller('v2.1/os-security-group-rules')
export class SecurityGroupRulesController {
  constructor(private readonly peers: PeerServices) {}

  @Post()
  @HttpCode(200)
  async create(@Auth() auth: AuthContext, @Body() body: unknown, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.36');
    allow(`${RULE}:rule:create`, member(auth));
    const input = ruleBody(body);
    const parent = await this.group(auth, input.parent_group_id);
    let source: NeutronGroup | undefined;
    if (input.group_id !== undefined && input.group_id !== null)
      source = await this.group(auth, input.group_id);
    const rule = newIngressRule(input);
    if (!rule) throw new BadRequestError('Not enough parameters to build a valid rule.');
    if (ruleExists(parent.security_group_rules ?? [], rule)) {
      throw new BadRequestError(`This rule already exists in group ${parent.id}`);
    }
    let created: NeutronRule;
    try {
      const answer = await this.peers.call<{ security_group_rule: NeutronRule }>(
        auth,
        'network',
        'POST',
        '/v2.0/security-group-rules',
        { security_group_rule: neutronRuleBody(parent.id, rule) },
      );
      created = answer.security_group_rule;
    } catch (error) {
      if (error instanceof PeerError && error.status === 400) throw new BadRequestError(error.message);
      if (error instanceof PeerError && error.status === 409) throw new ForbiddenError(error.message);
      throw peerFailure(error);
    }
    const refs = new Map<string, GroupRef>();
    if (source) refs.set(source.id, groupRef(source));
    return { security_group_rule: securityGroupRuleView(created, refs) };
  }

  @Delete(':id')
  @HttpCode(202)
  async remove(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.36');
    allow(`${RULE}:rule:delete`, member(auth));
    checkSecurityGroupId(id);
    try {
      const { security_group_rule: rule } = await this.peers.call<{ security_group_rule: NeutronRule }>(
        auth,
        'network',
        'GET',
        `/v2.0/security-group-rules/${id}`,
      );
      await this.group(auth, rule.security_group_id);
      await this.peers.call(auth, 'network', 'DELETE', `/v2.0/security-group-rules/${id}`);
    } catch (error) {
      throw peerFailure(error);
    }
  }

  private async group(auth: AuthContext, id: string): Promise<NeutronGroup> {
    try {
      const body = await this.peers.call<{ security_group: NeutronGroup }>(
        auth,
        'network',
        'GET',
        `/v2.0/security-groups/${encodeURIComponent(id)}`,
      );
      return body.security_group;
    } catch (error) {
      throw peerFailure(error);
    }
  }
}

/** Nova's `create_rules` schema: `parent_group_id` (and `group_id` when given) must be uuids. */
function ruleBody(body: unknown) {
  const rule = (body as { security_group_rule?: unknown } | null)?.security_group_rule;
  if (typeof body !== 'object' || body === null || rule === undefined) {
    throw new BadRequestError("'security_group_rule' is a required property");
  }
  if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) {
    throw new BadRequestError(
      `Invalid input for field/attribute security_group_rule. Value: ${JSON.stringify(rule)}. ${JSON.stringify(rule)} is not of type 'object'`,
    );
  }
  const r = rule as Record<string, unknown>;
  if (r.parent_group_id === undefined) throw new BadRequestError("'parent_group_id' is a required property");
  const uuid = (key: string, nullable: boolean) => {
    const value = r[key];
    if (value === undefined || (nullable && value === null)) return;
    if (typeof value !== 'string') {
      throw new BadRequestError(
        `Invalid input for field/attribute ${key}. Value: ${JSON.stringify(value)}. ${JSON.stringify(value)} is not of type 'string'`,
      );
    }
    if (!isUuidLike(value)) {
      throw new BadRequestError(
        `Invalid input for field/attribute ${key}. Value: ${value}. '${value}' is not a 'uuid'`,
      );
    }
  };
  uuid('parent_group_id', false);
  uuid('group_id', true);
  return {
    parent_group_id: r.parent_group_id as string,
    group_id: r.group_id as string | null | undefined,
    ip_protocol: r.ip_protocol,
    from_port: r.from_port,
    to_port: r.to_port,
    cidr: r.cidr,
  };
}

/** The groups' rules' remote groups as `{name, tenant_id}`; shared with the per-server list. */
export async function remoteGroupRefs(
  peers: PeerServices,
  auth: AuthContext,
  groups: NeutronGroup[],
): Promise<Map<string, GroupRef>> {
  const refs = new Map<string, GroupRef>();
  for (const group of groups) refs.set(group.id, groupRef(group));
  const missing = new Set<string>();
  for (const group of groups) {
    for (const rule of group.security_group_rules ?? []) {
      if (rule.remote_group_id && !refs.has(rule.remote_group_id)) missing.add(rule.remote_group_id);
    }
  }
  for (const id of missing) {
    try {
      const body = await peers.call<{ security_group: NeutronGroup }>(
        auth,
        'network',
        'GET',
        `/v2.0/security-groups/${encodeURIComponent(id)}`,
      );
      refs.set(id, groupRef(body.security_group));
    } catch (error) {
      if (!(error instanceof PeerError && error.status === 404)) throw peerFailure(error);
    }
  }
  return refs;
}

/** Neutron's 404 is Nova's SecurityGroupNotFound; other refusals keep their status, failures are 503. */
function peerFailure(error: unknown): unknown {
  if (!(error instanceof PeerError)) return error;
  if (error.status === 404) return new NotFoundError(error.message);
  if (error.status >= 500) return new ApiError(503, error.message);
  return new ApiError(error.status, error.message);
}

/** Nova's `common.limited`: `offset` and `limit` (at most 1000) over the list. */
function limited<T>(items: T[], query: NovaQueryParams): T[] {
  const int = (name: string, fallback: number) => {
    const value = query[name];
    if (value === undefined) return fallback;
    if (!/^-?\d+$/.test(value)) throw new BadRequestError(`${name} param must be an integer`);
    if (Number(value) < 0) throw new BadRequestError(`${name} param must be positive`);
    return Number(value);
  };
  const offset = int('offset', 0);
  const limit = Math.min(1000, int('limit', 1000) || 1000);
  return items.slice(offset, offset + limit);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
