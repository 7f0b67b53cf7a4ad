import { DynamicModule, Module } from '@nestjs/common';
import { serviceAuthProviders } from '@novum/auth';
import { BusModule } from '@novum/bus';
import { NOVUM_CONFIG, NovumConfig, publicUrl } from '@novum/common';
import { DbModule } from '@novum/db';
import { DataSource } from 'typeorm';
import { IdentityClient } from './cloud';
import { OrchestrationInfoController, StacksController } from './controllers/stacks.controller';
import { VersionsController } from './controllers/versions.controller';
import { SignalController, WaitConditionSignals } from './controllers/signal.controller';
import {
  ResourceActionsController,
  ResourceTypeTemplateController,
} from './controllers/resource-actions.controller';
import {
  SoftwareConfigsController,
  SoftwareDeploymentsController,
} from './controllers/software-configs.controller';
import { Engine } from './engine';
import { EngineClient, EngineRegistry, EngineService, StackEngine } from './engine-rpc';
import { SoftwareConfigService } from './software-config.service';
import { StackService } from './stack.service';
import { StackStore } from './stack.store';

/** Heat's root URL; the catalog endpoint adds `/v1/$(project_id)s`, which Keystone fills per token. */
export function orchestrationRootUrl(config: NovumConfig): string {
  return publicUrl(config, config.ports.orchestration, 'heat-api');
}

/** What an engine needs, whether beside the API or alone. */
function engineProviders(config: NovumConfig) {
  return [
    { provide: NOVUM_CONFIG, useValue: config },
    StackStore,
    IdentityClient,
    Engine,
    { provide: EngineRegistry, useFactory: (ds: DataSource) => new EngineRegistry(ds), inject: [DataSource] },
  ];
}

/**
 * Heat API v1, handing stack actions to the engines over the bus; with NOVUM_HEAT_ENGINE (the default) this
 * process runs an engine too, as heat-all does. The engines' state is all in the database.
 */
@Module({})
export class OrchestrationModule {
  static forRoot(config: NovumConfig, validator?: unknown): DynamicModule {
    return {
      module: OrchestrationModule,
      imports: [DbModule.forRoot(config), BusModule.forRoot({ amqpUrl: config.amqpUrl })],
      controllers: [
        VersionsController,
        StacksController,
        OrchestrationInfoController,
        SignalController,
        ResourceActionsController,
        ResourceTypeTemplateController,
        SoftwareConfigsController,
        SoftwareDeploymentsController,
      ],
      providers: [
        ...engineProviders(config),
        ...(config.heatEngine ? [EngineService] : []),
        { provide: StackEngine, useClass: EngineClient },
        StackService,
        WaitConditionSignals,
        SoftwareConfigService,
        ...serviceAuthProviders(config, validator),
      ],
    };
  }
}

/** A Heat engine alone (heat-engine): `node dist/apps/orchestration/engine-main.js`, bus and database only. */
@Module({})
export class OrchestrationEngineModule {
  static forRoot(config: NovumConfig): DynamicModule {
    return {
      module: OrchestrationEngineModule,
      imports: [DbModule.forRoot(config), BusModule.forRoot({ amqpUrl: config.amqpUrl })],
      providers: [...engineProviders(config), EngineService],
    };
  }
}
