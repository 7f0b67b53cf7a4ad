import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createBackends, entryPoint, launchService, ServiceProcess, waitForHttp } from './cloud';

/**
 * Issue 9's deployment on one machine (ops/multihost/netns-hosts.sh): N hosts as network namespaces, each
 * running its own compute agent; the API services and the conductor on the machine, listening on the
 * management bridge; one PostgreSQL database and one RabbitMQ vhost, which the hosts reach through the
 * script's relay on the bridge: the deployment test/e2e/multihost builds in its beforeAll, for test/bench/load
 * (and for that e2e to adopt).
 */
export const NETNS_SCRIPT = resolve(__dirname, '../../../ops/multihost/netns-hosts.sh');

/** The controller's apps, each a process of its own on the machine. */
export const CONTROLLER_APPS = ['identity', 'image', 'network', 'compute-api', 'conductor'] as const;

export interface MultihostOptions {
  /** The first of six ports: identity, compute, image, network, orchestration, serial proxy. */
  port: number;
  hosts: number;
  /** NOVUM_NETNS_PREFIX (starting with novum) and NOVUM_NETNS_SUBNET (three octets) of this deployment. */
  prefix: string;
  subnet: string;
  /** Each agent's own settings on top of the shared ones (its drivers, for one). */
  agentEnv: Record<string, string>;
  /** Settings of host i alone (1-based), on top of agentEnv. */
  hostEnv?: (i: number) => Record<string, string>;
  logLevel?: string;
  /** Settings of every service, on top of the defaults below. */
  sharedEnv?: Record<string, string>;
}

const sh = (command: string, args: readonly string[], env: Record<string, string> = {}) =>
  execFileSync(command, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });

export class MultihostDeployment {
  readonly netnsEnv: { NOVUM_NETNS_PREFIX: string; NOVUM_NETNS_SUBNET: string };
  readonly bridgeIp: string;
  /** The controller's data dir (clouds.yaml, bootstrap passwords) and the log every service appends to. */
  controller = '';
  log = '';
  readonly processes = new Map<string, ServiceProcess>();
  private backends: Awaited<ReturnType<typeof createBackends>> | undefined;
  private hostsUp = false;

  constructor(readonly options: MultihostOptions) {
    this.netnsEnv = { NOVUM_NETNS_PREFIX: options.prefix, NOVUM_NETNS_SUBNET: options.subnet };
    this.bridgeIp = `${options.subnet}.1`;
  }

  hostName = (i: number) => `mh${i}`;
  indexOf = (host: string) => Number(host.replace(/^mh/, ''));
  netnsOf = (i: number) => `${this.options.prefix}${i}`;
  /** As netns-hosts.sh lays them out: each host's data dir, and its own /run/netns as the machine sees it. */
  dataDirOf = (i: number) => `/run/novum-multihost/${this.options.prefix}/${this.netnsOf(i)}/data`;
  netnsDirOf = (i: number) => `/run/novum-multihost/${this.options.prefix}/${this.netnsOf(i)}/netns`;
  tunnelIpOf = (i: number) => `${this.options.subnet}.${10 + i}`;

  /** Public URL of each API, as the catalog has it. */
  get urls() {
    const url = (offset: number, path: string) =>
      `http://${this.bridgeIp}:${this.options.port + offset}/${path}`;
    return {
      identity: url(0, 'identity'),
      compute: url(1, 'compute/v2.1'),
      image: url(2, 'image'),
      network: url(3, 'network'),
    };
  }

  /** The deployment's database, as the machine reaches it. */
  get databaseUrl(): string | undefined {
    return this.backends?.env.DATABASE_URL;
  }

  get cloudsYaml() {
    return join(this.controller, 'clouds.yaml');
  }

  /** The passwords the identity service's bootstrap made (admin, demo). */
  passwords(): { admin: string; demo: string } {
    return JSON.parse(readFileSync(join(this.controller, 'bootstrap-passwords.json'), 'utf8'));
  }

  logTail = () => (this.log && existsSync(this.log) ? readFileSync(this.log, 'utf8').slice(-4000) : '');

