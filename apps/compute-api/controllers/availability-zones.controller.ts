import { Controller, Get } from '@nestjs/common';
import { Auth, AuthContext } from '@novum/auth';
import { adminOnly } from '../policy';

/** Nova's default availability zone, where compute hosts land unless an aggregate says otherwise. */
export const DEFAULT_ZONE = 'nova';

@Controller('v2.1/os-availability-zone')
export class AvailabilityZonesController {
  @Get()
  list() {
    return {
      availabilityZoneInfo: [{ zoneName: DEFAULT_ZONE, zoneState: { available: true }, hosts: null }],
    };
  }

  @Get('detail')
  detail(@Auth() auth: AuthContext) {
    adminOnly(auth, 'os_compute_api:os-availability-zone:detail');
    return {
      availabilityZoneInfo: [{ zoneName: DEFAULT_ZONE, zoneState: { available: true }, hosts: null }],
    };
  }
}
