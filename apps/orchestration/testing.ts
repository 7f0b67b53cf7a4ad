import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthContext } from '@novum/auth';
import { acquireDataSource, releaseDataSource } from '@novum/db';
import { DataSource } from 'typeorm';
import { CloudSession, CredentialSeal, IdentityClient } from './cloud';
import { Engine } from './engine';
import { ActionContext } from './resources/types';
import { StackService } from './stack.service';
import { StackStore } from './stack.store';

/** The caller of the orchestration unit tests: a member of project-1. */
export const memberAuth: AuthContext = {
  token: 'user-token',
  userId: 'user-1',
  userName: 'demo',
  userDomainId: 'default',
  projectId: 'project-1',
  roles: ['member', 'reader'],
  methods: ['password'],
  auditIds: [],
  expiresAt: '',
  issuedAt: '',
};

/**
 * Core resources never reach the cloud in unit tests: the identity client only hands out a token credential,
 * and a session only when the test gives a (fake) cloud.
 */
export function offlineIdentity(cloud?: CloudSession): IdentityClient {
  return {
    credentialFor: async () => ({ kind: 'token', token: 'user-token' }),
    credentials: new CredentialSeal('unit-test-key'),
    forget: async () => undefined,
    session: async () => {
      if (cloud) return cloud;
      throw new Error('no cloud in unit tests');
    },
    dropSession: () => undefined,
  } as unknown as IdentityClient;
}

/** An engine and stack service over a fresh SQLite database in a temporary directory, for unit tests. */
export interface EngineHarness {
  dir: string;
  dataSource: DataSource;
  store: StackStore;
  engine: Engine;
  stacks: StackService;
}

export async function openEngine(prefix: string, cloud?: CloudSession): Promise<EngineHarness> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const dataSource = await acquireDataSource({ dataDir: dir });
  const store = new StackStore(dataSource);
  const identity = offlineIdentity(cloud);
  const engine = new Engine(store, identity);
  return { dir, dataSource, store, engine, stacks: new StackService(store, engine, identity) };
}

export async function closeEngine(harness: EngineHarness | undefined): Promise<void> {
  if (!harness) return;
  await releaseDataSource(harness.dataSource);
  rmSync(harness.dir, { recursive: true, force: true });
}

/** Polls `check` every 10 ms until it holds; fails naming `what` after 5 s. */
export async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A resource action's context on a fake cloud (anything answering `request` as CloudSession does): stack
 * `app`, no waiting between polls.
 */
export function fakeActionContext(cloud: object): ActionContext {
  return {
    cloud: async () => cloud as unknown as CloudSession,
    stackName: 'app',
    stackId: 'stack-1',
    physicalName: 'app-res-abcdef123456',
    sleep: async () => undefined,
  };
}
