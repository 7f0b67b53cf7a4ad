import { createHttpApp, ServiceDescriptor } from '@novum/common';
import { OrchestrationModule, orchestrationRootUrl } from './orchestration.module';
import { heatFault } from './views';

export const orchestrationService: ServiceDescriptor = {
  name: 'orchestration',
  port: (config) => config.ports.orchestration,
  catalogEntry: (config) => ({
    type: 'orchestration',
    name: 'heat',
    description: 'Novum Orchestration (Heat v1)',
    url: `${orchestrationRootUrl(config)}/v1/$(project_id)s`,
  }),
  create: (config, validator) =>
    createHttpApp({
      name: 'orchestration',
      module: OrchestrationModule.forRoot(config, validator),
      prefix: 'heat-api',
      faultStyle: heatFault,
    }),
};
