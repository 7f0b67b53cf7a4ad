import 'reflect-metadata';
import { runService } from '@novum/common';
import { BootstrapService } from './bootstrap.service';
import { bootstrapPasswords, bootstrapSpec, identityCatalogEntry, writeClientConfig } from './first-start';
import { createIdentityApp } from './http';

/** Keystone on its own: `node dist/apps/identity/main.js`. */
runService(async (config) => {
  const app = await createIdentityApp(config);
  await app.init();
  const passwords = bootstrapPasswords(config);
  await app.get(BootstrapService).run(bootstrapSpec(config, passwords, [identityCatalogEntry(config)]));
  writeClientConfig(config, passwords);
  await app.listen(config.ports.identity, config.bindAddress);
  return [app];
});
