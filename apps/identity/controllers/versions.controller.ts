import { Controller, Get, HttpCode, Inject } from '@nestjs/common';
import { Public } from '@novum/auth';
import { IDENTITY_BASE_URL } from '../serializers';

const MEDIA_TYPES = [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }];

/** Version discovery, which keystoneauth does before anything else. */
@Controller()
@Public()
export class VersionsController {
  constructor(@Inject(IDENTITY_BASE_URL) private readonly base: string) {}

  private v3() {
    return {
      id: 'v3.14',
      status: 'stable',
      updated: '2020-04-07T00:00:00Z',
      links: [{ rel: 'self', href: `${this.base}/v3/` }],
      'media-types': MEDIA_TYPES,
    };
  }

  @Get()
  @HttpCode(300)
  versions() {
    return { versions: { values: [this.v3()] } };
  }

  @Get('v3')
  version() {
    return { version: this.v3() };
  }
}
