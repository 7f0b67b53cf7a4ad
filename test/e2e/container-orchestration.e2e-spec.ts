import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudHandle, testMode } from './support/cloud';
import {
  containerHostLeftovers,
  hostTestSkip,
  missingHostTools,
  removeContainerLeftovers,
  RUNTIME,
  runtimeState,
  startContainerCloud,
} from './support/host';
import { openstack, openstackJson, openstackOk, openstackWaitedJson } from './support/openstack';

jest.setTimeout(180_000);

const TEMPLATE = `
heat_template_version: 2021-04-16
description: Both container resource types, as real containers
parameters:
  greeting: {type: string, default: bonjour}
resources:
  web:
    type: DockerInc::Docker::Container
    properties:
      image: busybox
      name: heat-docker
      hostname: docker-host
      cmd: [/bin/sh, -c, 'trap "exit 0" TERM; echo "docker says $GREETING from $(hostname) in $(pwd)"; sleep 2147483647 & wait']
      env: [{list_join: ['=', [GREETING, {get_param: greeting}]]}]
      memory: 134217728
      cap_drop: [NET_RAW]
      read_only: true
      port_specs: ['80', 53/udp]
  worker:
    type: OS::Zun::Container
    properties:
      image: busybox
      name: heat-zun
      command: "/bin/sh -c 'trap \\"exit 0\\" TERM; echo \\"zun says $GREETING in $(pwd) to $WEB\\"; sleep 2147483647 & wait'"
      environment: {GREETING: hallo, WEB: {get_attr: [web, network_ip]}}
      workdir: /tmp
      cpu: 1
      memory: 512
      networks: [{network: private}]
      labels: {tier: worker}
outputs:
  web_ip: {value: {get_attr: [web, network_ip]}}
  web_gateway: {value: {get_attr: [web, network_gateway]}}
  web_logs_head: {value: {get_attr: [web, logs_head]}}
  web_tcp_ports: {value: {get_attr: [web, network_tcp_ports]}}
  worker_addresses: {value: {get_attr: [worker, addresses, private, 0, addr]}}
  worker_name: {value: {get_attr: [worker, name]}}
`;

const PRIVILEGED = `
heat_template_version: 2021-04-16
resources:
  escape:
    type: DockerInc::Docker::Container
    properties: {image: busybox, privileged: true}
`;

const FLAVOR_AND_GROUP = `
heat_template_version: 2021-04-16
resources:
  tiny:
    type: OS::Nova::Flavor
    properties: {name: heat-c1.micro, ram: 64, vcpus: 1, disk: 1, extra_specs: {"novum:driver": container}}
  group:
    type: OS::Nova::ServerGroup
    properties: {name: heat-group, policies: [anti-affinity], rules: {max_server_per_host: 2}}
outputs:
  specs: {value: {get_attr: [tiny, extra_specs]}}
`;

/** As the admin: a container no container flavor fits (c1.medium has 2048 MiB) gets a private flavor of its own. */
const BIG_CONTAINER = `
  big:
    type: OS::Zun::Container
    properties:
      image: busybox
      name: heat-big
      memory: 3000
      cpu: 2
      command: /bin/sh -c 'echo big; sleep 2147483647'
      networks: [{network: private}]
      hints: {group: {get_resource: group}}
`;

/** A ResourceGroup of ten containers named by their index; each prints its index on its console. */
const GROUP = `
heat_template_version: 2021-04-16
resources:
  pool:
    type: OS::Heat::ResourceGroup
    properties:
      count: 10
      resource_def:
        type: OS::Zun::Container
        properties:
          image: busybox
          name: pool-%index%
          command: "/bin/sh -c 'trap \\"exit 0\\" TERM; echo member %index%; sleep 2147483647 & wait'"
          memory: 64
          networks: [{network: private}]
outputs:
  refs: {value: {get_attr: [pool, refs]}}
  refs_map: {value: {get_attr: [pool, refs_map]}}
  names: {value: {get_attr: [pool, name]}}
  names_map: {value: {get_attr: [pool, attributes, name]}}
  third: {value: {get_attr: [pool, resource.3, name]}}
  addresses: {value: {get_attr: [pool, addresses, private, 0, addr]}}
`;

const skip = hostTestSkip(
  'container orchestration',
  missingHostTools([RUNTIME, 'busybox', 'setfattr'], 'runc busybox-static attr'),
);

