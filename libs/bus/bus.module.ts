import { DynamicModule, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { BUS_TRANSPORT, MessageBus } from './bus';
import { InProcessTransport } from './in-process.transport';
import { QueueType, RabbitMqTransport, sharedRabbitMqTransport } from './rabbitmq.transport';
import { BusTransport } from './transport';

export interface BusModuleOptions {
  /** `amqp://user:pass@host:5672/vhost` puts the bus on RabbitMQ; unset, it stays in this process. */
  amqpUrl?: string;
  /** Prefix of RabbitMQ queue and exchange names (default `novum`). */
  prefix?: string;
  /**
   * Share one RabbitMQ connection with the other applications of this process that ask for it (a process of
   * many fake compute hosts); otherwise the application has a connection of its own.
   */
  shareConnection?: boolean;
  /** The RabbitMQ type of a new per-host queue `compute.<host>` (NOVUM_BUS_HOST_QUEUE_TYPE, default classic). */
  hostQueueType?: QueueType;
}

@Module({})
export class BusModule {
  static forRoot(options: BusModuleOptions = {}): DynamicModule {
    return {
      module: BusModule,
      global: true,
      imports: [DiscoveryModule],
      providers: [
        {
          provide: BUS_TRANSPORT,
          useFactory: async (): Promise<BusTransport> => {
            const { amqpUrl, prefix, shareConnection, hostQueueType } = options;
            const transport = !amqpUrl
              ? new InProcessTransport()
              : shareConnection
                ? sharedRabbitMqTransport(amqpUrl, { prefix, hostQueueType })
                : new RabbitMqTransport(amqpUrl, { prefix, hostQueueType });
            await transport.start();
            return transport;
          },
        },
        MessageBus,
      ],
      exports: [MessageBus],
    };
  }
}
