import 'reflect-metadata';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootLogger, runService, serveInProcess, ServiceDescriptor, WorkerDescriptor } from '@novum/common';
import { BootstrapService } from '../identity/bootstrap.service';
import { bootstrapPasswords, bootstrapSpec, writeClientConfig } from '../identity/first-start';
import { identityService } from '../identity/http';
import { imageService } from '../image/http';
import { networkService } from '../network/http';
import { computeService } from '../compute-api/http';
import { orchestrationService } from '../orchestration/http';
import { TokenService } from '../identity/token/token.service';
import { conductorWorker } from '../conductor/worker';
import { computeWorker } from '../compute/worker';
import { serialProxyWorker } from '../serialproxy/worker';

/** The HTTP services that run beside identity, each validating tokens through identity in-process. */
const SERVICES: ServiceDescriptor[] = [imageService, networkService, computeService, orchestrationService];

/**
 * The services without an API of their own (the bus workers and the serial console proxy), started after the
 * HTTP services' bootstrap, closed before them.
 */
const WORKERS: WorkerDescriptor[] = [conductorWorker, computeWorker, serialProxyWorker];

/**
 * The all-in-one cloud: every service in one process on the embedded default (SQLite in the data dir,
 * in-process bus), each on its standard port. The launcher is the one place that imports apps.
 * `ready.json` in the data dir lists the service URLs while the cloud is up.
 */
runService(async (config) => {
  const readyFile = join(config.dataDir, 'ready.json');
  rmSync(readyFile, { force: true });

  const identity = await identityService.create(config);
  await identity.init();
  const validator = identity.get(TokenService);
  const others = [];
  for (const service of SERVICES) {
    const app = await service.create(config, validator);
    await app.init();
    others.push(app);
  }

  const all = [identityService, ...SERVICES];
  const passwords = bootstrapPasswords(config);
  const catalog = all.map((s) => s.catalogEntry(config));
  const projects = await identity.get(BootstrapService).run(bootstrapSpec(config, passwords, catalog));
  for (const [i, service] of SERVICES.entries()) await service.bootstrap?.(others[i], { projects });
  const files = writeClientConfig(config, passwords);
  await identity.listen(config.ports.identity, config.bindAddress);
  for (const [i, app] of others.entries()) await app.listen(SERVICES[i].port(config), config.bindAddress);
  // The services' calls to each other's APIs stay in this process (libs/common/in-process-fetch.ts).
  const apps = [identity, ...others];
  const unserve = all.map((s, i) =>
    serveInProcess(s.catalogEntry(config).url, apps[i].getHttpAdapter().getInstance()),
  );
  const workers = [];
  for (const worker of WORKERS) workers.push(...(await worker.start(config)));

  const urls = Object.fromEntries(all.map((s) => [s.name, s.catalogEntry(config).url]));
  // Written whole or not at all: waiters poll for the file and read it as soon as it exists.
  writeFileSync(`${readyFile}.tmp`, JSON.stringify({ pid: process.pid, services: urls }, null, 2));
  renameSync(`${readyFile}.tmp`, readyFile);
  rootLogger().info(
    { services: urls, ...files },
    `Novum is running. Use it with: export OS_CLIENT_CONFIG_FILE=${files.cloudsYaml} OS_CLOUD=novum-admin; openstack token issue`,
  );
  const forgetReady = {
    close: async () => {
      rmSync(readyFile, { force: true });
      for (const stop of unserve) stop();
    },
  };
  return [identity, ...others, ...workers, forgetReady];
});
