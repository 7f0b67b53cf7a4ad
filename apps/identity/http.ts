import { createHttpApp, keystoneFault, NovumConfig } from '@novum/common';
import { IdentityModule } from './identity.module';

export function createIdentityApp(config: NovumConfig) {
  return createHttpApp({
    name: 'identity',
    module: IdentityModule.forRoot(config),
    prefix: 'identity',
    faultStyle: keystoneFault,
  });
}
