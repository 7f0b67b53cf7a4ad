import 'reflect-metadata';
import { runStandaloneService } from '@novum/common';
import { networkService } from './http';

/** Neutron on its own: `node dist/apps/network/main.js` (tokens validated through NOVUM_IDENTITY_URL). */
runStandaloneService(networkService);
