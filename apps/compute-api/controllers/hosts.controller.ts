import { Body, Controller, Get, Param, Put } from '@nestjs/common';
import { Auth, AuthContext } from '@novum/auth';
import { ApiError, NotFoundError } from '@novum/common';
import { Binary, hostAvailabilityZones } from '@novum/compute';
import { ComputeServiceEntity, InstanceEntity } from '@novum/db';
import { IsNull } from 'typeorm';
import { ComputeStore } from '../compute.store';
import { ApiVersion, Microversion } from '../microversion';
import { adminOnly } from '../policy';
import { belowVersion, checkHostUpdate, hostResources } from '../proxy-views';
import { NovaQuery, NovaQueryParams } from '../query';

const RULE = 'os_compute_api:os-hosts';
/** Nova's `internal_service_availability_zone`: where services other than compute are listed. */
const INTERNAL_ZONE = 'internal';

/**
 * The deprecated `/os-hosts` (below 2.43): the enabled services' hosts, a compute host's resources, and
 * Nova's answers for host power and maintenance actions, which no driver here implements (501, as libvirt).
 */
@Controller('v2.1/os-hosts')
export class HostsController {
  constructor(private readonly store: ComputeStore) {}

  @Get()
  async list(@Auth() auth: AuthContext, @NovaQuery() query: NovaQueryParams, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.43');
    adminOnly(auth, `${RULE}:list`);
    const services = await this.store.services.find({ where: { disabled: false }, order: { id: 'ASC' } });
    const computeHosts = services.filter((s) => s.binary === Binary.COMPUTE).map((s) => s.host);
    const zones = await hostAvailabilityZones(this.store.dataSource, [...new Set(computeHosts)]);
    const hosts = services.map((s) => ({
      host_name: s.host,
      service: s.topic,
      zone: s.binary === Binary.COMPUTE ? (zones.get(s.host) ?? 'nova') : INTERNAL_ZONE,
    }));
    return { hosts: query.zone ? hosts.filter((h) => h.zone === query.zone) : hosts };
  }

  @Get(':host')
  async show(@Auth() auth: AuthContext, @Param('host') host: string, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.43');
    adminOnly(auth, `${RULE}:show`);
    await this.computeService(host);
    const node = await this.store.computeNodes.findOne({ where: { host }, order: { createdAt: 'ASC' } });
    if (!node) throw new NotFoundError(`Compute host ${host} could not be found.`);
    const instances = await this.store.dataSource
      .getRepository(InstanceEntity)
      .find({ where: { host, deletedAt: IsNull() }, order: { createdAt: 'ASC' } });
    return { host: hostResources(host, node, instances) };
  }

  @Put(':host')
  async update(
    @Auth() auth: AuthContext,
    @Param('host') host: string,
    @Body() body: unknown,
    @Microversion() v: ApiVersion,
  ) {
    belowVersion(v, '2.43');
    adminOnly(auth, `${RULE}:update`);
    checkHostUpdate(body);
    await this.computeService(host);
    throw notSupported();
  }

  @Get(':host/reboot')
  reboot(@Auth() auth: AuthContext, @Param('host') host: string, @Microversion() v: ApiVersion) {
    return this.powerAction(auth, host, v, 'reboot');
  }

  @Get(':host/shutdown')
  shutdown(@Auth() auth: AuthContext, @Param('host') host: string, @Microversion() v: ApiVersion) {
    return this.powerAction(auth, host, v, 'shutdown');
  }

  @Get(':host/startup')
  startup(@Auth() auth: AuthContext, @Param('host') host: string, @Microversion() v: ApiVersion) {
    return this.powerAction(auth, host, v, 'start');
  }

  private async powerAction(auth: AuthContext, host: string, v: ApiVersion, rule: string): Promise<never> {
    belowVersion(v, '2.43');
    adminOnly(auth, `${RULE}:${rule}`);
    await this.computeService(host);
    throw notSupported();
  }

  /** Nova finds a host through its cell mapping, which only compute hosts have. */
  private async computeService(host: string): Promise<ComputeServiceEntity> {
    const service = await this.store.services.findOneBy({ host, binary: Binary.COMPUTE });
    if (!service) throw new NotFoundError(`Host '${host}' is not mapped to any cell`);
    return service;
  }
}

function notSupported(): ApiError {
  return new ApiError(501, 'The requested functionality is not supported.');
}
