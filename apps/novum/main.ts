import 'reflect-metadata';
import { rootLogger, runService } from '@novum/common';
import { BootstrapService } from '../identity/bootstrap.service';
import {
  bootstrapPasswords,
  bootstrapSpec,
  identityCatalogEntry,
  writeClientConfig,
} from '../identity/first-start';
import { createIdentityApp } from '../identity/http';

/**
 * The all-in-one cloud: every service in one process on the embedded default (SQLite in the data dir,
 * in-process bus), each on its standard port. The launcher is the one place that imports apps.
 */
runService(async (config) => {
  const identity = await createIdentityApp(config);
  await identity.init();
  const passwords = bootstrapPasswords(config);
  await identity.get(BootstrapService).run(bootstrapSpec(config, passwords, [identityCatalogEntry(config)]));
  const files = writeClientConfig(config, passwords);
  await identity.listen(config.ports.identity, config.bindAddress);

  rootLogger().info(
    { identity: `http://${config.publicHost}:${config.ports.identity}/identity`, ...files },
    `Novum is running. Use it with: export OS_CLIENT_CONFIG_FILE=${files.cloudsYaml} OS_CLOUD=novum-admin; openstack token issue`,
  );
  return [identity];
});
