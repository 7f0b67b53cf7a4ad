import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { missingVmPrerequisites, vmTestImage } from '../../libs/virt/testing/vm-image';
import {
  busyboxIn,
  containerHostLeftovers,
  eventually,
  hostTestSkip,
  pingsFrom,
  pingsFromNetns,
  missingHostTools,
  removeContainerLeftovers,
  RUNTIME,
} from './support/host';
import { MultihostDeployment } from './support/multihost';
import { openstackJson, openstackOk } from './support/openstack';

/**
 * Issue 9's deployment on one machine: three hosts as network namespaces (ops/multihost/netns-hosts.sh), each
 * running its own compute agent on the container driver, with its own bridges, VXLAN devices, firewall and
 * guests; the API services and the conductor on the machine; one PostgreSQL database and one RabbitMQ vhost,
 * which the hosts reach through the script's relay on the management bridge. A Neutron network is a VXLAN
 * segment between the hosts' bridges. The hosts run both drivers: containers, and a QEMU guest (TCG here).
 */
jest.setTimeout(240_000);

const PORT = 27100;
const HOSTS = 3;

const skip = hostTestSkip(
  'multi-host',
  missingHostTools(
    [RUNTIME, 'busybox', 'setfattr', 'ip', 'nft', 'nsenter', 'unshare', 'rabbitmqctl'],
    'runc busybox-static attr iproute2 nftables util-linux rabbitmq-server',
  ) ?? missingVmPrerequisites(),
);