/** Heat's container resources as real containers on the container driver, driven by heatclient. */
(skip ? describe.skip : describe)(
  `container orchestration with /usr/bin/openstack (${testMode()}${skip ? `; skipped: ${skip}` : ''})`,
  () => {
    let cloud: CloudHandle;
    let admin: Record<string, string>;
    let demo: Record<string, string>;
    const file = (name: string, text: string) => {
      const path = join(cloud.dataDir, name);
      writeFileSync(path, text);
      return path;
    };

    beforeAll(async () => {
      ({ cloud, admin, demo } = await startContainerCloud(25200));
    }, 120_000);

    afterAll(async () => {
      if (!cloud) return;
      // The cloud first, so that its agents plug nothing again (a router) while its leftovers go.
      await cloud.stop();
      removeContainerLeftovers(cloud);
      await cloud.destroy();
    }, 60_000);

    it('lists the container, flavor and server group types with their schemas', async () => {
      const types = (await openstackJson<any[]>(demo, 'orchestration', 'resource', 'type', 'list')).map(
        (t) => t['Resource Type'],
      );
      expect(types).toEqual(
        expect.arrayContaining([
          'DockerInc::Docker::Container',
          'OS::Zun::Container',
          'OS::Nova::Flavor',
          'OS::Nova::ServerGroup',
        ]),
      );
      const docker = await openstackJson(
        demo,
        'orchestration',
        'resource',
        'type',
        'show',
        'DockerInc::Docker::Container',
      );
      expect(docker.properties.privileged).toMatchObject({ type: 'boolean', default: false });
      expect(Object.keys(docker.attributes)).toEqual(
        expect.arrayContaining(['info', 'network_ip', 'network_gateway', 'logs', 'logs_head', 'logs_tail']),
      );
    });

    it('refuses a privileged container at validation with a 400 naming the template path', async () => {
      const path = file('privileged.yaml', PRIVILEGED);
      const refused = await openstack(demo, 'stack', 'create', '-t', path, 'escape');
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('resources.escape.properties.privileged');
      expect(refused.stderr).toContain('isolation');

      const token = (await openstackJson(demo, 'token', 'issue')) as { id: string; project_id: string };
      // The catalog URL ends with Keystone's project placeholder.
      const heat = cloud.services.orchestration.replace(/[$%]\((project|tenant)_id\)s/, token.project_id);
      const response = await fetch(`${heat}/stacks`, {
        method: 'POST',
        headers: { 'x-auth-token': token.id, 'content-type': 'application/json' },
        body: JSON.stringify({
          stack_name: 'escape',
          template: {
            heat_template_version: '2021-04-16',
            resources: {
              escape: {
                type: 'DockerInc::Docker::Container',
                properties: { image: 'busybox', cap_add: ['SYS_ADMIN'] },
              },
            },
          },
        }),
      });
      expect(response.status).toBe(400);
      const body = (await response.json()) as any;
      expect(body.error.message).toContain('resources.escape.properties.cap_add[0]');
      expect(await openstackJson<any[]>(demo, 'server', 'list')).toEqual([]);
    });

    it('runs a template of both container types as containers, then deletes them leaving nothing', async () => {
      const created = await openstackWaitedJson(
        demo,
        'stack',
        'create',
        '-t',
        file('containers.yaml', TEMPLATE),
        '--wait',
        'apps',
      );
      expect(created.stack_status).toBe('CREATE_COMPLETE');

      const servers = await openstackJson<any[]>(demo, 'server', 'list', '--long');
      const byName = Object.fromEntries(servers.map((s) => [s.Name, s]));
      expect(Object.keys(byName).sort()).toEqual(['heat-docker', 'heat-zun']);
      expect(byName['heat-docker']).toMatchObject({ Status: 'ACTIVE', 'Flavor Name': 'c1.tiny' });
      // 512 MiB: the smallest container flavor holding it is c1.small.
      expect(byName['heat-zun']).toMatchObject({ Status: 'ACTIVE', 'Flavor Name': 'c1.small' });
      const web = byName['heat-docker'].ID as string;
      const worker = byName['heat-zun'].ID as string;
      const shown = await openstackJson(demo, 'server', 'show', web);
      expect(shown.properties).toMatchObject({ 'novum:cap_drop': '["NET_RAW"]', 'novum:read_only': 'true' });

      const outputs = Object.fromEntries(
        (await openstackJson<any[]>(demo, 'stack', 'output', 'list', 'apps')).map((o) => [
          o.output_key,
          null,
        ]),
      );
      const output = async (key: string) =>
        (await openstackJson(demo, 'stack', 'output', 'show', 'apps', key)).output_value;
      expect(Object.keys(outputs).sort()).toEqual([
        'web_gateway',
        'web_ip',
        'web_logs_head',
        'web_tcp_ports',
        'worker_addresses',
        'worker_name',
      ]);
      const webIp = await output('web_ip');
      expect(webIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(JSON.stringify(shown.addresses)).toContain(webIp);
      expect(await output('web_gateway')).toMatch(/^\d+\.\d+\.\d+\.1$/);
      expect(await output('web_logs_head')).toBe('docker says bonjour from docker-host in /root');
      expect(await output('web_tcp_ports')).toBe('80');
      expect(await output('worker_name')).toBe('heat-zun');
      expect(await output('worker_addresses')).toMatch(/^\d+\.\d+\.\d+\.\d+$/);

      // Each container ran its template's command with its environment, working directory and host name.
      const consoleOf = async (id: string, text: string) => {
        let log = '';
        for (let i = 0; i < 50 && !log.includes(text); i++) {
          log = await openstackOk(demo, 'console', 'log', 'show', id);
          if (!log.includes(text)) await new Promise((r) => setTimeout(r, 200));
        }
        return log;
      };
      expect(await consoleOf(web, 'docker says')).toContain('docker says bonjour from docker-host in /root');
      expect(await consoleOf(worker, 'zun says')).toContain(`zun says hallo in /tmp to ${webIp}`);

      // The Docker properties reached the OCI runtime: a read-only root and no CAP_NET_RAW.
      expect(runtimeState(cloud, web)?.status).toBe('running');
      const spec = JSON.parse(
        readFileSync(join(cloud.dataDir, 'containers', 'instances', web, 'config.json'), 'utf8'),
      );
      expect(spec.root.readonly).toBe(true);
      expect(spec.process.capabilities.bounding).not.toContain('CAP_NET_RAW');
      expect(spec.process.capabilities.bounding).toContain('CAP_CHOWN');
      expect(spec.process.env).toContain('GREETING=bonjour');
      const workerSpec = JSON.parse(
        readFileSync(join(cloud.dataDir, 'containers', 'instances', worker, 'config.json'), 'utf8'),
      );
      expect(workerSpec.root.readonly).toBe(false);
      expect(workerSpec.process.cwd).toBe('/tmp');
      expect(workerSpec.process.capabilities.bounding).toContain('CAP_NET_RAW');

      const resources = await openstackJson<any[]>(demo, 'stack', 'resource', 'list', 'apps');
      expect(Object.fromEntries(resources.map((r) => [r.resource_name, r.physical_resource_id]))).toEqual({
        web,
        worker,
      });

      await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'apps');
      expect(await openstackJson<any[]>(demo, 'server', 'list')).toEqual([]);
      expect(containerHostLeftovers(cloud, [web, worker])).toEqual([]);
    });

    it('creates a flavor and a server group as the admin, and removes them with the stack', async () => {
      const created = await openstackWaitedJson(
        admin,
        'stack',
        'create',
        '-t',
        file('flavor.yaml', FLAVOR_AND_GROUP.replace('\noutputs:', `${BIG_CONTAINER}outputs:`)),
        '--wait',
        'sizes',
      );
      expect(created.stack_status).toBe('CREATE_COMPLETE');
      const shown = await openstackJson(admin, 'flavor', 'show', 'heat-c1.micro');
      expect(shown).toMatchObject({ ram: 64, vcpus: 1, disk: 1 });
      expect(JSON.stringify(shown.properties)).toContain('container');
      expect((await openstackJson(admin, 'stack', 'output', 'show', 'sizes', 'specs')).output_value).toEqual({
        'novum:driver': 'container',
      });
      const group = await openstackJson(
        { ...admin, OS_COMPUTE_API_VERSION: '2.64' },
        'server',
        'group',
        'show',
        'heat-group',
      );
      expect(group).toMatchObject({ policy: 'anti-affinity' });
      expect(JSON.stringify(group.rules)).toContain('max_server_per_host');

      const big = (await openstackJson<any[]>(admin, 'server', 'list', '--long')).find(
        (s) => s.Name === 'heat-big',
      );
      expect(big.Status).toBe('ACTIVE');
      expect(JSON.stringify(group.members)).toContain(big.ID);
      const own = await openstackJson(admin, 'flavor', 'show', big['Flavor ID']);
      expect(own).toMatchObject({ ram: 3000, vcpus: 2, 'os-flavor-access:is_public': false });
      expect(own.name).toMatch(/^sizes-big-/);
      expect(JSON.stringify(own.properties)).toContain('container');

      // The demo project may not make flavors (Nova's default policy): the stack fails with Nova's 403.
      await openstackJson(
        demo,
        'stack',
        'create',
        '-t',
        file('flavor-demo.yaml', FLAVOR_AND_GROUP),
        'nosizes',
      );
      let refused: any;
      const deadline = Date.now() + 30_000;
      do {
        await new Promise((r) => setTimeout(r, 500));
        refused = await openstackJson(demo, 'stack', 'show', 'nosizes');
      } while (refused.stack_status.endsWith('IN_PROGRESS') && Date.now() < deadline);
      expect(refused.stack_status).toBe('CREATE_FAILED');
      expect(refused.stack_status_reason).toContain('resources.tiny');
      expect(refused.stack_status_reason).toMatch(/policy|Policy/);
      await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'nosizes');
      expect(await openstackJson<any[]>(demo, 'server', 'group', 'list')).toEqual([]);

      await openstackOk(admin, 'stack', 'delete', '--yes', '--wait', 'sizes');
      expect((await openstack(admin, 'flavor', 'show', 'heat-c1.micro')).code).not.toBe(0);
      expect((await openstack(admin, 'server', 'group', 'show', 'heat-group')).code).not.toBe(0);
      expect((await openstack(admin, 'flavor', 'show', big['Flavor ID'])).code).not.toBe(0);
      expect(await openstackJson<any[]>(admin, 'server', 'list')).toEqual([]);
      expect(containerHostLeftovers(cloud, [big.ID])).toEqual([]);
    });

    it('runs a ResourceGroup of ten containers named by index, then deletes them all', async () => {
      const created = await openstackWaitedJson(
        demo,
        'stack',
        'create',
        '-t',
        file('group.yaml', GROUP),
        '--wait',
        'pool',
      );
      expect(created.stack_status).toBe('CREATE_COMPLETE');

      const indexes = Array.from({ length: 10 }, (_, i) => i);
      const servers = await openstackJson<any[]>(demo, 'server', 'list', '--long');
      const byName = Object.fromEntries(servers.map((s) => [s.Name, s]));
      expect(Object.keys(byName).sort()).toEqual(indexes.map((i) => `pool-${i}`).sort());
      const ids = indexes.map((i) => byName[`pool-${i}`].ID as string);
      for (const i of indexes) {
        expect(byName[`pool-${i}`]).toMatchObject({ Status: 'ACTIVE', 'Flavor Name': 'c1.tiny' });
        expect(runtimeState(cloud, ids[i])?.status).toBe('running');
      }
      // The index reached the command too.
      const spec = JSON.parse(
        readFileSync(join(cloud.dataDir, 'containers', 'instances', ids[7], 'config.json'), 'utf8'),
      );
      expect(spec.process.args.join(' ')).toContain('echo member 7;');

      const output = async (key: string) =>
        (await openstackJson(demo, 'stack', 'output', 'show', 'pool', key)).output_value;
      expect(await output('refs')).toEqual(ids);
      expect(await output('refs_map')).toEqual(Object.fromEntries(indexes.map((i) => [String(i), ids[i]])));
      expect(await output('names')).toEqual(indexes.map((i) => `pool-${i}`));
      expect(await output('names_map')).toEqual(
        Object.fromEntries(indexes.map((i) => [String(i), `pool-${i}`])),
      );
      expect(await output('third')).toBe('pool-3');
      const addresses = await output('addresses');
      expect(addresses).toHaveLength(10);
      expect(new Set(addresses).size).toBe(10);
      for (const i of indexes) expect(JSON.stringify(byName[`pool-${i}`].Networks)).toContain(addresses[i]);

      // The members live in the group's nested stack, named by index.
      const members = await openstackJson<any[]>(
        demo,
        'stack',
        'resource',
        'list',
        '--nested-depth',
        '1',
        'pool',
      );
      const nested = members.filter((r) => r.resource_type === 'OS::Zun::Container');
      expect(Object.fromEntries(nested.map((r) => [r.resource_name, r.physical_resource_id]))).toEqual(
        Object.fromEntries(indexes.map((i) => [String(i), ids[i]])),
      );
      expect(nested.every((r) => r.resource_status === 'CREATE_COMPLETE')).toBe(true);

      await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'pool');
      expect(await openstackJson<any[]>(demo, 'server', 'list')).toEqual([]);
      expect(await openstackJson<any[]>(demo, 'stack', 'list', '--nested')).toEqual([]);
      expect(ids.map((id) => runtimeState(cloud, id)).filter(Boolean)).toEqual([]);
      expect(containerHostLeftovers(cloud, ids)).toEqual([]);
    });
  },
);
