/**
 * Compute API benchmark (slice 1, no servers yet): flavor and key pair reads, limits, key pair generation,
 * with 16 concurrent clients against a real all-in-one cloud, and the cloud's resident memory.
 * Not a test: it asserts nothing and prints figures.
 *
 *   npx tsx test/bench/compute.ts [seconds per phase, default 10]
 *
 * BENCH_MODE=production runs the cloud on PostgreSQL + RabbitMQ instead of SQLite.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { startCloud } from '../e2e/support/cloud';
import { api, issueToken } from '../e2e/support/keystone';

const SECONDS = Number(process.argv[2] ?? 10);
const CONNECTIONS = 16;
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

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

async function main(): Promise<void> {
  const cloud = await startCloud({
    portBase: 23230,
    mode: process.env.BENCH_MODE === 'production' ? 'production' : 'embedded',
  });
  try {
    const pid = JSON.parse(readFileSync(join(cloud.dataDir, 'ready.json'), 'utf8')).pid as number;
    const { token } = await issueToken(cloud.identityUrl, {
      user: 'demo',
      password: cloud.demoPassword,
      project: 'demo',
    });
    const root = cloud.services.compute;
    for (let i = 0; i < 100; i++) {
      await api(root, 'POST', '/os-keypairs', {
        token,
        body: { keypair: { name: `bench-${String(i).padStart(3, '0')}`, public_key: KEY } },
      });
    }
    console.log(
      `compute benchmark: ${cloud.mode} mode, ${CONNECTIONS} connections, ${SECONDS} s per phase, node ${process.version}`,
    );
    console.log(`control plane RSS after start: ${rssMiB(pid).toFixed(0)} MiB`);
    const get = (path: string, version = '2.1') => ({
      url: `${root}${path}`,
      headers: { 'x-auth-token': token, 'openstack-api-version': `compute ${version}` },
    });
    await phase('warm-up', { ...get('/flavors'), duration: 2 });
    await phase('GET /flavors/detail (8 flavors)', get('/flavors/detail'));
    await phase('GET /flavors/detail at 2.61 (extra specs)', get('/flavors/detail', '2.61'));
    await phase('GET /flavors/1', get('/flavors/1', '2.75'));
    await phase('GET /os-keypairs (100 key pairs)', get('/os-keypairs', '2.2'));
    await phase('GET /limits', get('/limits'));
    const admin = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    const project = (
      await api(cloud.identityUrl, 'GET', '/v3/auth/tokens', { token, headers: { 'x-subject-token': token } })
    ).body.token.project.id;
    await api(root, 'PUT', `/os-quota-sets/${project}`, {
      token: admin.token,
      body: { quota_set: { key_pairs: -1 } },
    });
    await generate(root, token, 96);
    console.log(`control plane RSS after the phases: ${rssMiB(pid).toFixed(0)} MiB`);
  } finally {
    await cloud.destroy();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
