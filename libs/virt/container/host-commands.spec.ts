import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
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
  Step,
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

  it('copies a sparse file with its holes left holes', async () => {
    const source = join(dir, 'sparse.img');
    const handle = openSync(source, 'w');
    writeSync(handle, 'head', 0);
    writeSync(handle, 'tail', 64 * 2 ** 20);
    closeSync(handle);
    for (const run of [runSteps, (steps: Step[]) => runStepsWith(runCommand, steps)]) {
      const target = join(dir, 'copy.img');
      writeFileSync(target, 'something longer than nothing, replaced');
      expect(await run([{ copySparse: { source, target } }])).toMatchObject({ code: 0 });
      const copy = readFileSync(target);
      expect(copy.length).toBe(statSync(source).size);
      expect(copy.subarray(0, 4).toString()).toBe('head');
      expect(copy.subarray(64 * 2 ** 20).toString()).toBe('tail');
      expect(copy.subarray(4, 64 * 2 ** 20).every((byte) => byte === 0)).toBe(true);
      // 512-byte blocks: the data's pages, not 64 MiB.
      expect(statSync(target).blocks * 512).toBeLessThan(2 ** 20);
      rmSync(target);
    }
    const failed = await runSteps([{ copySparse: { source: join(dir, 'absent'), target: join(dir, 'x') } }]);
    expect(failed).toMatchObject({ code: 1, failed: 0 });
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

  (notRoot || spawnerMissing ? it.skip : it)(
    "plumbs a container's veth with the same links, addresses and routes as ip does, and fails as ip does",
    async () => {
      const tag = randomBytes(3).toString('hex');
      const bridge = `novum-b${tag}`;
      const holders = [0, 1].map(() => spawn('unshare', ['-n', 'sleep', '300'], { stdio: 'ignore' }));
      const names = [0, 1].map((index) => `novum-ipb-${tag}-${index}`);
      const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
      /** What `ip` shows of one side, with what differs between two plumbings of the same (index, MAC) out. */
      const shown = (netns: string, device: string) =>
        [
          ip('-d', 'link', 'show', 'dev', device),
          ip('-n', netns, '-d', 'link', 'show'),
          ip('-n', netns, 'addr', 'show'),
          ip('-n', netns, 'route', 'show'),
          ip('-n', netns, '-6', 'route', 'show'),
          readFileSync(`/proc/sys/net/ipv6/conf/${device}/addr_gen_mode`, 'utf8'),
        ]
          .join('')
          .replace(/novum-[a-z]+-?[0-9a-f]+(-[01])?/g, 'NAME')
          .replace(/[0-9a-f]{1,2}(:[0-9a-f]{1,2}){5}/g, 'MAC')
          .replace(/^\d+:|if\d+|port_(id|no) \S+|designated_port \d+|[a-z_]+_timer +\S+/gm, 'X');
      const plumbing = (netns: string, pid: number, index: number): Step[] => {
        const [host, peer] = [`novum-h${tag}${index}`, `novum-p${tag}${index}`];
        return [
          {
            ipBatch: {
              lines: [
                ['netns', 'attach', netns, String(pid)],
                [
                  ...['link', 'add', host, 'mtu', '1400', 'type', 'veth'],
                  ...['peer', 'name', peer, 'mtu', '1400', 'netns', netns],
                ],
                ['link', 'set', 'dev', host, 'addrgenmode', 'none'],
                ['link', 'set', 'dev', host, 'master', bridge, 'up'],
              ],
            },
          },
          {
            ipBatch: {
              netns,
              lines: [
                ['link', 'set', 'dev', 'lo', 'up'],
                ['link', 'set', 'dev', peer, 'name', 'eth0', 'address', '02:00:00:00:00:05'],
                ['addr', 'add', '10.9.0.5/24', 'dev', 'eth0'],
                ['addr', 'add', 'fd00::5/64', 'dev', 'eth0', 'nodad'],
                ['link', 'set', 'dev', 'eth0', 'up'],
                ['route', 'replace', '0.0.0.0/0', 'via', '10.9.0.1', 'dev', 'eth0'],
                ['route', 'replace', '::/0', 'via', 'fd00::1', 'dev', 'eth0'],
                ['route', 'replace', '169.254.169.254/32', 'dev', 'eth0'],
                ['route', 'replace', '10.20.0.0/16', 'via', '10.9.0.7', 'dev', 'eth0'],
              ],
            },
          },
        ];
      };
      ip('link', 'add', bridge, 'type', 'bridge');
      try {
        // Each holder has its own network namespace once unshare has made it.
        const own = readlinkSync('/proc/self/ns/net');
        for (const holder of holders) {
          const deadline = Date.now() + 5000;
          while (readlinkSync(`/proc/${holder.pid}/ns/net`) === own && Date.now() < deadline) {
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        }
        // The spawner's own rtnetlink requests, then ip's (the same steps through single commands).
        expect(await runSteps(plumbing(names[0], holders[0].pid!, 0))).toEqual({
          code: 0,
          stdout: '',
          stderr: '',
        });
        expect(await runStepsWith(runCommand, plumbing(names[1], holders[1].pid!, 1))).toMatchObject({
          code: 0,
        });
        const native = shown(names[0], `novum-h${tag}0`);
        expect(native).toMatch(/inet 10\.9\.0\.5\/24 scope global eth0/);
        expect(native).toMatch(/default via fd00::1 dev eth0/);
        expect(native).toMatch(/master NAME/);
        expect(native).toBe(shown(names[1], `novum-h${tag}1`));

        // A failure stops the batch at its line, named as ip names it.
        const again = await runSteps([
          {
            ipBatch: {
              netns: names[0],
              lines: [
                ['link', 'set', 'dev', 'lo', 'up'],
                ['addr', 'add', '10.9.0.5/24', 'dev', 'eth0'],
              ],
            },
          },
        ]);
        expect(again).toMatchObject({ code: 1, failed: 0 });
        expect(again.stderr).toMatch(/File exists\nCommand failed -:2/);
        const missing = await runSteps([
          { ipBatch: { lines: [['link', 'set', 'dev', `novum-x${tag}`, 'up']] } },
        ]);
        expect(missing.stderr).toMatch(/Cannot find device "novum-x[0-9a-f]+"/);
        expect(missing).toMatchObject({ code: 1, failed: 0 });
        // A line the spawner does not know is ip's, with the rest of its batch.
        const other = await runSteps([
          { ipBatch: { netns: names[0], lines: [['link', 'show', 'dev', 'eth0']] } },
        ]);
        expect(other).toMatchObject({ code: 0 });
        expect(other.stdout).toMatch(/eth0@if\d+: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1400/);
      } finally {
        for (const name of names) spawnSync('ip', ['netns', 'delete', name]);
        for (const holder of holders) holder.kill('SIGKILL');
        spawnSync('ip', ['link', 'delete', bridge]);
      }
    },
  );

  (notRoot ? it.skip : it)(
    'mounts a file through a loop device that detaches at unmount, and an overlay; a failed mount leaves none',
    async () => {
      const image = join(dir, 'disk.ext4');
      writeFileSync(image, '');
      execFileSync('truncate', ['-s', '64M', image]);
      execFileSync('mkfs.ext4', ['-q', '-F', image]);
      const attached = () =>
        readdirSync('/sys/block')
          .filter((name) => name.startsWith('loop'))
          .filter((name) => {
            try {
              return readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim() === image;
            } catch {
              return false;
            }
          });
      const mountedAt = (target: string) =>
        readFileSync('/proc/self/mountinfo', 'utf8')
          .split('\n')
          .find((line) => line.split(' ')[4] === target);
      for (const run of [runSteps, (steps: Step[]) => runStepsWith(runCommand, steps)]) {
        const disk = join(dir, 'disk');
        const [lower, root] = [join(dir, 'lower'), join(dir, 'root')];
        for (const path of [disk, lower, root]) mkdirSync(path, { recursive: true });
        writeFileSync(join(lower, 'from-lower'), 'lower');
        const result = await run([
          { mount: { source: image, target: disk, type: 'ext4', options: 'noinit_itable', loop: true } },
          { command: 'mkdir', args: ['-p', join(disk, 'upper'), join(disk, 'work')] },
          {
            mount: {
              source: 'novum-test-overlay',
              target: root,
              type: 'overlay',
              options: `lowerdir=${lower},upperdir=${join(disk, 'upper')},workdir=${join(disk, 'work')}`,
            },
          },
        ]);
        expect(result).toMatchObject({ code: 0 });
        try {
          const [device] = attached();
          expect(device).toMatch(/^loop\d+$/);
          expect(readFileSync(`/sys/block/${device}/loop/autoclear`, 'utf8').trim()).toBe('1');
          expect(mountedAt(disk)).toMatch(new RegExp(` - ext4 /dev/${device} rw`));
          expect(mountedAt(root)).toMatch(/ - overlay novum-test-overlay /);
          writeFileSync(join(root, 'written'), 'upper');
          expect(readFileSync(join(disk, 'upper', 'written'), 'utf8')).toBe('upper');
          expect(readFileSync(join(root, 'from-lower'), 'utf8')).toBe('lower');
        } finally {
          execFileSync('umount', [root]);
          execFileSync('umount', [disk]);
        }
        expect(attached()).toEqual([]);
        rmSync(root, { recursive: true });
      }
      // A mount that fails (no such target) names itself and leaves no loop device behind.
      const missing = join(dir, 'no-such-dir');
      const failed = await runSteps([
        { mount: { source: image, target: missing, type: 'ext4', options: '', loop: true } },
      ]);
      expect(failed).toMatchObject({ code: 32, failed: 0 });
      expect(failed.stderr).toContain(missing);
      expect(attached()).toEqual([]);
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
