import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NovumConfig } from './config';

/** Nova's [service_user]: the account services use to call each other (snapshot uploads to the image service). */
export const SERVICE_USER = { name: 'nova', project: 'service', domainId: 'default' } as const;

/**
 * The service user's password: NOVUM_SERVICE_PASSWORD, else the one kept in the data dir (generated at
 * first use, mode 0600), so that the identity bootstrap and the compute agents of one host agree.
 */
export function servicePassword(config: Pick<NovumConfig, 'dataDir' | 'servicePassword'>): string {
  if (config.servicePassword) return config.servicePassword;
  const file = join(config.dataDir, 'service-password');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const password = randomBytes(18).toString('base64url');
  mkdirSync(config.dataDir, { recursive: true });
  try {
    writeFileSync(file, password, { mode: 0o600, flag: 'wx' });
  } catch {
    // Another process of this host wrote it first: use theirs.
    return readFileSync(file, 'utf8').trim();
  }
  return password;
}
