import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query } from '@nestjs/common';
import { Auth, AuthContext } from '@novum/auth';
import { SecurityGroupEntity } from '@novum/db';
import { list, pick, requestedFields } from '../listing';
import { ruleNotFound, securityGroupNotFound, SecurityGroupService } from '../security-group.service';
import {
  NETWORK_BASE_URL,
  SECURITY_GROUP_ATTRIBUTES,
  SECURITY_GROUP_RULE_ATTRIBUTES,
  securityGroupRuleView,
  securityGroupView,
} from '../serializers';
import {
  onlyKnown,
  updatable,
  SECURITY_GROUP_INPUT,
  SECURITY_GROUP_RULE_INPUT,
  SecurityGroupBody,
  SecurityGroupRuleBody,
} from './dto';

@Controller('v2.0/security-groups')
export class SecurityGroupsController {
  constructor(
    private readonly groups: SecurityGroupService,
    @Inject(NETWORK_BASE_URL) private readonly base: string,
  ) {}

  private async views(groups: SecurityGroupEntity[]) {
    const rules = await this.groups.rulesOf(groups.map((g) => g.id));
    return groups.map((g) => securityGroupView(g, rules.get(g.id) ?? []));
  }

  @Get()
  async list(@Auth() auth: AuthContext, @Query() query: Record<string, unknown>) {
    return list(await this.views(await this.groups.listGroups(auth)), query, {
      collection: 'security_groups',
      url: `${this.base}/v2.0/security-groups`,
      attributes: SECURITY_GROUP_ATTRIBUTES,
      notFound: securityGroupNotFound,
    });
  }

  @Post()
  @HttpCode(201)
  async create(@Auth() auth: AuthContext, @Body() body: SecurityGroupBody) {
    onlyKnown(body.security_group, SECURITY_GROUP_INPUT);
    const [view] = await this.views([await this.groups.createGroup(auth, body.security_group)]);
    return { security_group: view };
  }

  @Get(':id')
  async get(@Auth() auth: AuthContext, @Param('id') id: string, @Query() query: Record<string, unknown>) {
    const [view] = await this.views([await this.groups.getGroup(auth, id)]);
    return { security_group: pick(view, requestedFields(query)) };
  }

  @Put(':id')
  async update(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: SecurityGroupBody) {
    onlyKnown(body.security_group, updatable(SECURITY_GROUP_INPUT));
    const [view] = await this.views([await this.groups.updateGroup(auth, id, body.security_group)]);
    return { security_group: view };
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Auth() auth: AuthContext, @Param('id') id: string) {
    await this.groups.deleteGroup(auth, id);
  }
}

@Controller('v2.0/security-group-rules')
export class SecurityGroupRulesController {
  constructor(
    private readonly groups: SecurityGroupService,
    @Inject(NETWORK_BASE_URL) private readonly base: string,
  ) {}

  @Get()
  async list(@Auth() auth: AuthContext, @Query() query: Record<string, unknown>) {
    return list((await this.groups.listRules(auth)).map(securityGroupRuleView), query, {
      collection: 'security_group_rules',
      url: `${this.base}/v2.0/security-group-rules`,
      attributes: SECURITY_GROUP_RULE_ATTRIBUTES,
      notFound: ruleNotFound,
    });
  }

  @Post()
  @HttpCode(201)
  async create(@Auth() auth: AuthContext, @Body() body: SecurityGroupRuleBody) {
    onlyKnown(body.security_group_rule, SECURITY_GROUP_RULE_INPUT);
    return {
      security_group_rule: securityGroupRuleView(
        await this.groups.createRule(auth, body.security_group_rule),
      ),
    };
  }

  @Get(':id')
  async get(@Auth() auth: AuthContext, @Param('id') id: string, @Query() query: Record<string, unknown>) {
    return {
      security_group_rule: pick(
        securityGroupRuleView(await this.groups.getRule(auth, id)),
        requestedFields(query),
      ),
    };
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Auth() auth: AuthContext, @Param('id') id: string) {
    await this.groups.deleteRule(auth, id);
  }
}
