import { ChildProcess, spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';

/**
 * A real Novum cloud for end-to-end tests: the built all-in-one (`dist/apps/novum/main.js`) in a child
 * process with its own data dir and ports. In production mode it gets a fresh PostgreSQL database and a
 * fresh RabbitMQ vhost, both removed again by `destroy()`.
 */
export type CloudMode = 'embedded' | 'production';

export interface CloudHandle {
  mode: CloudMode;
  dataDir: string;
  env: Record<string, string>;
  identityUrl: string;
  /** Public URL of every service the all-in-one started, by name (identity, image, network, ...). */
  services: Record<string, string>;
  adminPassword: string;
  demoPassword: string;
  cloudsYaml: string;
  log: string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

const ROOT = resolve(__dirname, '../../..');
/** Which built entry point runs: the all-in-one launcher, or one app on its own. */
export type Entry = 'novum' | 'identity';

export function testMode(): CloudMode {
  return process.env.NOVUM_TEST_MODE === 'production' ? 'production' : 'embedded';
}

async function adminQuery(sql: string): Promise<void> {
  const client = new Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function rabbitmqctl(...args: string[]): void {
  execFileSync('rabbitmqctl', args, { stdio: 'ignore', timeout: 120_000 });
}

export async function waitForHttp(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(url);
      if (response.status < 500) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function waitForFile(path: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} did not appear within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ServiceProcess {
  child: ChildProcess;
  /** The exit code (null after a signal), once the process has ended. */
  exited: Promise<number | null>;
  /** Sends the signal and waits for the end (SIGKILL after 20 s); the exit code, or null. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * One built entry point (`dist/apps/<app>/main.js`) in a child process with the given environment (and user),
 * its output appended to logFile; killed with jest if its test never stops it.
 */
export function launchService(
  main: string,
  env: Record<string, string>,
  logFile: string,
  user?: { uid: number; gid: number },
  /** A command the service runs under (`[wrapper, ...args]`, which ends by exec'ing node with `main`). */
  wrapper: readonly string[] = [],
): ServiceProcess {
  const out = openSync(logFile, 'a');
  const [command, ...args] = [...wrapper, process.execPath, main];
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', out, out],
    ...user,
  });
  closeSync(out);
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  // A process its test never stopped (a hook that timed out before it got the handle) ends with jest.
  const orphan = () => child.kill('SIGKILL');
  process.once('exit', orphan);
  void exited.then(() => process.off('exit', orphan));
  return {
    child,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      // A service that does not stop in time is a bug the test should see, but must not leave running.
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** The built entry point of an app (NOVUM_DIST lets a test run use a build other than dist/). */
export const entryPoint = (app: string) =>
  join(process.env.NOVUM_DIST ?? join(ROOT, 'dist'), `apps/${app}/main.js`);

/** A fresh PostgreSQL database and RabbitMQ vhost (guest may use it), as DATABASE_URL and AMQP_URL. */
export async function createBackends(
  id: string,
): Promise<{ env: Record<string, string>; drop(): Promise<void> }> {
  const database = `novum_e2e_${id}`;
  const vhost = `novum-e2e-${id}`;
  await adminQuery(`CREATE DATABASE ${database}`);
  rabbitmqctl('add_vhost', vhost);
  rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
  return {
    env: {
      DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}`,
      AMQP_URL: `amqp://guest:guest@127.0.0.1:5672/${vhost}`,
    },
    async drop() {
      await adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      rabbitmqctl('delete_vhost', vhost);
    },
  };
}

export async function startCloud(options: {
  portBase: number;
  mode?: CloudMode;
  entry?: Entry;
  extraEnv?: Record<string, string>;
}): Promise<CloudHandle> {
  const entry = options.entry ?? 'novum';
  const main = entryPoint(entry);
  const mode = options.mode ?? testMode();
  const id = randomBytes(4).toString('hex');
  const dataDir = mkdtempSync(join(tmpdir(), 'novum-e2e-'));
  const env: Record<string, string> = {
    NOVUM_DATA_DIR: dataDir,
    NOVUM_BIND_ADDRESS: '127.0.0.1',
    NOVUM_PUBLIC_HOST: '127.0.0.1',
    NOVUM_LOG_LEVEL: process.env.NOVUM_E2E_LOG_LEVEL ?? 'warn',
    NOVUM_IDENTITY_PORT: String(options.portBase),
    NOVUM_COMPUTE_PORT: String(options.portBase + 1),
    NOVUM_IMAGE_PORT: String(options.portBase + 2),
    NOVUM_NETWORK_PORT: String(options.portBase + 3),
    NOVUM_ORCHESTRATION_PORT: String(options.portBase + 4),
    NOVUM_SERIALPROXY_PORT: String(options.portBase + 5),
    ...options.extraEnv,
  };
  const backends = mode === 'production' ? await createBackends(id) : undefined;
  Object.assign(env, backends?.env);

  let process_: ServiceProcess | undefined;
  const logFile = join(dataDir, 'novum.log');
  const identityUrl = `http://127.0.0.1:${options.portBase}/identity`;

  const handle: CloudHandle = {
    mode,
    dataDir,
    env,
    identityUrl,
    services: { identity: identityUrl },
    adminPassword: '',
    demoPassword: '',
    cloudsYaml: join(dataDir, 'clouds.yaml'),
    log: logFile,
    async start() {
      // A killed cloud leaves its ready.json behind; it must not pass for the new process being ready.
      rmSync(join(dataDir, 'ready.json'), { force: true });
      const started = launchService(main, env, logFile);
      process_ = started;
      const failed = started.exited.then((code) => {
        throw new Error(
          `novum exited with ${code} during start; log:\n${readFileSync(logFile, 'utf8').slice(-4000)}`,
        );
      });
      // The all-in-one writes ready.json once every service listens; an app alone is ready when it answers.
      const ready =
        entry === 'novum' ? waitForFile(join(dataDir, 'ready.json')) : waitForHttp(`${identityUrl}/v3`);
      await Promise.race([ready, failed]);
      if (entry === 'novum')
        handle.services = JSON.parse(readFileSync(join(dataDir, 'ready.json'), 'utf8')).services;
      const passwords = JSON.parse(readFileSync(join(dataDir, 'bootstrap-passwords.json'), 'utf8'));
      handle.adminPassword = passwords.admin;
      handle.demoPassword = passwords.demo;
    },
    async stop(signal = 'SIGTERM') {
      return process_ ? process_.stop(signal) : null;
    },
    async destroy() {
      await handle.stop();
      await backends?.drop();
      if (process.env.NOVUM_E2E_KEEP_LOG)
        writeFileSync(process.env.NOVUM_E2E_KEEP_LOG, readFileSync(logFile));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    await handle.start();
  } catch (error) {
    // A cloud that never started is gone with its data dir, database and vhost: its test has no handle to do it.
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-4000) : '';
    await handle.destroy().catch(() => undefined);
    if (error instanceof Error && !error.message.includes('; log:')) error.message += `; log:\n${log}`;
    throw error;
  }
  return handle;
}
