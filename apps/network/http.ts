import { createHttpApp, neutronFault, ServiceDescriptor } from '@novum/common';
import { NetworkBootstrap } from './bootstrap.service';
import { NetworkModule, networkPublicUrl } from './network.module';

export const networkService: ServiceDescriptor = {
  name: 'network',
  port: (config) => config.ports.network,
  catalogEntry: (config) => ({
    type: 'network',
    name: 'neutron',
    description: 'Novum Network (Neutron v2.0)',
    url: networkPublicUrl(config),
  }),
  create: (config, validator) =>
    createHttpApp({
      name: 'network',
      module: NetworkModule.forRoot(config, validator),
      prefix: 'network',
      faultStyle: neutronFault,
    }),
  bootstrap: async (app, { projects }) => {
    if (projects.admin) await app.get(NetworkBootstrap).run(projects.admin);
  },
};
