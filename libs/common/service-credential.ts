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
  return config.servicePassword || dataDirSecret(config.dataDir, 'service-password');
}

/**
 * The key the orchestration service seals the credentials it keeps for stacks with (Heat's
 * `auth_encryption_key`): NOVUM_AUTH_ENCRYPTION_KEY, else one generated into the data dir (mode 0600).
 */
export function authEncryptionKey(config: Pick<NovumConfig, 'dataDir' | 'authEncryptionKey'>): string {
  return config.authEncryptionKey || dataDirSecret(config.dataDir, 'auth-encryption-key', 32);
}

/** A secret kept in a file of the data dir: read, or generated at first use by whichever process is first. */
function dataDirSecret(dataDir: string, name: string, bytes = 18): string {
  const file = join(dataDir, name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(bytes).toString('base64url');
  mkdirSync(dataDir, { recursive: true });
  try {
    writeFileSync(file, secret, { mode: 0o600, flag: 'wx' });
  } catch {
    // Another process of this host wrote it first: use theirs.
    return readFileSync(file, 'utf8').trim();
  }
  return secret;
}
