import { Body, Controller, Get, Param, Patch, Query, UseFilters } from '@nestjs/common';
import { Auth, AuthContext, authorize, canActOnProject, isAdmin } from '@novum/auth';
import { BadRequestError, ForbiddenError, NotFoundError } from '@novum/common';
import { OrchestrationErrorFilter } from '../hot-error.filter';
import { RESOURCE_TYPES } from '../resources/registry';
import { resourceTypeTemplate, templateTypeOf } from '../resources/type-template';
import { markResourceHealth, markUnhealthyRequest } from '../resource-health';
import { StackService } from '../stack.service';
import { StackStore } from '../stack.store';

type QueryMap = Record<string, string | string[]>;

function checkTenant(auth: AuthContext, tenant: string): void {
  if (tenant !== auth.projectId && !isAdmin(auth)) {
    throw new ForbiddenError('You are not authorized to complete this action.', 'Forbidden');
  }
}

/** Heat API v1 `PATCH .../resources/{resource}`: mark a resource unhealthy (or healthy again). */
@Controller('v1/:tenant/stacks')
@UseFilters(OrchestrationErrorFilter)
export class ResourceActionsController {
  constructor(
    private readonly stacks: StackService,
    private readonly store: StackStore,
  ) {}

  @Patch(':name/:id/resources/:resource')
  async markUnhealthy(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('name') name: string,
    @Param('id') id: string,
    @Param('resource') resourceName: string,
    @Body() body: unknown,
  ) {
    checkTenant(auth, tenant);
    const stack = await this.stacks.identify(auth, name, id);
    authorize('resource:mark_unhealthy', canActOnProject(auth, stack.projectId));
    const { markUnhealthy, reason } = markUnhealthyRequest(body);
    // Heat finds the resource by its name, else by its physical id.
    const row = await this.stacks.resource(stack, resourceName).catch(async (error) => {
      const byPhysicalId = await this.store.resources.findOneBy({
        stackId: stack.id,
        physicalId: resourceName,
      });
      if (!byPhysicalId) throw error;
      return byPhysicalId;
    });
    await markResourceHealth(this.store, stack, row, markUnhealthy, reason);
  }
}

/** Heat API v1 `GET /resource_types/{type}/template`: a provider template generated from the type. */
@Controller('v1/:tenant/resource_types')
@UseFilters(OrchestrationErrorFilter)
export class ResourceTypeTemplateController {
  @Get(':type/template')
  template(
    @Auth() auth: AuthContext,
    @Param('tenant') tenant: string,
    @Param('type') name: string,
    @Query() query: QueryMap,
  ) {
    checkTenant(auth, tenant);
    const given = Array.isArray(query.template_type) ? query.template_type[0] : query.template_type;
    const templateType = templateTypeOf(given);
    if (!templateType)
      throw new BadRequestError(
        `Template type is not supported: Invalid template type "${given}", valid types are: cfn, hot.`,
      );
    const type = RESOURCE_TYPES.get(name);
    if (!type) throw new NotFoundError(`The Resource Type (${name}) could not be found.`, 'EntityNotFound');
    return resourceTypeTemplate(type, templateType);
  }
}
