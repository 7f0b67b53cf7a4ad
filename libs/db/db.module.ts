import { DynamicModule, Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { acquireDataSource, DatabaseSettings, releaseDataSource } from './data-source';

@Global()
@Module({})
export class DbModule implements OnApplicationShutdown {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  static forRoot(settings: DatabaseSettings): DynamicModule {
    return {
      module: DbModule,
      providers: [{ provide: DataSource, useFactory: () => acquireDataSource(settings) }],
      exports: [DataSource],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await releaseDataSource(this.dataSource);
  }
}
