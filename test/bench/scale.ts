/**
 * Scale benchmark (issue 9): one conductor and scheduler in front of many compute hosts on the fake driver, in
 * production mode (PostgreSQL + RabbitMQ, as a deployment of that size runs). The all-in-one cloud carries one
 * fake host; `node dist/apps/compute/main.js` processes on the same database and vhost carry the others
 * (NOVUM_FAKE_HOSTS each). It reports how long the hosts take to register, servers created through the Nova
 * API by concurrent clients with multi-creates until all are ACTIVE (placements/s), the latency of the admin's
 * `GET /servers/detail?all_tenants=1&limit=1000` and of `GET /os-hypervisors/detail` at that size, and the
 * memory of every process. Not a test: it asserts nothing and prints figures.
 *
 *   npx tsx test/bench/scale.ts [hosts, default 1000] [servers, default 10000]
 *
 * BENCH_PORT_BASE (default 28000) the cloud's ports; BENCH_AGENT_PROCESSES the compute processes (default: one
 * per 400 hosts); BENCH_AGENT_POOL_SIZE (default 10) the PostgreSQL connections each of them holds, so that
 * the all-in-one's 20 and theirs stay under the server's 100 beside other users; BENCH_CLIENTS (default 8) concurrent API
 * clients, each sending `POST /servers` with min_count = max_count = BENCH_BATCH (default 50); BENCH_READS
 * (default 20) requests per latency figure. NOVUM_DIST picks the build (default dist/).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { CloudHandle, entryPoint, launchService, ServiceProcess, startCloud } from '../e2e/support/cloud';
import { api, issueToken } from '../e2e/support/keystone';
import { putData } from '../e2e/support/image';

const HOSTS = Number(process.argv[2] ?? 1000);
const SERVERS = Number(process.argv[3] ?? 10000);
const PORT_BASE = Number(process.env.BENCH_PORT_BASE ?? 28000);
const PROCESSES = Number(process.env.BENCH_AGENT_PROCESSES ?? Math.max(1, Math.ceil((HOSTS - 1) / 400)));
const AGENT_POOL_SIZE = process.env.BENCH_AGENT_POOL_SIZE ?? '10';
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const BATCH = Number(process.env.BENCH_BATCH ?? 50);
const READS = Number(process.env.BENCH_READS ?? 20);
const FLAVOR = '1'; // m1.tiny: 1 vCPU, 512 MB, 1 GB
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const at = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** Resident memory now and at its peak (VmRSS, VmHWM), in MiB. */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)![1]) / 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

interface Processes {
  cloud: number;
  agents: { pid: number; hosts: number }[];
}

function printMemory(label: string, p: Processes): void {
  const cloud = memory(p.cloud);
  const agents = p.agents.map((a) => ({ ...a, ...memory(a.pid) }));
  const list = agents.map((a) => `${a.rss.toFixed(0)} (peak ${a.peak.toFixed(0)})`).join(', ');
  console.log(
    `memory ${label}: all-in-one ${cloud.rss.toFixed(0)} MiB (peak ${cloud.peak.toFixed(0)}); ` +
      `agent processes ${list} MiB` +
      (agents.length
        ? `, ${((agents.reduce((s, a) => s + a.rss, 0) * 1024) / agents.reduce((s, a) => s + a.hosts, 0)).toFixed(0)} KiB per host`
        : ''),
  );
}

/** Counts straight from the database, so that watching progress costs the API nothing. */
async function counts(db: Client): Promise<{ byState: Record<string, number>; placed: number }> {
  const { rows } = await db.query<{ vm_state: string; placed: string; n: string }>(
    `SELECT vm_state, count(host) AS placed, count(*) AS n FROM instance WHERE deleted_at IS NULL GROUP BY vm_state`,
  );
  const byState: Record<string, number> = {};
  let placed = 0;
  for (const row of rows) {
    byState[row.vm_state] = Number(row.n);
    placed += Number(row.placed);
  }
  return { byState, placed };
}

