import 'reflect-metadata';
import { runStandaloneService } from '@novum/common';
import { imageService } from './http';

/** Glance on its own: `node dist/apps/image/main.js` (validates tokens through NOVUM_IDENTITY_URL). */
runStandaloneService(imageService);
