/**
 * Container driver benchmark against a real all-in-one cloud (NOVUM_COMPUTE_DRIVERS=container) as root:
 * the first c1.tiny server of an uncached image, then POST -> ACTIVE one server at a time with the image cached,
 * the host memory each running container costs, and 100 servers created at once until all are ACTIVE.
 * Not a test: it asserts nothing and prints figures.
 *
 *   npx tsx test/bench/container.ts [sequential servers, default 20] [parallel servers, default 100]
 *
 * NOVUM_CONTAINER_RUNTIME picks the OCI runtime (the cloud's default: crun where installed, else runc); BENCH_LOG_LEVEL the cloud's log level (warn). BENCH_MODE=production runs the cloud on PostgreSQL + RabbitMQ; BENCH_NETWORK=none boots the servers without
 * a port (`networks: none`) instead of on a network of their own. BENCH_APART=1 runs each service in its own
 * process on PostgreSQL + RabbitMQ (as ops/systemd does). NOVUM_DIST picks the build (default dist/).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createBackends, entryPoint, launchService, startCloud, waitForHttp } from '../e2e/support/cloud';
import { removeContainerLeftovers, RUNTIME } from '../e2e/support/host';
import { api, issueToken } from '../e2e/support/keystone';

const SEQUENTIAL = Number(process.argv[2] ?? 20);
const PARALLEL = Number(process.argv[3] ?? 100);
const FLAVOR = '11'; // c1.tiny: 1 vCPU, 256 MB, 1 GB
/** How often the one-at-a-time phase polls its server (BENCH_POLL_MS, default 5 ms). */
const POLL_MS = Number(process.env.BENCH_POLL_MS ?? 5);
/**
 * How often the burst lists the servers (BENCH_BURST_POLL_MS, default 250 ms; 50 before 2026-12-06). Each
 * listing of 100 servers is served by the thread that builds them in the all-in-one: at 50 ms the poller's
 * own listings took about a tenth of that thread during a burst.
 */
const BURST_POLL_MS = Number(process.env.BENCH_BURST_POLL_MS ?? 250);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const at = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

interface Bench {
  root: string;
  token: string;
  image: string;
  networks: 'none' | { uuid: string }[];
}

