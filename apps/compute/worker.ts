import { join } from 'node:path';
import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  identityUrlFor,
  NovumConfig,
  PinoNestLogger,
  SERVICE_USER,
  servicePassword,
  WorkerDescriptor,
} from '@novum/common';
import { HostNetwork } from '@novum/virt';
import { AgentOptions } from './compute-manager';
import { ComputeAgentModule } from './compute.module';
import { agentHosts, createDrivers } from './drivers';
import { NeutronGuestNetworking } from './guest-network';
import { glanceImageUpload } from './image-upload';
import { ServiceCredential, serviceClient } from './service-client';

/** Starts one host's agent as its own Nest application context (its own bus consumer and heartbeat). */
export async function startAgent(
  config: NovumConfig,
  options: Partial<AgentOptions> & Pick<AgentOptions, 'host'>,
): Promise<INestApplicationContext> {
  const credential: ServiceCredential = {
    identityUrl: identityUrlFor(config),
    username: SERVICE_USER.name,
    password: servicePassword(config),
    projectName: SERVICE_USER.project,
    domainId: SERVICE_USER.domainId,
  };
  // Only drivers with real guests plug ports into the host; the fake one has none.
  const hostNetwork = config.computeDrivers.some((name) => name !== 'fake')
    ? new HostNetwork({ stateDir: join(config.dataDir, 'host-network') })
    : undefined;
  const app = await NestFactory.createApplicationContext(
    ComputeAgentModule.forRoot(config, {
      drivers: createDrivers(config.computeDrivers, options.host, config.fakeHostSize, {
        dataDir: config.dataDir,
        containerRuntime: config.containerRuntime,
        kvmAccel: config.kvmAccel,
        network: hostNetwork,
      }),
      allocationRatios: config.allocationRatios,
      reportIntervalSeconds: config.reportIntervalSeconds,
      powerSyncIntervalSeconds: config.powerSyncIntervalSeconds,
      resizeConfirmWindowSeconds: config.resizeConfirmWindowSeconds,
      shelvedOffloadTimeSeconds: config.shelvedOffloadTimeSeconds,
      reclaimInstanceIntervalSeconds: config.reclaimInstanceIntervalSeconds,
      imageUpload: glanceImageUpload(credential),
      network:
        hostNetwork &&
        new NeutronGuestNetworking(options.host, hostNetwork, serviceClient(credential, 'network')),
      ...options,
    }),
    { logger: new PinoNestLogger() },
  );
  await app.init();
  return app;
}

/** The compute agents of this process: one for NOVUM_HOST, or NOVUM_FAKE_HOSTS of them. */
export const computeWorker: WorkerDescriptor = {
  name: 'compute',
  async start(config) {
    const agents: INestApplicationContext[] = [];
    for (const host of agentHosts(config.host, config.fakeHosts))
      agents.push(await startAgent(config, { host }));
    return agents;
  },
};
