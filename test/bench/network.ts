/**
 * Network benchmark: 1,000 port creates sent at once to a real all-in-one cloud, each getting an
 * address from IPAM on one subnet, printing ports/s and latency percentiles, and checking that every
 * address and MAC is distinct. Not a test: it prints figures.
 *
 *   npx tsx test/bench/network.ts [ports, default 1000]
 *
 * NOVUM_DIST picks the build (default dist/); BENCH_MODE=production runs the cloud on PostgreSQL +
 * RabbitMQ instead of SQLite; BENCH_LOG_LEVEL (default info, the product's default) sets its log level.
 */
import { startCloud } from '../e2e/support/cloud';
import { api, issueToken } from '../e2e/support/keystone';

const PORTS = Number(process.argv[2] ?? 1000);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main(): Promise<void> {
  const cloud = await startCloud({
    portBase: 23140,
    mode: process.env.BENCH_MODE === 'production' ? 'production' : 'embedded',
    extraEnv: { NOVUM_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info' },
  });
  try {
    const url = cloud.services.network;
    const { token, body } = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    const call = async (method: string, path: string, payload?: unknown) => {
      const response = await api(url, method, path, { token, body: payload });
      if (response.status >= 300)
        throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(response.body)}`);
      return response.body;
    };
    await call('PUT', `/v2.0/quotas/${body.token.project.id}`, { quota: { port: -1 } });
    const network = (await call('POST', '/v2.0/networks', { network: { name: 'bench' } })).network;
    await call('POST', '/v2.0/subnets', {
      subnet: { network_id: network.id, cidr: '10.128.0.0/20', ip_version: 4 },
    });
    // Warm the code paths (and the default security group) before measuring.
    await call(
      'DELETE',
      `/v2.0/ports/${(await call('POST', '/v2.0/ports', { port: { network_id: network.id } })).port.id}`,
    );

    console.log(
      `network benchmark: ${cloud.mode} mode, ${PORTS} port creates in parallel, node ${process.version}`,
    );
    const latencies: number[] = [];
    const start = performance.now();
    const results = await Promise.all(
      Array.from({ length: PORTS }, async (_, i) => {
        const t0 = performance.now();
        const response = await api(url, 'POST', '/v2.0/ports', {
          token,
          body: { port: { network_id: network.id, name: `bench-${i}` } },
        });
        latencies.push(performance.now() - t0);
        return response;
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    const created = results.filter((r) => r.status === 201).map((r) => r.body.port);
    const addresses = new Set(created.map((p) => p.fixed_ips[0].ip_address));
    const macs = new Set(created.map((p) => p.mac_address));
    latencies.sort((a, b) => a - b);
    console.log(
      `created ${created.length}/${PORTS} in ${seconds.toFixed(2)} s: ${(created.length / seconds).toFixed(0)} ports/s, ` +
        `p50 ${percentile(latencies, 50).toFixed(0)} ms, p99 ${percentile(latencies, 99).toFixed(0)} ms; ` +
        `${addresses.size} distinct addresses, ${macs.size} distinct MACs, ${PORTS - created.length} errors`,
    );
    for (const failure of results.filter((r) => r.status !== 201).slice(0, 3)) {
      console.log(`  failure: ${failure.status} ${JSON.stringify(failure.body)}`);
    }
  } finally {
    await cloud.destroy();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
