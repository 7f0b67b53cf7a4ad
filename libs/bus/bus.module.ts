import { DynamicModule, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { BUS_TRANSPORT, MessageBus } from './bus';
import { InProcessTransport } from './in-process.transport';
import { RabbitMqTransport } from './rabbitmq.transport';
import { BusTransport } from './transport';

export interface BusModuleOptions {
  /** `amqp://user:pass@host:5672/vhost` puts the bus on RabbitMQ; unset, it stays in this process. */
  amqpUrl?: string;
  /** Prefix of RabbitMQ queue and exchange names (default `novum`). */
  prefix?: string;
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
            const transport = options.amqpUrl
              ? new RabbitMqTransport(options.amqpUrl, { prefix: options.prefix })
              : new InProcessTransport();
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
