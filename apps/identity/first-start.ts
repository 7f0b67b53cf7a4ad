import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CatalogEntry, NovumConfig, SERVICE_USER, servicePassword } from '@novum/common';
import { BootstrapSpec } from './bootstrap.service';
import { identityPublicUrl } from './identity.module';

export interface BootstrapPasswords {
  admin: string;
  demo: string;
}

/** The accounts Tempest's pre-provisioned accounts file names, plus the cloud admin. */
const ACCOUNTS = [
  { name: 'admin', roles: ['admin'], password: 'admin' },
  { name: 'admin2', roles: ['admin'], password: 'admin' },
  { name: 'demo', roles: ['member', 'reader'], password: 'demo' },
  { name: 'alt_demo', roles: ['member', 'reader'], password: 'demo' },
  { name: 'demo2', roles: ['member', 'reader'], password: 'demo' },
  { name: 'demo3', roles: ['member', 'reader'], password: 'demo' },
] as const;

/**
 * Passwords of the bootstrap accounts: from the environment on first start, else generated; kept in the
 * data dir (mode 0600) so that restarts, clouds.yaml and the test suite agree.
 */
export function bootstrapPasswords(config: NovumConfig): BootstrapPasswords {
  const file = join(config.dataDir, 'bootstrap-passwords.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as BootstrapPasswords;
  const passwords = {
    admin: config.adminPassword ?? randomBytes(12).toString('base64url'),
    demo: config.demoPassword ?? randomBytes(12).toString('base64url'),
  };
  mkdirSync(config.dataDir, { recursive: true });
  writeFileSync(file, JSON.stringify(passwords, null, 2), { mode: 0o600 });
  return passwords;
}

export function bootstrapSpec(
  config: NovumConfig,
  passwords: BootstrapPasswords,
  services: CatalogEntry[],
): BootstrapSpec {
  return {
    region: config.region,
    accounts: [
      ...ACCOUNTS.map((a) => ({
        name: a.name,
        project: a.name,
        roles: [...a.roles],
        password: passwords[a.password],
      })),
      // The compute agents' service user (snapshot uploads), as devstack's `nova` in project `service`.
      {
        name: SERVICE_USER.name,
        project: SERVICE_USER.project,
        roles: ['admin'],
        password: servicePassword(config),
      },
    ],
    services,
  };
}

/** Writes `clouds.yaml` (an admin and a demo cloud) and an admin `openrc` into the data dir. */
export function writeClientConfig(
  config: NovumConfig,
  passwords: BootstrapPasswords,
): { cloudsYaml: string; openrc: string } {
  const authUrl = `${identityPublicUrl(config)}/v3`;
  const cloud = (user: string, password: string) =>
    [
      `  novum-${user}:`,
      '    auth:',
      `      auth_url: ${authUrl}`,
      `      username: ${user}`,
      `      password: ${JSON.stringify(password)}`,
      `      project_name: ${user}`,
      '      user_domain_name: Default',
      '      project_domain_name: Default',
      `    region_name: ${config.region}`,
      '    identity_api_version: 3',
      '    interface: public',
    ].join('\n');
  const cloudsYaml = join(config.dataDir, 'clouds.yaml');
  writeFileSync(
    cloudsYaml,
    `clouds:\n${cloud('admin', passwords.admin)}\n${cloud('demo', passwords.demo)}\n`,
    { mode: 0o600 },
  );
  const openrc = join(config.dataDir, 'openrc');
  const quote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;
  writeFileSync(
    openrc,
    [
      `export OS_AUTH_URL=${authUrl}`,
      'export OS_IDENTITY_API_VERSION=3',
      'export OS_USERNAME=admin',
      `export OS_PASSWORD=${quote(passwords.admin)}`,
      'export OS_PROJECT_NAME=admin',
      'export OS_USER_DOMAIN_NAME=Default',
      'export OS_PROJECT_DOMAIN_NAME=Default',
      `export OS_REGION_NAME=${config.region}`,
      'export OS_INTERFACE=public',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  chmodSync(openrc, 0o600);
  return { cloudsYaml, openrc };
}
