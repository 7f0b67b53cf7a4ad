/**
 * Scheduler benchmark: builds through the conductor (scheduler + atomic claims) and compute agents on fake
 * hosts, driven over the bus exactly as the compute API will drive them (instance row + `build_instances`).
 * Phases: one build at a time (latency), then N builds cast at once over H fake hosts (builds/s until all
 * ACTIVE). Latency is the instance's own record: `launched_at - created_at`. Not a test: it prints figures.
 *
 *   npx tsx test/bench/scheduler.ts [builds, default 500] [hosts, default 10]
 *
 * It runs the built control plane (NOVUM_DIST, default dist/) in this process: tsx does not emit the
 * decorator metadata Nest's injection needs, so the code under test is loaded from the build.
 * BENCH_MODE=production puts it on a fresh PostgreSQL database and RabbitMQ vhost.
 */
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';

type Bus = typeof import('../../libs/bus');
type Common = typeof import('../../libs/common');
type Compute = typeof import('../../libs/compute');
type Db = typeof import('../../libs/db');
type Conductor = typeof import('../../apps/conductor/worker');
type Agent = typeof import('../../apps/compute/worker');

const DIST = resolve(process.env.NOVUM_DIST ?? join(__dirname, '../../dist'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const load = <T>(path: string): T => require(join(DIST, path)) as T;

const BUILDS = Number(process.argv[2] ?? 500);
const HOSTS = Number(process.argv[3] ?? 10);
const SEQUENTIAL = 50;

const FLAVOR = {
  id: '1',
  name: 'm1.tiny',
  vcpus: 1,
  memory_mb: 512,
  root_gb: 1,
  ephemeral_gb: 0,
  swap: 0,
  extra_specs: {},
};

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
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

async function main(): Promise<void> {
  process.env.NOVUM_LOG_LEVEL ??= 'warn';
  const production = process.env.BENCH_MODE === 'production';
  const id = randomBytes(4).toString('hex');
  const dataDir = mkdtempSync(join(tmpdir(), 'novum-bench-sched-'));
  const env: Record<string, string> = { NOVUM_DATA_DIR: dataDir, NOVUM_HOST: `bench-${id}` };
  const database = `novum_bench_${id}`;
  const vhost = `novum-bench-${id}`;
  if (production) {
    await adminQuery(`CREATE DATABASE ${database}`);
    execFileSync('rabbitmqctl', ['add_vhost', vhost], { stdio: 'ignore' });
    execFileSync('rabbitmqctl', ['set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*'], {
      stdio: 'ignore',
    });
    env.DATABASE_URL = `postgres://postgres@127.0.0.1:5432/${database}`;
    env.AMQP_URL = `amqp://guest:guest@127.0.0.1:5672/${vhost}`;
  }
  const { loadConfig } = load<Common>('libs/common/index.js');
  const { BusModule, MessageBus } = load<Bus>('libs/bus/index.js');
  const { DbModule } = load<Db>('libs/db/index.js');
  const { InstanceRecords, ComputeRpcClient } = load<Compute>('libs/compute/index.js');
  const { conductorWorker } = load<Conductor>('apps/conductor/worker.js');
  const { startAgent } = load<Agent>('apps/compute/worker.js');
  const { DataSource: DataSourceClass } = await import('typeorm');

  const config = loadConfig(env);
  @Module({ imports: [DbModule.forRoot(config), BusModule.forRoot({ amqpUrl: config.amqpUrl })] })
  class ApiStandIn {}
  const client = await NestFactory.createApplicationContext(ApiStandIn, { logger: false });
  await client.init();
  const dataSource = client.get<DataSource>(DataSourceClass);
  const records = new InstanceRecords(dataSource);
  const rpc = new ComputeRpcClient(client.get(MessageBus));
  const closables: { close(): Promise<unknown> }[] = [...(await conductorWorker.start(config))];
  for (let i = 1; i <= HOSTS; i++) closables.push(await startAgent(config, { host: `${config.host}-${i}` }));

  const build = async () => {
    const requestId = `req-${randomUUID()}`;
    const [instance] = await records.createInstances(
      { displayName: 'bench', projectId: 'p', userId: 'u', flavor: FLAVOR, imageRef: randomUUID() },
      { requestId },
    );
    await rpc.buildInstances({ instanceUuids: [instance.uuid], requestId });
    return instance.uuid;
  };
  const { InstanceEntity } = load<Db>('libs/db/index.js');
  const instances = dataSource.getRepository(InstanceEntity);
  /** Waits until none of `uuids` is building (one query per poll), then reads their outcome. */
  const settle = async (uuids: string[], pollMs: number) => {
    const { In } = await import('typeorm');
    while (await instances.countBy({ uuid: In(uuids), vmState: 'building' })) {
      await new Promise((r) => setTimeout(r, pollMs));
    }
    return (await instances.findBy({ uuid: In(uuids) })).map((row) => ({
      vmState: row.vmState,
      latency: row.launchedAt ? Date.parse(row.launchedAt) - Date.parse(row.createdAt) : NaN,
    }));
  };

  try {
    console.log(
      `scheduler benchmark: ${production ? 'production (PostgreSQL + RabbitMQ)' : 'embedded (SQLite + in-process bus)'}, ` +
        `${HOSTS} fake hosts, node ${process.version}`,
    );
    await settle([await build()], 1);

    const sequential: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      const t0 = performance.now();
      const uuid = await build();
      await settle([uuid], 1);
      sequential.push(performance.now() - t0);
    }
    sequential.sort((a, b) => a - b);
    console.log(
      `one build at a time (${SEQUENTIAL}): create→ACTIVE p50 ${percentile(sequential, 50).toFixed(1)} ms, ` +
        `p95 ${percentile(sequential, 95).toFixed(1)} ms (observed by 1 ms polling)`,
    );

    const start = performance.now();
    const uuids = await Promise.all(Array.from({ length: BUILDS }, build));
    const cast = performance.now() - start;
    const results = await settle(uuids, 20);
    const elapsed = performance.now() - start;
    const active = results.filter((r) => r.vmState === 'active');
    const latencies = active.map((r) => r.latency).sort((a, b) => a - b);
    console.log(
      `${BUILDS} builds at once: all settled in ${(elapsed / 1000).toFixed(2)} s ` +
        `(${Math.round(BUILDS / (elapsed / 1000))} builds/s; casting took ${Math.round(cast)} ms), ` +
        `${active.length} ACTIVE, ${results.length - active.length} other`,
    );
    console.log(
      `  created→launched per instance: p50 ${percentile(latencies, 50)} ms, p95 ${percentile(latencies, 95)} ms, ` +
        `max ${latencies[latencies.length - 1]} ms`,
    );
    const perHost = await dataSource.query(
      'SELECT host, COUNT(*) AS n FROM instance GROUP BY host ORDER BY host',
    );
    console.log(
      `  spread: ${perHost.map((r: { n: string | number }) => Number(r.n)).join(' / ')} instances per host`,
    );
    console.log(
      `RSS of this process (conductor, ${HOSTS} agents, client): ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB`,
    );
  } finally {
    for (const closable of closables.reverse()) await closable.close();
    await client.close();
    if (production) {
      await adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      execFileSync('rabbitmqctl', ['delete_vhost', vhost], { stdio: 'ignore' });
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
