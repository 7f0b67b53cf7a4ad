import { createHttpApp, novaFault, ServiceDescriptor } from '@novum/common';
import { ComputeBootstrap } from './bootstrap.service';
import { ComputeApiModule, computeRootUrl } from './compute-api.module';
import { installMicroversions } from './microversion';

const PREFIX = 'compute';

export const computeService: ServiceDescriptor = {
  name: 'compute',
  port: (config) => config.ports.compute,
  catalogEntry: (config) => ({
    type: 'compute',
    name: 'nova',
    description: 'Novum Compute (Nova v2.1)',
    url: `${computeRootUrl(config)}/v2.1`,
  }),
  create: async (config, validator) => {
    const app = await createHttpApp({
      name: 'compute-api',
      module: ComputeApiModule.forRoot(config, validator),
      prefix: PREFIX,
      faultStyle: novaFault,
      requestIdHeaders: ['x-compute-request-id'],
    });
    installMicroversions(app.getHttpAdapter().getInstance(), PREFIX);
    return app;
  },
  bootstrap: async (app) => {
    await app.get(ComputeBootstrap).run();
  },
};
