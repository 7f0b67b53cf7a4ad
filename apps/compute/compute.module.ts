import { DynamicModule, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { BusModule, MessageBus } from '@novum/bus';
import { NovumConfig } from '@novum/common';
import { ComputeRpcClient, InstanceRecords } from '@novum/compute';
import { DbModule } from '@novum/db';
import { AGENT_OPTIONS, AgentOptions, ComputeManager } from './compute-manager';
import { NetworkFilterEvents } from './guest-network';

/** One host's compute agent: bus only, no HTTP. A process may run several (fake hosts for scale tests). */
@Module({})
export class ComputeAgentModule {
  static forRoot(config: NovumConfig, options: AgentOptions): DynamicModule {
    return {
      module: ComputeAgentModule,
      imports: [
        DbModule.forRoot(config),
        BusModule.forRoot({
          amqpUrl: config.amqpUrl,
          // Many fake hosts in one process: one connection for all, not one each (a broker allows ~1,000).
          shareConnection: config.fakeHosts > 1,
          hostQueueType: config.busHostQueueType,
        }),
      ],
      providers: [
        { provide: AGENT_OPTIONS, useValue: options },
        {
          provide: InstanceRecords,
          useFactory: (ds: DataSource) => new InstanceRecords(ds),
          inject: [DataSource],
        },
        {
          provide: ComputeRpcClient,
          useFactory: (bus: MessageBus) => new ComputeRpcClient(bus),
          inject: [MessageBus],
        },
        ComputeManager,
        NetworkFilterEvents,
      ],
    };
  }
}
