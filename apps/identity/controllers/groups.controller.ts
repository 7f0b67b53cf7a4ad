import { Controller, Get, Inject, Param, Query } from '@nestjs/common';
import { Auth, AuthContext, authorize, isAdmin } from '@novum/auth';
import { NotFoundError } from '@novum/common';
import { IDENTITY_BASE_URL, Links } from '../serializers';
import { queryString } from './dto';

/**
 * Keystone's groups, read-only and empty: Novum's identity has no groups yet (no group can be created, and
 * roles are granted to users only). Horizon lists them in its project and user forms, so the listings answer
 * as a Keystone whose operator made no group would.
 */
@Controller('v3/groups')
export class GroupsController {
  private readonly links: Links;

  constructor(@Inject(IDENTITY_BASE_URL) base: string) {
    this.links = new Links(base);
  }

  @Get()
  list(@Auth() auth: AuthContext, @Query() query: Record<string, unknown>) {
    authorize('identity:list_groups', isAdmin(auth));
    // The filters Keystone takes are validated as strings, though nothing can match them.
    queryString(query.name, 'name');
    queryString(query.domain_id, 'domain_id');
    return { groups: [], links: this.links.collection('groups') };
  }

  @Get(':id')
  get(@Auth() auth: AuthContext, @Param('id') id: string) {
    authorize('identity:get_group', isAdmin(auth));
    throw new NotFoundError(`Could not find group: ${id}.`);
  }
}
