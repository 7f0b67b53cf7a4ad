import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { registerWithIdentity } from './catalog-registration';
import { NovumConfig } from './config';
import { rootLogger } from './logger';
import { runService } from './run-service';

export interface CatalogEntry {
  type: string;
  name: string;
  description: string;
  url: string;
}

/**
 * What the all-in-one launcher needs to know of an HTTP service: how to build it, where it listens and
 * what it puts in the catalog. Each app exports one from its `http.ts`.
 */
/** What first-start data of a service may refer to, from identity's bootstrap. */
export interface BootstrapContext {
  /** Project ids of the bootstrap accounts, by name (`admin`, `demo`, ...). */
  projects: Record<string, string>;
}

export interface ServiceDescriptor {
  name: string;
  port(config: NovumConfig): number;
  catalogEntry(config: NovumConfig): CatalogEntry;
  /**
   * Builds the service. `validator` is the identity service's in-process token validator in the
   * all-in-one cloud; without it the service validates tokens through the identity API.
   */
  create(config: NovumConfig, validator?: unknown): Promise<NestFastifyApplication>;
  /** First-start data (idempotent: it runs at every start), after identity's bootstrap. */
  bootstrap?(app: NestFastifyApplication, context: BootstrapContext): Promise<void>;
}

export function publicUrl(config: NovumConfig, port: number, path: string): string {
  return `http://${config.publicHost}:${port}/${path}`;
}

/** The identity URL a service running apart from identity validates tokens with. */
export function identityUrlFor(config: NovumConfig): string {
  return config.identityUrl ?? publicUrl(config, config.ports.identity, 'identity');
}

/**
 * `main.ts` of an app that runs on its own: build, put its entry in identity's catalog and make its first-start
 * data (registerWithIdentity), listen, stop on SIGTERM.
 */
export function runStandaloneService(descriptor: ServiceDescriptor): void {
  runService(async (config) => {
    const app = await descriptor.create(config);
    await app.init();
    const context = await registerWithIdentity(
      config,
      identityUrlFor(config),
      descriptor.catalogEntry(config),
    );
    await descriptor.bootstrap?.(app, context);
    await app.listen(descriptor.port(config), config.bindAddress);
    rootLogger().info(
      { service: descriptor.name, url: descriptor.catalogEntry(config).url },
      `${descriptor.name} is running`,
    );
    return [app];
  });
}

/**
 * A service without HTTP (the conductor, the compute agents): the all-in-one starts it in-process after
 * the HTTP services; alone, `runStandaloneWorker` runs it. It resolves with what to close on shutdown.
 */
export interface WorkerDescriptor {
  name: string;
  start(config: NovumConfig): Promise<{ close(): Promise<unknown> }[]>;
}

/** `main.ts` of a worker that runs on its own. */
export function runStandaloneWorker(descriptor: WorkerDescriptor): void {
  runService(async (config) => {
    const started = await descriptor.start(config);
    rootLogger().info({ service: descriptor.name }, `${descriptor.name} is running`);
    return started;
  });
}
