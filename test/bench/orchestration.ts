/**
 * Orchestration benchmark: a 200-resource stack (RandomStrings, and TestResources that read them) created
 * and deleted through the Heat API of a real all-in-one cloud, in resources/s, the parallel layout and a
 * chain of dependencies; then, when the container driver can run here (root, runc), a stack of 20
 * containers (OS::Zun::Container on NOVUM_COMPUTE_DRIVERS=container) until CREATE_COMPLETE and deleted.
 * Not a test: it prints figures.
 *
 *   npx tsx test/bench/orchestration.ts [resources, default 200] [containers, default 20]
 *
 * NOVUM_DIST picks the build (default dist/); BENCH_MODE=production runs the clouds on PostgreSQL +
 * RabbitMQ; BENCH_LOG_LEVEL (default warn) sets their log level.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CloudHandle, startCloud } from '../e2e/support/cloud';
import { missingHostTools, removeContainerLeftovers } from '../e2e/support/host';
import { api, issueToken } from '../e2e/support/keystone';

const RESOURCES = Number(process.argv[2] ?? 200);
const CONTAINERS = Number(process.argv[3] ?? 20);
const mode = process.env.BENCH_MODE === 'production' ? 'production' : 'embedded';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Heat {
  root: string;
  token: string;
  project: string;
}

async function heatOf(cloud: CloudHandle): Promise<Heat> {
  const { token, body } = await issueToken(cloud.identityUrl, {
    user: 'demo',
    password: cloud.demoPassword,
    project: 'demo',
  });
  return {
    root: cloud.services.orchestration.replace(/\/v1\/.*$/, ''),
    token,
    project: body.token.project.id,
  };
}

/** Half RandomStrings, half TestResources each reading one of them; `chain`: each also waits for the previous. */
function template(resources: number, chain: boolean): object {
  const half = Math.floor(resources / 2);
  const body: Record<string, unknown> = {};
  for (let i = 0; i < half; i++) {
    body[`random${i}`] = {
      type: 'OS::Heat::RandomString',
      properties: { length: 16 },
      ...(chain && i > 0 ? { depends_on: [`test${i - 1}`] } : {}),
    };
    body[`test${i}`] = {
      type: 'OS::Heat::TestResource',
      properties: { value: { get_attr: [`random${i}`, 'value'] } },
    };
  }
  return { heat_template_version: '2021-04-16', resources: body };
}

/** Creates the stack and polls it every 50 ms until the action ends; the seconds it took, and the stack. */
async function createStack(heat: Heat, name: string, body: object): Promise<{ seconds: number; id: string }> {
  const t0 = performance.now();
  const created = await api(heat.root, 'POST', `/v1/${heat.project}/stacks`, {
    token: heat.token,
    body: { stack_name: name, template: body, timeout_mins: 30 },
  });
  if (created.status !== 201)
    throw new Error(`create answered ${created.status}: ${JSON.stringify(created.body)}`);
  const id = created.body.stack.id as string;
  const status = await until(heat, name, id, 'CREATE');
  if (status !== 'CREATE_COMPLETE') throw new Error(`stack ${name} ended ${status}`);
  return { seconds: (performance.now() - t0) / 1000, id };
}

async function deleteStack(heat: Heat, name: string, id: string): Promise<number> {
  const t0 = performance.now();
  const deleted = await api(heat.root, 'DELETE', `/v1/${heat.project}/stacks/${name}/${id}`, {
    token: heat.token,
  });
  if (deleted.status !== 204)
    throw new Error(`delete answered ${deleted.status}: ${JSON.stringify(deleted.body)}`);
  const status = await until(heat, name, id, 'DELETE');
  if (status !== 'DELETE_COMPLETE') throw new Error(`stack ${name} ended ${status}`);
  return (performance.now() - t0) / 1000;
}

/** Polls the stack until its `action` is no longer IN_PROGRESS; a deleted stack is looked up with show_deleted. */
async function until(heat: Heat, name: string, id: string, action: string): Promise<string> {
  for (;;) {
    const shown = await api(
      heat.root,
      'GET',
      `/v1/${heat.project}/stacks/${name}/${id}?resolve_outputs=false`,
      {
        token: heat.token,
      },
    );
    const status: string | undefined = shown.body?.stack?.stack_status;
    if (shown.status === 404 && action === 'DELETE') return 'DELETE_COMPLETE';
    if (status && status !== `${action}_IN_PROGRESS`)
      return status.endsWith('_COMPLETE') ? status : `${status}: ${shown.body.stack.stack_status_reason}`;
    await sleep(50);
  }
}

