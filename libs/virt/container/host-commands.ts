import { ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize } from 'node:path';
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
 * callers decide what a failure is. The command is started by the host spawner (below) when it runs.
 */
export function runCommand(command: string, args: readonly string[], input?: string): Promise<CommandResult> {
  const spawner = HostSpawner.get();
  if (spawner)
    return spawner.run({ file: command, args: [...args], input: input ?? '', ...sealedFlag(command) });
  return runDirectly(command, args, input);
}

const sealedCommands = new Set<string>();

/**
 * Has the host spawner start `command` (an OCI runtime) from a sealed in-memory copy of its binary, made once
 * per binary and spawner. runc and crun protect the host from CVE-2019-5736 (a container rewriting the
 * runtime's binary through /proc/<pid>/exe) by copying or bind-mounting themselves and executing themselves
 * again, unless they already run from a memfd sealed against writes: upstream's own "memfd-bind" for runc
 * and the comment in crun's cloned_binary.c. crun does it at every invocation: a build's `create` and
 * `start` each cost two program starts, a mount, a remount and an unmount in the host's mount namespace
 * (measured: 9.6 ms of CPU per `crun list`, 4.9 from the sealed copy). The protection is the same: the copy
 * cannot be written. A process started so has its fd number as its command name (comm) while the binary
 * runs, the container's init until it executes the image's entrypoint. Without the spawner
 * (NOVUM_HOST_SPAWNER=direct), or where a memfd cannot be executed, the binary runs as it is.
 */
export function runFromSealedCopy(command: string): void {
  sealedCommands.add(command);
}

function sealedFlag(command: string): { sealed?: true } {
  return sealedCommands.has(command) ? { sealed: true } : {};
}

