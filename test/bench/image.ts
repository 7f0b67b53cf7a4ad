/**
 * Image benchmark: upload and download throughput of one large image (1 GiB by default) through the
 * Glance API of a real all-in-one cloud, with the service's resident memory sampled all along, which must
 * stay flat (data is streamed, never held). Not a test: it asserts nothing and prints figures.
 *
 *   npx tsx test/bench/image.ts [MiB, default 1024]     # NOVUM_DIST picks the build, as for the e2e tests
 *
 * BENCH_MODE=production runs the cloud on PostgreSQL + RabbitMQ instead of SQLite.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { startCloud } from '../e2e/support/cloud';
import { api, issueToken } from '../e2e/support/keystone';

const MIB = 1024 * 1024;
const SIZE = Number(process.argv[2] ?? 1024) * MIB;

/** Resident set size of a process, in MiB, from /proc. */
function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

/** Samples a process's RSS every 50 ms until stopped; returns the peak. */
function sampleRss(pid: number): { stop(): number } {
  let peak = rssMiB(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMiB(pid));
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssMiB(pid));
    },
  };
}

/** SIZE bytes of incompressible data without holding them: one random MiB, sent again and again. */
function imageData(size: number): Readable {
  const block = randomBytes(MIB);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) {
        this.push(null);
        return;
      }
      const chunk = size - sent >= MIB ? block : block.subarray(0, size - sent);
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

function upload(url: string, token: string, size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'PUT',
        headers: {
          'x-auth-token': token,
          'content-type': 'application/octet-stream',
          'content-length': String(size),
        },
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    imageData(size).pipe(req);
  });
}

async function download(url: string, token: string): Promise<number> {
  const response = await fetch(url, { headers: { 'x-auth-token': token } });
  let bytes = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
  return bytes;
}

async function main(): Promise<void> {
  const cloud = await startCloud({
    portBase: 23040,
    mode: process.env.BENCH_MODE === 'production' ? 'production' : 'embedded',
    extraEnv: { NOVUM_LOG_LEVEL: 'info' },
  });
  try {
    const pid = JSON.parse(readFileSync(join(cloud.dataDir, 'ready.json'), 'utf8')).pid as number;
    const { token } = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    const url = cloud.services.image;
    console.log(
      `image benchmark: ${cloud.mode} mode, one ${SIZE / MIB} MiB raw image, node ${process.version}`,
    );
    const created = await api(url, 'POST', '/v2/images', {
      token,
      body: { name: 'bench', disk_format: 'raw', container_format: 'bare' },
    });
    const file = `${url}/v2/images/${created.body.id}/file`;
    const idle = rssMiB(pid);

    let rss = sampleRss(pid);
    let started = process.hrtime.bigint();
    const status = await upload(file, token, SIZE);
    let seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const uploadPeak = rss.stop();
    if (status !== 204) throw new Error(`upload answered ${status}`);
    console.log(
      `upload   ${(SIZE / MIB / seconds).toFixed(0).padStart(5)} MB/s   ${seconds.toFixed(1)} s   service RSS ${idle.toFixed(0)} MiB idle, ${uploadPeak.toFixed(0)} MiB peak`,
    );

    rss = sampleRss(pid);
    started = process.hrtime.bigint();
    const bytes = await download(file, token);
    seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const downloadPeak = rss.stop();
    if (bytes !== SIZE) throw new Error(`download returned ${bytes} bytes, not ${SIZE}`);
    console.log(
      `download ${(SIZE / MIB / seconds).toFixed(0).padStart(5)} MB/s   ${seconds.toFixed(1)} s   service RSS ${downloadPeak.toFixed(0)} MiB peak`,
    );
    const shown = await api(url, 'GET', `/v2/images/${created.body.id}`, { token });
    console.log(
      `image: status ${shown.body.status}, size ${shown.body.size}, os_hash_algo ${shown.body.os_hash_algo}`,
    );
  } finally {
    await cloud.destroy();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
