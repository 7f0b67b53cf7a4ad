import { INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { BusModule, MessageBus } from '@novum/bus';
import { loadConfig, NovumConfig } from '@novum/common';
import { ComputeMethod, ComputeRpcClient, InstanceRecords, NewInstance } from '@novum/compute';
import {
  DbModule,
  InstanceEntity,
  InstanceFlavor,
  ServerGroupEntity,
  ServerGroupMemberEntity,
} from '@novum/db';
import { FakeDriver, FakeDriverOptions, TaskState } from '@novum/virt';
import { AgentOptions, ComputeManager } from '../../../apps/compute/compute-manager';
import { fakeHypervisor } from '../../../apps/compute/drivers';
import { startAgent } from '../../../apps/compute/worker';
import { conductorWorker } from '../../../apps/conductor/worker';
import { testMode } from './cloud';

// Quiet unless something goes wrong; the agents and the conductor log through the process's root logger.
process.env.NOVUM_LOG_LEVEL ??= 'warn';

function rabbitmqctl(...args: string[]): void {
  execFileSync('rabbitmqctl', args, { stdio: 'ignore' });
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

/**
 * The compute control plane (conductor with its scheduler, compute agents on fake hypervisors) in this
 * process, on the test mode's database and bus: a temporary SQLite file and the in-process bus, or a
 * fresh PostgreSQL database and RabbitMQ vhost. The client plays the compute API: it writes instance rows
 * and casts exactly what the API will.
 */
export class ControlPlane {
  readonly agents = new Map<string, INestApplicationContext>();
  private conductor: { close(): Promise<unknown> }[] = [];
  private client?: INestApplicationContext;
  records!: InstanceRecords;
  rpc!: ComputeRpcClient;
  bus!: MessageBus;
  dataSource!: DataSource;

  private constructor(
    readonly config: NovumConfig,
    private readonly cleanup: () => Promise<void>,
  ) {}

  static async start(env: Record<string, string> = {}): Promise<ControlPlane> {
    const id = randomBytes(4).toString('hex');
    const dataDir = mkdtempSync(join(tmpdir(), 'novum-cp-'));
    const vars: Record<string, string> = { NOVUM_DATA_DIR: dataDir, NOVUM_HOST: `cp-${id}`, ...env };
    let database: string | undefined;
    let vhost: string | undefined;
    if (testMode() === 'production') {
      database = `novum_cp_${id}`;
      vhost = `novum-cp-${id}`;
      await adminQuery(`CREATE DATABASE ${database}`);
      rabbitmqctl('add_vhost', vhost);
      rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
      vars.DATABASE_URL = `postgres://postgres@127.0.0.1:5432/${database}`;
      vars.AMQP_URL = `amqp://guest:guest@127.0.0.1:5672/${vhost}`;
    }
    const plane = new ControlPlane(loadConfig(vars), async () => {
      if (database) await adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      if (vhost) rabbitmqctl('delete_vhost', vhost);
      rmSync(dataDir, { recursive: true, force: true });
    });
    @Module({
      imports: [DbModule.forRoot(plane.config), BusModule.forRoot({ amqpUrl: plane.config.amqpUrl })],
    })
    class ApiStandIn {}
    plane.client = await NestFactory.createApplicationContext(ApiStandIn, { logger: false });
    await plane.client.init();
    plane.dataSource = plane.client.get(DataSource);
    plane.records = new InstanceRecords(plane.dataSource);
    plane.bus = plane.client.get(MessageBus);
    plane.rpc = new ComputeRpcClient(plane.bus);
    plane.conductor = await conductorWorker.start(plane.config);
    return plane;
  }

  /** A host's name in this run (hosts of different runs never meet, even on one RabbitMQ). */
  hostName(name: string): string {
    return `${this.config.host}-${name}`;
  }

  /** The fake hypervisor of a host: it outlives the host's agent, as a real hypervisor does. */
  hypervisor(name: string, options?: FakeDriverOptions): FakeDriver {
    return fakeHypervisor(this.hostName(name), options);
  }

  /** Starts a host's agent with Nova's allocation ratios unless told otherwise. */
  async startAgent(name: string, options: Partial<AgentOptions> = {}): Promise<ComputeManager> {
    const host = this.hostName(name);
    const app = await startAgent(this.config, { host, drivers: [this.hypervisor(name)], ...options });
    this.agents.set(name, app);
    return app.get(ComputeManager);
  }

  async stopAgent(name: string): Promise<void> {
    await this.agents.get(name)?.close();
    this.agents.delete(name);
  }

  /** What `POST /servers` will do: the instance row and its `create` action, then `build_instances`. */
  async createServer(flavor: InstanceFlavor, extra: Partial<NewInstance> = {}): Promise<string> {
    const requestId = `req-${randomUUID()}`;
    const [instance] = await this.records.createInstances(
      { displayName: 'vm', projectId: 'p1', userId: 'u1', flavor, imageRef: randomUUID(), ...extra },
      { requestId },
    );
    const group = extra.schedulerHints?.group;
    if (group) {
      await this.dataSource
        .getRepository(ServerGroupMemberEntity)
        .insert({ groupId: group, instanceUuid: instance.uuid });
    }
    await this.rpc.buildInstances({ instanceUuids: [instance.uuid], requestId });
    return instance.uuid;
  }

  /** What a server action will do: set the task on condition of the state, record the action, cast. */
  async act(
    uuid: string,
    method: (typeof ComputeMethod)[keyof typeof ComputeMethod],
    task: string,
    action: string,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    const instance = await this.instance(uuid);
    const requestId = `req-${randomUUID()}`;
    const set = await this.records.update(uuid, { taskState: task }, { taskState: [null] });
    if (!set) throw new Error(`Instance ${uuid} is busy (task ${instance.taskState})`);
    await this.records.startAction(uuid, action, requestId, { userId: 'u1', projectId: 'p1' });
    await this.bus.cast(`compute.${instance.host}`, method, {
      instanceUuid: uuid,
      requestId,
      ...extra,
    });
  }

  /** What `POST /os-server-groups` writes. */
  async createGroup(policy: string, rules: Record<string, number> = {}): Promise<string> {
    const id = randomUUID();
    await this.dataSource.getRepository(ServerGroupEntity).insert({
      id,
      name: `group-${policy}`,
      projectId: 'p1',
      userId: 'u1',
      policy,
      rules,
      createdAt: new Date().toISOString(),
    });
    return id;
  }

  async instance(uuid: string): Promise<InstanceEntity> {
    const instance = await this.records.get(uuid);
    if (!instance) throw new Error(`no instance ${uuid}`);
    return instance;
  }

  /** Waits until the instance has no task and is not building (or the timeout), and returns it. */
  async settled(uuid: string, timeoutMs = 20_000): Promise<InstanceEntity> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const instance = await this.instance(uuid);
      if (instance.taskState === null && instance.vmState !== 'building') return instance;
      if (Date.now() > deadline) {
        throw new Error(
          `instance ${uuid} still ${instance.vmState}/${instance.taskState} after ${timeoutMs} ms`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async close(): Promise<void> {
    for (const name of [...this.agents.keys()]) await this.stopAgent(name);
    for (const closable of this.conductor) await closable.close();
    await this.client?.close();
    await this.cleanup();
  }
}

export const SMALL_FLAVOR: InstanceFlavor = {
  id: '1',
  name: 'f1.small',
  vcpus: 1,
  memory_mb: 512,
  root_gb: 1,
  ephemeral_gb: 0,
  swap: 0,
  extra_specs: {},
};

export { TaskState };
