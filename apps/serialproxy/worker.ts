import { IsNull } from 'typeorm';
import { rootLogger, WorkerDescriptor } from '@novum/common';
import { ConsoleAuthTokens } from '@novum/compute';
import { acquireDataSource, InstanceEntity, releaseDataSource } from '@novum/db';
import { SerialProxy } from './serial-proxy';

/** nova-serialproxy as a worker of the all-in-one or on its own, on NOVUM_SERIALPROXY_PORT. */
export const serialProxyWorker: WorkerDescriptor = {
  name: 'serialproxy',
  async start(config) {
    const dataSource = await acquireDataSource(config);
    const proxy = new SerialProxy({
      tokens: new ConsoleAuthTokens(dataSource),
      instanceExists: async (uuid) =>
        (await dataSource.getRepository(InstanceEntity).countBy({ uuid, deletedAt: IsNull() })) > 0,
    });
    try {
      await proxy.listen(config.ports.serialProxy, config.bindAddress);
    } catch (error) {
      await releaseDataSource(dataSource);
      throw error;
    }
    rootLogger().info({ port: proxy.port }, 'serial console proxy listening');
    return [
      {
        close: async () => {
          await proxy.close();
          await releaseDataSource(dataSource);
        },
      },
    ];
  },
};
