import 'reflect-metadata';
import { runService } from '@novum/common';
import { BootstrapService } from './bootstrap.service';
import { bootstrapPasswords, bootstrapSpec, writeClientConfig } from './first-start';
import { identityService } from './http';

/** Keystone on its own: `node dist/apps/identity/main.js`. */
runService(async (config) => {
  const app = await identityService.create(config);
  await app.init();
  const passwords = bootstrapPasswords(config);
  await app
    .get(BootstrapService)
    .run(bootstrapSpec(config, passwords, [identityService.catalogEntry(config)]));
  writeClientConfig(config, passwords);
  await app.listen(config.ports.identity, config.bindAddress);
  return [app];
});
