import { Controller, Get, HttpCode, Inject } from '@nestjs/common';
import { Public } from '@novum/auth';
import { IMAGE_BASE_URL } from '../image-base-url';

/** Glance's API versions, newest first; every one is served by the same v2 implementation. */
const VERSIONS = [
  ['v2.16', 'CURRENT'],
  ...[
    'v2.15',
    'v2.14',
    'v2.13',
    'v2.12',
    'v2.11',
    'v2.10',
    'v2.9',
    'v2.8',
    'v2.7',
    'v2.6',
    'v2.5',
    'v2.4',
    'v2.3',
    'v2.2',
    'v2.1',
    'v2.0',
  ].map((id) => [id, 'SUPPORTED']),
];

/** Version discovery, which keystoneauth does against the catalog URL before anything else. */
@Controller()
@Public()
export class VersionsController {
  constructor(@Inject(IMAGE_BASE_URL) private readonly base: string) {}

  private versions() {
    return {
      versions: VERSIONS.map(([id, status]) => ({
        id,
        status,
        links: [{ rel: 'self', href: `${this.base}/v2/` }],
      })),
    };
  }

  @Get()
  @HttpCode(300)
  root() {
    return this.versions();
  }

  @Get('versions')
  list() {
    return this.versions();
  }

  @Get('v2')
  @HttpCode(300)
  v2() {
    return this.versions();
  }
}
