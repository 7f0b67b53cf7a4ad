import 'reflect-metadata';
import { runStandaloneWorker } from '@novum/common';
import { conductorWorker } from './worker';

/** The conductor on its own: `node dist/apps/conductor/main.js` (with DATABASE_URL and AMQP_URL). */
runStandaloneWorker(conductorWorker);
