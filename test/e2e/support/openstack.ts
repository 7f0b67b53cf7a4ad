import { ChildProcessByStdio, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The real OpenStack client (Debian's python3-openstackclient), never a pyenv copy. */
export const OPENSTACK = '/usr/bin/openstack';
const PYTHON = '/usr/bin/python3';
const TIMEOUT_S = 60;

export interface CliResult {
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * Runs `openstack ARGS` with the given environment (clouds.yaml + OS_CLOUD, or OS_* variables).
 *
 * By default through openstack-runner.py: the same `openstackclient.shell.main(argv)` as /usr/bin/openstack, in a
 * process forked per command from one that has imported the client once (the imports are most of a command's
 * 1.8 s). NOVUM_E2E_CLI_FORK=0 starts /usr/bin/openstack itself for every command instead.
 */
export async function openstack(env: Record<string, string>, ...args: string[]): Promise<CliResult> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('OS_') && k !== 'PYTHONPATH'),
  ) as Record<string, string>;
  if (process.env.NOVUM_E2E_CLI_FORK !== '0') return runner().run({ ...clean, ...env }, args);
  try {
    const { stdout, stderr } = await run(OPENSTACK, args, {
      env: { ...clean, ...env },
      timeout: TIMEOUT_S * 1000,
    });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; code?: number };
    const killed = (error as { killed?: boolean }).killed ? `[killed after the ${TIMEOUT_S} s timeout]` : '';
    return {
      stdout: e.stdout ?? '',
      stderr: (e.stderr ?? '') + killed,
      code: typeof e.code === 'number' ? e.code : 1,
    };
  }
}

/** One openstack-runner.py per test process, started at its first command and ended with the process. */
class Runner {
  private readonly process: ChildProcessByStdio<Writable, Readable, null>;
  private readonly dir = mkdtempSync(join(tmpdir(), 'novum-osc-'));
  private readonly waiting = new Map<number, (code: number) => void>();
  private next = 0;
  private failure?: Error;

  constructor() {
    const clean = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('OS_') && k !== 'PYTHONPATH'),
    );
    this.process = spawn(PYTHON, [join(__dirname, 'openstack-runner.py'), this.dir], {
      env: clean,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let buffered = '';
    this.process.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const { id, code } = JSON.parse(buffered.slice(0, newline)) as { id: number; code: number };
        buffered = buffered.slice(newline + 1);
        this.waiting.get(id)?.(code);
        this.waiting.delete(id);
      }
    });
    this.process.on('exit', (code, signal) => {
      this.failure = new Error(`openstack-runner.py ended (${code ?? signal})`);
      for (const done of this.waiting.values()) done(-1);
      this.waiting.clear();
    });
    this.process.on('error', (error) => (this.failure = error));
    // Neither the runner nor its pipes keep the test process alive; the runner ends (removing its directory)
    // when its stdin closes: at close(), or when the test process ends.
    this.process.unref();
    (this.process.stdout as unknown as { unref(): void }).unref();
    (this.process.stdin as unknown as { unref(): void }).unref();
  }

  close(): void {
    this.process.stdin.end();
  }

  async run(env: Record<string, string>, args: string[]): Promise<CliResult> {
    if (this.failure) throw this.failure;
    const id = this.next++;
    const stdout = join(this.dir, `${id}.out`);
    const stderr = join(this.dir, `${id}.err`);
    const ended = new Promise<number>((resolve) => this.waiting.set(id, resolve));
    this.process.stdin.write(
      `${JSON.stringify({ id, args, env, cwd: process.cwd(), stdout, stderr, timeout: TIMEOUT_S })}\n`,
    );
    const code = await ended;
    if (code === -1 && this.failure) throw this.failure;
    const read = (file: string) => {
      try {
        return readFileSync(file, 'utf8');
      } catch {
        return '';
      } finally {
        rmSync(file, { force: true });
      }
    };
    // A negative code is the signal that ended the command: SIGKILL from the runner when its timeout passed.
    const why = code === -9 ? `[killed after the ${TIMEOUT_S} s timeout]` : `[ended by signal ${-code}]`;
    const stderrText = read(stderr) + (code < 0 ? why : '');
    return { stdout: read(stdout), stderr: stderrText, code: code < 0 ? 1 : code };
  }
}

let shared: Runner | undefined;
const runner = () => (shared ??= new Runner());
// Under jest, each test file loads this module afresh: its runner ends with the file.
if (typeof afterAll === 'function')
  afterAll(() => {
    shared?.close();
    shared = undefined;
  });

/** `openstack ARGS -f json`, failing the test with the client's own words when it fails. */
export async function openstackJson<T = any>(env: Record<string, string>, ...args: string[]): Promise<T> {
  const result = await openstack(env, ...args, '-f', 'json');
  if (result.code !== 0)
    throw new Error(`openstack ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** `openstack stack create|update ... --wait -f json`: the JSON after the events the client printed while waiting. */
export async function openstackWaitedJson<T = any>(
  env: Record<string, string>,
  ...args: string[]
): Promise<T> {
  const result = await openstack(env, ...args, '-f', 'json');
  // The events the client printed while it waited say which resource the action was at when it failed.
  if (result.code !== 0)
    throw new Error(
      `openstack ${args.join(' ')} failed (${result.code}): ${result.stderr}\nlast events:\n${result.stdout.slice(-1500)}`,
    );
  return JSON.parse(result.stdout.slice(result.stdout.search(/^\{/m))) as T;
}

/** `openstack stack show NAME` once the stack's action has ended (or the time is up), polled every 0.5 s. */
export async function openstackSettledStack<T = any>(
  env: Record<string, string>,
  name: string,
  timeoutMs = 30_000,
): Promise<T & { stack_status: string }> {
  const deadline = Date.now() + timeoutMs;
  let shown: T & { stack_status: string };
  do {
    await new Promise((resolve) => setTimeout(resolve, 500));
    shown = await openstackJson(env, 'stack', 'show', name);
  } while (shown.stack_status.endsWith('IN_PROGRESS') && Date.now() < deadline);
  return shown;
}

/** `openstack ARGS` that must succeed; returns its output. */
export async function openstackOk(env: Record<string, string>, ...args: string[]): Promise<string> {
  const result = await openstack(env, ...args);
  if (result.code !== 0)
    throw new Error(`openstack ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}
