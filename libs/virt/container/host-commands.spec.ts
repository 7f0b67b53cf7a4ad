import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  hostSpawnerPid,
  mustRun,
  replaceTree,
  runCommand,
  runFromSealedCopy,
  runSteps,
  runStepsWith,
  runWithOutput,
} from './host-commands';

const spawnerMissing = !existsSync('/usr/bin/python3') || process.env.NOVUM_HOST_SPAWNER === 'direct';
const notRoot = process.getuid?.() !== 0;

describe('host commands', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'novum-host-commands-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives the exit code, the output and the error output, with the input on stdin', async () => {
    expect(
      await runCommand('sh', ['-c', 'read line; echo "got $line"; echo oops >&2; exit 3'], 'it\n'),
    ).toEqual({
      code: 3,
      stdout: 'got it\n',
      stderr: 'oops\n',
    });
    // Arguments reach the command as they are, with no shell between.
    expect((await runCommand('printf', ['%s|', 'a b', '$HOME', "'q'"])).stdout).toBe("a b|$HOME|'q'|");
  });

  it('answers 127 for a command that cannot start or that a signal ends', async () => {
    const missing = await runCommand('/nonexistent/novum-command', []);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/ENOENT|No such file/);
    expect((await runCommand('sh', ['-c', 'kill -9 $$'])).code).toBe(127);
    await expect(mustRun('sh', ['-c', 'echo bad >&2; exit 2'])).rejects.toThrow(/sh -c .* failed \(2\): bad/);
  });

  it('appends a command’s output to a file, and gives its exit code', async () => {
    const log = join(dir, 'console.log');
    expect(await runWithOutput('sh', ['-c', 'echo one; echo two >&2; exit 4'], log)).toBe(4);
    expect(await runWithOutput('echo', ['three'], log)).toBe(0);
    expect(readFileSync(log, 'utf8')).toBe('one\ntwo\nthree\n');
  });

  it('runs commands side by side', async () => {
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => runCommand('sh', ['-c', `sleep 0.5; echo ${i}`])),
    );
    expect(results.map((result) => result.stdout.trim())).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('writes a tree of files in place of what was there, and nothing outside it', async () => {
    const root = join(dir, 'drive');
    mkdirSync(join(root, 'stale'), { recursive: true });
    writeFileSync(join(root, 'stale', 'old'), 'old');
    const binary = Buffer.from([0, 255, 10, 13, 128]);
    await replaceTree(root, [
      ['openstack/latest/meta_data.json', '{"uuid": "ü"}'],
      ['openstack/content/0000', binary],
      ['ec2/latest/user-data', ''],
    ]);
    expect(readdirSync(root).sort()).toEqual(['ec2', 'openstack']);
    expect(readFileSync(join(root, 'openstack/latest/meta_data.json'), 'utf8')).toBe('{"uuid": "ü"}');
    expect(readFileSync(join(root, 'openstack/content/0000'))).toEqual(binary);
    expect(readFileSync(join(root, 'ec2/latest/user-data'), 'utf8')).toBe('');
    expect(statSync(join(root, 'openstack/latest/meta_data.json')).mode & 0o777).toBe(0o644);
    await expect(replaceTree(root, [['../escaped', 'x']])).rejects.toThrow(/not below/);
    await expect(replaceTree(root, [['/etc/escaped', 'x']])).rejects.toThrow(/not below/);
    expect(existsSync(join(dir, 'escaped'))).toBe(false);
    // Emptying the root does not follow a link in it (to what the guest must not reach).
    mkdirSync(join(dir, 'outside'));
    writeFileSync(join(dir, 'outside', 'keep'), 'keep');
    symlinkSync(join(dir, 'outside'), join(root, 'ec2/latest/link'));
    await replaceTree(root, [['a', 'b']]);
    expect(readdirSync(root)).toEqual(['a']);
    expect(readFileSync(join(dir, 'outside', 'keep'), 'utf8')).toBe('keep');
  });

  it('runs steps in order until one fails, with every output and the failed step', async () => {
    expect(
      await runSteps([
        { command: 'echo', args: ['a'] },
        { command: 'cat', args: [], input: 'b\n' },
        { command: 'sh', args: ['-c', 'echo c; echo no >&2; exit 3'] },
        { command: 'echo', args: ['never'] },
      ]),
    ).toEqual({ code: 3, stdout: 'a\nb\nc\n', stderr: 'no\n', failed: 2 });
    expect(await runSteps([{ command: 'echo', args: ['x'] }])).toEqual({
      code: 0,
      stdout: 'x\n',
      stderr: '',
    });
    const missing = await runSteps([
      { command: 'true', args: [] },
      { command: '/nonexistent/novum', args: [] },
    ]);
    expect(missing).toMatchObject({ code: 127, failed: 1 });
  });

  (notRoot ? it.skip : it)(
    "writes a namespace's sysctls inside it, leaving the host's and the next step's namespace alone",
    async () => {
      const name = `novum-steps-${randomBytes(4).toString('hex')}`;
      const path = `/run/netns/${name}`;
      const key = 'net.ipv4.ip_unprivileged_port_start';
      const file = '/proc/sys/net/ipv4/ip_unprivileged_port_start';
      const host = readFileSync(file, 'utf8').trim();
      const inside = () =>
        execFileSync('ip', ['netns', 'exec', name, 'cat', file], { encoding: 'utf8' }).trim();
      execFileSync('ip', ['netns', 'add', name]);
      try {
        const value = host === '17' ? '18' : '17';
        const result = await runSteps([
          { netnsPath: path, sysctls: { [key]: value, 'net.ipv4.ping_group_range': '0 2147483647' } },
          { command: 'readlink', args: ['/proc/self/ns/net'] },
        ]);
        expect(result).toEqual({ code: 0, stdout: `${readlinkSync('/proc/self/ns/net')}\n`, stderr: '' });
        expect(inside()).toBe(value);
        expect(readFileSync(file, 'utf8').trim()).toBe(host);
        // The same through single commands (no spawner): nsenter and sysctl.
        await runStepsWith(runCommand, [{ netnsPath: path, sysctls: { [key]: '19' } }]);
        expect(inside()).toBe('19');
        const absent = await runSteps([{ netnsPath: `${path}-absent`, sysctls: { [key]: '0' } }]);
        expect(absent).toMatchObject({ code: 1, failed: 0 });
        expect(absent.stderr).toMatch(/No such file/);
      } finally {
        execFileSync('ip', ['netns', 'delete', name]);
      }
    },
  );

  (spawnerMissing ? it.skip : it)(
    'starts a sealed command from an in-memory copy of its binary, made again when the binary changes',
    async () => {
      // A copy of its own, so that no other command of this process runs sealed.
      const binary = join(dir, 'novum-sealed-test');
      copyFileSync('/usr/bin/readlink', binary);
      expect((await runCommand(binary, ['/proc/self/exe'])).stdout.trim()).toBe(binary);
      runFromSealedCopy(binary);
      const exe = await runCommand(binary, ['/proc/self/exe']);
      expect(exe).toEqual({
        code: 0,
        stdout: '/memfd:novum-sealed:novum-sealed-test (deleted)\n',
        stderr: '',
      });
      // argv[0] is the command's name as given; the output file variant is sealed too.
      const log = join(dir, 'sealed.log');
      expect(await runWithOutput(binary, ['/proc/self/exe'], log)).toBe(0);
      expect(readFileSync(log, 'utf8')).toBe(exe.stdout);
      // A new binary at that path (a package upgrade) runs from a new copy.
      rmSync(binary);
      copyFileSync('/usr/bin/echo', binary);
      expect(await runCommand(binary, ['upgraded'])).toEqual({ code: 0, stdout: 'upgraded\n', stderr: '' });
    },
  );

  (spawnerMissing ? it.skip : it)(
    'starts commands from its spawner; one that ended fails its running commands and is replaced',
    async () => {
      const pid = hostSpawnerPid();
      expect(pid).toBeDefined();
      // The command's parent is the spawner, not this process.
      expect((await runCommand('sh', ['-c', 'echo $PPID'])).stdout.trim()).toBe(String(pid));
      const running = runCommand('sleep', ['5']);
      await new Promise((resolve) => setTimeout(resolve, 200));
      process.kill(pid!, 'SIGKILL');
      const cut = await running;
      expect(cut.code).toBe(127);
      expect(cut.stderr).toMatch(/host spawner ended/);
      expect(await runCommand('echo', ['again'])).toEqual({ code: 0, stdout: 'again\n', stderr: '' });
      expect(hostSpawnerPid()).not.toBe(pid);
    },
  );
});
