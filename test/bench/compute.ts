/**
 * Compute API benchmark against a real all-in-one cloud on the fake driver: flavor and key pair reads, limits
 * and key pair generation with 16 concurrent clients; then servers: POST -> ACTIVE latency one at a time,
 * `GET /servers/detail` with 1,000 servers, 500 servers created at once until all are ACTIVE; and the
 * cloud's resident memory. Not a test: it asserts nothing and prints figures.
 *
 *   npx tsx test/bench/compute.ts [seconds per phase, default 10]
 *
 * BENCH_MODE=production runs the cloud on PostgreSQL + RabbitMQ instead of SQLite; BENCH_ONLY=servers skips
 * the flavor and key pair phases. NOVUM_DIST picks the build (default dist/).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { startCloud } from '../e2e/support/cloud';
import { api, issueToken } from '../e2e/support/keystone';
import { putData } from '../e2e/support/image';

const SECONDS = Number(process.argv[2] ?? 10);
const CONNECTIONS = 16;
const SEQUENTIAL = 50;
const LISTED = 1000;
const BURST = 500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const at = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl bench@example';

async function phase(name: string, options: autocannon.Options): Promise<void> {
  const result = await autocannon({ connections: CONNECTIONS, duration: SECONDS, ...options });
  const errors = result.non2xx + result.errors + result.timeouts;
  console.log(
    `${name.padEnd(44)} ${result.requests.average.toFixed(0).padStart(7)} req/s   p50 ${String(result.latency.p50).padStart(4)} ms   p99 ${String(result.latency.p99).padStart(4)} ms   ${result.requests.total} requests, ${errors} errors`,
  );
}

/** Key pair generation (RSA 2048 on libuv's pool), `count` requests from 16 clients at once. */
async function generate(root: string, token: string, count: number): Promise<void> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next < count) {
        const name = `generated-${next++}`;
        const t0 = performance.now();
        const response = await api(root, 'POST', '/os-keypairs', {
          token,
          body: { keypair: { name } },
          headers: { 'openstack-api-version': 'compute 2.2' },
        });
        if (response.status !== 201) throw new Error(`generate answered ${response.status}`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(0);
  console.log(
    `${'POST /os-keypairs (generate RSA 2048)'.padEnd(44)} ${(count / seconds).toFixed(0).padStart(7)} req/s   p50 ${at(0.5).padStart(4)} ms   p99 ${at(0.99).padStart(4)} ms   ${count} requests`,
  );
}

interface ServerBench {
  root: string;
  token: string;
  image: string;
  network: string;
}

/** One `POST /servers` (m1.tiny, the bench image, a port on the bench network); its id. */
async function createServer(b: ServerBench, name: string, count = 1): Promise<string> {
  const response = await api(b.root, 'POST', '/servers', {
    token: b.token,
    body: {
      server: {
        name,
        imageRef: b.image,
        flavorRef: '1',
        networks: [{ uuid: b.network }],
        ...(count > 1 ? { min_count: count, max_count: count } : {}),
      },
    },
  });
  if (response.status !== 202)
    throw new Error(`create answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body.server.id as string;
}

/** How many of the project's servers have a status (brief list, filtered in the database). */
async function countStatus(b: ServerBench, status: string): Promise<number> {
  const response = await api(b.root, 'GET', `/servers?status=${status}`, { token: b.token });
  return response.body.servers.length as number;
}

/** Polls until no server of the project is building; throws on any ERROR. */
async function waitAllActive(b: ServerBench): Promise<void> {
  while ((await countStatus(b, 'BUILD')) > 0) await sleep(20);
  const errors = await api(b.root, 'GET', '/servers/detail?status=ERROR', { token: b.token });
  if (errors.body.servers.length) {
    const fault = JSON.stringify(errors.body.servers[0].fault);
    throw new Error(`${errors.body.servers.length} servers went to ERROR, the first with ${fault}`);
  }
}

/**
 * POST -> ACTIVE one server at a time: seen by the client (GET /servers/{id} every 5 ms) and by the record
 * (`OS-SRV-USG:launched_at`, written when the agent finishes the build, minus the moment the POST was sent).
 */
async function sequentialCreates(b: ServerBench): Promise<void> {
  const observed: number[] = [];
  const recorded: number[] = [];
  const posted: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const sent = Date.now();
    const t0 = performance.now();
    const id = await createServer(b, `seq-${i}`);
    posted.push(performance.now() - t0);
    for (;;) {
      const { body } = await api(b.root, 'GET', `/servers/${id}`, { token: b.token });
      if (body.server.status === 'ACTIVE') {
        observed.push(performance.now() - t0);
        recorded.push(Date.parse(`${body.server['OS-SRV-USG:launched_at']}Z`) - sent);
        break;
      }
      if (body.server.status === 'ERROR') throw new Error(`server ${id} went to ERROR`);
      await sleep(5);
    }
  }
  for (const [label, values] of [
    ['POST /servers answered (202)', posted],
    ['POST -> ACTIVE, polled every 5 ms', observed],
    ['POST -> launched_at (the record)', recorded],
  ] as const) {
    const sorted = [...values].sort((x, y) => x - y);
    console.log(
      `${label.padEnd(44)} p50 ${at(sorted, 0.5).toFixed(1).padStart(6)} ms   p95 ${at(sorted, 0.95).toFixed(1).padStart(6)} ms   (${SEQUENTIAL} servers one at a time)`,
    );
  }
}

/** Tops the project up to `total` servers with multi-creates of 50, all ACTIVE. */
async function fillTo(b: ServerBench, total: number, have: number): Promise<void> {
  while (have < total) {
    const count = Math.min(50, total - have);
    await createServer(b, `fill-${have}`, count);
    have += count;
  }
  await waitAllActive(b);
}

/** BURST single-server POSTs sent at once (one connection each), until every server is ACTIVE. */
async function burst(b: ServerBench): Promise<void> {
  const t0 = performance.now();
  const answered: number[] = [];
  await Promise.all(
    Array.from({ length: BURST }, async (_, i) => {
      await createServer(b, `burst-${i}`);
      answered.push(performance.now() - t0);
    }),
  );
  const accepted = performance.now() - t0;
  await waitAllActive(b);
  const total = (performance.now() - t0) / 1000;
  answered.sort((x, y) => x - y);
  console.log(
    `${`${BURST} POST /servers at once -> all ACTIVE`.padEnd(44)} ${total.toFixed(2).padStart(6)} s   (${(BURST / total).toFixed(0)} servers/s; all 202 after ${(accepted / 1000).toFixed(2)} s, p50 ${(at(answered, 0.5) / 1000).toFixed(2)} s)`,
  );
}

/** The bench image (a small raw file, private to the demo project) and a network with room for 2,000 ports. */
async function serverSetup(
  cloud: Awaited<ReturnType<typeof startCloud>>,
  token: string,
): Promise<ServerBench> {
  const imageUrl = cloud.services.image;
  const image = (
    await api(imageUrl, 'POST', '/v2/images', {
      token,
      body: { name: 'bench-image', disk_format: 'raw', container_format: 'bare' },
    })
  ).body;
  const upload = await putData(imageUrl, `/v2/images/${image.id}/file`, token, Buffer.alloc(1024 * 1024));
  if (upload.status !== 204) throw new Error(`image upload answered ${upload.status}`);
  const networkUrl = cloud.services.network;
  const network = (
    await api(networkUrl, 'POST', '/v2.0/networks', { token, body: { network: { name: 'bench' } } })
  ).body.network;
  const subnet = await api(networkUrl, 'POST', '/v2.0/subnets', {
    token,
    body: { subnet: { network_id: network.id, cidr: '10.80.0.0/21', ip_version: 4 } },
  });
  if (subnet.status !== 201) throw new Error(`subnet answered ${subnet.status}`);
  return { root: cloud.services.compute, token, image: image.id, network: network.id };
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

async function main(): Promise<void> {
  const cloud = await startCloud({
    portBase: 23800,
    mode: process.env.BENCH_MODE === 'production' ? 'production' : 'embedded',
  });
  try {
    const pid = JSON.parse(readFileSync(join(cloud.dataDir, 'ready.json'), 'utf8')).pid as number;
    const { token } = await issueToken(cloud.identityUrl, {
      user: 'demo',
      password: cloud.demoPassword,
      project: 'demo',
    });
    const admin = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    const project = (
      await api(cloud.identityUrl, 'GET', '/v3/auth/tokens', { token, headers: { 'x-subject-token': token } })
    ).body.token.project.id;
    const root = cloud.services.compute;
    await api(root, 'PUT', `/os-quota-sets/${project}`, {
      token: admin.token,
      body: { quota_set: { key_pairs: -1, instances: -1, cores: -1, ram: -1 } },
    });
    console.log(
      `compute benchmark: ${cloud.mode} mode, ${CONNECTIONS} connections, ${SECONDS} s per phase, node ${process.version}`,
    );
    console.log(`control plane RSS after start: ${rssMiB(pid).toFixed(0)} MiB`);
    const get = (path: string, version = '2.1') => ({
      url: `${root}${path}`,
      headers: { 'x-auth-token': token, 'openstack-api-version': `compute ${version}` },
    });
    if (process.env.BENCH_ONLY !== 'servers') {
      for (let i = 0; i < 100; i++) {
        await api(root, 'POST', '/os-keypairs', {
          token,
          body: { keypair: { name: `bench-${String(i).padStart(3, '0')}`, public_key: KEY } },
        });
      }
      await phase('warm-up', { ...get('/flavors'), duration: 2 });
      await phase('GET /flavors/detail (8 flavors)', get('/flavors/detail'));
      await phase('GET /flavors/detail at 2.61 (extra specs)', get('/flavors/detail', '2.61'));
      await phase('GET /flavors/1', get('/flavors/1', '2.75'));
      await phase('GET /os-keypairs (100 key pairs)', get('/os-keypairs', '2.2'));
      await phase('GET /limits', get('/limits'));
      await generate(root, token, 96);
      console.log(`control plane RSS after the key pair phases: ${rssMiB(pid).toFixed(0)} MiB`);
    }

    const ports = await api(cloud.services.network, 'PUT', `/v2.0/quotas/${project}`, {
      token: admin.token,
      body: { quota: { port: -1 } },
    });
    if (ports.status !== 200) throw new Error(`port quota answered ${ports.status}`);
    const bench = await serverSetup(cloud, token);
    await sequentialCreates(bench);
    await fillTo(bench, LISTED, SEQUENTIAL);
    console.log(`control plane RSS with ${LISTED} servers: ${rssMiB(pid).toFixed(0)} MiB`);
    await phase(`GET /servers/detail (${LISTED} servers, 2.1)`, get('/servers/detail'));
    await phase(`GET /servers/detail (${LISTED} servers, 2.96)`, get('/servers/detail', '2.96'));
    await phase(`GET /servers (${LISTED} servers, brief)`, get('/servers'));
    await burst(bench);
    console.log(`control plane RSS after ${LISTED + BURST} servers: ${rssMiB(pid).toFixed(0)} MiB`);
  } finally {
    await cloud.destroy();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
