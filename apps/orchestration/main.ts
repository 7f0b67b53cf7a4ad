import 'reflect-metadata';
import { runStandaloneService } from '@novum/common';
import { orchestrationService } from './http';

/** Heat on its own: `node dist/apps/orchestration/main.js` (tokens validated through NOVUM_IDENTITY_URL). */
runStandaloneService(orchestrationService);
