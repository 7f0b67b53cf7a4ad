import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudHandle, testMode } from './support/cloud';
import {
  hostTestSkip,
  missingHostTools,
  nftTableOf,
  removeContainerLeftovers,
  RUNTIME,
  runtimeRoot,
  startContainerCloud,
} from './support/host';
import { openstack, openstackJson, openstackOk } from './support/openstack';

jest.setTimeout(180_000);

const skip = hostTestSkip(
  'container metadata',
  missingHostTools(
    [RUNTIME, 'busybox', 'setfattr', 'ip', 'nft', 'nsenter'],
    'runc busybox-static attr iproute2 nftables util-linux',
  ),
);

const sh = (command: string, ...args: string[]) =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const quietly = (command: string, ...args: string[]) => {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
  } catch {
    /* already gone */
  }
};
const compact = (id: string) => id.replace(/-/g, '');

/**
 * A container server whose command runs its user data from the config drive: the script signals the wait
 * condition with busybox wget through the metadata address, with the handle's token and endpoint.
 */
const WAIT_TEMPLATE = `heat_template_version: 2018-08-31
parameters:
  net: {type: string}
resources:
  handle:
    type: OS::Heat::WaitConditionHandle
  box:
    type: OS::Nova::Server
    properties:
      image: busybox
      flavor: c1.tiny
      networks: [{network: {get_param: net}}]
      metadata: {"novum:cmd": '["/bin/sh", "/config-drive/openstack/latest/user_data"]'}
      user_data_format: RAW
      user_data:
        str_replace:
          template: |
            #!/bin/sh
            for attempt in 1 2 3 4 5 6 7 8 9 10; do
              wget -q -O - --header "X-Auth-Token: TOKEN" --header "Content-Type: application/json" \\
                --post-data '{"status": "SUCCESS", "id": "box", "data": "ready from box"}' ENDPOINT && break
              sleep 1
            done
            exec sleep 3600
          params:
            TOKEN: {get_attr: [handle, token]}
            ENDPOINT: {get_attr: [handle, endpoint]}
  wait:
    type: OS::Heat::WaitCondition
    depends_on: box
    properties:
      handle: {get_resource: handle}
      timeout: 120
outputs:
  data:
    value: {get_attr: [wait, data]}
  endpoint:
    value: {get_attr: [handle, endpoint]}
`;

/**
 * The metadata service as guests see it: a container server asks http://169.254.169.254/ with busybox wget
 * and gets its own server's data, identified by its network and fixed IP (two networks here have the same
 * addresses), and nothing else of the host is reachable through that address.
 */
