import 'reflect-metadata';
import { runStandaloneWorker } from '@novum/common';
import { serialProxyWorker } from './worker';

/** The serial console proxy on its own: `node dist/apps/serialproxy/main.js` (with DATABASE_URL). */
runStandaloneWorker(serialProxyWorker);
