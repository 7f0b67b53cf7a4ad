import { DynamicModule, Module } from '@nestjs/common';
import { serviceAuthProviders } from '@novum/auth';
import { NOVUM_CONFIG, NovumConfig, publicUrl } from '@novum/common';
import { DbModule } from '@novum/db';
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
import { SoftwareConfigService } from './software-config.service';
import { StackService } from './stack.service';
import { StackStore } from './stack.store';

/** Heat's root URL; the catalog endpoint adds `/v1/$(project_id)s`, which Keystone fills per token. */
export function orchestrationRootUrl(config: NovumConfig): string {
  return publicUrl(config, config.ports.orchestration, 'heat-api');
}

/** Heat API v1 and its engine (in this process for now; the engine's state is all in the database). */
@Module({})
export class OrchestrationModule {
  static forRoot(config: NovumConfig, validator?: unknown): DynamicModule {
    return {
      module: OrchestrationModule,
      imports: [DbModule.forRoot(config)],
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
        { provide: NOVUM_CONFIG, useValue: config },
        StackStore,
        IdentityClient,
        Engine,
        StackService,
        WaitConditionSignals,
        SoftwareConfigService,
        ...serviceAuthProviders(config, validator),
      ],
    };
  }
}
