import { Controller, Get, Inject } from '@nestjs/common';
import { Public } from '@novum/auth';
import { MAX_VERSION, MIN_VERSION } from '../microversion';
import { COMPUTE_ROOT_URL } from '../serializers';

/** Nova's version documents: v2.0 (the legacy API, supported) and v2.1 with microversions (current). */
@Controller()
export class VersionsController {
  constructor(@Inject(COMPUTE_ROOT_URL) private readonly root: string) {}

  private versions() {
    return {
      'v2.0': {
        id: 'v2.0',
        status: 'SUPPORTED',
        version: '',
        min_version: '',
        updated: '2011-01-21T11:33:21Z',
        links: [{ rel: 'self', href: `${this.root}/v2/` }],
      },
      'v2.1': {
        id: 'v2.1',
        status: 'CURRENT',
        version: String(MAX_VERSION),
        min_version: String(MIN_VERSION),
        updated: '2013-07-23T11:33:21Z',
        links: [{ rel: 'self', href: `${this.root}/v2.1/` }],
      },
    };
  }

  private detail(id: 'v2.0' | 'v2.1') {
    const version = this.versions()[id];
    return {
      version: {
        ...version,
        links: [
          ...version.links,
          { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' },
        ],
        'media-types': [
          {
            base: 'application/json',
            type: `application/vnd.openstack.compute+json;version=${id.slice(1)}`,
          },
        ],
      },
    };
  }

  @Get()
  @Public()
  list() {
    return { versions: Object.values(this.versions()) };
  }

  @Get('v2')
  @Public()
  v2() {
    return this.detail('v2.0');
  }

  @Get('v2.1')
  @Public()
  v21() {
    return this.detail('v2.1');
  }
}
