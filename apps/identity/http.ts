import { createHttpApp, keystoneFault, ServiceDescriptor } from '@novum/common';
import { identityPublicUrl, IdentityModule } from './identity.module';

export const identityService: ServiceDescriptor = {
  name: 'identity',
  port: (config) => config.ports.identity,
  catalogEntry: (config) => ({
    type: 'identity',
    name: 'keystone',
    description: 'Novum Identity (Keystone v3)',
    url: identityPublicUrl(config),
  }),
  create: (config) =>
    createHttpApp({
      name: 'identity',
      module: IdentityModule.forRoot(config),
      prefix: 'identity',
      faultStyle: keystoneFault,
    }),
};
