import 'reflect-metadata';
import { runStandaloneService } from '@novum/common';
import { computeService } from './http';

/** Nova's API on its own: `node dist/apps/compute-api/main.js` (tokens validated through NOVUM_IDENTITY_URL). */
runStandaloneService(computeService);
