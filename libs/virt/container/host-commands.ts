import { execFile, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DriverError } from '../driver';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a host command to its end without a shell, `input` (if any) on its stdin; never rejects, so that
 * callers decide what a failure is.
 */
export function runCommand(command: string, args: readonly string[], input?: string): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 127) : 0;
      resolve({
        code,
        stdout: String(stdout),
        stderr: String(stderr || (error && !stderr ? error.message : '')),
      });
    });
    // A command that exits without reading all of it must not fail the write (EPIPE): its exit code tells.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? '');
  });
}

/** Runs a host command and rejects with a DriverError naming it when it fails. */
export async function mustRun(command: string, args: readonly string[]): Promise<string> {
  const result = await runCommand(command, args);
  if (result.code !== 0) {
    throw new DriverError(
      `${command} ${args.slice(0, 4).join(' ')} failed (${result.code}): ${result.stderr.trim().slice(0, 500)}`,
    );
  }
  return result.stdout;
}

/**
 * Runs a host command with `input` streamed to its stdin (a tar to unpack); rejects with a DriverError when
 * the command fails, or with one naming the input's own error when the input breaks off (the command killed).
 */
export async function mustRunFrom(command: string, args: readonly string[], input: Readable): Promise<void> {
  const child = spawn(command, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on(
    'data',
    (chunk: Buffer) => (stderr += chunk.toString()).length > 4096 && (stderr = stderr.slice(-2048)),
  );
  const exited = new Promise<number>((done) => {
    child.on('error', () => done(127));
    child.on('close', (code, signal) => done(code ?? (signal ? 128 : 1)));
  });
  try {
    await pipeline(input, child.stdin);
  } catch (error) {
    // The command may have ended first (its own failure closes its stdin under the input): say that, with
    // its error output, rather than only that the input broke off.
    const ended = await Promise.race([
      exited,
      new Promise<null>((done) => setTimeout(() => done(null), 200)),
    ]);
    if (ended === null) child.kill('SIGKILL');
    const code = ended ?? (await exited);
    const reason = error instanceof Error ? error.message : String(error);
    const own =
      ended !== null && code !== 0 ? ` (${command} failed (${code}): ${stderr.trim().slice(-500)})` : '';
    throw new DriverError(`${command}'s input broke off: ${reason}${own}`, { cause: error });
  }
  const code = await exited;
  if (code !== 0) {
    throw new DriverError(
      `${command} ${args.slice(0, 4).join(' ')} failed (${code}): ${stderr.trim().slice(-500)}`,
    );
  }
}

/** Runs a command with its stdout and stderr on `fd` (a console log), resolving with the exit code. */
export function runWithOutput(command: string, args: readonly string[], fd: number): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', fd, fd] });
    child.on('error', () => resolve(127));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
