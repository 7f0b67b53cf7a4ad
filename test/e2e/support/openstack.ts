import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The real OpenStack client (Debian's python3-openstackclient), never a pyenv copy. */
export const OPENSTACK = '/usr/bin/openstack';

export interface CliResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs `openstack ARGS` with the given environment (clouds.yaml + OS_CLOUD, or OS_* variables). */
export async function openstack(env: Record<string, string>, ...args: string[]): Promise<CliResult> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('OS_') && k !== 'PYTHONPATH'),
  );
  try {
    const { stdout, stderr } = await run(OPENSTACK, args, { env: { ...clean, ...env }, timeout: 60_000 });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : 1 };
  }
}

/** `openstack ARGS -f json`, failing the test with the client's own words when it fails. */
export async function openstackJson<T = any>(env: Record<string, string>, ...args: string[]): Promise<T> {
  const result = await openstack(env, ...args, '-f', 'json');
  if (result.code !== 0)
    throw new Error(`openstack ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** `openstack ARGS` that must succeed; returns its output. */
export async function openstackOk(env: Record<string, string>, ...args: string[]): Promise<string> {
  const result = await openstack(env, ...args);
  if (result.code !== 0)
    throw new Error(`openstack ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}
