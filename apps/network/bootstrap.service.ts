import { Injectable } from '@nestjs/common';
import { AuthContext } from '@novum/auth';
import { rootLogger } from '@novum/common';
import { NetworkEntity } from '@novum/db';
import { NetworkService } from './network.service';
import { NetworkStore } from './network.store';
import { DEFAULT_PHYSICAL_NETWORK } from './segments';

/** What a fresh cloud offers, as devstack sets it up: a shared tenant network and an external one. */
export const BOOTSTRAP_NETWORKS = [
  {
    network: { name: 'private', shared: true, 'router:external': false },
    subnet: { name: 'private-subnet', cidr: '10.0.0.0/24', ip_version: 4 as const },
  },
  {
    network: {
      name: 'public',
      shared: false,
      'router:external': true,
      'provider:network_type': 'flat',
      'provider:physical_network': DEFAULT_PHYSICAL_NETWORK,
    },
    subnet: {
      name: 'public-subnet',
      cidr: '172.24.4.0/24',
      ip_version: 4 as const,
      gateway_ip: '172.24.4.1',
      enable_dhcp: false,
    },
  },
];

/** First-start data of the network service, owned by the `admin` project; idempotent. */
@Injectable()
export class NetworkBootstrap {
  constructor(
    private readonly store: NetworkStore,
    private readonly networks: NetworkService,
  ) {}

  async run(adminProjectId: string): Promise<void> {
    const auth: AuthContext = {
      token: '',
      userId: 'novum-bootstrap',
      userName: 'novum-bootstrap',
      userDomainId: 'default',
      projectId: adminProjectId,
      roles: ['admin', 'member', 'reader'],
      methods: [],
      auditIds: [],
      expiresAt: '',
      issuedAt: '',
    };
    for (const spec of BOOTSTRAP_NETWORKS) {
      let network: NetworkEntity | null = await this.store.networks.findOneBy({
        name: spec.network.name,
        projectId: adminProjectId,
      });
      if (!network) {
        network = await this.networks.createNetwork(auth, spec.network);
        rootLogger().info({ network: network.id, name: network.name }, 'created bootstrap network');
      }
      if (!(await this.store.subnets.countBy({ networkId: network.id, name: spec.subnet.name }))) {
        await this.networks.createSubnet(auth, { ...spec.subnet, network_id: network.id });
      }
    }
  }
}
