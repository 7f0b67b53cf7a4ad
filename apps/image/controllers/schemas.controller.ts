import { Controller, Get } from '@nestjs/common';
import {
  IMAGE_SCHEMA,
  IMAGES_SCHEMA,
  MEMBER_SCHEMA,
  MEMBERS_SCHEMA,
  METADEF_NAMESPACE_SCHEMA,
  METADEF_NAMESPACES_SCHEMA,
} from '../schemas';

/** JSON schemas of Glance's resources (any authenticated caller). */
@Controller('v2/schemas')
export class SchemasController {
  @Get('image')
  image() {
    return IMAGE_SCHEMA;
  }

  @Get('images')
  images() {
    return IMAGES_SCHEMA;
  }

  @Get('member')
  member() {
    return MEMBER_SCHEMA;
  }

  @Get('members')
  members() {
    return MEMBERS_SCHEMA;
  }

  @Get('metadefs/namespace')
  metadefNamespace() {
    return METADEF_NAMESPACE_SCHEMA;
  }

  @Get('metadefs/namespaces')
  metadefNamespaces() {
    return METADEF_NAMESPACES_SCHEMA;
  }
}

/** What the interoperable import offers (`openstack image import info`). */
@Controller('v2/info')
export class InfoController {
  @Get('import')
  import() {
    return {
      'import-methods': {
        description: 'Import methods available.',
        type: 'array',
        value: ['glance-direct'],
      },
    };
  }

  @Get('stores')
  stores() {
    return { stores: [{ id: 'file', description: 'Local file store', default: true }] };
  }
}
