import { Controller, Get, Inject } from '@nestjs/common';
import { Auth, AuthContext } from '@novum/auth';
import { NOVUM_CONFIG, NovumConfig } from '@novum/common';
import { ComputeStore } from '../compute.store';
import { ApiVersion, Microversion } from '../microversion';
import { adminOnly } from '../policy';
import { NovaQuery, NovaQueryParams } from '../query';
import { serviceView } from '../serializers';

/**
 * `GET /os-services` (admin): the conductor, scheduler and compute agents that registered, as Nova lists
 * them (the API itself is not listed, as in Nova). Empty until those services exist.
 */
@Controller('v2.1/os-services')
export class ServicesController {
  constructor(
    private readonly store: ComputeStore,
    @Inject(NOVUM_CONFIG) private readonly config: NovumConfig,
  ) {}

  @Get()
  async list(@Auth() auth: AuthContext, @NovaQuery() query: NovaQueryParams, @Microversion() v: ApiVersion) {
    adminOnly(auth, 'os_compute_api:os-services:list');
    const where: { host?: string; binary?: string } = {};
    if (query.host !== undefined) where.host = query.host;
    if (query.binary !== undefined) where.binary = query.binary;
    const services = await this.store.services.find({ where, order: { id: 'ASC' } });
    const now = Date.now();
    return { services: services.map((s) => serviceView(s, now, this.config.serviceDownTimeSeconds, v)) };
  }
}
