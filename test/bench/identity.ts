/**
 * Identity benchmark: token validation and token issue against a real all-in-one cloud, 16 concurrent
 * clients, printing requests/s and latency percentiles. Not a test: it asserts nothing and prints figures.
 *
 *   npm run build && npx tsx test/bench/identity.ts [seconds per phase, default 10]
 *
 * BENCH_MODE=production runs the cloud on PostgreSQL + RabbitMQ instead of SQLite; BENCH_LOG_LEVEL
 * (default info, the product's default) sets the cloud's log level.
 */
import autocannon from 'autocannon';
import { startCloud } from '../e2e/support/cloud';
import { issueToken } from '../e2e/support/keystone';

const SECONDS = Number(process.argv[2] ?? 10);
const CONNECTIONS = 16;

async function phase(name: string, options: autocannon.Options): Promise<void> {
  const result = await autocannon({ connections: CONNECTIONS, duration: SECONDS, ...options });
  const errors = result.non2xx + result.errors + result.timeouts;
  console.log(
    `${name.padEnd(34)} ${result.requests.average.toFixed(0).padStart(7)} req/s   p50 ${String(result.latency.p50).padStart(4)} ms   p99 ${String(result.latency.p99).padStart(4)} ms   ${result.requests.total} requests, ${errors} errors`,
  );
}

async function main(): Promise<void> {
  const cloud = await startCloud({
    portBase: 22000,
    mode: process.env.BENCH_MODE === 'production' ? 'production' : 'embedded',
  });
  try {
    const { token } = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    const { token: subject } = await issueToken(cloud.identityUrl, {
      user: 'demo',
      password: cloud.demoPassword,
      project: 'demo',
    });
    console.log(
      `identity benchmark: ${cloud.mode} mode, ${CONNECTIONS} connections, ${SECONDS} s per phase, node ${process.version}`,
    );

    const validate = {
      url: `${cloud.identityUrl}/v3/auth/tokens`,
      headers: { 'x-auth-token': token, 'x-subject-token': subject },
    };
    await phase('warm-up', { ...validate, duration: 2 });
    await phase('validate (GET /v3/auth/tokens)', validate);
    await phase('validate, ?nocatalog', { ...validate, url: `${validate.url}?nocatalog` });
    await phase('authenticated read (GET /v3/auth/projects)', {
      url: `${cloud.identityUrl}/v3/auth/projects`,
      headers: { 'x-auth-token': subject },
    });
    await phase('issue (POST /v3/auth/tokens, password)', {
      url: `${cloud.identityUrl}/v3/auth/tokens`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: 'demo', domain: { id: 'default' }, password: cloud.demoPassword } },
          },
          scope: { project: { name: 'demo', domain: { id: 'default' } } },
        },
      }),
    });
    await phase('issue (POST /v3/auth/tokens, token)', {
      url: `${cloud.identityUrl}/v3/auth/tokens`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: { methods: ['token'], token: { id: subject } },
          scope: { project: { name: 'demo', domain: { id: 'default' } } },
        },
      }),
    });
  } finally {
    await cloud.destroy();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
