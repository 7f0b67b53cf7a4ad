import { Controller, Get, Inject } from '@nestjs/common';
import { Auth, AuthContext } from '@novum/auth';
import { NOVUM_CONFIG, NovumConfig } from '@novum/common';
import {
  Binary,
  DEFAULT_AVAILABILITY_ZONE,
  hostAvailabilityZones,
  INTERNAL_AVAILABILITY_ZONE,
  isServiceUp,
} from '@novum/compute';
import { ComputeServiceEntity } from '@novum/db';
import { ComputeStore } from '../compute.store';
import { adminOnly } from '../policy';
import { novaTime } from '../serializers';

/** Nova's default availability zone, where compute hosts land unless an aggregate says otherwise. */
export const DEFAULT_ZONE = DEFAULT_AVAILABILITY_ZONE;

/**
 * `os-availability-zone`, as Nova's get_availability_zones: a zone is available when an enabled service is
 * in it, unavailable when only disabled ones are. Compute hosts are in their aggregates' zone (else `nova`),
 * other services in `internal`, which only the detail shows.
 */
@Controller('v2.1/os-availability-zone')
export class AvailabilityZonesController {
  constructor(
    private readonly store: ComputeStore,
    @Inject(NOVUM_CONFIG) private readonly config: NovumConfig,
  ) {}

  @Get()
  async list() {
    const { available, unavailable } = await this.zones();
    return {
      availabilityZoneInfo: [
        ...available
          .filter((z) => z.zone !== INTERNAL_AVAILABILITY_ZONE)
          .map((z) => ({ zoneName: z.zone, zoneState: { available: true }, hosts: null })),
        ...unavailable.map((zone) => ({ zoneName: zone, zoneState: { available: false }, hosts: null })),
      ],
    };
  }

  @Get('detail')
  async detail(@Auth() auth: AuthContext) {
    adminOnly(auth, 'os_compute_api:os-availability-zone:detail');
    const { available, unavailable } = await this.zones();
    const now = Date.now();
    return {
      availabilityZoneInfo: [
        ...available.map(({ zone, services }) => {
          const hosts: Record<string, Record<string, unknown>> = {};
          for (const s of services) {
            hosts[s.host] ??= {};
            hosts[s.host][s.binary] = {
              available: isServiceUp(s, now, this.config.serviceDownTimeSeconds),
              active: !s.disabled,
              updated_at: s.updatedAt ? novaTime(s.updatedAt) : null,
            };
          }
          return { zoneName: zone, zoneState: { available: true }, hosts };
        }),
        ...unavailable.map((zone) => ({ zoneName: zone, zoneState: { available: false }, hosts: null })),
      ],
    };
  }

  private async zones() {
    const services = await this.store.services.find({ order: { id: 'ASC' } });
    const computeHosts = services.filter((s) => s.binary === Binary.COMPUTE).map((s) => s.host);
    const hostZones = await hostAvailabilityZones(this.store.dataSource, [...new Set(computeHosts)]);
    const zoneOf = (s: ComputeServiceEntity) =>
      s.binary === Binary.COMPUTE
        ? (hostZones.get(s.host) ?? DEFAULT_AVAILABILITY_ZONE)
        : INTERNAL_AVAILABILITY_ZONE;
    const available = new Map<string, ComputeServiceEntity[]>();
    for (const s of services.filter((x) => !x.disabled))
      available.set(zoneOf(s), [...(available.get(zoneOf(s)) ?? []), s]);
    const unavailable = [
      ...new Set(
        services
          .filter((s) => s.disabled)
          .map(zoneOf)
          .filter((z) => !available.has(z)),
      ),
    ];
    return { available: [...available].map(([zone, list]) => ({ zone, services: list })), unavailable };
  }
}