function rssMiB(cloud: CloudHandle): number {
  const pid = JSON.parse(readFileSync(join(cloud.dataDir, 'ready.json'), 'utf8')).pid as number;
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

async function resourcePhases(): Promise<void> {
  const cloud = await startCloud({
    portBase: 26440,
    mode,
    extraEnv: { NOVUM_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn' },
  });
  try {
    const heat = await heatOf(cloud);
    console.log(
      `orchestration benchmark: ${cloud.mode} mode, ${RESOURCES} resources per stack, node ${process.version}`,
    );
    // Warm the code paths first.
    const warm = await createStack(heat, 'warm', template(10, false));
    await deleteStack(heat, 'warm', warm.id);
    for (const chain of [false, true]) {
      const layout = chain ? 'chain (each pair waits for the previous)' : 'parallel (pairs independent)';
      const name = chain ? 'chain' : 'flat';
      const created = await createStack(heat, name, template(RESOURCES, chain));
      const rss = rssMiB(cloud);
      const deleted = await deleteStack(heat, name, created.id);
      console.log(
        `${layout.padEnd(44)} create ${created.seconds.toFixed(2)} s (${(RESOURCES / created.seconds).toFixed(0)} resources/s), ` +
          `delete ${deleted.toFixed(2)} s (${(RESOURCES / deleted).toFixed(0)} resources/s), RSS after create ${rss.toFixed(0)} MiB`,
      );
    }
  } finally {
    await cloud.destroy();
  }
}

async function containerPhase(): Promise<void> {
  if (CONTAINERS <= 0) return;
  const missing = missingHostTools(['runc'], 'runc');
  if (missing) {
    console.log(`containers: skipped (${missing}; the container driver runs as root with runc)`);
    return;
  }
  const cloud = await startCloud({
    portBase: 26460,
    mode,
    extraEnv: {
      NOVUM_COMPUTE_DRIVERS: 'container',
      NOVUM_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
      NOVUM_ALLOCATION_RATIOS: '64,1.5,1.0',
    },
  });
  try {
    const heat = await heatOf(cloud);
    const admin = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    await api(cloud.services.compute, 'PUT', `/os-quota-sets/${heat.project}`, {
      token: admin.token,
      body: { quota_set: { instances: -1, cores: -1, ram: -1 } },
    });
    const archive = join(cloud.dataDir, 'busybox.tar');
    execFileSync(resolve(__dirname, '../../ops/images/build-busybox.sh'), [archive], { stdio: 'ignore' });
    const image = (
      await api(cloud.services.image, 'POST', '/v2/images', {
        token: heat.token,
        body: { name: 'busybox', disk_format: 'raw', container_format: 'docker' },
      })
    ).body;
    const upload = await fetch(`${cloud.services.image}/v2/images/${image.id}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': heat.token, 'content-type': 'application/octet-stream' },
      body: readFileSync(archive),
    });
    if (upload.status !== 204) throw new Error(`image upload answered ${upload.status}`);
    const container = (i: number) => ({
      type: 'OS::Zun::Container',
      properties: {
        image: 'busybox',
        name: `bench-${i}`,
        command: '/bin/sh -c \'trap "exit 0" TERM; sleep 2147483647 & wait\'',
        memory: 64,
        networks: [{ network: 'private' }],
      },
    });
    // The first container unpacks the image's layers on the host; the stack measures the rest.
    const first = await createStack(heat, 'first', {
      heat_template_version: '2021-04-16',
      resources: { c: container(0) },
    });
    await deleteStack(heat, 'first', first.id);
    const body = {
      heat_template_version: '2021-04-16',
      resources: Object.fromEntries(Array.from({ length: CONTAINERS }, (_, i) => [`c${i}`, container(i)])),
    };
    const created = await createStack(heat, 'containers', body);
    const deleted = await deleteStack(heat, 'containers', created.id);
    console.log(
      `${`${CONTAINERS} containers (OS::Zun::Container, runc)`.padEnd(44)} create ${created.seconds.toFixed(2)} s ` +
        `(${(CONTAINERS / created.seconds).toFixed(1)} containers/s), delete ${deleted.toFixed(2)} s; ` +
        `first container alone (image unpacked) ${first.seconds.toFixed(2)} s`,
    );
  } finally {
    removeContainerLeftovers(cloud);
    await cloud.destroy();
  }
}

async function main(): Promise<void> {
  await resourcePhases();
  await containerPhase();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
