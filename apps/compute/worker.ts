import { join } from 'node:path';
import { INestApplicationContext, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  identityUrlFor,
  NovumConfig,
  PinoNestLogger,
  SERVICE_USER,
  servicePassword,
  WorkerDescriptor,
} from '@novum/common';
import { InstanceRecords } from '@novum/compute';
import { MessageBus } from '@novum/bus';
import { HostNetwork, NETWORK_PLUGIN_QUEUE, PluginMethod } from '@novum/virt';
import { AgentOptions } from './compute-manager';
import { ComputeAgentModule } from './compute.module';
import { agentHosts, createDrivers } from './drivers';
import { NeutronRouterSync } from './router-sync';
import { NeutronGuestNetworking } from './guest-network';
import { SerialConsoleRelay } from './serial-console-relay';
import { DiskTransfer } from './disk-transfer';
import { glanceImageUpload } from './image-upload';
import { GuestMetadataService, hostMetadataResolver, orchestrationForwarder } from './metadata-service';
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
  // Only drivers with real guests plug ports into the host (and serve them metadata); the fake one has none.
  const realGuests = config.computeDrivers.some((name) => name !== 'fake');
  const metadata = realGuests ? new GuestMetadataService() : undefined;
  const hostNetwork = realGuests
    ? new HostNetwork({
        stateDir: join(config.dataDir, 'host-network'),
        metadata,
        tunnel: config.tunnelIp ? { localIp: config.tunnelIp, group: config.vxlanGroup } : undefined,
        physicalInterfaces: config.physicalInterfaces,
        warn: (message) => new Logger('HostNetwork').warn(message),
      })
    : undefined;
  const networkApi = serviceClient(credential, 'network');
  const routerSync =
    hostNetwork && config.l3Agent ? new NeutronRouterSync(hostNetwork, networkApi) : undefined;
  const guestNetworking =
    hostNetwork && new NeutronGuestNetworking(options.host, hostNetwork, networkApi, routerSync);
  const app = await NestFactory.createApplicationContext(
    ComputeAgentModule.forRoot(config, {
      drivers: createDrivers(
        config.computeDrivers,
        options.host,
        { ...config.fakeHostSize, delays: { spawn: config.fakeSpawnSeconds * 1000 } },
        {
          dataDir: config.dataDir,
          containerRuntime: config.containerRuntime,
          kvmAccel: config.kvmAccel,
          kvmUser: config.kvmUser,
          network: hostNetwork,
        },
      ),
      allocationRatios: config.allocationRatios,
      reportIntervalSeconds: config.reportIntervalSeconds,
      powerSyncIntervalSeconds: config.powerSyncIntervalSeconds,
      resizeConfirmWindowSeconds: config.resizeConfirmWindowSeconds,
      shelvedOffloadTimeSeconds: config.shelvedOffloadTimeSeconds,
      reclaimInstanceIntervalSeconds: config.reclaimInstanceIntervalSeconds,
      imageUpload: glanceImageUpload(credential),
      network: guestNetworking,
      serialConsoleRelay: new SerialConsoleRelay({
        address: config.serialProxyclientAddress,
        ticketSeconds: config.consoleTokenTtlSeconds,
      }),
      diskTransfer: new DiskTransfer({ address: config.serialProxyclientAddress }),
      liveMigrationAddress: config.liveMigrationInboundAddr ?? config.tunnelIp ?? '127.0.0.1',
      ...options,
    }),
    { logger: new PinoNestLogger() },
  );
  if (metadata && hostNetwork && guestNetworking) {
    metadata.serve(
      hostMetadataResolver(options.host, hostNetwork, app.get(InstanceRecords), guestNetworking),
    );
    metadata.forwardSignals(orchestrationForwarder(credential));
  }
  routerSync?.setOwner({
    host: options.host,
    reportUp: (portIds) =>
      app
        .get(MessageBus)
        .call(NETWORK_PLUGIN_QUEUE, PluginMethod.DEVICE_UP, { portIds, host: options.host }, 10_000),
  });
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
