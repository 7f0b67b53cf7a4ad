import { Controller, Get, Req } from '@nestjs/common';
import { Public } from '@novum/auth';
import type { FastifyRequest } from 'fastify';

/** Heat's version document at the API root. */
@Controller()
export class VersionsController {
  @Public()
  @Get()
  versions(@Req() request: FastifyRequest) {
    return {
      versions: [
        {
          id: 'v1.0',
          status: 'CURRENT',
          links: [{ rel: 'self', href: `${request.protocol}://${request.headers.host}/heat-api/v1/` }],
        },
      ],
    };
  }
}
