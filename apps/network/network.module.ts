import { DynamicModule, Module } from '@nestjs/common';
import { serviceAuthProviders } from '@novum/auth';
import { BusModule } from '@novum/bus';
import { NOVUM_CONFIG, NovumConfig, publicUrl } from '@novum/common';
import { DbModule } from '@novum/db';
import { NetworkBootstrap } from './bootstrap.service';
import { NetworksController, SubnetsController } from './controllers/networks.controller';
import { PortsController } from './controllers/ports.controller';
import { QuotasController } from './controllers/quotas.controller';
import { FloatingIpsController, RoutersController } from './controllers/routers.controller';
import {
  SecurityGroupRulesController,
  SecurityGroupsController,
} from './controllers/security-groups.controller';
import { TagsController } from './controllers/tags.controller';
import { VersionsController } from './controllers/versions.controller';
import { Ipam } from './ipam';
import { NetworkService } from './network.service';
import { NetworkStore } from './network.store';
import { NetworkNotifier, PortStatusService } from './port-events';
import { PortService } from './port.service';
import { QuotaService } from './quota.service';
import { RouterService } from './router.service';
import { SecurityGroupService } from './security-group.service';
import { NETWORK_BASE_URL } from './serializers';
import { TagService } from './tags';

export function networkPublicUrl(config: NovumConfig): string {
  return publicUrl(config, config.ports.network, 'network');
}

/** Neutron v2.0 subset: networks, subnets, ports with IPAM, security groups, routers, floating IPs, quotas. */
@Module({})
export class NetworkModule {
  static forRoot(config: NovumConfig, validator?: unknown): DynamicModule {
    return {
      module: NetworkModule,
      imports: [DbModule.forRoot(config), BusModule.forRoot({ amqpUrl: config.amqpUrl })],
      controllers: [
        VersionsController,
        NetworksController,
        SubnetsController,
        PortsController,
        SecurityGroupsController,
        SecurityGroupRulesController,
        RoutersController,
        FloatingIpsController,
        QuotasController,
        TagsController,
      ],
      providers: [
        { provide: NOVUM_CONFIG, useValue: config },
        { provide: NETWORK_BASE_URL, useValue: networkPublicUrl(config) },
        NetworkStore,
        Ipam,
        QuotaService,
        NetworkService,
        SecurityGroupService,
        NetworkNotifier,
        PortStatusService,
        PortService,
        RouterService,
        TagService,
        NetworkBootstrap,
        ...serviceAuthProviders(config, validator),
      ],
    };
  }
}
