import { DynamicModule, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { BUS_TRANSPORT, MessageBus } from './bus';
import { InProcessTransport } from './in-process.transport';
import { RabbitMqTransport, sharedRabbitMqTransport } from './rabbitmq.transport';
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
            const { amqpUrl, prefix, shareConnection } = options;
            const transport = !amqpUrl
              ? new InProcessTransport()
              : shareConnection
                ? sharedRabbitMqTransport(amqpUrl, { prefix })
                : new RabbitMqTransport(amqpUrl, { prefix });
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
