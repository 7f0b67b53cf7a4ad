import 'reflect-metadata';
import { runStandaloneWorker } from '@novum/common';
import { computeWorker } from './worker';

/** This host's compute agent on its own: `node dist/apps/compute/main.js` (with DATABASE_URL and AMQP_URL). */
runStandaloneWorker(computeWorker);