(skip ? describe.skip : describe)(
  `container metadata service (${testMode()}${skip ? `; skipped: ${skip}` : ''})`,
  () => {
    let cloud: CloudHandle;
    let demo: Record<string, string>;
    const servers: Record<string, { id: string; portId: string }> = {};
    const networks: Record<string, string> = {};
    let publicKey = '';

    // Into the container's namespaces as the host's root, running the image's busybox.
    const inside = (name: string, ...args: string[]) => {
      const { pid } = JSON.parse(
        sh(RUNTIME, '--root', runtimeRoot(cloud), 'state', `novum-${servers[name].id}`),
      );
      return sh(
        'nsenter',
        '-t',
        String(pid),
        '-m',
        '-u',
        '-i',
        '-n',
        '-p',
        '-r',
        '-w',
        '/bin/busybox',
        ...args,
      );
    };
    // busybox's own `wget -T` crashes (1.35); its `timeout` bounds the attempts instead.
    const wget = (name: string, seconds: number, url: string, to = '-') =>
      inside(name, 'timeout', String(seconds), '/bin/busybox', 'wget', '-q', '-O', to, url);
    const get = (name: string, path: string) => wget(name, 5, `http://169.254.169.254${path}`);
    const reaches = (name: string, url: string) => {
      try {
        wget(name, 2, url, '/dev/null');
        return true;
      } catch {
        return false;
      }
    };
    const links = () =>
      sh('ip', '-br', 'link')
        .split('\n')
        .map((line) => line.split(/[\s@]/)[0]);
    const namespaces = () =>
      sh('ip', 'netns', 'list')
        .split('\n')
        .map((line) => line.split(' ')[0]);

    beforeAll(async () => {
      ({ cloud, demo } = await startContainerCloud(25400));
      for (const name of ['md-a', 'md-b']) {
        networks[name] = (await openstackJson(demo, 'network', 'create', name)).id;
        await openstackOk(
          demo,
          ...['subnet', 'create', '--network', name, '--subnet-range', '10.78.1.0/24', `${name}-subnet`],
        );
      }
      // A key pair the compute API generates: its public half is what the guest must be given.
      await openstackOk(demo, 'keypair', 'create', '--private-key', join(cloud.dataDir, 'md-key'), 'md-key');
      publicKey = (await openstackOk(demo, 'keypair', 'show', '--public-key', 'md-key')).trim();
      const userData = join(cloud.dataDir, 'md-user-data');
      writeFileSync(userData, '#!/bin/sh\necho metadata-user-data\n');
      const create = (name: string, network: string, ...extra: string[]) =>
        openstackJson(
          demo,
          ...['server', 'create', '--flavor', 'c1.tiny', '--image', 'busybox'],
          ...['--nic', `net-id=${networks[network]},v4-fixed-ip=10.78.1.11`, ...extra, '--wait', name],
        );
      // The same fixed IP on both networks: only the network tells the two guests apart.
      const created = await Promise.all([
        create('a1', 'md-a', '--key-name', 'md-key', '--user-data', userData),
        create('b1', 'md-b'),
      ]);
      for (const server of created) {
        expect(server.status).toBe('ACTIVE');
        const [port] = await openstackJson(demo, 'port', 'list', '--server', server.id);
        servers[server.name] = { id: server.id, portId: port.ID };
      }
    }, 180_000);

    afterAll(async () => {
      if (!cloud) return;
      // The cloud first, so that its agents plug nothing again (a router) while its leftovers go.
      await cloud.stop();
      removeContainerLeftovers(cloud);
      for (const server of Object.values(servers)) {
        quietly('ip', 'link', 'delete', `novumv${compact(server.portId).slice(0, 9)}`);
      }
      for (const id of Object.values(networks)) {
        quietly('ip', 'link', 'delete', `novumm${compact(id).slice(0, 9)}`);
        quietly('ip', 'netns', 'delete', `novum-md-${id}`);
        quietly('ip', 'link', 'delete', `novumbr${compact(id).slice(0, 8)}`);
      }
      await cloud.destroy();
    }, 60_000);

    it('serves each guest its own meta_data.json, by network and fixed IP (both guests are 10.78.1.11)', () => {
      const a1 = JSON.parse(get('a1', '/openstack/latest/meta_data.json'));
      expect(a1).toMatchObject({ uuid: servers.a1.id, name: 'a1', hostname: 'a1' });
      expect(a1.public_keys).toEqual({ 'md-key': publicKey });
      const b1 = JSON.parse(get('b1', '/openstack/latest/meta_data.json'));
      expect(b1).toMatchObject({ uuid: servers.b1.id, name: 'b1' });
      expect(b1.public_keys).toBeUndefined();
    });

    it('serves the OpenStack tree as the config drive has it: versions, user_data, network and vendor data', () => {
      expect(get('a1', '/openstack').split('\n')).toEqual(expect.arrayContaining(['2012-08-10', 'latest']));
      expect(get('a1', '/openstack/latest/').split('\n')).toEqual(
        expect.arrayContaining(['meta_data.json', 'user_data', 'network_data.json', 'vendor_data.json']),
      );
      expect(get('a1', '/openstack/latest/user_data')).toBe('#!/bin/sh\necho metadata-user-data\n');
      expect(JSON.parse(get('a1', '/openstack/latest/vendor_data.json'))).toEqual({});
      const network = JSON.parse(get('a1', '/openstack/latest/network_data.json'));
      expect(network.networks[0]).toMatchObject({
        ip_address: '10.78.1.11',
        network_id: networks['md-a'],
      });
      expect(network.networks[0].routes).toContainEqual({
        network: '169.254.169.254',
        netmask: '255.255.255.255',
        gateway: '0.0.0.0',
      });
      // The same file as on the config drive the container has at /config-drive.
      const drive = JSON.parse(inside('a1', 'cat', '/config-drive/openstack/latest/network_data.json'));
      expect(network).toEqual(drive);
      expect(reaches('b1', 'http://169.254.169.254/openstack/latest/user_data')).toBe(false);
    });

    it('serves the EC2 tree: meta-data keys, instance-id, local-ipv4, the public key, user-data', () => {
      const keys = get('a1', '/latest/meta-data/').split('\n');
      expect(keys).toEqual(
        expect.arrayContaining(['hostname', 'instance-id', 'local-ipv4', 'public-keys/', 'placement/']),
      );
      expect(get('a1', '/latest/meta-data/instance-id')).toBe(`i-${compact(servers.a1.id).slice(0, 8)}`);
      expect(get('b1', '/latest/meta-data/instance-id')).toBe(`i-${compact(servers.b1.id).slice(0, 8)}`);
      expect(get('a1', '/latest/meta-data/local-ipv4')).toBe('10.78.1.11');
      expect(get('a1', '/latest/meta-data/hostname')).toBe('a1');
      expect(get('a1', '/latest/meta-data/public-keys/')).toBe('0=md-key');
      expect(get('a1', '/latest/meta-data/public-keys/0/openssh-key')).toBe(publicKey);
      expect(get('a1', '/latest/user-data')).toBe('#!/bin/sh\necho metadata-user-data\n');
      expect(get('a1', '/').split('\n')).toEqual(expect.arrayContaining(['2009-04-04', 'latest']));
      expect(reaches('a1', 'http://169.254.169.254/latest/meta-data/no-such-key')).toBe(false);
    });

    it('lets a guest reach nothing else: no other port of the address, no host API, no ping', () => {
      expect(reaches('a1', 'http://169.254.169.254/')).toBe(true);
      for (const port of [22, 8080, 25401, 25403]) {
        expect(reaches('a1', `http://169.254.169.254:${port}/`)).toBe(false);
      }
      let pinged = true;
      try {
        inside('a1', 'ping', '-c', '1', '-W', '1', '169.254.169.254');
      } catch {
        pinged = false;
      }
      expect(pinged).toBe(false);
      // The namespace's rules in the cloud's own tables: only TCP port 80 of the metadata address.
      expect(sh('nft', 'list', 'chain', 'inet', nftTableOf(cloud), 'metadata_in')).toContain(
        'ip daddr 169.254.169.254 tcp dport 80 accept',
      );
    });

    it('serves again after the cloud restarts (the agent reopens its listeners)', async () => {
      await cloud.stop();
      await cloud.start();
      const deadline = Date.now() + 30_000;
      while (!reaches('a1', 'http://169.254.169.254/openstack') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(JSON.parse(get('a1', '/openstack/latest/meta_data.json')).uuid).toBe(servers.a1.id);
    });

    it('completes a stack whose WaitCondition a booted container signals through the metadata address', async () => {
      const template = join(cloud.dataDir, 'wait.yaml');
      writeFileSync(template, WAIT_TEMPLATE);
      const started = Date.now();
      const created = await openstack(
        demo,
        ...['stack', 'create', '-t', template, '--parameter', `net=${networks['md-a']}`, '--wait', 'waiting'],
      );
      const stack = await openstackJson(demo, 'stack', 'show', 'waiting');
      expect([stack.stack_status, stack.stack_status_reason, created.code]).toEqual([
        'CREATE_COMPLETE',
        expect.any(String),
        0,
      ]);
      process.stdout.write(`wait condition stack: CREATE_COMPLETE in ${Date.now() - started} ms\n`);
      const output = (key: string) =>
        openstackJson(demo, 'stack', 'output', 'show', 'waiting', key).then((o) => o.output_value);
      expect(JSON.parse(await output('data'))).toEqual({ box: 'ready from box' });
      expect(await output('endpoint')).toMatch(
        new RegExp(
          `^http://169\\.254\\.169\\.254/heat-api/v1/[0-9a-f]+/stacks/waiting/${stack.id}/resources/handle/signal$`,
        ),
      );
      // A guest may POST nothing but signals, and a signal only with the handle's token.
      const endpoint = await output('endpoint');
      const post = (url: string, token: string) => {
        try {
          return inside(
            'a1',
            ...[
              'timeout',
              '5',
              '/bin/busybox',
              'wget',
              '-q',
              '-O',
              '-',
              '--header',
              `X-Auth-Token: ${token}`,
            ],
            ...['--header', 'Content-Type: application/json', '--post-data', '{"status": "FAILURE"}', url],
          );
        } catch (error) {
          return String((error as { stderr?: string }).stderr);
        }
      };
      expect(post(endpoint, 'not-the-token')).toContain('401');
      expect(post('http://169.254.169.254/openstack/latest/meta_data.json', 'x')).toContain('405');
      // The handle keeps the signal as its metadata, as Heat's does.
      const metadata = await openstackJson(demo, 'stack', 'resource', 'metadata', 'waiting', 'handle');
      expect(metadata).toEqual({
        box: { status: 'SUCCESS', reason: 'Signal 1 received', data: 'ready from box' },
      });
      await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'waiting');
    });

    it('removes the metadata namespaces, links and rules with the last server of each network', async () => {
      for (const id of Object.values(networks)) {
        expect(namespaces()).toContain(`novum-md-${id}`);
        expect(links()).toContain(`novumm${compact(id).slice(0, 9)}`);
      }
      await Promise.all(
        Object.values(servers).map((server) => openstackOk(demo, 'server', 'delete', '--wait', server.id)),
      );
      for (const id of Object.values(networks)) {
        expect(namespaces()).not.toContain(`novum-md-${id}`);
        expect(links()).not.toContain(`novumm${compact(id).slice(0, 9)}`);
        expect(links()).not.toContain(`novumbr${compact(id).slice(0, 8)}`);
      }
      expect(sh('nft', 'list', 'tables')).not.toContain(nftTableOf(cloud));
    });
  },
);
