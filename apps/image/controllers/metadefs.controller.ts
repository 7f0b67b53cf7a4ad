import { Controller, Get, Param } from '@nestjs/common';
import { NotFoundError } from '@novum/common';

/**
 * Glance's metadata definitions catalog, empty: Novum loads no metadef namespaces (a Glance whose operator never
 * ran `glance-manage db_load_metadefs`). Horizon reads it for the metadata tabs of its image, flavor and
 * launch-instance forms, which then offer free-form keys only.
 */
@Controller('v2/metadefs')
export class MetadefsController {
  @Get('namespaces')
  namespaces() {
    return { namespaces: [], first: '/v2/metadefs/namespaces', schema: '/v2/schemas/metadefs/namespaces' };
  }

  @Get('namespaces/:namespace')
  namespace(@Param('namespace') namespace: string) {
    throw new NotFoundError(`Metadata definition namespace=${namespace} was not found.`);
  }

  @Get('resource_types')
  resourceTypes() {
    return { resource_types: [] };
  }
}
