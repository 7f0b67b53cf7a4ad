import { DynamicModule, Module } from '@nestjs/common';
import { serviceAuthProviders } from '@novum/auth';
import { BusModule, MessageBus } from '@novum/bus';
import { ComputeRpcClient } from '@novum/compute';
import { NOVUM_CONFIG, NovumConfig, publicUrl } from '@novum/common';
import { DbModule } from '@novum/db';
import { ComputeBootstrap } from './bootstrap.service';
import { ComputeStore } from './compute.store';
import { AggregateService } from './aggregate.service';
import { AggregatesController } from './controllers/aggregates.controller';
import { AvailabilityZonesController } from './controllers/availability-zones.controller';
import { HypervisorsController } from './controllers/hypervisors.controller';
import { MigrationsController, ServerMigrationsController } from './controllers/migrations.controller';
import { SimpleTenantUsageController } from './controllers/usage.controller';
import { HypervisorService } from './hypervisor.service';
import { FlavorsController } from './controllers/flavors.controller';
import { KeyPairsController } from './controllers/keypairs.controller';
import {
  LimitsController,
  QuotaClassSetsController,
  QuotaSetsController,
} from './controllers/quotas.controller';
import { ServerGroupsController } from './controllers/server-groups.controller';
import { ServicesController } from './controllers/services.controller';
import { VersionsController } from './controllers/versions.controller';
import { FlavorService } from './flavor.service';
import { IdentityCleanup } from './identity-cleanup';
import { KeyPairService } from './keypair.service';
import { QuotaService } from './quota.service';
import { COMPUTE_ROOT_URL } from './serializers';
import { ServerGroupService } from './server-group.service';
import { PeerServices } from './peers';
import { ServerService } from './server.service';
import { ServerLifecycleActions } from './server-lifecycle';
import { ServersController } from './controllers/servers.controller';
import { ServerActionsController } from './controllers/server-actions.controller';
import { ServerResourcesController } from './controllers/server-resources.controller';
import { ServerExtrasController } from './controllers/server-extras.controller';
import { ImagesController } from './controllers/images.controller';
import {
  SecurityGroupRulesController,
  SecurityGroupsController,
} from './controllers/security-groups.controller';
import { NetworksController, TenantNetworksController } from './controllers/networks.controller';
import { ConsoleAuthTokensController } from './controllers/console-auth-tokens.controller';
import { HostsController } from './controllers/hosts.controller';
import { ExtensionsController } from './controllers/extensions.controller';
import { InstanceUsageAuditLogController } from './controllers/audit-log.controller';

/** The compute API's root (`http://host:8774/compute`); the catalog points at its `/v2.1`, as devstack's does. */
export function computeRootUrl(config: NovumConfig): string {
  return publicUrl(config, config.ports.compute, 'compute');
}

/** Nova API v2.1 with microversions: versions, flavors, key pairs, quotas, limits, zones, server groups, services. */
@Module({})
export class ComputeApiModule {
  static forRoot(config: NovumConfig, validator?: unknown): DynamicModule {
    return {
      module: ComputeApiModule,
      imports: [
        DbModule.forRoot(config),
        BusModule.forRoot({ amqpUrl: config.amqpUrl, hostQueueType: config.busHostQueueType }),
      ],
      controllers: [
        VersionsController,
        FlavorsController,
        KeyPairsController,
        QuotaSetsController,
        QuotaClassSetsController,
        LimitsController,
        AvailabilityZonesController,
        ServerGroupsController,
        ServicesController,
        HypervisorsController,
        AggregatesController,
        SimpleTenantUsageController,
        MigrationsController,
        ServerMigrationsController,
        ServersController,
        ServerActionsController,
        ServerResourcesController,
        ServerExtrasController,
        ImagesController,
        SecurityGroupsController,
        SecurityGroupRulesController,
        NetworksController,
        TenantNetworksController,
        HostsController,
        ExtensionsController,
        InstanceUsageAuditLogController,
        ConsoleAuthTokensController,
      ],
      providers: [
        { provide: NOVUM_CONFIG, useValue: config },
        { provide: COMPUTE_ROOT_URL, useValue: computeRootUrl(config) },
        ComputeStore,
        FlavorService,
        KeyPairService,
        QuotaService,
        ServerGroupService,
        HypervisorService,
        AggregateService,
        PeerServices,
        ServerService,
        ServerLifecycleActions,
        {
          provide: ComputeRpcClient,
          useFactory: (bus: MessageBus) => new ComputeRpcClient(bus),
          inject: [MessageBus],
        },
        ComputeBootstrap,
        IdentityCleanup,
        ...serviceAuthProviders(config, validator),
      ],
    };
  }
}