async function registered(db: Client): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM compute_node n JOIN compute_service s ON s.host = n.host AND s."binary" = 'nova-compute'`,
  );
  return Number(rows[0].n);
}

/** `count` GETs one after the other; p50 / p95 / max in ms. */
async function latency(url: string, token: string, path: string, version: string, count: number) {
  const times: number[] = [];
  let size = 0;
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const response = await fetch(`${url}${path}`, {
      headers: { 'x-auth-token': token, 'openstack-api-version': `compute ${version}` },
    });
    const text = await response.text();
    times.push(performance.now() - t0);
    if (response.status !== 200)
      throw new Error(`${path} answered ${response.status}: ${text.slice(0, 300)}`);
    size = text.length;
  }
  const sorted = times.sort((a, b) => a - b);
  console.log(
    `GET ${path} (${version})`.padEnd(64) +
      ` p50 ${at(sorted, 0.5).toFixed(0).padStart(5)} ms   p95 ${at(sorted, 0.95).toFixed(0).padStart(5)} ms   max ${sorted[sorted.length - 1].toFixed(0).padStart(5)} ms   (${count} requests, ${(size / 2 ** 20).toFixed(1)} MiB each)`,
  );
}

async function main(): Promise<void> {
  const agentHosts = HOSTS - 1;
  const perProcess = Array.from({ length: agentHosts ? PROCESSES : 0 }, (_, i) =>
    Math.floor(agentHosts / PROCESSES + (i < agentHosts % PROCESSES ? 1 : 0)),
  ).filter((n) => n > 0);
  const started = Date.now();
  const cloud: CloudHandle = await startCloud({
    portBase: PORT_BASE,
    mode: 'production',
    extraEnv: { NOVUM_HOST: 'scale-0', NOVUM_LOG_LEVEL: 'warn' },
  });
  const agents: ServiceProcess[] = [];
  const db = new Client({ connectionString: cloud.env.DATABASE_URL });
  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaning ??= (async () => {
      await db.end().catch(() => undefined);
      await Promise.all(agents.map((agent) => agent.stop().catch(() => undefined)));
      await cloud.destroy().catch((error) => console.error('cloud destroy:', error));
    })());
  // Interrupted: the database, the vhost and the processes go all the same.
  const interrupted = () => void cleanUp().finally(() => process.exit(130));
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    await db.connect();
    const cloudPid = JSON.parse(readFileSync(join(cloud.dataDir, 'ready.json'), 'utf8')).pid as number;
    const nodeVersion = process.version;
    console.log(
      `scale benchmark: ${HOSTS} hosts (1 in the all-in-one, ${perProcess.join(' + ') || 0} in ${perProcess.length} compute processes), ` +
        `${SERVERS} servers, ${CLIENTS} clients x min_count ${BATCH}, production mode, node ${nodeVersion}; cloud up in ${seconds(Date.now() - started)}`,
    );

    const t0 = performance.now();
    perProcess.forEach((hosts, i) =>
      agents.push(
        launchService(
          entryPoint('compute'),
          {
            ...cloud.env,
            NOVUM_HOST: `scale-p${i + 1}`,
            NOVUM_FAKE_HOSTS: String(hosts),
            NOVUM_DATABASE_POOL_SIZE: AGENT_POOL_SIZE,
          },
          join(cloud.dataDir, `compute-${i + 1}.log`),
        ),
      ),
    );
    const failed = Promise.race(agents.map((agent) => agent.exited)).then((code) => {
      throw new Error(`a compute process exited with ${code} (logs in ${cloud.dataDir})`);
    });
    // Hosts that stop registering for a minute will not come (a broker out of file handles, for one).
    const waitRegistered = async () => {
      let last = -1;
      let lastChange = performance.now();
      let lastReport = performance.now();
      for (;;) {
        const n = await registered(db);
        if (n >= HOSTS) return;
        if (n !== last) lastChange = performance.now();
        if (performance.now() - lastChange > 60_000)
          throw new Error(`registration stalled at ${n} of ${HOSTS} hosts (logs in ${cloud.dataDir})`);
        if (performance.now() - lastReport > 10_000) {
          console.log(`  ${n} of ${HOSTS} hosts registered after ${seconds(performance.now() - t0)}`);
          lastReport = performance.now();
        }
        last = n;
        await sleep(200);
      }
    };
    await Promise.race([waitRegistered(), failed]);
    const registration = performance.now() - t0;
    console.log(
      `all ${HOSTS} hosts registered (service and node) ${seconds(registration)} after the processes started`,
    );
    const processes: Processes = {
      cloud: cloudPid,
      agents: agents.map((agent, i) => ({ pid: agent.child.pid!, hosts: perProcess[i] })),
    };
    printMemory('with the hosts registered', processes);

    const admin = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    const demo = await issueToken(cloud.identityUrl, {
      user: 'demo',
      password: cloud.demoPassword,
      project: 'demo',
    });
    const root = cloud.services.compute;
    const project = demo.body.token.project.id as string;
    const quota = await api(root, 'PUT', `/os-quota-sets/${project}`, {
      token: admin.token,
      body: { quota_set: { instances: -1, cores: -1, ram: -1 } },
    });
    if (quota.status !== 200) throw new Error(`quota update answered ${quota.status}`);
    const imageUrl = cloud.services.image;
    const image = (
      await api(imageUrl, 'POST', '/v2/images', {
        token: demo.token,
        body: { name: 'scale-image', disk_format: 'raw', container_format: 'bare' },
      })
    ).body;
    const upload = await putData(
      imageUrl,
      `/v2/images/${image.id}/file`,
      demo.token,
      Buffer.alloc(1024 * 1024),
    );
    if (upload.status !== 204) throw new Error(`image upload answered ${upload.status}`);

    // Servers without ports (2.37 `networks: none`): the figure is the scheduler's, not Neutron's IPAM.
    let next = 0;
    const answers: number[] = [];
    const c0 = performance.now();
    const creating = Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < SERVERS) {
          const count = Math.min(BATCH, SERVERS - next);
          const name = `scale-${next}`;
          next += count;
          const r0 = performance.now();
          const response = await api(root, 'POST', '/servers', {
            token: demo.token,
            headers: { 'openstack-api-version': 'compute 2.37' },
            body: {
              server: {
                name,
                imageRef: image.id,
                flavorRef: FLAVOR,
                networks: 'none',
                ...(count > 1 ? { min_count: count, max_count: count } : {}),
              },
            },
          });
          if (response.status !== 202)
            throw new Error(`create answered ${response.status}: ${JSON.stringify(response.body)}`);
          answers.push(performance.now() - r0);
        }
      }),
    );
    let accepted = 0;
    // Its failure is thrown by the loop below (which races it), after which the cloud is removed.
    creating.then(
      () => (accepted = performance.now() - c0),
      () => undefined,
    );
    let lastReport = c0;
    let done = 0;
    let placedAll = 0;
    for (;;) {
      await Promise.race([creating, sleep(500)]);
      const { byState, placed } = await counts(db);
      if (placed >= SERVERS && !placedAll) placedAll = performance.now() - c0;
      if (byState.error) {
        const { rows } = await db.query(`SELECT message FROM instance_fault LIMIT 1`);
        throw new Error(`${byState.error} servers went to ERROR, the first with ${rows[0]?.message}`);
      }
      if ((byState.active ?? 0) >= SERVERS) {
        done = performance.now() - c0;
        break;
      }
      if (performance.now() - lastReport > 10_000) {
        lastReport = performance.now();
        console.log(
          `  ${seconds(lastReport - c0)}: ${placed} placed, ${byState.active ?? 0} ACTIVE, ${byState.building ?? 0} building`,
        );
      }
    }
    await creating;
    answers.sort((a, b) => a - b);
    console.log(
      `${SERVERS} servers -> all ACTIVE in ${seconds(done)}: ${(SERVERS / (done / 1000)).toFixed(0)} placements/s ` +
        `(every POST answered after ${seconds(accepted)}, each POST of ${BATCH} p50 ${at(answers, 0.5).toFixed(0)} ms / max ${answers[answers.length - 1].toFixed(0)} ms; all placed after ${seconds(placedAll)})`,
    );
    const spread = await db.query<{ min: number; max: number; hosts: string }>(
      `SELECT min(n)::int AS min, max(n)::int AS max, count(*) AS hosts FROM (SELECT host, count(*) AS n FROM instance WHERE deleted_at IS NULL GROUP BY host) per_host`,
    );
    const life = await db.query<{ p50: number; p95: number; max: number }>(
      `SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY d) AS p50, percentile_disc(0.95) WITHIN GROUP (ORDER BY d) AS p95, max(d) AS max
         FROM (SELECT extract(epoch FROM (launched_at::timestamp - created_at::timestamp)) * 1000 AS d FROM instance WHERE deleted_at IS NULL) t`,
    );
    const { min, max, hosts } = spread.rows[0];
    const l = life.rows[0];
    console.log(
      `spread: ${hosts} hosts used, ${min} to ${max} servers each; per server created_at -> launched_at p50 ${Number(l.p50).toFixed(0)} ms, p95 ${Number(l.p95).toFixed(0)} ms, max ${Number(l.max).toFixed(0)} ms`,
    );
    printMemory(`with ${SERVERS} servers`, processes);

    await latency(root, admin.token, '/servers/detail?all_tenants=1&limit=1000', '2.1', READS);
    await latency(root, admin.token, '/servers/detail?all_tenants=1&limit=1000', '2.96', READS);
    await latency(root, admin.token, '/os-hypervisors/detail', '2.1', READS);
    await latency(root, admin.token, '/os-hypervisors/detail', '2.88', READS);
    printMemory('after the reads', processes);
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await cleanUp();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
