import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { PinoNestLogger, runStandaloneWorker } from '@novum/common';
import { OrchestrationEngineModule } from './orchestration.module';

/**
 * A Heat engine on its own (heat-engine): `node dist/apps/orchestration/engine-main.js` with the shared
 * database (NOVUM_DATABASE_URL) and bus (NOVUM_AMQP_URL); it takes stack actions from the bus beside any others.
 */
runStandaloneWorker({
  name: 'orchestration-engine',
  async start(config) {
    const app = await NestFactory.createApplicationContext(OrchestrationEngineModule.forRoot(config), {
      logger: new PinoNestLogger(),
    });
    await app.init();
    return [app];
  },
});
