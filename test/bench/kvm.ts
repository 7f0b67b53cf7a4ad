/**
 * KVM driver benchmark against a real all-in-one cloud (NOVUM_COMPUTE_DRIVERS=kvm) as root, with the tiny
 * image of ops/images/build-vm-busybox.sh: the first m1.tiny server of an uncached image, then one server
 * at a time with the image cached, POST -> ACTIVE and POST -> the guest's banner on the serial console
 * (os-getConsoleOutput), then `createImage` of one server's 1 GiB root disk until the image is active.
 * Not a test: it asserts nothing and prints figures, the accelerator named.
 *
 *   npx tsx test/bench/kvm.ts [sequential servers, default 5]
 *
 * BENCH_MODE=production runs the cloud on PostgreSQL + RabbitMQ; NOVUM_KVM_ACCEL picks the accelerator
 * (default: probed). NOVUM_DIST picks the build (default dist/). Servers boot without ports.
 * The image boots the tiny kernel of ops/images/build-tiny-kernel.sh (compiled on first use, minutes, then
 * cached); NOVUM_BENCH_KERNEL=debian boots Debian's stock kernel instead, as the tests do.
 */
import { readFileSync } from 'node:fs';
import { missingVmPrerequisites, VM_IMAGE_BANNER, vmTestImage } from '../../libs/virt/testing/vm-image';
import { startCloud } from '../e2e/support/cloud';
import { api, issueToken } from '../e2e/support/keystone';

const SEQUENTIAL = Number(process.argv[2] ?? 5);
const FLAVOR = '1'; // m1.tiny: 1 vCPU, 512 MB, 1 GB, novum:driver=kvm
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const at = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

interface Bench {
  root: string;
  imageUrl: string;
  token: string;
  image: string;
}

async function create(b: Bench, name: string): Promise<string> {
  const response = await api(b.root, 'POST', '/servers', {
    token: b.token,
    headers: { 'openstack-api-version': 'compute 2.37' },
    body: { server: { name, imageRef: b.image, flavorRef: FLAVOR, networks: 'none' } },
  });
  if (response.status !== 202)
    throw new Error(`create answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body.server.id as string;
}

async function untilActive(b: Bench, id: string, t0: number): Promise<number> {
  for (;;) {
    const { body } = await api(b.root, 'GET', `/servers/${id}`, { token: b.token });
    if (body.server.status === 'ACTIVE') return performance.now() - t0;
    if (body.server.status === 'ERROR')
      throw new Error(`server ${id} went to ERROR: ${JSON.stringify(body.server.fault)}`);
    await sleep(5);
  }
}

async function untilBanner(b: Bench, id: string, t0: number): Promise<number> {
  for (;;) {
    const { body } = await api(b.root, 'POST', `/servers/${id}/action`, {
      token: b.token,
      body: { 'os-getConsoleOutput': {} },
    });
    if (typeof body?.output === 'string' && body.output.includes(VM_IMAGE_BANNER))
      return performance.now() - t0;
    await sleep(50);
  }
}

async function deleteAll(b: Bench): Promise<void> {
  const { body } = await api(b.root, 'GET', '/servers', { token: b.token });
  await Promise.all(
    body.servers.map((s: { id: string }) => api(b.root, 'DELETE', `/servers/${s.id}`, { token: b.token })),
  );
  while ((await api(b.root, 'GET', '/servers', { token: b.token })).body.servers.length) await sleep(50);
}

function report(label: string, values: number[]): void {
  const sorted = [...values].sort((x, y) => x - y);
  console.log(
    `${label.padEnd(52)} p50 ${at(sorted, 0.5).toFixed(0).padStart(6)} ms   p95 ${at(sorted, 0.95).toFixed(0).padStart(6)} ms   (${values.length} servers)`,
  );
}

async function main(): Promise<void> {
  const missing = missingVmPrerequisites();
  if (missing) throw new Error(`the kvm benchmark cannot run: ${missing}`);
  const kernel = process.env.NOVUM_BENCH_KERNEL === 'debian' ? 'debian' : 'tiny';
  const imageFile = vmTestImage({ kernel });
  const cloud = await startCloud({
    portBase: 24450,
    mode: process.env.BENCH_MODE === 'production' ? 'production' : 'embedded',
    extraEnv: {
      NOVUM_COMPUTE_DRIVERS: 'kvm',
      NOVUM_LOG_LEVEL: 'warn',
      ...(process.env.NOVUM_KVM_ACCEL ? { NOVUM_KVM_ACCEL: process.env.NOVUM_KVM_ACCEL } : {}),
    },
  });
  try {
    const { token } = await issueToken(cloud.identityUrl, {
      user: 'demo',
      password: cloud.demoPassword,
      project: 'demo',
    });
    const imageUrl = cloud.services.image;
    const image = (
      await api(imageUrl, 'POST', '/v2/images', {
        token,
        body: { name: 'bench-tiny', disk_format: 'qcow2', container_format: 'bare' },
      })
    ).body;
    const upload = await fetch(`${imageUrl}/v2/images/${image.id}/file`, {
      method: 'PUT',
      headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' },
      body: readFileSync(imageFile),
    });
    if (upload.status !== 204) throw new Error(`image upload answered ${upload.status}`);
    const b: Bench = { root: cloud.services.compute, imageUrl, token, image: image.id };

    let t0 = performance.now();
    const firstId = await create(b, 'first');
    const first = await untilActive(b, firstId, t0);
    const accel = /-accel\0([^\0]+)/.exec(
      readFileSync(
        `/proc/${readFileSync(`${cloud.dataDir}/kvm/instances/${firstId}/qemu.pid`, 'utf8').trim()}/cmdline`,
        'utf8',
      ),
    )?.[1];
    console.log(
      `kvm benchmark: ${cloud.mode} mode, accelerator ${accel}, tiny image (${kernel} kernel), node ${process.version}`,
    );
    console.log(
      `${'first server, image not yet on the host: ACTIVE'.padEnd(52)} ${first.toFixed(0).padStart(10)} ms`,
    );
    await deleteAll(b);

    const active: number[] = [];
    const banner: number[] = [];
    let last = '';
    for (let i = 0; i < SEQUENTIAL; i++) {
      t0 = performance.now();
      last = await create(b, `seq-${i}`);
      active.push(await untilActive(b, last, t0));
      banner.push(await untilBanner(b, last, t0));
      if (i < SEQUENTIAL - 1) await deleteAll(b);
    }
    report('POST -> ACTIVE, image cached, one at a time', active);
    report(`POST -> ${VM_IMAGE_BANNER} on the serial console`, banner);

    t0 = performance.now();
    const snap = await api(b.root, 'POST', `/servers/${last}/action`, {
      token,
      headers: { 'openstack-api-version': 'compute 2.45' },
      body: { createImage: { name: 'bench-snapshot' } },
    });
    if (snap.status !== 202) throw new Error(`createImage answered ${snap.status}`);
    const snapshotId = snap.body.image_id as string;
    for (;;) {
      const { body } = await api(imageUrl, 'GET', `/v2/images/${snapshotId}`, { token });
      if (body.status === 'active') {
        console.log(
          `${'createImage of a 1 GiB root disk -> image active'.padEnd(52)} ${(performance.now() - t0).toFixed(0).padStart(10)} ms  (${(body.size / 2 ** 20).toFixed(1)} MiB of qcow2)`,
        );
        break;
      }
      if (body.status === 'killed' || body.status === 'deleted') throw new Error(`snapshot ${body.status}`);
      await sleep(20);
    }
    await deleteAll(b);
  } finally {
    await cloud.destroy();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
