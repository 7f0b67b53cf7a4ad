import { DynamicModule, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { BusModule, MessageBus } from '@novum/bus';
import { NOVUM_CONFIG, NovumConfig } from '@novum/common';
import { ComputeRpcClient, InstanceRecords } from '@novum/compute';
import { DbModule } from '@novum/db';
import { ConductorService } from './conductor.service';
import { Scheduler } from './scheduler';

/** The conductor with its scheduler: bus only, no HTTP. */
@Module({})
export class ConductorModule {
  static forRoot(config: NovumConfig): DynamicModule {
    return {
      module: ConductorModule,
      imports: [
        DbModule.forRoot(config),
        BusModule.forRoot({ amqpUrl: config.amqpUrl, hostQueueType: config.busHostQueueType }),
      ],
      providers: [
        { provide: NOVUM_CONFIG, useValue: config },
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
        Scheduler,
        ConductorService,
      ],
    };
  }
}
