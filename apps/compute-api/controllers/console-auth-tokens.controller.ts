import { Controller, Get, Param } from '@nestjs/common';
import { Auth, AuthContext } from '@novum/auth';
import { NotFoundError, UnauthorizedError } from '@novum/common';
import { ConsoleAuthTokens } from '@novum/compute';
import { ComputeStore } from '../compute.store';
import { ApiVersion, Microversion } from '../microversion';
import { adminOnly } from '../policy';

/**
 * `GET /os-console-auth-tokens/{token}` (admin): what a console token admits to. Below 2.31 only RDP
 * consoles' tokens were shown (401 for any other, as Nova); Novum's are serial ones.
 */
@Controller('v2.1/os-console-auth-tokens')
export class ConsoleAuthTokensController {
  constructor(private readonly store: ComputeStore) {}

  @Get(':token')
  async show(@Auth() auth: AuthContext, @Param('token') token: string, @Microversion() v: ApiVersion) {
    adminOnly(auth, 'os_compute_api:os-console-auth-tokens');
    const info = await new ConsoleAuthTokens(this.store.dataSource).validate(token);
    if (!info) throw new NotFoundError('Token not found');
    if (!v.atLeast('2.31') && info.consoleType !== 'rdp-html5') {
      throw new UnauthorizedError('The requested console type details are not accessible');
    }
    return {
      console: {
        instance_uuid: info.instanceUuid,
        host: info.host,
        port: info.port,
        internal_access_path: info.internalAccessPath,
      },
    };
  }
}
