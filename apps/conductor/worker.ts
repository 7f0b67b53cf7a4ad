import { NestFactory } from '@nestjs/core';
import { PinoNestLogger, WorkerDescriptor } from '@novum/common';
import { ConductorModule } from './conductor.module';

/** The conductor (and its scheduler) as a worker of the all-in-one or on its own. */
export const conductorWorker: WorkerDescriptor = {
  name: 'conductor',
  async start(config) {
    const app = await NestFactory.createApplicationContext(ConductorModule.forRoot(config), {
      logger: new PinoNestLogger(),
    });
    await app.init();
    return [app];
  },
};