  /** Makes the hosts, the database and vhost, starts every service and waits for the APIs to answer. */
  async start(): Promise<void> {
    const { port, hosts } = this.options;
    this.controller = mkdtempSync(join(tmpdir(), 'novum-e2e-'));
    this.log = join(this.controller, 'services.log');
    this.hostsUp = true;
    sh('bash', [NETNS_SCRIPT, 'up', String(hosts)], this.netnsEnv);
    this.backends = await createBackends(randomBytes(4).toString('hex'));
    const shared = {
      NOVUM_LOG_LEVEL: this.options.logLevel ?? 'warn',
      NOVUM_IDENTITY_PORT: String(port),
      NOVUM_COMPUTE_PORT: String(port + 1),
      NOVUM_IMAGE_PORT: String(port + 2),
      NOVUM_NETWORK_PORT: String(port + 3),
      NOVUM_ORCHESTRATION_PORT: String(port + 4),
      NOVUM_SERIALPROXY_PORT: String(port + 5),
      NOVUM_IDENTITY_URL: `http://${this.bridgeIp}:${port}/identity`,
      NOVUM_SERVICE_PASSWORD: randomBytes(12).toString('base64url'),
      NOVUM_AUTH_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
      NOVUM_REPORT_INTERVAL: '2',
      NOVUM_SERVICE_DOWN_TIME: '6',
      ...this.options.sharedEnv,
    };
    // The controller's services on the machine, listening on the management bridge only.
    const controllerEnv = {
      ...this.backends.env,
      ...shared,
      NOVUM_DATA_DIR: this.controller,
      NOVUM_BIND_ADDRESS: this.bridgeIp,
      NOVUM_PUBLIC_HOST: this.bridgeIp,
    };
    for (const app of CONTROLLER_APPS) {
      this.processes.set(app, launchService(entryPoint(app), controllerEnv, this.log));
    }
    // Each host's agent in its namespace, reaching PostgreSQL and RabbitMQ through the bridge's relay.
    for (let i = 1; i <= hosts; i++) {
      const agentEnv = {
        ...shared,
        ...this.netnsEnv,
        DATABASE_URL: this.backends.env.DATABASE_URL.replace('127.0.0.1:', `${this.bridgeIp}:`),
        AMQP_URL: this.backends.env.AMQP_URL.replace('127.0.0.1:', `${this.bridgeIp}:`),
        NOVUM_HOST: this.hostName(i),
        NOVUM_DATA_DIR: this.dataDirOf(i),
        NOVUM_TUNNEL_IP: this.tunnelIpOf(i),
        // Where the other hosts fetch a cold migration's disks from (and the console proxy reaches consoles).
        NOVUM_SERIAL_PROXYCLIENT_ADDRESS: this.tunnelIpOf(i),
        ...this.options.agentEnv,
        ...this.options.hostEnv?.(i),
      };
      this.processes.set(
        this.hostName(i),
        launchService(entryPoint('compute'), agentEnv, this.log, undefined, [
          'bash',
          NETNS_SCRIPT,
          'exec',
          String(i),
        ]),
      );
    }
    const died = Promise.race(
      [...this.processes.entries()].map(([name, p]) =>
        p.exited.then((code) => {
          throw new Error(`${name} exited with ${code} during start; log:\n${this.logTail()}`);
        }),
      ),
    );
    const { identity, compute, image, network } = this.urls;
    const apis = [`${identity}/v3`, compute, image, network];
    await Promise.race([Promise.all(apis.map((url) => waitForHttp(url, 90_000))), died]);
  }

  /** Stops the hosts' agents (kill -9 with KILL), leaving the rest running. */
  async stopHosts(signal?: NodeJS.Signals): Promise<void> {
    for (let i = 1; i <= this.options.hosts; i++) await this.processes.get(this.hostName(i))?.stop(signal);
  }

  /**
   * Stops every service, removes the hosts, the database, the vhost and the controller's data dir; whatever
   * a host still holds is for `beforeDown` to remove, once its agent has stopped.
   */
  async destroy(beforeDown?: () => void): Promise<void> {
    await this.stopHosts();
    try {
      beforeDown?.();
    } catch (error) {
      console.error(`removing the hosts' leftovers: ${(error as Error).message}`);
    }
    await Promise.all([...this.processes.values()].map((p) => p.stop()));
    if (this.hostsUp) {
      try {
        sh('bash', [NETNS_SCRIPT, 'down'], this.netnsEnv);
      } catch (error) {
        console.error(`netns-hosts.sh down: ${(error as Error).message}`);
      }
    }
    await this.backends?.drop();
    if (process.env.NOVUM_E2E_KEEP_LOG && this.log && existsSync(this.log))
      writeFileSync(process.env.NOVUM_E2E_KEEP_LOG, readFileSync(this.log));
    if (this.controller) rmSync(this.controller, { recursive: true, force: true });
  }
}