async function create(b: Bench, name: string): Promise<string> {
  const response = await api(b.root, 'POST', '/servers', {
    token: b.token,
    headers: { 'openstack-api-version': 'compute 2.37' },
    body: { server: { name, imageRef: b.image, flavorRef: FLAVOR, networks: b.networks } },
  });
  if (response.status !== 202)
    throw new Error(`create answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body.server.id as string;
}

/**
 * Polls one server every POLL_MS until ACTIVE (one server at a time): the time since `t0` when the poll saw
 * it, and the time from `sentAt` (epoch ms) to its `launched_at`, which the agent records in the same write
 * that makes it ACTIVE. In embedded mode the polls are served by the thread that also runs the conductor and
 * the agent, so the first figure includes the poller's own load and up to POLL_MS of lag; the second does not.
 */
async function untilActive(
  b: Bench,
  id: string,
  t0: number,
  sentAt: number,
): Promise<{ seen: number; recorded: number }> {
  for (;;) {
    const { body } = await api(b.root, 'GET', `/servers/${id}`, { token: b.token });
    if (body.server.status === 'ACTIVE') {
      const seen = performance.now() - t0;
      // launched_at: UTC without a zone, to the microsecond.
      return { seen, recorded: Date.parse(`${body.server['OS-SRV-USG:launched_at']}Z`) - sentAt };
    }
    if (body.server.status === 'ERROR')
      throw new Error(`server ${id} went to ERROR: ${JSON.stringify(body.server.fault)}`);
    await sleep(POLL_MS);
  }
}

async function deleteAll(b: Bench): Promise<void> {
  const { body } = await api(b.root, 'GET', '/servers', { token: b.token });
  await Promise.all(
    body.servers.map((s: { id: string }) => api(b.root, 'DELETE', `/servers/${s.id}`, { token: b.token })),
  );
  while ((await api(b.root, 'GET', '/servers', { token: b.token })).body.servers.length) await sleep(50);
}

function memAvailableMiB(): number {
  return Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))![1]) / 1024;
}

/** Memory charged to the containers' own cgroups (/novum/<uuid>), in MiB each. */
function cgroupMiB(): number[] {
  const base = '/sys/fs/cgroup/memory/novum';
  let uuids: string[] = [];
  try {
    uuids = readdirSync(base).filter((name) => /^[0-9a-f-]{36}$/.test(name));
  } catch {
    return [];
  }
  return uuids.map(
    (uuid) => Number(readFileSync(join(base, uuid, 'memory.usage_in_bytes'), 'utf8')) / 2 ** 20,
  );
}

function report(label: string, values: number[]): void {
  const sorted = [...values].sort((x, y) => x - y);
  console.log(
    `${label.padEnd(48)} p50 ${at(sorted, 0.5).toFixed(0).padStart(5)} ms   p95 ${at(sorted, 0.95).toFixed(0).padStart(5)} ms   (${values.length} servers)`,
  );
}

/** CPU time of the cloud's processes (this process's node children: the all-in-one, or each service), all threads. */
function cloudCpuSeconds(): number {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[1] is the parent pid; utime and stime are the 14th and 15th fields of the whole line.
      if (Number(fields[1]) === process.pid && stat.includes('(node)'))
        total += (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** CPU time the host has spent busy since boot, all cores (/proc/stat: user, nice, system, irq, softirq). */
function hostCpuSeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return [0, 1, 2, 5, 6].reduce((sum, i) => sum + fields[i], 0) / 100; // USER_HZ
}

/** What the benchmark needs of a cloud, whether all in one process or its services apart. */
interface BenchCloud {
  mode: string;
  /** The compute agent's data dir (its containers), where the benchmark also builds its image. */
  dataDir: string;
  identityUrl: string;
  services: Record<string, string>;
  adminPassword: string;
  demoPassword: string;
  destroy(): Promise<void>;
}

/**
 * BENCH_APART=1: each service in its own process as ops/systemd runs them (identity, image, network, compute
 * API, conductor, compute agent; no orchestration), on PostgreSQL and RabbitMQ, so that the burst's work can
 * spread over the cores instead of sharing the all-in-one's one JavaScript thread.
 */
async function startApart(portBase: number, extraEnv: Record<string, string>): Promise<BenchCloud> {
  const controller = mkdtempSync(join(tmpdir(), 'novum-e2e-'));
  const host = mkdtempSync(join(tmpdir(), 'novum-e2e-'));
  const log = join(controller, 'services.log');
  const backends = await createBackends(randomBytes(4).toString('hex'));
  const [identity, compute, image, network] = [0, 1, 2, 3].map((i) => String(portBase + i));
  const env: Record<string, string> = {
    ...backends.env,
    ...extraEnv,
    NOVUM_DATA_DIR: controller,
    NOVUM_BIND_ADDRESS: '127.0.0.1',
    NOVUM_PUBLIC_HOST: '127.0.0.1',
    NOVUM_IDENTITY_PORT: identity,
    NOVUM_COMPUTE_PORT: compute,
    NOVUM_IMAGE_PORT: image,
    NOVUM_NETWORK_PORT: network,
    NOVUM_IDENTITY_URL: `http://127.0.0.1:${identity}/identity`,
    NOVUM_SERVICE_PASSWORD: randomBytes(12).toString('base64url'),
    NOVUM_AUTH_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
  };
  const apps = ['identity', 'image', 'network', 'compute-api', 'conductor', 'compute'];
  const processes = apps.map((app) =>
    launchService(entryPoint(app), app === 'compute' ? { ...env, NOVUM_DATA_DIR: host } : env, log),
  );
  const services = {
    identity: `http://127.0.0.1:${identity}/identity`,
    compute: `http://127.0.0.1:${compute}/compute/v2.1`,
    image: `http://127.0.0.1:${image}/image`,
    network: `http://127.0.0.1:${network}/network`,
  };
  const destroy = async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await backends.drop();
    if (process.env.NOVUM_E2E_KEEP_LOG) execFileSync('cp', [log, process.env.NOVUM_E2E_KEEP_LOG]);
    for (const dir of [controller, host]) rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(Object.values(services).map((url) => waitForHttp(url, 90_000)));
    // The compute agent has reported its host once the scheduler can place a server: wait for its service.
    const passwords = JSON.parse(readFileSync(join(controller, 'bootstrap-passwords.json'), 'utf8'));
    const { token } = await issueToken(services.identity, {
      user: 'admin',
      password: passwords.admin,
      project: 'admin',
    });
    for (let up = false; !up; await sleep(200)) {
      const { body } = await api(services.compute, 'GET', '/os-services', { token });
      up = body.services.some(
        (s: { binary: string; state: string }) => s.binary === 'nova-compute' && s.state === 'up',
      );
    }
    return {
      mode: 'production, services apart',
      dataDir: host,
      identityUrl: services.identity,
      services,
      adminPassword: passwords.admin,
      demoPassword: passwords.demo,
      destroy,
    };
  } catch (error) {
    await destroy();
    throw error;
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error('the container benchmark runs as root (runc, cgroups, mounts)');
  const runtime = process.env.NOVUM_CONTAINER_RUNTIME || RUNTIME;
  const extraEnv = {
    NOVUM_COMPUTE_DRIVERS: 'container',
    NOVUM_CONTAINER_RUNTIME: runtime,
    NOVUM_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    // 100 one-vCPU servers on a 2-core host need a CPU allocation ratio above the default 16.
    NOVUM_ALLOCATION_RATIOS: process.env.NOVUM_ALLOCATION_RATIOS ?? '64,1.5,1.0',
    ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
  };
  const cloud: BenchCloud =
    process.env.BENCH_APART === '1'
      ? await startApart(23850, extraEnv)
      : await startCloud({
          portBase: 23850,
          mode: process.env.BENCH_MODE === 'production' ? 'production' : 'embedded',
          extraEnv,
        });
  try {
    const admin = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    const { token } = await issueToken(cloud.identityUrl, {
      user: 'demo',
      password: cloud.demoPassword,
      project: 'demo',
    });
    const project = (
      await api(cloud.identityUrl, 'GET', '/v3/auth/tokens', { token, headers: { 'x-subject-token': token } })
    ).body.token.project.id;
    const root = cloud.services.compute;
    await api(root, 'PUT', `/os-quota-sets/${project}`, {
      token: admin.token,
      body: { quota_set: { instances: -1, cores: -1, ram: -1 } },
    });
    await api(cloud.services.network, 'PUT', `/v2.0/quotas/${project}`, {
      token: admin.token,
      body: { quota: { port: -1 } },
    });

    const archive = join(cloud.dataDir, 'busybox.tar');
    execFileSync(resolve(__dirname, '../../ops/images/build-busybox.sh'), [archive], { stdio: 'ignore' });
    const imageUrl = cloud.services.image;
    const image = (
      await api(imageUrl, 'POST', '/v2/images', {
        token,
        body: { name: 'bench-busybox', disk_format: 'raw', container_format: 'docker' },
      })
    ).body;
    const upload = await fetch(`${imageUrl}/v2/images/${image.id}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' },
      body: readFileSync(archive),
    });
    if (upload.status !== 204) throw new Error(`image upload answered ${upload.status}`);

    let networks: Bench['networks'] = 'none';
    if (process.env.BENCH_NETWORK !== 'none') {
      const net = cloud.services.network;
      const network = (
        await api(net, 'POST', '/v2.0/networks', { token, body: { network: { name: 'bench' } } })
      ).body.network;
      await api(net, 'POST', '/v2.0/subnets', {
        token,
        body: { subnet: { network_id: network.id, cidr: '10.81.0.0/22', ip_version: 4 } },
      });
      networks = [{ uuid: network.id }];
    }
    const b: Bench = { root, token, image: image.id, networks };
    console.log(
      `container benchmark: ${cloud.mode} mode, ${runtime} ${execFileSync(runtime, ['--version'], { encoding: 'utf8' }).split('\n')[0].split(' ').pop()}, ` +
        `network ${networks === 'none' ? 'none' : 'one port each'}, node ${process.version}`,
    );

    let t0 = performance.now();
    const first = await untilActive(b, await create(b, 'first'), t0, Date.now());
    console.log(
      `${'first server, image not yet on the host'.padEnd(48)} ${first.seen.toFixed(0).padStart(9)} ms`,
    );
    await deleteAll(b);

    const memBefore = memAvailableMiB();
    const seen: number[] = [];
    const recorded: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      t0 = performance.now();
      const sentAt = Date.now();
      const latency = await untilActive(b, await create(b, `seq-${i}`), t0, sentAt);
      seen.push(latency.seen);
      recorded.push(latency.recorded);
    }
    report(`POST -> ACTIVE, cached, one at a time (poll ${POLL_MS} ms)`, seen);
    report('  the same, POST sent -> launched_at recorded', recorded);
    await sleep(1000);
    const memAfter = memAvailableMiB();
    const charged = cgroupMiB();
    console.log(
      `${'host memory per running container'.padEnd(48)} ${((memBefore - memAfter) / SEQUENTIAL).toFixed(2).padStart(9)} MiB (MemAvailable drop over ${SEQUENTIAL}; ` +
        `its own cgroup: ${(charged.reduce((s, v) => s + v, 0) / Math.max(1, charged.length)).toFixed(2)} MiB)`,
    );
    await deleteAll(b);

    if (PARALLEL === 0) return;
    const cpuBefore = hostCpuSeconds();
    const cloudBefore = cloudCpuSeconds();
    const ownBefore = process.cpuUsage();
    t0 = performance.now();
    const burstSentAt = Date.now();
    const ids = await Promise.all(Array.from({ length: PARALLEL }, (_, i) => create(b, `par-${i}`)));
    const accepted = performance.now() - t0;
    // One listing at a time rather than a poll per server: 100 pollers would load the 2-core host they measure.
    const pending = new Set(ids);
    let lastSeen = 0;
    let lastLaunched = 0;
    const launchedAll: number[] = [];
    while (pending.size) {
      const { body } = await api(b.root, 'GET', '/servers/detail', { token: b.token });
      for (const server of body.servers as Record<string, unknown>[]) {
        if (!pending.has(server.id as string)) continue;
        if (server.status === 'ERROR')
          throw new Error(`server ${server.id} went to ERROR: ${JSON.stringify(server.fault)}`);
        if (server.status === 'ACTIVE') {
          pending.delete(server.id as string);
          lastSeen = performance.now() - t0;
          // launched_at: UTC without a zone, to the microsecond, written with ACTIVE.
          const launched = Date.parse(`${server['OS-SRV-USG:launched_at'] as string}Z`) - burstSentAt;
          lastLaunched = Math.max(lastLaunched, launched);
          launchedAll.push(launched);
        }
      }
      if (pending.size) await sleep(BURST_POLL_MS);
    }
    console.log(
      `${`${PARALLEL} POST /servers at once -> all ACTIVE`.padEnd(48)} ${(lastLaunched / 1000).toFixed(2).padStart(9)} s  (the last launched_at; seen by a listing every ${BURST_POLL_MS} ms after ${(lastSeen / 1000).toFixed(2)} s; all 202 after ${(accepted / 1000).toFixed(2)} s; ${(PARALLEL / (lastLaunched / 1000)).toFixed(0)} servers/s)`,
    );
    // The pipeline's shape: when the first server was up, and a quarter, half, three quarters of them.
    launchedAll.sort((x, y) => x - y);
    console.log(
      `${'  launched_at after the first POST'.padEnd(48)} first ${(launchedAll[0] / 1000).toFixed(2)} s, ` +
        [0.25, 0.5, 0.75].map((q) => `${q * 100}% ${(at(launchedAll, q) / 1000).toFixed(2)} s`).join(', '),
    );
    // Steadier than the wall time from run to run: what the burst cost the host (the cloud, its commands and
    // the kernel's work for them), less this benchmark's own process.
    const own = process.cpuUsage(ownBefore);
    const cpu = hostCpuSeconds() - cpuBefore - (own.user + own.system) / 1e6;
    const cloudCpu = cloudCpuSeconds() - cloudBefore;
    console.log(
      `${'  host CPU meanwhile (all cores, less the bench)'.padEnd(48)} ${cpu.toFixed(2).padStart(9)} s  (${((cpu * 1000) / PARALLEL).toFixed(0)} ms per server; ` +
        `the cloud's node process ${((cloudCpu * 1000) / PARALLEL).toFixed(0)} ms, its commands and the kernel the rest)`,
    );
    t0 = performance.now();
    await deleteAll(b);
    console.log(
      `${`delete ${PARALLEL} at once -> all gone`.padEnd(48)} ${((performance.now() - t0) / 1000).toFixed(2).padStart(9)} s`,
    );
  } finally {
    // Containers outlive their agent by design: the benchmark removes what a failed phase left running.
    removeContainerLeftovers(cloud);
    await cloud.destroy().catch((error) => console.error('cloud destroy:', error));
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
