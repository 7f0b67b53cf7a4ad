/**
 * What the tests of the real drivers share: their host prerequisites, a cloud whose agent runs containers with
 * the busybox image in Glance, a look into the runtime's state and the cgroups, and the clean-up after a
 * failed test, so that nothing of Novum stays on the host whatever happened.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CloudHandle, startCloud } from './cloud';
import { defaultRuntime } from '@novum/virt';
import { openstackOk } from './openstack';

/**
 * The OCI runtime the container tests drive: the cloud's default (crun where installed, else runc), or
 * NOVUM_TEST_RUNTIME (`runc`, `crun`). The container driver's unit spec drives both with real containers.
 */
export const RUNTIME =
  process.env.NOVUM_TEST_RUNTIME === 'runc' || process.env.NOVUM_TEST_RUNTIME === 'crun'
    ? process.env.NOVUM_TEST_RUNTIME
    : defaultRuntime();

/** Why a host test file cannot run here (not root, a tool missing), or undefined when it can. */
export function missingHostTools(tools: readonly string[], packages: string): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  for (const tool of tools) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed (apt-get install ${packages})`;
    }
  }
  return undefined;
}

/**
 * The reason to skip a host test file, or undefined to run it. Under the test command (ops/test.sh sets
 * NOVUM_REQUIRE_HOST_TESTS=1, having installed what they need) a gap fails the file instead.
 */
export function hostTestSkip(what: string, missing: string | undefined): string | undefined {
  if (missing && process.env.NOVUM_REQUIRE_HOST_TESTS === '1') {
    throw new Error(`the ${what} tests cannot run: ${missing}`);
  }
  return missing;
}

export interface ContainerCloud {
  cloud: CloudHandle;
  admin: Record<string, string>;
  demo: Record<string, string>;
}

/**
 * A cloud offering the container driver (and fake), with ops/images' busybox as the public image `busybox`;
 * `extraEnv` adds to its settings or overrides them (NOVUM_COMPUTE_DRIVERS with more drivers).
 */
export async function startContainerCloud(
  portBase: number,
  extraEnv: Record<string, string> = {},
): Promise<ContainerCloud> {
  const cloud = await startCloud({
    portBase,
    extraEnv: { NOVUM_COMPUTE_DRIVERS: 'container,fake', NOVUM_CONTAINER_RUNTIME: RUNTIME, ...extraEnv },
  });
  const admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
  const demo = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-demo' };
  const archive = join(cloud.dataDir, 'busybox.tar');
  execFileSync(resolve(__dirname, '../../../ops/images/build-busybox.sh'), [archive], { stdio: 'ignore' });
  await openstackOk(
    admin,
    ...['image', 'create', '--disk-format', 'raw', '--container-format', 'docker', '--public'],
    ...['--file', archive, 'busybox'],
  );
  return { cloud, admin, demo };
}

export const runtimeRoot = (cloud: Pick<CloudHandle, 'dataDir'>) =>
  join(cloud.dataDir, 'containers', 'runtime');

/** `runc state` of a server's container, or undefined when the runtime does not know it. */
export function runtimeState(
  cloud: Pick<CloudHandle, 'dataDir'>,
  uuid: string,
): { status: string; pid: number } | undefined {
  try {
    return JSON.parse(
      execFileSync(RUNTIME, ['--root', runtimeRoot(cloud), 'state', `novum-${uuid}`], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    );
  } catch {
    return undefined;
  }
}

/** A server's cgroup directory (or one of its files) under a v1 controller. */
export const cgroupPath = (controller: string, uuid: string, file?: string) =>
  join('/sys/fs/cgroup', controller, 'novum', uuid, ...(file ? [file] : []));

export const readTrimmed = (path: string) => readFileSync(path, 'utf8').trim();

/** The mount table's lines for mounts under the cloud's data dir. */
export const mountsOf = (cloud: Pick<CloudHandle, 'dataDir'>) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(cloud.dataDir));

/** The nftables table (bridge and inet) of the cloud's host network. */
export const nftTableOf = (cloud: Pick<CloudHandle, 'dataDir'>) =>
  `novum_${createHash('sha256').update(join(cloud.dataDir, 'host-network')).digest('hex').slice(0, 8)}`;

const quietly = (command: string, ...args: string[]) => {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
  } catch {
    /* already gone */
  }
};

/**
 * After a failed test: the containers of the cloud's data dir, their mounts, loop devices and network
 * namespaces, and the cloud's nft tables, all removed before the cloud is destroyed.
 */
export function removeContainerLeftovers(cloud: Pick<CloudHandle, 'dataDir'>): void {
  const instances = join(cloud.dataDir, 'containers', 'instances');
  for (const uuid of existsSync(instances) ? readdirSync(instances) : []) {
    quietly(RUNTIME, '--root', runtimeRoot(cloud), 'delete', '--force', `novum-${uuid}`);
    quietly('umount', join(instances, uuid, 'rootfs'));
    quietly('umount', join(instances, uuid, 'disk'));
    quietly('ip', 'netns', 'delete', `novum-${uuid}`);
  }
  for (const line of execFileSync('losetup', ['-a'], { encoding: 'utf8' }).split('\n')) {
    if (line.includes(cloud.dataDir)) quietly('losetup', '-d', line.split(':')[0]);
  }
  // The metadata namespace of each network the cloud plugged ports of (and its veth into the bridge).
  const plugged = join(cloud.dataDir, 'host-network', 'ports.json');
  const ports: { networkId: string; bridge: string }[] = existsSync(plugged)
    ? JSON.parse(readFileSync(plugged, 'utf8')).ports
    : [];
  for (const networkId of new Set(ports.map((port) => port.networkId))) {
    quietly('ip', 'link', 'delete', `novumm${networkId.replace(/-/g, '').slice(0, 9)}`);
    quietly('ip', 'netns', 'delete', `novum-md-${networkId}`);
  }
  // The bridges of those networks (and their tunnels): their ports went with the namespaces.
  for (const bridge of new Set(ports.map((port) => port.bridge))) quietly('ip', 'link', 'delete', bridge);
  // The routers the cloud's L3 agent served: their namespaces, their ports' veths and bridges.
  const routers: { id: string; ports: { devname: string; bridge: string }[] }[] = existsSync(plugged)
    ? (JSON.parse(readFileSync(plugged, 'utf8')).routers ?? [])
    : [];
  for (const router of routers) {
    quietly('ip', 'netns', 'delete', `novum-r-${router.id}`);
    for (const port of router.ports) quietly('ip', 'link', 'delete', port.devname);
    for (const port of router.ports) quietly('ip', 'link', 'delete', port.bridge);
  }
  for (const family of ['inet', 'bridge']) quietly('nft', 'delete', 'table', family, nftTableOf(cloud));
}

/**
 * What is still on the host of the cloud's containers and of the given servers in particular: instance
 * directories, runtime states, cgroups, network namespaces, and mounts and loop devices under the data dir
 * (empty when everything is gone).
 */
export function containerHostLeftovers(
  cloud: Pick<CloudHandle, 'dataDir'>,
  uuids: readonly string[],
): string[] {
  const instances = join(cloud.dataDir, 'containers', 'instances');
  const left = (existsSync(instances) ? readdirSync(instances) : []).map((uuid) => `instance ${uuid}`);
  if (existsSync(runtimeRoot(cloud)))
    left.push(...readdirSync(runtimeRoot(cloud)).map((name) => `runtime state ${name}`));
  left.push(...mountsOf(cloud).map((line) => `mount ${line}`));
  for (const line of execFileSync('losetup', ['-a'], { encoding: 'utf8' }).split('\n')) {
    if (line.includes(cloud.dataDir)) left.push(`loop device ${line}`);
  }
  for (const uuid of uuids) {
    if (existsSync(join('/run/netns', `novum-${uuid}`))) left.push(`netns novum-${uuid}`);
    for (const controller of ['memory', 'cpu', 'pids', 'freezer']) {
      if (existsSync(cgroupPath(controller, uuid))) left.push(`cgroup ${controller} ${uuid}`);
    }
  }
  return left;
}

/**
 * Busybox run in a container from the host, as the host's root: into its mount, uts, ipc, net and pid
 * namespaces (`runc exec` would join its user namespace first, and from there may not enter a network
 * namespace the host made). `runtimeRootDir`: the runtime state dir of the agent that made the container.
 */
export function busyboxIn(runtimeRootDir: string, uuid: string, ...args: string[]): string {
  const run = (command: string, ...rest: string[]) =>
    execFileSync(command, rest, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const { pid } = JSON.parse(run(RUNTIME, '--root', runtimeRootDir, 'state', `novum-${uuid}`));
  return run(
    'nsenter',
    ...['-t', String(pid), '-m', '-u', '-i', '-n', '-p', '-r', '-w'],
    '/bin/busybox',
    ...args,
  );
}

/** Whether one ICMP echo from the container gets its answer within a second. */
export function pingsFrom(runtimeRootDir: string, uuid: string, address: string): boolean {
  try {
    busyboxIn(runtimeRootDir, uuid, 'ping', '-c', '1', '-W', '1', address);
    return true;
  } catch {
    return false;
  }
}

/** Whether one ICMP echo from a network namespace of the machine's (`ip netns` name) gets its answer in a second. */
export function pingsFromNetns(netns: string, address: string): boolean {
  try {
    execFileSync('ip', ['netns', 'exec', netns, 'busybox', 'ping', '-c', '1', '-W', '1', address], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

/** Whether the check holds within the time (polled every 300 ms). */
export async function eventually(check: () => boolean, seconds = 20): Promise<boolean> {
  const deadline = Date.now() + seconds * 1000;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolveWait) => setTimeout(resolveWait, 300));
  }
  return true;
}