const sh = (command: string, args: readonly string[], env: Record<string, string> = {}) =>
  execFileSync(command, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

(skip ? describe.skip : describe)(
  `three namespace hosts on one VXLAN overlay${skip ? ` (skipped: ${skip})` : ''}`,
  () => {
    // A deployment of its own beside any other on the machine: names and addresses drawn for this run.
    const tag = randomBytes(1).toString('hex');
    const deployment = new MultihostDeployment({
      port: PORT,
      hosts: HOSTS,
      prefix: `novumn${tag}`,
      subnet: `10.233.${parseInt(tag, 16)}`,
      logLevel: process.env.MULTIHOST_LOG_LEVEL,
      agentEnv: {
        NOVUM_COMPUTE_DRIVERS: 'container,kvm',
        NOVUM_CONTAINER_RUNTIME: RUNTIME,
        NOVUM_KVM_ACCEL: 'tcg',
      },
      // One host serves the routers, as Neutron's L3 agent on a network node.
      hostEnv: (i) => ({ NOVUM_L3_AGENT: i === 1 ? 'true' : 'false' }),
    });
    const { hostName, netnsOf, dataDirOf, netnsDirOf, indexOf, netnsEnv } = deployment;
    /** The outside world of the external network (a namespace of the machine's). */
    const outside = `${netnsEnv.NOVUM_NETNS_PREFIX}-outside`;

    let admin: Record<string, string>;
    let demo: Record<string, string>;
    const servers: Record<string, { id: string; ip: string; host: string }> = {};
    const networks: Record<string, { id: string; vni: number }> = {};

    const runtimeRootOf = (name: string) =>
      join(dataDirOf(indexOf(servers[name].host)), 'containers', 'runtime');
    const pings = (from: string, address: string) =>
      pingsFrom(runtimeRootOf(from), servers[from].id, address);
    const hostLinks = (i: number) =>
      sh('ip', ['-n', netnsOf(i), '-br', 'link'])
        .split('\n')
        .map((line) => line.split(/[\s@]/)[0])
        .filter(Boolean);

    /** Each compute host's state once they are all as wanted (or as they are at the deadline). */
    async function computeStates(wanted: Record<string, string>, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const services = await openstackJson<{ Binary: string; Host: string; State: string }[]>(
          admin,
          ...['compute', 'service', 'list', '--service', 'nova-compute'],
        );
        const states = Object.fromEntries(
          services.map((s) => [s.Host, s.State]).sort(([a], [b]) => a.localeCompare(b)),
        );
        if (Date.now() > deadline || JSON.stringify(states) === JSON.stringify(wanted)) return states;
        await sleep(1000);
      }
    }

    beforeAll(async () => {
      await deployment.start();
      admin = { OS_CLIENT_CONFIG_FILE: deployment.cloudsYaml, OS_CLOUD: 'novum-admin' };
      demo = { OS_CLIENT_CONFIG_FILE: deployment.cloudsYaml, OS_CLOUD: 'novum-demo' };
      const archive = join(deployment.controller, 'busybox.tar');
      execFileSync(resolve(__dirname, '../../ops/images/build-busybox.sh'), [archive], { stdio: 'ignore' });
      await openstackOk(
        admin,
        ...['image', 'create', '--disk-format', 'raw', '--container-format', 'docker', '--public'],
        ...['--file', archive, 'busybox'],
      );
      await openstackOk(
        admin,
        ...['image', 'create', '--disk-format', 'qcow2', '--container-format', 'bare', '--public'],
        ...['--file', vmTestImage(), 'tiny'],
      );
    }, 240_000);

    afterAll(async () => {
      // After a failure: whatever the hosts still hold, once their agents stopped; then the hosts themselves.
      await deployment.destroy(() => {
        for (let i = 1; i <= HOSTS; i++) {
          if (existsSync(dataDirOf(i))) removeContainerLeftovers({ dataDir: dataDirOf(i) });
        }
        try {
          sh('ip', ['netns', 'delete', outside]);
        } catch {
          /* not made, or deleted by its test */
        }
      });
    }, 120_000);

    it('lists the three namespace hosts up', async () => {
      expect(await computeStates({ mh1: 'up', mh2: 'up', mh3: 'up' })).toEqual({
        mh1: 'up',
        mh2: 'up',
        mh3: 'up',
      });
    });

    it('spreads an anti-affinity group of containers over the three hosts', async () => {
      for (const name of ['net-a', 'net-b']) {
        const { id } = await openstackJson<{ id: string }>(demo, 'network', 'create', name);
        // Both networks have the same addresses: only their segments keep them apart.
        await openstackOk(
          demo,
          ...['subnet', 'create', '--network', name, '--subnet-range', '10.78.1.0/24', `${name}-subnet`],
        );
        const shown = await openstackJson<Record<string, unknown>>(admin, 'network', 'show', id);
        expect(shown).toMatchObject({ 'provider:network_type': 'vxlan', mtu: 1450 });
        networks[name] = { id, vni: shown['provider:segmentation_id'] as number };
      }
      const group = await openstackJson<{ id: string }>(
        demo,
        ...['server', 'group', 'create', '--policy', 'anti-affinity', 'spread'],
      );
      const create = (name: string, network: string, ip: string, ...extra: string[]) =>
        openstackJson<{ id: string }>(
          demo,
          ...['server', 'create', '--flavor', 'c1.tiny', '--image', 'busybox'],
          ...['--nic', `net-id=${networks[network].id},v4-fixed-ip=${ip}`, ...extra, '--wait', name],
        );
      const wanted: [string, string, string, string[]][] = [
        ['a1', 'net-a', '10.78.1.11', ['--hint', `group=${group.id}`]],
        ['a2', 'net-a', '10.78.1.12', ['--hint', `group=${group.id}`]],
        ['a3', 'net-a', '10.78.1.13', ['--hint', `group=${group.id}`]],
        ['b1', 'net-b', '10.78.1.21', []],
      ];
      for (const [name, network, ip, extra] of wanted) {
        const { id } = await create(name, network, ip, ...extra);
        const shown = await openstackJson<Record<string, string>>(admin, 'server', 'show', id);
        expect(shown.status).toBe('ACTIVE');
        servers[name] = { id, ip, host: shown['OS-EXT-SRV-ATTR:host'] };
      }
      expect(new Set(['a1', 'a2', 'a3'].map((name) => servers[name].host))).toEqual(
        new Set(['mh1', 'mh2', 'mh3']),
      );
    });

    it('joins each host with guests of a VXLAN network to it with the network’s VNI, and to no other', () => {
      const net = (name: string) => networks[name].id.replace(/-/g, '').slice(0, 9);
      for (let i = 1; i <= HOSTS; i++) {
        const links = hostLinks(i);
        const guests = Object.values(servers).filter((s) => s.host === hostName(i));
        expect(links).toContain(`novumx${net('net-a')}`);
        const details = sh('ip', ['-n', netnsOf(i), '-d', 'link', 'show', `novumx${net('net-a')}`]);
        expect(details).toContain(`vxlan id ${networks['net-a'].vni} `);
        expect(details).toContain(`local ${netnsEnv.NOVUM_NETNS_SUBNET}.${10 + i} `);
        expect(details).toContain(`master novumbr${net('net-a').slice(0, 8)}`);
        // A host has net-b's device only where a net-b guest is.
        expect(links.includes(`novumx${net('net-b')}`)).toBe(guests.some((s) => s === servers.b1));
      }
      // The machine itself carries no guest bridge or tunnel: the hosts do.
      const machine = sh('ip', ['-br', 'link']);
      expect(machine).not.toContain(`novumx${net('net-a')}`);
    });

    it('carries traffic between hosts on one network, and none between networks', async () => {
      expect(servers.a1.host).not.toBe(servers.a2.host);
      expect(await eventually(() => pings('a1', servers.a2.ip))).toBe(true);
      expect(await eventually(() => pings('a2', servers.a3.ip))).toBe(true);
      expect(await eventually(() => pings('a3', servers.a1.ip))).toBe(true);
      // b1 is on another network with the same addresses: nothing of net-a reaches it, nor it net-a.
      expect(pings('a1', servers.b1.ip)).toBe(false);
      expect(pings('a2', servers.b1.ip)).toBe(false);
      expect(pings('b1', servers.a1.ip)).toBe(false);
      // Each host filters its own ports: a rule-less group admits nothing from the other hosts.
      await openstackOk(demo, 'security', 'group', 'create', 'closed');
      await openstackOk(demo, 'server', 'remove', 'security', 'group', servers.a2.id, 'default');
      await openstackOk(demo, 'server', 'add', 'security', 'group', servers.a2.id, 'closed');
      expect(await eventually(() => !pings('a1', servers.a2.ip))).toBe(true);
      // a1's host learnt that a2 left the group a1 admits.
      expect(await eventually(() => !pings('a2', servers.a1.ip))).toBe(true);
      await openstackOk(demo, 'server', 'remove', 'security', 'group', servers.a2.id, 'closed');
      await openstackOk(demo, 'server', 'add', 'security', 'group', servers.a2.id, 'default');
      expect(await eventually(() => pings('a1', servers.a2.ip))).toBe(true);
    });

    it('boots a KVM guest on another host than a container of its network, and each reaches the other', async () => {
      // The image's init runs user data from the config drive: the guest takes its address and pings a1.
      const userData = join(deployment.controller, 'vm-user-data');
      writeFileSync(
        userData,
        [
          '#!/bin/sh',
          'ip link set eth0 up',
          'ip addr add 10.78.1.30/24 dev eth0',
          'reached=no',
          'for attempt in $(seq 1 30); do',
          `  if ping -c 1 -W 1 ${servers.a1.ip} >/dev/null 2>&1; then reached=yes; break; fi`,
          'done',
          'echo "vm-reached-a1=$reached"',
          '',
        ].join('\n'),
      );
      const { id } = await openstackJson<{ id: string }>(
        demo,
        ...['server', 'create', '--flavor', 'm1.tiny', '--image', 'tiny', '--user-data', userData],
        ...['--nic', `net-id=${networks['net-a'].id},v4-fixed-ip=10.78.1.30`],
        ...['--hint', `different_host=${servers.a1.id}`, '--wait', 'vm1'],
      );
      const shown = await openstackJson<Record<string, string>>(admin, 'server', 'show', id);
      expect(shown.status).toBe('ACTIVE');
      servers.vm1 = { id, ip: '10.78.1.30', host: shown['OS-EXT-SRV-ATTR:host'] };
      expect(servers.vm1.host).not.toBe(servers.a1.host);
      // Its QEMU runs in its host: the tap is there, not on the machine.
      expect(hostLinks(indexOf(servers.vm1.host)).filter((name) => name.startsWith('novumt'))).toHaveLength(
        1,
      );
      let log = '';
      const deadline = Date.now() + 150_000;
      while (Date.now() < deadline && !/vm-reached-a1=\w+/.test(log)) {
        await sleep(2000);
        log = await openstackOk(demo, 'console', 'log', 'show', id).catch(() => '');
      }
      expect(log).toContain('vm-reached-a1=yes');
      expect(await eventually(() => pings('a1', servers.vm1.ip))).toBe(true);
    });

    it('routes a guest of another host out through the router on the L3 host, and a floating IP in', async () => {
      // mh1 serves the routers; the guest is elsewhere, so its traffic crosses the overlay to the router.
      const guest = ['a1', 'a2', 'a3'].find((name) => servers[name].host !== 'mh1')!;
      const publicId = (await openstackJson<{ id: string }>(admin, 'network', 'show', 'public')).id;
      const router = (await openstackJson<{ id: string }>(demo, 'router', 'create', 'r')).id;
      await openstackOk(demo, 'router', 'add', 'subnet', 'r', 'net-a-subnet');
      await openstackOk(admin, 'router', 'set', '--external-gateway', 'public', router);
      const routerNs = join(netnsDirOf(1), `novum-r-${router}`);
      expect(await eventually(() => existsSync(routerNs), 30)).toBe(true);
      // The outside world: a namespace on mh1's bridge of the external network, as its subnet's gateway.
      const bridge = `novumbr${publicId.replace(/-/g, '').slice(0, 8)}`;
      expect(await eventually(() => hostLinks(1).includes(bridge), 30)).toBe(true);
      sh('ip', ['netns', 'add', outside]);
      sh('ip', [
        '-n',
        netnsOf(1),
        'link',
        'add',
        'novumout',
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        outside,
      ]);
      sh('ip', ['-n', netnsOf(1), 'link', 'set', 'novumout', 'master', bridge, 'up']);
      sh('ip', ['-n', outside, 'addr', 'add', '172.24.4.1/24', 'dev', 'eth0']);
      sh('ip', ['-n', outside, 'link', 'set', 'eth0', 'up']);
      expect(await eventually(() => pings(guest, '172.24.4.1'), 30)).toBe(true);
      const fip = (
        await openstackJson<{ floating_ip_address: string }>(demo, 'floating', 'ip', 'create', 'public')
      ).floating_ip_address;
      await openstackOk(demo, 'server', 'add', 'floating', 'ip', servers[guest].id, fip);
      await openstackOk(
        demo,
        'security',
        'group',
        'rule',
        'create',
        '--protocol',
        'icmp',
        '--ingress',
        'default',
      );
      expect(await eventually(() => pingsFromNetns(outside, fip), 30)).toBe(true);
      expect(pingsFromNetns(outside, servers[guest].ip)).toBe(false);
      // Taken down in the order Neutron requires; the router's namespace goes from mh1.
      await openstackOk(demo, 'server', 'remove', 'floating', 'ip', servers[guest].id, fip);
      await openstackOk(demo, 'floating', 'ip', 'delete', fip);
      await openstackOk(admin, 'router', 'unset', '--external-gateway', router);
      await openstackOk(demo, 'router', 'remove', 'subnet', 'r', 'net-a-subnet');
      await openstackOk(demo, 'router', 'delete', 'r');
      expect(await eventually(() => !existsSync(routerNs), 30)).toBe(true);
      sh('ip', ['netns', 'delete', outside]);
    });

    it('reports a host cut from the network as down, keeps its servers, and takes it back', async () => {
      const cut = indexOf(servers.a3.host);
      const states = (state: string) =>
        Object.fromEntries([1, 2, 3].map((i) => [hostName(i), i === cut ? state : 'up']));
      sh('ip', ['link', 'set', 'dev', netnsOf(cut), 'down']);
      try {
        expect(await computeStates(states('down'))).toEqual(states('down'));
        // Its server is still there, as Nova shows it: its host's status unknown, not deleted or errored.
        const shown = await openstackJson<Record<string, string>>(
          admin,
          ...['--os-compute-api-version', '2.16', 'server', 'show', servers.a3.id],
        );
        expect(shown).toMatchObject({ status: 'ACTIVE', host_status: 'UNKNOWN' });
        const listed = await openstackJson<{ ID: string }[]>(demo, 'server', 'list');
        expect(listed.map((s) => s.ID)).toEqual(
          expect.arrayContaining(Object.values(servers).map((s) => s.id)),
        );
        // Its guest runs on, unreachable from the other hosts.
        expect(pings('a1', servers.a3.ip)).toBe(false);
      } finally {
        sh('ip', ['link', 'set', 'dev', netnsOf(cut), 'up']);
      }
      expect(await computeStates(states('up'))).toEqual(states('up'));
      expect(await eventually(() => pings('a1', servers.a3.ip), 30)).toBe(true);
      const shown = await openstackJson<Record<string, string>>(
        admin,
        ...['--os-compute-api-version', '2.16', 'server', 'show', servers.a3.id],
      );
      expect(shown).toMatchObject({ status: 'ACTIVE', host_status: 'UP' });
    });

    it('cold-migrates a container to another host with what it wrote; revert keeps, confirm clears the source', async () => {
      const { id } = servers.b1;
      const source = servers.b1.host;
      let target = '';
      const instanceDir = (host: string) => join(dataDirOf(indexOf(host)), 'containers', 'instances', id);
      // Written in the container: a file of its root user (host uid 100000), a directory, a deleted image file.
      busyboxIn(
        runtimeRootOf('b1'),
        id,
        ...['sh', '-c', 'echo carried-across > /root/migrated && chown 100000:100000 /root/migrated'],
      );
      busyboxIn(runtimeRootOf('b1'), id, 'sh', '-c', 'mkdir -p /var/mine && echo x > /var/mine/f');
      busyboxIn(runtimeRootOf('b1'), id, 'rm', '/etc/novum-release');
      const migrate = async () => {
        const started = Date.now();
        // The scheduler picks the host (never the server's own).
        await openstackOk(admin, 'server', 'migrate', '--wait', id);
        const shown = await openstackJson<Record<string, string>>(admin, 'server', 'show', id);
        expect(shown.status).toBe('VERIFY_RESIZE');
        target = shown['OS-EXT-SRV-ATTR:host'];
        expect(target).not.toBe(source);
        servers.b1.host = target;
        process.stdout.write(`cold migration of a container across hosts: ${Date.now() - started} ms\n`);
      };
      const written = () =>
        busyboxIn(
          runtimeRootOf('b1'),
          id,
          ...['sh', '-c', 'cat /root/migrated /var/mine/f; stat -c %u /root/migrated'],
        );
      const waitStatus = async (status: string) => {
        for (let i = 0; i < 60; i++) {
          const shown = await openstackJson<Record<string, string>>(admin, 'server', 'show', id);
          if (shown.status === status) return shown;
          await sleep(1000);
        }
        throw new Error(`server ${id} never became ${status}`);
      };

      await migrate();
      expect(written()).toBe('carried-across\nx\n100000\n');
      expect(busyboxIn(runtimeRootOf('b1'), id, 'sh', '-c', 'test -e /etc/novum-release || echo gone')).toBe(
        'gone\n',
      );
      // The source keeps its container's disk, stopped, until confirm: a revert boots it again.
      expect(existsSync(instanceDir(source))).toBe(true);
      await openstackOk(admin, 'server', 'resize', 'revert', id);
      expect(await waitStatus('ACTIVE')).toMatchObject({ 'OS-EXT-SRV-ATTR:host': source });
      servers.b1.host = source;
      expect(written()).toBe('carried-across\nx\n100000\n');
      expect(existsSync(instanceDir(target))).toBe(false);

      await migrate();
      await openstackOk(admin, 'server', 'resize', 'confirm', id);
      expect(await waitStatus('ACTIVE')).toMatchObject({ 'OS-EXT-SRV-ATTR:host': target });
      expect(written()).toBe('carried-across\nx\n100000\n');
      // Nothing of it is left on the source: no directory, mount, loop device, runtime state or namespace
      // (its cgroups are the machine's, which all three hosts share: the target's container has them now).
      expect(existsSync(instanceDir(source))).toBe(false);
      const left = containerHostLeftovers({ dataDir: dataDirOf(indexOf(source)) }, []);
      expect(left.filter((line) => line.includes(id))).toEqual([]);
      expect(readdirSync(netnsDirOf(indexOf(source)))).not.toContain(`novum-${id}`);
    });

    it('cold-migrates a KVM guest to another host with what it wrote on its disk; confirm clears the source', async () => {
      // The guest looks for its mark on its root disk: found after the migration, it was carried.
      const userData = join(deployment.controller, 'vm-mark-user-data');
      writeFileSync(
        userData,
        [
          '#!/bin/sh',
          'if dd if=/dev/vda bs=512 skip=100000 count=1 2>/dev/null | grep -q MH-ROOT-MARK; then',
          '  echo "vm-mark=found"',
          'else',
          '  echo MH-ROOT-MARK | dd of=/dev/vda bs=512 seek=100000 conv=fsync 2>/dev/null',
          '  echo "vm-mark=written"',
          'fi',
          '',
        ].join('\n'),
      );
      const { id } = await openstackJson<{ id: string }>(
        demo,
        ...['server', 'create', '--flavor', 'm1.tiny', '--image', 'tiny', '--user-data', userData],
        ...['--nic', `net-id=${networks['net-a'].id},v4-fixed-ip=10.78.1.31`, '--wait', 'vm2'],
      );
      const source = (await openstackJson<Record<string, string>>(admin, 'server', 'show', id))[
        'OS-EXT-SRV-ATTR:host'
      ];
      servers.vm2 = { id, ip: '10.78.1.31', host: source };
      const consoleSays = async (text: RegExp) => {
        let log = '';
        const deadline = Date.now() + 150_000;
        while (Date.now() < deadline && !text.test(log)) {
          await sleep(2000);
          log = await openstackOk(demo, 'console', 'log', 'show', id).catch(() => '');
        }
        return log;
      };
      expect(await consoleSays(/vm-mark=\w+/)).toContain('vm-mark=written');

      const taps = () => hostLinks(indexOf(source)).filter((name) => name.startsWith('novumt')).length;
      const tapsBefore = taps();
      const started = Date.now();
      await openstackOk(admin, 'server', 'migrate', '--wait', id);
      const shown = await openstackJson<Record<string, string>>(admin, 'server', 'show', id);
      expect(shown.status).toBe('VERIFY_RESIZE');
      const target = shown['OS-EXT-SRV-ATTR:host'];
      expect(target).not.toBe(source);
      servers.vm2.host = target;
      process.stdout.write(`cold migration of a KVM guest across hosts: ${Date.now() - started} ms\n`);
      expect(await consoleSays(/vm-mark=\w+/)).toContain('vm-mark=found');
      const vmDir = (host: string) => join(dataDirOf(indexOf(host)), 'kvm', 'instances', id);
      expect(existsSync(join(vmDir(source), 'disk'))).toBe(true);

      await openstackOk(admin, 'server', 'resize', 'confirm', id);
      await openstackOk(admin, 'server', 'show', id);
      expect(await eventually(() => !existsSync(vmDir(source)), 30)).toBe(true);
      expect(taps()).toBe(tapsBefore - 1);
    });

    it('deletes the servers and leaves nothing of them on any host', async () => {
      await openstackOk(demo, 'server', 'delete', '--wait', ...Object.values(servers).map((s) => s.id));
      for (let i = 1; i <= HOSTS; i++) {
        // No QEMU guest's files either.
        const vms = join(dataDirOf(i), 'kvm', 'instances');
        expect(existsSync(vms) ? readdirSync(vms) : []).toEqual([]);
        expect(
          containerHostLeftovers(
            { dataDir: dataDirOf(i) },
            Object.values(servers).map((s) => s.id),
          ),
        ).toEqual([]);
        // No bridge, tunnel, veth or metadata link of a guest network is left in the host, nor a namespace
        // of a guest or of a network's metadata service.
        expect(hostLinks(i).filter((name) => name.startsWith('novum'))).toEqual([]);
        expect(readdirSync(netnsDirOf(i))).toEqual([]);
      }
    });
  },
);