function runDirectly(command: string, args: readonly string[], input?: string): Promise<CommandResult> {
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

/**
 * A step of runSteps: a command (with `input` on its stdin), sysctls written inside a network namespace, a
 * mount, a sparse copy, or `ip [-n netns] -batch -` with these lines (`ipBatch`).
 */
export type Step =
  | { command: string; args: readonly string[]; input?: string }
  | { ipBatch: IpBatch }
  | { netnsPath: string; sysctls: Readonly<Record<string, string>> }
  | { mount: MountSpec }
  | { copySparse: { source: string; target: string } };

/**
 * A mount as `mount -t <type> -o <options> <source> <target>` makes it; `loop`: the source is a file, attached
 * to a free loop device that detaches itself when the file system is unmounted (`-o loop`).
 */
export interface MountSpec {
  source: string;
  target: string;
  type: string;
  options: string;
  loop?: boolean;
}

/**
 * Lines of `ip -batch` (each a command's words), run in the named network namespace (`ip -n`) or the host's.
 * The host spawner carries out the lines a container's plumbing uses itself, over rtnetlink (its
 * `native_ip_line` lists them); a batch with any other line is `ip`'s.
 */
export interface IpBatch {
  netns?: string;
  lines: readonly (readonly string[])[];
}

/** An ipBatch step as the command it stands for: `ip [-n netns] -batch -`, the lines on its stdin. */
export function ipBatchCommand(batch: IpBatch): { command: string; args: string[]; input: string } {
  return {
    command: 'ip',
    args: [...(batch.netns !== undefined ? ['-n', batch.netns] : []), '-batch', '-'],
    input: batch.lines.map((line) => `${line.join(' ')}\n`).join(''),
  };
}

/** What runSteps gives: every step's output, the exit code of the last step run, which step failed. */
export interface StepsResult extends CommandResult {
  /** The index of the step that failed; undefined when all succeeded. */
  failed?: number;
}

export type CommandRunner = (
  command: string,
  args: readonly string[],
  input?: string,
) => Promise<CommandResult>;

/**
 * Runs steps one after the other until one fails, as `a && b && c` would in a shell but without one: the host
 * spawner runs them all for one request (a shell is a program start of its own: 11 ms of CPU for three
 * commands through `sh -c` against 6.5 from the spawner, measured here). A namespace's sysctls are written by
 * a thread of the spawner that enters the namespace and ends there, where `ip netns exec … sysctl` costs two
 * program starts and a mount namespace with /sys mounted again. A mount is the spawner's own mount(2) call,
 * after the loop device's ioctls for a loop mount, where mount(8) is a program start with its libraries. A
 * sparse copy copies the file's data (SEEK_DATA, copy_file_range) and leaves its holes holes, as
 * `cp --sparse=always`. An ip batch of the lines a container's ports need (`native_ip_line`) is the spawner's
 * own rtnetlink requests (`ip` costs 6 ms of CPU per start here, with its libraries); any other is `ip`'s.
 */
export function runSteps(steps: readonly Step[]): Promise<StepsResult> {
  const spawner = HostSpawner.get();
  if (!spawner) return runStepsWith(runDirectly, steps);
  return spawner.run({
    op: 'steps',
    steps: steps.map((step) =>
      'command' in step
        ? { file: step.command, args: [...step.args], input: step.input ?? '', ...sealedFlag(step.command) }
        : 'mount' in step
          ? { mount: { ...step.mount, loop: step.mount.loop ?? false } }
          : 'copySparse' in step
            ? { copy: step.copySparse }
            : 'ipBatch' in step
              ? {
                  ip: {
                    netns: step.ipBatch.netns ?? null,
                    lines: step.ipBatch.lines.map((line) => [...line]),
                  },
                }
              : { netns: step.netnsPath, sysctls: { ...step.sysctls } },
    ),
  });
}

/**
 * runSteps through a runner of single commands (one without the host spawner, or a test's fake host): a
 * namespace's sysctls as `nsenter --net=<path> sysctl -qw key=value…`, an ip batch as `ip -batch -`.
 */
export async function runStepsWith(run: CommandRunner, steps: readonly Step[]): Promise<StepsResult> {
  let stdout = '';
  let stderr = '';
  for (const [index, step] of steps.entries()) {
    const { command, args, input } = asCommand(step);
    const result = await run(command, args, input);
    stdout += result.stdout;
    stderr += result.stderr;
    if (result.code !== 0) return { code: result.code, stdout, stderr, failed: index };
  }
  return { code: 0, stdout, stderr };
}

/** The command a step stands for where the host spawner does not run it itself. */
function asCommand(step: Step): { command: string; args: readonly string[]; input?: string } {
  if ('command' in step) return step;
  if ('ipBatch' in step) return ipBatchCommand(step.ipBatch);
  if ('mount' in step) return { command: 'mount', args: mountArgs(step.mount) };
  if ('copySparse' in step) {
    return { command: 'cp', args: ['--sparse=always', step.copySparse.source, step.copySparse.target] };
  }
  return {
    command: 'nsenter',
    args: [
      `--net=${step.netnsPath}`,
      ...['sysctl', '-qw'],
      ...Object.entries(step.sysctls).map(([key, value]) => `${key}=${value}`),
    ],
  };
}

/** mount(8)'s arguments for a mount step. */
export function mountArgs(mount: MountSpec): string[] {
  const options = [...(mount.loop ? ['loop'] : []), ...(mount.options ? [mount.options] : [])].join(',');
  return ['-t', mount.type, ...(options ? ['-o', options] : []), mount.source, mount.target];
}

/** A step as an error message names it. */
export function stepName(step: Step): string {
  if ('ipBatch' in step) return stepName(ipBatchCommand(step.ipBatch));
  if ('command' in step) return `${step.command} ${step.args.slice(0, 4).join(' ')}`;
  if ('mount' in step) return `mount -t ${step.mount.type} ${step.mount.source} ${step.mount.target}`;
  if ('copySparse' in step) return `copying ${step.copySparse.source} to ${step.copySparse.target}`;
  return `sysctl in ${step.netnsPath}`;
}

/** runSteps, rejecting with a DriverError that names the step that failed. */
export async function mustRunSteps(steps: readonly Step[]): Promise<string> {
  const result = await runSteps(steps);
  if (result.failed !== undefined) {
    throw new DriverError(
      `${stepName(steps[result.failed])} failed (${result.code}): ${result.stderr.trim().slice(-500)}`,
    );
  }
  return result.stdout;
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

/**
 * Runs a command with its stdout and stderr appended to `file` (a console log, made if missing; what the
 * command leaves running, a container's init, keeps writing there), resolving with the exit code.
 */
export async function runWithOutput(command: string, args: readonly string[], file: string): Promise<number> {
  const spawner = HostSpawner.get();
  if (spawner)
    return (await spawner.run({ file: command, args: [...args], output: file, ...sealedFlag(command) })).code;
  const log = await open(file, 'a');
  try {
    return await new Promise((resolve) => {
      const child = spawn(command, args, { stdio: ['ignore', log.fd, log.fd] });
      child.on('error', () => resolve(127));
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  } finally {
    await log.close();
  }
}

/**
 * Writes files under `root` (made, and emptied first when it exists), each path relative to it with its
 * directories made (0755) and the file 0644: one request to the host spawner for them all, so that a tree of
 * many small files (a config drive) costs the event loop one message instead of a file system call or three
 * per file and directory. Rejects with a DriverError when a write fails. Paths must stay below root.
 */
export async function replaceTree(
  root: string,
  files: Iterable<readonly [string, string | Buffer]>,
): Promise<void> {
  const entries = [...files].map(([path, content]) => {
    const relative = normalize(path);
    if (isAbsolute(relative) || relative === '..' || relative.startsWith('../'))
      throw new DriverError(`${path} is not below ${root}.`);
    return [relative, content] as const;
  });
  const spawner = HostSpawner.get();
  if (spawner) {
    const result = await spawner.run({
      op: 'tree',
      root,
      files: entries.map(([path, content]) => [path, Buffer.from(content).toString('base64')]),
    });
    if (result.code !== 0)
      throw new DriverError(`Writing ${root} failed: ${result.stderr.trim().slice(0, 300)}`);
    return;
  }
  await rm(root, { recursive: true, force: true });
  for (const directory of new Set(entries.map(([path]) => dirname(join(root, path)))))
    await mkdir(directory, { recursive: true });
  await Promise.all(entries.map(([path, content]) => writeFile(join(root, path), content, { mode: 0o644 })));
}

type SpawnRequest = CommandRequest | TreeRequest | StepsRequest;

interface StepsRequest {
  op: 'steps';
  steps: (
    | Omit<CommandRequest, 'op' | 'output'>
    | { netns: string; sysctls: Record<string, string> }
    | { mount: Required<MountSpec> }
    | { copy: { source: string; target: string } }
    | { ip: { netns: string | null; lines: string[][] } }
  )[];
}

interface TreeRequest {
  op: 'tree';
  root: string;
  /** Relative path and base64 content of each file. */
  files: [string, string][];
}

interface CommandRequest {
  op?: undefined;
  file: string;
  args: string[];
  /** Text on the command's stdin (captured runs). */
  input?: string;
  /** A file the command's stdout and stderr are appended to, instead of being captured. */
  output?: string;
  /** Started from the spawner's sealed in-memory copy of the binary (runFromSealedCopy). */
  sealed?: true;
}

/**
 * The host spawner: a small Python process (Debian's /usr/bin/python3) that starts host commands for this
 * process and answers with their exit codes and output, one JSON line each way. A Node process forks itself
 * to start a command and waits in that call until the child has exec'd; with the hundreds of MiB of an agent
 * (or of the all-in-one cloud) that blocked the event loop 13-25 ms per command on this project's machines,
 * and a container's build starts about ten of them. Python's subprocess starts them with vfork from a process
 * of a few MiB. Commands run side by side (a thread each). Exit codes are as `runDirectly` gives them: 127
 * when the command cannot start, and for a signal.
 *
 * NOVUM_HOST_SPAWNER=direct starts every command from Node itself, as does a host without /usr/bin/python3.
 * A spawner that dies fails the commands it was running (code 127, said so in stderr: whether they ran is
 * unknown) and the next command starts a new one.
 */
class HostSpawner {
  private static current?: HostSpawner;
  private static unavailable = false;
  private readonly pending = new Map<number, (result: StepsResult) => void>();
  private sequence = 0;
  private buffered = '';
  private dead = false;

  private constructor(private readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.read(chunk));
    child.stdin!.on('error', () => this.died('its input closed'));
    child.on('error', (error) => this.died(error.message));
    child.on('exit', (code, signal) => this.died(`it exited (${signal ?? code})`));
    this.idle();
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  static get(): HostSpawner | undefined {
    if (HostSpawner.current && !HostSpawner.current.dead) return HostSpawner.current;
    if (HostSpawner.unavailable) return undefined;
    if ((process.env.NOVUM_HOST_SPAWNER ?? 'python') === 'direct' || !existsSync(PYTHON)) {
      HostSpawner.unavailable = true;
      return undefined;
    }
    const child = spawn(PYTHON, ['-I', '-u', '-c', SPAWNER_SOURCE], { stdio: ['pipe', 'pipe', 'inherit'] });
    HostSpawner.current = new HostSpawner(child);
    return HostSpawner.current;
  }

  run(request: SpawnRequest): Promise<StepsResult> {
    const id = ++this.sequence;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.busy();
      this.child.stdin!.write(`${JSON.stringify({ id, ...request })}\n`);
    });
  }

  private read(chunk: string): void {
    this.buffered += chunk;
    for (let end = this.buffered.indexOf('\n'); end >= 0; end = this.buffered.indexOf('\n')) {
      const line = this.buffered.slice(0, end);
      this.buffered = this.buffered.slice(end + 1);
      const reply = JSON.parse(line) as StepsResult & { id: number };
      const resolve = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      resolve?.({
        code: reply.code,
        stdout: reply.stdout,
        stderr: reply.stderr,
        ...(typeof reply.failed === 'number' ? { failed: reply.failed } : {}),
      });
    }
    if (this.pending.size === 0) this.idle();
  }

  private died(reason: string): void {
    if (this.dead) return;
    this.dead = true;
    this.child.kill('SIGKILL');
    for (const resolve of this.pending.values())
      resolve({ code: 127, stdout: '', stderr: `the host spawner ended while the command ran: ${reason}` });
    this.pending.clear();
  }

  /** Holds this process's event loop open only while a command runs, as a direct child would. */
  private busy(): void {
    this.child.ref();
    (this.child.stdout as unknown as { ref(): void }).ref();
  }

  private idle(): void {
    this.child.unref();
    (this.child.stdout as unknown as { unref(): void }).unref();
    (this.child.stdin as unknown as { unref(): void }).unref();
  }
}

/** The running host spawner's pid (for tests); undefined while commands start from Node itself. */
export function hostSpawnerPid(): number | undefined {
  return HostSpawner.get()?.pid;
}

const PYTHON = '/usr/bin/python3';

/** The spawner's own code (Python 3.11 of Debian 12): requests on stdin, replies on stdout, a thread each. */
const SPAWNER_SOURCE = `
import base64, ctypes, errno, fcntl, ipaddress, json, os, re, shutil, socket, struct, subprocess, sys, threading
lock = threading.Lock()
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
CLONE_NEWNET = 0x40000000
LOOP_CTL_GET_FREE = 0x4C82
LOOP_CONFIGURE = 0x4C0A
LO_FLAGS_AUTOCLEAR = 4
def kernel_mount(source, target, kind, options):
    if libc.mount(source.encode(), target.encode(), kind.encode(), 0, options.encode()) != 0:
        number = ctypes.get_errno()
        raise OSError(number, "mount %s on %s: %s" % (source, target, os.strerror(number)))
def loop_mount(image, target, kind, options):
    backing = os.open(image, os.O_RDWR | os.O_CLOEXEC)
    try:
        control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
        try:
            for attempt in range(50):
                number = fcntl.ioctl(control, LOOP_CTL_GET_FREE)
                device = os.open("/dev/loop%d" % number, os.O_RDWR | os.O_CLOEXEC)
                try:
                    # struct loop_config: the file, the block size, a loop_info64 (flags; the name losetup
                    # shows), reserved words.
                    info = struct.pack(
                        "=5Q4I64s64s32s2Q", 0, 0, 0, 0, 0, 0, 0, 0, LO_FLAGS_AUTOCLEAR,
                        os.fsencode(image)[:63], b"", b"", 0, 0,
                    )
                    try:
                        fcntl.ioctl(device, LOOP_CONFIGURE, struct.pack("=II", backing, 0) + info + bytes(64))
                    except OSError as error:
                        if error.errno == errno.EBUSY:
                            continue
                        raise
                    # Mounted, the file system holds the device; it detaches once unmounted. Not mounted, the
                    # close below detaches it.
                    kernel_mount("/dev/loop%d" % number, target, kind, options)
                    return
                finally:
                    os.close(device)
            raise OSError(errno.EBUSY, "no free loop device for %s" % image)
        finally:
            os.close(control)
    finally:
        os.close(backing)
sealed_lock = threading.Lock()
sealed_copies = {}
SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
def sealed_copy(file):
    path = file if os.path.isabs(file) else shutil.which(file)
    if not path:
        return None
    info = os.stat(path)
    key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    with sealed_lock:
        known = sealed_copies.get(path)
        if known is None or known[0] != key:
            fd = os.memfd_create("novum-sealed:" + os.path.basename(path), os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            with open(path, "rb") as source, open(fd, "wb", closefd=False) as copy:
                shutil.copyfileobj(source, copy)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
            # A copy of an older binary stays open: a command may be starting from it.
            known = sealed_copies[path] = (key, fd)
    # The child closes the spawner's descriptors before it executes: the path goes through the spawner's.
    return "/proc/%d/fd/%d" % (os.getpid(), known[1])
def executable_of(request):
    if not request.get("sealed"):
        return None
    try:
        return sealed_copy(request["file"])
    except OSError:
        return None
def reply(message):
    data = (json.dumps(message) + "\\n").encode()
    with lock:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
def code_of(returncode):
    return returncode if returncode >= 0 else 127
def tree(request):
    root = request["root"]
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root, mode=0o755, exist_ok=True)
    for path, content in request["files"]:
        target = os.path.join(root, path)
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(base64.b64decode(content))
def sparse_copy(source, target):
    reading = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        writing = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            size = os.fstat(reading).st_size
            os.ftruncate(writing, size)
            offset = 0
            while offset < size:
                try:
                    start = os.lseek(reading, offset, os.SEEK_DATA)
                except OSError as error:
                    if error.errno == errno.ENXIO:
                        break
                    raise
                end = os.lseek(reading, start, os.SEEK_HOLE)
                while start < end:
                    copied = os.copy_file_range(reading, writing, end - start, start, start)
                    if copied <= 0:
                        raise OSError(errno.EIO, "%s ended early" % source)
                    start += copied
                offset = end
        finally:
            os.close(writing)
    finally:
        os.close(reading)
def in_netns(path, work):
    # work() in the network namespace at path (the spawner's own when None), in a thread of its own that ends
    # there: no command is ever started from it. Its result, or its exception raised here.
    outcome = []
    def enter_and_work():
        try:
            if path is not None:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        number = ctypes.get_errno()
                        raise OSError(number, "setns: " + os.strerror(number))
                finally:
                    os.close(fd)
            outcome.append(work())
        except Exception as error:
            outcome.append(error)
    thread = threading.Thread(target=enter_and_work)
    thread.start()
    thread.join()
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]
def netns_sysctls(path, sysctls):
    def write():
        for key, value in sysctls.items():
            with open("/proc/sys/" + key.replace(".", "/"), "w") as out:
                out.write(value)
    in_netns(path, write)
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 1, 4, 0x100, 0x200, 0x400
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_AF_SPEC, IFLA_NET_NS_FD = 1, 3, 4, 10, 18, 26, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER, IFLA_INET6_ADDR_GEN_MODE = 1, 2, 1, 8
IFA_ADDRESS, IFA_LOCAL, IFA_F_NODAD = 1, 2, 0x02
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
IFF_UP = 1
MS_BIND, MS_REC, MS_SHARED = 0x1000, 0x4000, 0x100000
def rtattr(kind, data):
    size = 4 + len(data)
    return struct.pack("=HH", size, kind) + data + bytes((4 - size % 4) % 4)
def u32_attr(kind, value):
    return rtattr(kind, struct.pack("=I", value))
def name_attr(kind, name):
    return rtattr(kind, name.encode() + bytes(1))
def ifinfo(index=0, flags=0, change=0):
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, change)
def os_message(error):
    text = getattr(error, "strerror", None) or str(error)
    filename = getattr(error, "filename", None)
    return "%s: %s" % (text, filename) if filename else text
def index_of(name):
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise OSError(errno.ENODEV, 'Cannot find device "%s"' % name)
class Rtnetlink:
    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0
    def request(self, kind, flags, body):
        self.seq += 1
        header = struct.pack("=IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0)
        self.sock.send(header + body)
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + 20 <= len(data):
                size, kind_, _, seq, _ = struct.unpack_from("=IHHII", data, offset)
                if kind_ == NLMSG_ERROR and seq == self.seq:
                    error = -struct.unpack_from("=i", data, offset + 16)[0]
                    if error:
                        raise OSError(error, "RTNETLINK answers: " + os.strerror(error))
                    return
                offset += (max(size, 16) + 3) & ~3
def mount_flags(source, target, kind, flags):
    if libc.mount(source.encode(), target.encode(), kind.encode(), flags, None) != 0:
        number = ctypes.get_errno()
        raise OSError(number, "mount %s on %s: %s" % (source, target, os.strerror(number)))
def netns_attach(name, pid):
    # As ip netns attach: /run/netns a shared mount point (bound onto itself the first time), the name a file
    # the process's namespace is bound onto.
    os.makedirs("/run/netns", mode=0o755, exist_ok=True)
    try:
        mount_flags("none", "/run/netns", "none", MS_SHARED | MS_REC)
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise
        mount_flags("/run/netns", "/run/netns", "none", MS_BIND | MS_REC)
        mount_flags("none", "/run/netns", "none", MS_SHARED | MS_REC)
    path = "/run/netns/" + name
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
    try:
        mount_flags("/proc/%d/ns/net" % pid, path, "none", MS_BIND)
    except OSError:
        os.unlink(path)
        raise
LINK_SET_VALUES = {"name", "address", "master", "mtu", "addrgenmode"}
MAC_ADDRESS = re.compile("[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")
def native_ip_line(words):
    # The lines of ip -batch a container's ports use, as a function of an rtnetlink socket; None for others.
    n = len(words)
    if n == 4 and words[:2] == ["netns", "attach"] and words[3].isdigit():
        return lambda link: netns_attach(words[2], int(words[3]))
    if (
        n == 14 and words[:2] == ["link", "add"] and words[3] == "mtu" and words[5:9] == ["type", "veth", "peer", "name"]
        and words[10] == "mtu" and words[12] == "netns" and words[4].isdigit() and words[11].isdigit()
    ):
        return lambda link: veth_add(link, words[2], int(words[4]), words[9], int(words[11]), words[13])
    if n >= 5 and words[:3] == ["link", "set", "dev"]:
        options, rest = {}, words[4:]
        while rest:
            if rest[0] in ("up", "down"):
                options["state"] = rest[0]
                rest = rest[1:]
            elif rest[0] in LINK_SET_VALUES and len(rest) > 1:
                options[rest[0]] = rest[1]
                rest = rest[2:]
            else:
                return None
        if options.get("addrgenmode", "none") != "none" or not options.get("mtu", "0").isdigit():
            return None
        if "address" in options and not MAC_ADDRESS.fullmatch(options["address"]):
            return None
        return lambda link: link_set(link, words[3], options)
    try:
        if words[:2] == ["addr", "add"] and n in (5, 6) and words[3] == "dev" and words[5:] in ([], ["nodad"]):
            address = ipaddress.ip_interface(words[2])
            return lambda link: addr_add(link, address, words[4], n == 6)
        if words[:2] == ["route", "replace"] and n in (5, 7) and words[-2] == "dev" and (n == 5 or words[3] == "via"):
            network = ipaddress.ip_network(words[2], strict=False)
            gateway = ipaddress.ip_address(words[4]) if n == 7 else None
            if gateway is not None and gateway.version != network.version:
                return None
            return lambda link: route_replace(link, network, gateway, words[-1])
    except ValueError:
        # An address the ipaddress module does not read ("default", ...) is left to ip.
        return None
    return None
def veth_add(link, name, mtu, peer, peer_mtu, netns):
    fd = os.open("/run/netns/" + netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        peer_info = ifinfo() + name_attr(IFLA_IFNAME, peer) + u32_attr(IFLA_MTU, peer_mtu) + u32_attr(IFLA_NET_NS_FD, fd)
        info = rtattr(IFLA_INFO_KIND, b"veth") + rtattr(IFLA_INFO_DATA, rtattr(VETH_INFO_PEER, peer_info))
        body = ifinfo() + name_attr(IFLA_IFNAME, name) + u32_attr(IFLA_MTU, mtu) + rtattr(IFLA_LINKINFO, info)
        link.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)
    finally:
        os.close(fd)
def link_set(link, device, options):
    state = options.get("state")
    attrs = b""
    if "name" in options:
        attrs += name_attr(IFLA_IFNAME, options["name"])
    if "address" in options:
        attrs += rtattr(IFLA_ADDRESS, bytes.fromhex(options["address"].replace(":", "")))
    if "mtu" in options:
        attrs += u32_attr(IFLA_MTU, int(options["mtu"]))
    if "master" in options:
        attrs += u32_attr(IFLA_MASTER, index_of(options["master"]))
    if "addrgenmode" in options:
        # IN6_ADDR_GEN_MODE_NONE: no link-local address of its own.
        attrs += rtattr(IFLA_AF_SPEC, rtattr(socket.AF_INET6, rtattr(IFLA_INET6_ADDR_GEN_MODE, bytes([1]))))
    flags = IFF_UP if state == "up" else 0
    link.request(RTM_NEWLINK, 0, ifinfo(index_of(device), flags, IFF_UP if state else 0) + attrs)
def addr_add(link, address, device, nodad):
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    packed = address.ip.packed
    header = struct.pack("=BBBBI", family, address.network.prefixlen, IFA_F_NODAD if nodad else 0, 0, index_of(device))
    link.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, header + rtattr(IFA_LOCAL, packed) + rtattr(IFA_ADDRESS, packed))
def route_replace(link, network, gateway, device):
    family = socket.AF_INET6 if network.version == 6 else socket.AF_INET
    # The main table, proto boot, unicast; scope link without a gateway, as ip route gives them.
    header = struct.pack("=BBBBBBBBI", family, network.prefixlen, 0, 0, 254, 3, 0 if gateway is not None else 253, 1, 0)
    attrs = rtattr(RTA_DST, network.network_address.packed) if network.prefixlen else b""
    if gateway is not None:
        attrs += rtattr(RTA_GATEWAY, gateway.packed)
    attrs += struct.pack("=HHi", 8, RTA_OIF, index_of(device))
    link.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, header + attrs)
def ip_batch(batch, stdout, stderr):
    netns, lines = batch["netns"], batch["lines"]
    native = [native_ip_line(words) for words in lines]
    if None in native:
        done = subprocess.run(
            ["ip"] + (["-n", netns] if netns is not None else []) + ["-batch", "-"],
            input="".join(" ".join(words) + "\\n" for words in lines).encode(),
            capture_output=True,
        )
        stdout.append(done.stdout.decode("utf-8", "replace"))
        stderr.append(done.stderr.decode("utf-8", "replace"))
        return code_of(done.returncode)
    def work():
        link = Rtnetlink()
        try:
            for number, line in enumerate(native, 1):
                try:
                    line(link)
                except Exception as error:
                    return "%s\\nCommand failed -:%d\\n" % (os_message(error), number)
        finally:
            link.sock.close()
        return None
    try:
        failure = in_netns(None if netns is None else "/run/netns/" + netns, work)
    except OSError as error:
        failure = 'Cannot open network namespace "%s": %s\\n' % (netns, os_message(error))
    if failure:
        stderr.append(failure)
        return 1
    return 0
def builtin(work, failure_code, stderr, label=""):
    try:
        work()
        return 0
    except Exception as error:
        stderr.append("%s%s\\n" % (label, error))
        return failure_code
def steps(request, answer):
    stdout, stderr = [], []
    for index, step in enumerate(request["steps"]):
        if "mount" in step:
            mount = step["mount"]
            mounting = loop_mount if mount["loop"] else kernel_mount
            # 32: mount(8)'s exit code for a failed mount.
            code = builtin(
                lambda: mounting(mount["source"], mount["target"], mount["type"], mount["options"]), 32, stderr
            )
        elif "copy" in step:
            code = builtin(lambda: sparse_copy(step["copy"]["source"], step["copy"]["target"]), 1, stderr)
        elif "ip" in step:
            code = ip_batch(step["ip"], stdout, stderr)
        elif "sysctls" in step:
            label = "sysctl in %s: " % step["netns"]
            code = builtin(lambda: netns_sysctls(step["netns"], step["sysctls"]), 1, stderr, label)
        else:
            try:
                done = subprocess.run(
                    [step["file"]] + step["args"],
                    executable=executable_of(step),
                    input=step.get("input", "").encode(),
                    capture_output=True,
                )
                code = code_of(done.returncode)
                stdout.append(done.stdout.decode("utf-8", "replace"))
                stderr.append(done.stderr.decode("utf-8", "replace"))
            except OSError as error:
                code = 127
                stderr.append(str(error))
        answer["code"] = code
        if code != 0:
            answer["failed"] = index
            break
    answer["stdout"] = "".join(stdout)
    answer["stderr"] = "".join(stderr)
def run(request):
    answer = {"id": request["id"], "code": 127, "stdout": "", "stderr": ""}
    try:
        if request.get("op") == "tree":
            tree(request)
            answer["code"] = 0
            reply(answer)
            return
        if request.get("op") == "steps":
            answer["code"] = 0
            steps(request, answer)
            reply(answer)
            return
        argv = [request["file"]] + request["args"]
        if "output" in request:
            fd = os.open(request["output"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                child = subprocess.Popen(
                    argv, executable=executable_of(request), stdin=subprocess.DEVNULL, stdout=fd, stderr=fd
                )
            finally:
                os.close(fd)
            answer["code"] = child.wait()
            if answer["code"] < 0:
                answer["code"] = 128
        else:
            done = subprocess.run(
                argv, executable=executable_of(request), input=request.get("input", "").encode(), capture_output=True
            )
            answer["code"] = code_of(done.returncode)
            answer["stdout"] = done.stdout.decode("utf-8", "replace")
            answer["stderr"] = done.stderr.decode("utf-8", "replace")
    except OSError as error:
        answer["stderr"] = str(error)
    except Exception as error:
        answer["stderr"] = "host spawner: %r" % (error,)
    reply(answer)
for line in sys.stdin.buffer:
    threading.Thread(target=run, args=(json.loads(line),), daemon=True).start()
`;
