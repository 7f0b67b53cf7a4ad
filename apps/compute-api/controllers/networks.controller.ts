import { Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { Auth, AuthContext, hasRole, isAdmin } from '@novum/auth';
import { ApiError, NotFoundError } from '@novum/common';
import { ApiVersion, Microversion } from '../microversion';
import { asApiError, NeutronNetwork, PeerServices } from '../peers';
import { allow } from '../policy';
import { belowVersion, networkView, tenantNetworkView } from '../proxy-views';

const GONE = 'This API was removed with nova-network; use the networking service (Neutron) instead.';

function reader(auth: AuthContext): boolean {
  return isAdmin(auth) || hasRole(auth, 'reader');
}

/** Nova's 410 for the nova-network calls that were removed (creating, deleting, associating networks). */
function gone(): ApiError {
  return new ApiError(410, GONE);
}

async function visibleNetworks(peers: PeerServices, auth: AuthContext): Promise<NeutronNetwork[]> {
  try {
    const body = await peers.call<{ networks: NeutronNetwork[] }>(auth, 'network', 'GET', '/v2.0/networks');
    return body.networks;
  } catch (error) {
    throw asApiError(error);
  }
}

async function networkOr404(peers: PeerServices, auth: AuthContext, id: string): Promise<NeutronNetwork> {
  const network = await peers.network(auth, id);
  if (!network) throw new NotFoundError('Network not found');
  return network;
}

/** The deprecated `/os-networks` proxy (below 2.36): the Neutron networks the caller sees. */
@Controller('v2.1/os-networks')
export class NetworksController {
  constructor(private readonly peers: PeerServices) {}

  @Get()
  async list(@Auth() auth: AuthContext, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.36');
    allow('os_compute_api:os-networks:list', reader(auth));
    const networks = await visibleNetworks(this.peers, auth);
    return { networks: networks.map((n) => networkView(n, isAdmin(auth))) };
  }

  @Get(':id')
  async show(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.36');
    allow('os_compute_api:os-networks:show', reader(auth));
    return { network: networkView(await networkOr404(this.peers, auth, id), isAdmin(auth)) };
  }

  @Post()
  create(): never {
    throw gone();
  }

  @Post('add')
  add(): never {
    throw gone();
  }

  @Post(':id/action')
  action(): never {
    throw gone();
  }

  @Delete(':id')
  @HttpCode(202)
  remove(): never {
    throw gone();
  }
}

/** The deprecated `/os-tenant-networks` proxy (below 2.36): the caller's Neutron networks as id, label, cidr. */
@Controller('v2.1/os-tenant-networks')
export class TenantNetworksController {
  constructor(private readonly peers: PeerServices) {}

  @Get()
  async list(@Auth() auth: AuthContext, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.36');
    allow('os_compute_api:os-tenant-networks:list', reader(auth));
    const networks = await visibleNetworks(this.peers, auth);
    return { networks: networks.map(tenantNetworkView) };
  }

  @Get(':id')
  async show(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.36');
    allow('os_compute_api:os-tenant-networks:show', reader(auth));
    return { network: tenantNetworkView(await networkOr404(this.peers, auth, id)) };
  }

  @Post()
  create(): never {
    throw gone();
  }

  @Delete(':id')
  @HttpCode(202)
  remove(): never {
    throw gone();
  }
}
