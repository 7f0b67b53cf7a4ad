/**
 * Load benchmark (issue 9's load acceptance): the 3-host deployment of test/e2e/multihost (hosts as network
 * namespaces, each with its own compute agent; the controller's services on the machine; PostgreSQL and
 * RabbitMQ shared through the relay), its agents on the fake driver so that the clients' creates need no real
 * guests, then N concurrent API clients for the duration, each with its own Keystone token of the demo project,
 * looping without pause over a mix of reads (server list and detail with paging, server show, flavors, images,
 * networks, ports, limits, token validation) and writes (server create, polled until ACTIVE, then delete, polled
 * until gone). It prints each operation's count, latency percentiles and every non-2xx status, the throughput,
 * the processes' CPU; at the end it checks that nothing was lost (the servers the clients kept exist and are
 * ACTIVE, every other one is gone with its port) and removes everything. Not a test: figures, and a non-zero
 * exit when a 5xx, a hang or a lost server was seen.
 *
 *   npx tsx test/bench/load.ts [seconds, default 600] [clients, default 200]
 *
 * Needs root (network namespaces). BENCH_PORT_BASE (28200) the services' ports; NOVUM_NETNS_PREFIX (novuml)
 * and NOVUM_NETNS_SUBNET (10.234.0) the hosts; BENCH_POLL_MS (1000) the polling interval; BENCH_DATABASE_POOL_SIZE
 * (10) each process's PostgreSQL connections; NOVUM_E2E_KEEP_LOG a file to keep the services' log in; NOVUM_DIST the
 * build.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { Client } from 'pg';
import { api, issueToken } from '../e2e/support/keystone';
import { putData } from '../e2e/support/image';
import { MultihostDeployment } from '../e2e/support/multihost';

const SECONDS = Number(process.argv[2] ?? 600);
const CLIENTS = Number(process.argv[3] ?? 200);
const PORT_BASE = Number(process.env.BENCH_PORT_BASE ?? 28200);
const PREFIX = process.env.NOVUM_NETNS_PREFIX ?? 'novuml';
const SUBNET = process.env.NOVUM_NETNS_SUBNET ?? '10.234.0';
const POLL_MS = Number(process.env.BENCH_POLL_MS ?? 1000);
const POOL = Number(process.env.BENCH_DATABASE_POOL_SIZE ?? 10);
const HOSTS = 3;
const FLAVOR = '1'; // m1.tiny
/** A request unanswered for this long is a hang. */
const REQUEST_TIMEOUT_MS = 60_000;
/** A server not ACTIVE (or not gone) this long after its create (delete) is stuck. */
const SETTLE_TIMEOUT_MS = 300_000;
const PAGE = 25;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const at = (sorted: number[], q: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : NaN;
const ms = (n: number) =>
  Number.isNaN(n) ? '-' : n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${n.toFixed(0)} ms`;

/** Latencies and statuses of one kind of request. */
class Operation {
  readonly times: number[] = [];
  readonly statuses = new Map<string, number>();
  count(status: string): void {
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
  }
}

const operations = new Map<string, Operation>();
const op = (name: string) => {
  let o = operations.get(name);
  if (!o) operations.set(name, (o = new Operation()));
  return o;
};
/** The first few bodies of each unexpected status, to find their cause. */
const samples = new Map<string, string[]>();
let stopping = false;

interface Answer {
  status: number;
  body: any;
}

/** One request, timed and counted under `name`; a network error or a timeout counts as a status of its own. */
async function call(
  name: string,
  url: string,
  token: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string>; expect?: number[] } = {},
): Promise<Answer | undefined> {
  const headers: Record<string, string> = { 'x-auth-token': token, ...init.headers };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const t0 = performance.now();
  const o = op(name);
  try {
    const response = await fetch(url, {
      method: init.method ?? 'GET',
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    o.times.push(performance.now() - t0);
    o.count(String(response.status));
    const expected = init.expect ?? [200];
    if (!expected.includes(response.status)) {
      const key = `${name} ${response.status}`;
      const list = samples.get(key) ?? [];
      if (list.length < 3) samples.set(key, [...list, text.slice(0, 300)]);
    }
    let body: any = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON
    }
    return { status: response.status, body };
  } catch (error) {
    o.times.push(performance.now() - t0);
    const e = error as Error & { cause?: { code?: string } };
    const kind = e.name === 'TimeoutError' ? 'timeout' : `error ${e.cause?.code ?? e.message}`;
    o.count(kind);
    return undefined;
  }
}

/** Every service's process and this one: CPU seconds (user + system) so far, from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Seconds a process spent runnable but waiting for a CPU (the scheduler's run-queue delay). */
function runQueueSeconds(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    return NaN;
  }
}

/** CPU seconds of every process of the machine with this command name (postgres, beam.smp). */
function cpuSecondsOf(comm: string): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm) total += cpuSeconds(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** The machine's busy and total CPU time (all cores), in seconds. */
function machineCpu(): { busy: number; total: number } {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const n = values.map(Number);
  const idle = n[3] + n[4];
  const total = n.slice(0, 8).reduce((s, v) => s + v, 0);
  return { busy: (total - idle) / 100, total: total / 100 };
}

interface Setup {
  compute: string;
  identity: string;
  image: string;
  network: string;
  imageId: string;
  networkId: string;
}

interface Tally {
  creates: number;
  deletes: number;
  activeTimes: number[];
  goneTimes: number[];
  stuck: string[];
  failed: string[];
}

const tally: Tally = { creates: 0, deletes: 0, activeTimes: [], goneTimes: [], stuck: [], failed: [] };

/** Polls the server until ACTIVE (true), ERROR or the deadline (false). */
async function untilActive(s: Setup, token: string, id: string, t0: number): Promise<boolean> {
  while (performance.now() - t0 < SETTLE_TIMEOUT_MS) {
    await sleep(POLL_MS);
    const shown = await call('GET /servers/{id} (poll)', `${s.compute}/servers/${id}`, token);
    const status = shown?.status === 200 ? shown.body.server.status : undefined;
    if (status === 'ACTIVE') {
      tally.activeTimes.push(performance.now() - t0);
      return true;
    }
    if (status === 'ERROR') {
      tally.failed.push(`${id}: ERROR ${JSON.stringify(shown!.body.server.fault ?? {})}`);
      return false;
    }
  }
  tally.stuck.push(`${id}: not ACTIVE after ${SETTLE_TIMEOUT_MS / 1000} s`);
  return false;
}

async function untilGone(s: Setup, token: string, id: string, t0: number): Promise<boolean> {
  while (performance.now() - t0 < SETTLE_TIMEOUT_MS) {
    await sleep(POLL_MS);
    const shown = await call('GET /servers/{id} (poll)', `${s.compute}/servers/${id}`, token, {
      expect: [200, 404],
    });
    if (shown?.status === 404) {
      tally.goneTimes.push(performance.now() - t0);
      return true;
    }
  }
  tally.stuck.push(`${id}: not gone after ${SETTLE_TIMEOUT_MS / 1000} s`);
  return false;
}

/** A server created by client `n`: its id once the create was accepted. */
async function create(s: Setup, token: string, name: string): Promise<string | undefined> {
  const created = await call('POST /servers', `${s.compute}/servers`, token, {
    method: 'POST',
    expect: [202],
    body: { server: { name, imageRef: s.imageId, flavorRef: FLAVOR, networks: [{ uuid: s.networkId }] } },
  });
  if (created?.status !== 202) return undefined;
  tally.creates++;
  return created.body.server.id as string;
}

async function remove(s: Setup, token: string, id: string): Promise<boolean> {
  const t0 = performance.now();
  const deleted = await call('DELETE /servers/{id}', `${s.compute}/servers/${id}`, token, {
    method: 'DELETE',
    expect: [204],
  });
  if (deleted?.status !== 204) return false;
  tally.deletes++;
  return untilGone(s, token, id, t0);
}

/** A list and its next page, as a client pages: `limit`, then the `next` link. */
async function paged(name: string, url: string, token: string, key: string): Promise<void> {
  const first = await call(name, url, token);
  const next =
    first?.status === 200 ? first.body[`${key}_links`]?.find((l: any) => l.rel === 'next') : undefined;
  if (next) await call(`${name} (next page)`, next.href, token);
}

type Read = (s: Setup, token: string, own: string) => Promise<unknown>;

/** The reads, by weight; writes are one create-and-delete cycle in WRITE_WEIGHT of the total. */
const READS: [number, Read][] = [
  [2, (s, t) => paged(`GET /servers?limit=${PAGE}`, `${s.compute}/servers?limit=${PAGE}`, t, 'servers')],
  [
    2,
    (s, t) =>
      paged(`GET /servers/detail?limit=${PAGE}`, `${s.compute}/servers/detail?limit=${PAGE}`, t, 'servers'),
  ],
  [2, (s, t, own) => call('GET /servers/{id}', `${s.compute}/servers/${own}`, t)],
  [1, (s, t) => call('GET /flavors/detail', `${s.compute}/flavors/detail`, t)],
  [1, (s, t) => call('GET /limits', `${s.compute}/limits`, t)],
  [1, (s, t) => call('GET /v2/images', `${s.image}/v2/images`, t)],
  [1, (s, t) => call('GET /v2.0/networks', `${s.network}/v2.0/networks`, t)],
  [1, (s, t) => call('GET /v2.0/ports?limit=50', `${s.network}/v2.0/ports?limit=50`, t)],
  [
    1,
    (s, t) =>
      call('GET /v3/auth/tokens', `${s.identity}/v3/auth/tokens`, t, { headers: { 'x-subject-token': t } }),
  ],
];
const WRITE_WEIGHT = 2;
const TOTAL_WEIGHT = READS.reduce((sum, [w]) => sum + w, 0) + WRITE_WEIGHT;

/** One client until the deadline: its first server is kept to the end, every later one deleted again. */
async function runClient(
  s: Setup,
  n: number,
  token: string,
  deadline: number,
  keepers: string[],
): Promise<void> {
  let own: string | undefined;
  let cycle = 0;
  while (!own && performance.now() < deadline) {
    const id = await create(s, token, `load-${n}-keep`);
    if (id && (await untilActive(s, token, id, performance.now()))) own = id;
    if (id) keepers.push(id);
    if (!id) await sleep(POLL_MS);
  }
  while (performance.now() < deadline && !stopping) {
    let pick = Math.random() * TOTAL_WEIGHT;
    const read = READS.find(([w]) => (pick -= w) < 0);
    if (read) {
      await read[1](s, token, own!);
      continue;
    }
    const t0 = performance.now();
    const id = await create(s, token, `load-${n}-${cycle++}`);
    if (!id) continue;
    await untilActive(s, token, id, t0);
    // A server that failed is deleted all the same: what the check at the end counts is what is left.
    if (!(await remove(s, token, id))) keepers.push(id);
  }
}

function report(elapsedMs: number): { fivexx: number; hangs: number; errors: number } {
  let total = 0;
  let fivexx = 0;
  let hangs = 0;
  let errors = 0;
  const rows: string[] = [];
  const names = [...operations.keys()].sort();
  for (const name of names) {
    const o = operations.get(name)!;
    const sorted = [...o.times].sort((a, b) => a - b);
    total += sorted.length;
    const other = [...o.statuses.entries()]
      .filter(([status]) => !/^2\d\d$/.test(status))
      .map(([status, c]) => `${status}: ${c}`);
    for (const [status, c] of o.statuses) {
      if (/^5\d\d$/.test(status)) fivexx += c;
      if (status === 'timeout') hangs += c;
      if (status.startsWith('error')) errors += c;
    }
    rows.push(
      `${name.padEnd(40)} ${String(sorted.length).padStart(7)} ${(sorted.length / (elapsedMs / 1000)).toFixed(1).padStart(7)} ` +
        `${ms(at(sorted, 0.5)).padStart(8)} ${ms(at(sorted, 0.95)).padStart(8)} ${ms(at(sorted, 0.99)).padStart(8)} ${ms(sorted[sorted.length - 1]).padStart(8)}   ${other.join(', ') || '-'}`,
    );
  }
  console.log(
    `${'request'.padEnd(40)} ${'count'.padStart(7)} ${'req/s'.padStart(7)} ${'p50'.padStart(8)} ${'p95'.padStart(8)} ${'p99'.padStart(8)} ${'max'.padStart(8)}   non-2xx`,
  );
  for (const row of rows) console.log(row);
  const all = names.flatMap((name) => operations.get(name)!.times).sort((a, b) => a - b);
  console.log(
    `${'all'.padEnd(40)} ${String(total).padStart(7)} ${(total / (elapsedMs / 1000)).toFixed(1).padStart(7)} ` +
      `${ms(at(all, 0.5)).padStart(8)} ${ms(at(all, 0.95)).padStart(8)} ${ms(at(all, 0.99)).padStart(8)} ${ms(all[all.length - 1]).padStart(8)}`,
  );
  for (const [key, bodies] of samples) console.log(`  ${key}: ${bodies.join(' | ')}`);
  const active = [...tally.activeTimes].sort((a, b) => a - b);
  const gone = [...tally.goneTimes].sort((a, b) => a - b);
  console.log(
    `server cycles: ${tally.creates} created (${(tally.creates / (elapsedMs / 1000)).toFixed(1)}/s), ${tally.deletes} deleted; ` +
      `POST -> seen ACTIVE p50 ${ms(at(active, 0.5))} p95 ${ms(at(active, 0.95))} p99 ${ms(at(active, 0.99))} max ${ms(active[active.length - 1])}; ` +
      `DELETE -> seen gone p50 ${ms(at(gone, 0.5))} p95 ${ms(at(gone, 0.95))} p99 ${ms(at(gone, 0.99))} max ${ms(gone[gone.length - 1])} (polled every ${POLL_MS} ms)`,
  );
  return { fivexx, hangs, errors };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces)');
  const started = Date.now();
  const deployment = new MultihostDeployment({
    port: PORT_BASE,
    hosts: HOSTS,
    prefix: PREFIX,
    subnet: SUBNET,
    agentEnv: { NOVUM_COMPUTE_DRIVERS: 'fake' },
    logLevel: process.env.BENCH_LOG_LEVEL ?? 'warn',
    // Nova's defaults, as a deployment runs, rather than the e2e's quick failure detection.
    // Eight processes of at most POOL connections each stay under PostgreSQL's default max_connections (100),
    // which the machine's other users share.
    sharedEnv: {
      NOVUM_REPORT_INTERVAL: '10',
      NOVUM_SERVICE_DOWN_TIME: '60',
      NOVUM_DATABASE_POOL_SIZE: String(POOL),
    },
  });
  let db: Client | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaning ??= (async () => {
      await db?.end().catch(() => undefined);
      await deployment.destroy().catch((error) => console.error('deployment destroy:', error));
    })());
  const interrupted = () => {
    stopping = true;
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  let failures = 0;
  try {
    const cpu = cpus();
    console.log(
      `load benchmark: ${CLIENTS} clients for ${SECONDS} s against ${HOSTS} namespace hosts (${PREFIX}1..${HOSTS}, ${SUBNET}.0/24), ` +
        `database pool ${POOL} per process, compute agents on the FAKE driver (NOVUM_COMPUTE_DRIVERS=fake: no real guests), controller services apart ` +
        `(identity, image, network, compute-api, conductor), PostgreSQL and RabbitMQ through the relay; ` +
        `machine: ${cpu.length} x ${cpu[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, ` +
        `load average ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}; ${new Date().toISOString()}`,
    );
    await deployment.start();
    const { urls } = deployment;
    const passwords = deployment.passwords();
    const admin = await issueToken(urls.identity, {
      user: 'admin',
      password: passwords.admin,
      project: 'admin',
    });
    // The three hosts registered and up before any create.
    for (const deadline = Date.now() + 90_000; ;) {
      const services = await api(urls.compute, 'GET', '/os-services?binary=nova-compute', {
        token: admin.token,
      });
      const up = (services.body?.services ?? []).filter((s: any) => s.state === 'up').length;
      if (up >= HOSTS) break;
      if (Date.now() > deadline) throw new Error(`only ${up} of ${HOSTS} compute hosts up after 90 s`);
      await sleep(500);
    }
    const demo = await issueToken(urls.identity, { user: 'demo', password: passwords.demo, project: 'demo' });
    const project = demo.body.token.project.id as string;
    // Quotas raised rather than the test shrunk: every client keeps one server and cycles another.
    const quota = await api(urls.compute, 'PUT', `/os-quota-sets/${project}`, {
      token: admin.token,
      body: { quota_set: { instances: -1, cores: -1, ram: -1 } },
    });
    if (quota.status !== 200) throw new Error(`compute quota update answered ${quota.status}`);
    const ports = await api(urls.network, 'PUT', `/v2.0/quotas/${project}`, {
      token: admin.token,
      body: { quota: { port: -1 } },
    });
    if (ports.status !== 200) throw new Error(`port quota update answered ${ports.status}`);
    const image = await api(urls.image, 'POST', '/v2/images', {
      token: demo.token,
      body: { name: 'load-image', disk_format: 'raw', container_format: 'bare' },
    });
    const upload = await putData(
      urls.image,
      `/v2/images/${image.body.id}/file`,
      demo.token,
      Buffer.alloc(1 << 20),
    );
    if (upload.status !== 204) throw new Error(`image upload answered ${upload.status}`);
    const network = await api(urls.network, 'POST', '/v2.0/networks', {
      token: demo.token,
      body: { network: { name: 'load' } },
    });
    const subnet = await api(urls.network, 'POST', '/v2.0/subnets', {
      token: demo.token,
      body: { subnet: { network_id: network.body.network.id, cidr: '10.90.0.0/20', ip_version: 4 } },
    });
    if (subnet.status !== 201) throw new Error(`subnet create answered ${subnet.status}`);
    const setup: Setup = {
      ...urls,
      imageId: image.body.id,
      networkId: network.body.network.id,
    };
    // Each client its own token (password issues are scrypt-bound: a few at a time).
    const tokens: string[] = [];
    for (let i = 0; i < CLIENTS; i += 8) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(8, CLIENTS - i) }, () =>
          issueToken(urls.identity, { user: 'demo', password: passwords.demo, project: 'demo' }),
        ),
      );
      tokens.push(...batch.map((b) => b.token));
    }
    console.log(
      `deployment up and ${CLIENTS} tokens issued in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );

    const pids = Object.fromEntries(
      [...deployment.processes.entries()].map(([name, p]) => [name, p.child.pid!]),
    );
    pids.bench = process.pid;
    const cpuAt = (): Record<string, number> => ({
      ...Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)])),
      postgres: cpuSecondsOf('postgres'),
      rabbitmq: cpuSecondsOf('beam.smp'),
    });
    const waitAt = (): Record<string, number> =>
      Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, runQueueSeconds(pid)]));
    const cpu0 = cpuAt();
    const wait0 = waitAt();
    const machine0 = machineCpu();
    const t0 = performance.now();
    const deadline = t0 + SECONDS * 1000;
    const keepers: string[] = [];
    const clients = Promise.all(tokens.map((token, n) => runClient(setup, n, token, deadline, keepers)));
    let lastCount = 0;
    let lastAt = t0;
    const progress = setInterval(() => {
      const now = performance.now();
      let count = 0;
      let fivexx = 0;
      for (const o of operations.values()) {
        count += o.times.length;
        for (const [status, c] of o.statuses) if (/^5|timeout|error/.test(status)) fivexx += c;
      }
      console.log(
        `  ${((now - t0) / 1000).toFixed(0).padStart(4)} s: ${count} requests, ${((count - lastCount) / ((now - lastAt) / 1000)).toFixed(0)} req/s lately, ` +
          `${tally.creates} servers created, ${tally.deletes} deleted, ${fivexx} 5xx/timeouts/errors, load average ${loadavg()[0].toFixed(1)}`,
      );
      lastCount = count;
      lastAt = now;
    }, 30_000);
    await clients;
    clearInterval(progress);
    const elapsed = performance.now() - t0;
    const cpu1 = cpuAt();
    const wait1 = waitAt();
    const machine1 = machineCpu();
    console.log(
      `\n${CLIENTS} clients, ${(elapsed / 1000).toFixed(1)} s (the last cycles finished after the ${SECONDS} s deadline)`,
    );
    const { fivexx, hangs, errors } = report(elapsed);
    const wall = elapsed / 1000;
    const cores = (name: string) => ((cpu1[name] - cpu0[name]) / wall).toFixed(2);
    console.log(
      `CPU (cores busy on average): machine ${((machine1.busy - machine0.busy) / wall).toFixed(2)} of ${cpus().length}; ` +
        Object.keys(cpu0)
          .map((name) => `${name} ${cores(name)}`)
          .join(', ') +
        ' (postgres and rabbitmq: every such process of the machine)',
    );
    // A process that waits for a CPU as long as it runs is held back by the machine, not by its own work.
    console.log(
      `main thread waiting for a CPU while runnable (share of the run's wall time): ` +
        Object.keys(wait0)
          .map((name) => `${name} ${(((wait1[name] - wait0[name]) / wall) * 100).toFixed(0)} %`)
          .join(', '),
    );

    // Nothing lost: exactly the kept servers exist, ACTIVE; every cycled one is gone with its port.
    db = new Client({ connectionString: deployment.databaseUrl });
    await db.connect();
    const listed: any[] = [];
    let next: string | undefined = `${urls.compute}/servers/detail?all_tenants=1&limit=1000`;
    while (next) {
      const page = await api(next, 'GET', '', { token: admin.token });
      if (page.status !== 200) throw new Error(`server listing answered ${page.status}`);
      listed.push(...page.body.servers);
      next = page.body.servers_links?.find((l: any) => l.rel === 'next')?.href;
    }
    const kept = new Set(keepers);
    const missing = keepers.filter((id) => !listed.some((s) => s.id === id));
    const extra = listed.filter((s) => !kept.has(s.id)).map((s) => `${s.id} ${s.status}`);
    const notActive = listed.filter((s) => s.status !== 'ACTIVE').map((s) => `${s.id} ${s.status}`);
    const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM port WHERE network_id = $1`, [
      setup.networkId,
    ]);
    const portCount = Number(rows[0].n);
    console.log(
      `check: ${keepers.length} servers kept, ${listed.length} listed; missing ${missing.length}, unexpected ${extra.length}, ` +
        `not ACTIVE ${notActive.length}; ${portCount} ports on the network; stuck ${tally.stuck.length}, failed ${tally.failed.length}`,
    );
    for (const line of [
      ...missing.map((m) => `missing ${m}`),
      ...extra,
      ...notActive,
      ...tally.stuck,
      ...tally.failed,
    ].slice(0, 20))
      console.log(`  ${line}`);
    // The kept servers deleted as the clients did theirs.
    const c0 = performance.now();
    const removed = await Promise.all(
      keepers.map(async (id, i) => remove(setup, tokens[i % tokens.length], id)),
    );
    console.log(
      `deleted the ${keepers.length} kept servers: ${removed.filter(Boolean).length} gone in ${((performance.now() - c0) / 1000).toFixed(1)} s`,
    );
    failures =
      fivexx +
      hangs +
      errors +
      missing.length +
      extra.length +
      notActive.length +
      tally.stuck.length +
      tally.failed.length +
      (portCount === keepers.length ? 0 : 1) +
      removed.filter((r) => !r).length;
    console.log(failures ? `FAILED: ${failures} problems (see above)` : 'no 5xx, no hang, nothing lost');
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await cleanUp();
  }
  if (failures) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
