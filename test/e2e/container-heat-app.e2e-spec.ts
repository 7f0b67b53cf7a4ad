import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { CloudHandle, testMode } from './support/cloud';
import {
  cgroupPath,
  containerHostLeftovers,
  hostTestSkip,
  missingHostTools,
  readTrimmed,
  removeContainerLeftovers,
  RUNTIME,
  runtimeState,
  startContainerCloud,
} from './support/host';
import { openstack, openstackJson, openstackOk, openstackWaitedJson } from './support/openstack';

jest.setTimeout(240_000);

const SLEEP = '["/bin/sh","-c","trap \\"exit 0\\" TERM; sleep 2147483647 & wait"]';

/**
 * A whole application: a network behind a router to the external network, a key pair, a database server
 * booted from a cloud-config that sets the generated password, on a port with a floating IP, and a web
 * server, both real containers.
 */
const APP = `
heat_template_version: 2021-04-16
description: A two-server application on its own routed network
parameters:
  db_flavor: {type: string, default: c1.tiny}
  web_image: {type: string, default: busybox}
resources:
  password:
    type: OS::Heat::RandomString
    properties: {length: 20, sequence: lettersdigits}
  key:
    type: OS::Nova::KeyPair
    properties: {name: heat-app-key, save_private_key: true}
  net:
    type: OS::Neutron::Net
    properties: {name: heat-app-net}
  subnet:
    type: OS::Neutron::Subnet
    properties: {network: {get_resource: net}, cidr: 10.77.0.0/24, name: heat-app-subnet}
  router:
    type: OS::Neutron::Router
    properties: {name: heat-app-router, external_gateway_info: {network: public}}
  router_interface:
    type: OS::Neutron::RouterInterface
    properties: {router: {get_resource: router}, subnet: {get_resource: subnet}}
  boot_config:
    type: OS::Heat::CloudConfig
    properties:
      cloud_config:
        chpasswd:
          expire: false
          list: {str_replace: {template: "root:PASSWORD", params: {PASSWORD: {get_attr: [password, value]}}}}
  boot_parts:
    type: OS::Heat::MultipartMime
    properties:
      parts:
        - config: {get_resource: boot_config}
          subtype: cloud-config
        - config: "#!/bin/sh\\necho db ready"
          filename: ready.sh
          subtype: x-shellscript
  db_port:
    type: OS::Neutron::Port
    properties:
      network: {get_resource: net}
      fixed_ips: [{subnet: {get_resource: subnet}, ip_address: 10.77.0.10}]
  db:
    type: OS::Nova::Server
    properties:
      name: heat-app-db
      image: busybox
      flavor: {get_param: db_flavor}
      key_name: {get_resource: key}
      networks: [{port: {get_resource: db_port}}]
      user_data_format: RAW
      user_data: {get_resource: boot_parts}
      metadata: {"novum:cmd": '${SLEEP}'}
  web:
    type: OS::Nova::Server
    depends_on: router_interface
    properties:
      name: heat-app-web
      image: {get_param: web_image}
      flavor: c1.tiny
      key_name: {get_resource: key}
      networks: [{subnet: {get_resource: subnet}}]
      user_data_format: SOFTWARE_CONFIG
      user_data: "#!/bin/sh\\necho web"
      metadata: {"novum:cmd": '${SLEEP}', tier: web}
  db_floating_ip:
    type: OS::Neutron::FloatingIP
    properties: {floating_network: public, port_id: {get_resource: db_port}}
outputs:
  password: {value: {get_attr: [password, value]}}
  db_address: {value: {get_attr: [db, first_address]}}
  db_floating_ip: {value: {get_attr: [db_floating_ip, floating_ip_address]}}
  web_networks: {value: {get_attr: [web, networks, heat-app-net]}}
  gateway_network: {value: {get_attr: [router, external_gateway_info, network_id]}}
  boot_config: {value: {get_attr: [boot_config, config]}}
`;

/** The same network and router, then a server whose image does not exist. */
const DOOMED = `
heat_template_version: 2021-04-16
resources:
  net: {type: OS::Neutron::Net, properties: {name: doomed-net}}
  subnet: {type: OS::Neutron::Subnet, properties: {network: {get_resource: net}, cidr: 10.78.0.0/24}}
  router: {type: OS::Neutron::Router, properties: {name: doomed-router, external_gateway_info: {network: public}}}
  router_interface:
    type: OS::Neutron::RouterInterface
    properties: {router: {get_resource: router}, subnet: {get_resource: subnet}}
  server:
    type: OS::Nova::Server
    depends_on: router_interface
    properties: {name: doomed-server, image: no-such-image, flavor: c1.tiny, networks: [{network: {get_resource: net}}]}
`;

const skip = hostTestSkip(
  'Heat application',
  missingHostTools([RUNTIME, 'busybox', 'setfattr'], 'runc busybox-static attr'),
);

/** Heat's acceptance for whole applications, driven by heatclient against real containers. */
(skip ? describe.skip : describe)(
  `Heat application on containers with /usr/bin/openstack (${testMode()}${skip ? `; skipped: ${skip}` : ''})`,
  () => {
    let cloud: CloudHandle;
    let admin: Record<string, string>;
    let demo: Record<string, string>;
    const file = (name: string, text: string) => {
      const path = join(cloud.dataDir, name);
      writeFileSync(path, text);
      return path;
    };
    const output = async (key: string) =>
      (await openstackJson(demo, 'stack', 'output', 'show', 'app', key)).output_value;
    const resource = async (name: string) => openstackJson(demo, 'stack', 'resource', 'show', 'app', name);
    const userData = (uuid: string) =>
      readFileSync(
        join(
          cloud.dataDir,
          'containers',
          'instances',
          uuid,
          'disk',
          'config-drive',
          'openstack',
          'latest',
          'user_data',
        ),
        'utf8',
      );
    /** The physical ids of the app's servers, the replaced ones included, for the host check at the end. */
    const seen = new Set<string>();

    beforeAll(async () => {
      ({ cloud, admin, demo } = await startContainerCloud(26200));
      // A second image of the same layers, for the update that replaces a server.
      await openstackOk(
        admin,
        ...['image', 'create', '--disk-format', 'raw', '--container-format', 'docker', '--public'],
        ...['--file', join(cloud.dataDir, 'busybox.tar'), 'busybox-v2'],
      );
    }, 180_000);

    afterAll(async () => {
      if (!cloud) return;
      // The cloud first, so that its agents plug nothing again (a router) while its leftovers go.
      await cloud.stop();
      removeContainerLeftovers(cloud);
      await cloud.destroy();
    }, 60_000);

    it('lists and describes the router, floating IP and config resource types', async () => {
      const types = (await openstackJson<any[]>(demo, 'orchestration', 'resource', 'type', 'list')).map(
        (t) => t['Resource Type'],
      );
      expect(types).toEqual(
        expect.arrayContaining([
          'OS::Neutron::Router',
          'OS::Neutron::RouterInterface',
          'OS::Neutron::FloatingIP',
          'OS::Neutron::FloatingIPAssociation',
          'OS::Heat::CloudConfig',
          'OS::Heat::MultipartMime',
        ]),
      );
      const shown = await openstackJson(
        demo,
        'orchestration',
        'resource',
        'type',
        'show',
        'OS::Neutron::Router',
      );
      expect(shown.properties.external_gateway_info).toMatchObject({ type: 'map', update_allowed: true });
      expect(Object.keys(shown.properties.external_gateway_info.schema).sort()).toEqual([
        'enable_snat',
        'network',
      ]);

      const refused = await openstack(
        demo,
        'stack',
        'create',
        '-t',
        file(
          'conflict.yaml',
          'heat_template_version: 2021-04-16\nresources:\n  ri:\n    type: OS::Neutron::RouterInterface\n    properties: {router: r, subnet: s, port: p}\n',
        ),
        'conflict',
      );
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(
        'resources.ri.properties: Cannot define the following properties at the same time: subnet, port.',
      );
      expect(await openstackJson<any[]>(demo, 'stack', 'list')).toEqual([]);
    });

    it('creates the application: network, router, key pair, two container servers and a password', async () => {
      const created = await openstackWaitedJson(
        demo,
        'stack',
        'create',
        '-t',
        file('app.yaml', APP),
        '--wait',
        'app',
      );
      expect(created.stack_status).toBe('CREATE_COMPLETE');

      // Resources: every one created, with its physical id.
      const resources = await openstackJson<any[]>(demo, 'stack', 'resource', 'list', 'app');
      expect(Object.fromEntries(resources.map((r) => [r.resource_name, r.resource_status]))).toEqual(
        Object.fromEntries(
          [
            'password',
            'key',
            'net',
            'subnet',
            'router',
            'router_interface',
            'boot_config',
            'boot_parts',
            'db_port',
            'db',
            'web',
            'db_floating_ip',
          ].map((name) => [name, 'CREATE_COMPLETE']),
        ),
      );
      const ids = Object.fromEntries(resources.map((r) => [r.resource_name, r.physical_resource_id]));

      // Nova: both servers ACTIVE as containers on their flavors, with the key pair.
      const servers = Object.fromEntries(
        (await openstackJson<any[]>(demo, 'server', 'list', '--long')).map((s) => [s.Name, s]),
      );
      expect(Object.keys(servers).sort()).toEqual(['heat-app-db', 'heat-app-web']);
      expect(servers['heat-app-db']).toMatchObject({
        ID: ids.db,
        Status: 'ACTIVE',
        'Flavor Name': 'c1.tiny',
      });
      expect(servers['heat-app-web']).toMatchObject({
        ID: ids.web,
        Status: 'ACTIVE',
        'Flavor Name': 'c1.tiny',
      });
      for (const id of [ids.db, ids.web]) {
        seen.add(id);
        expect(runtimeState(cloud, id)?.status).toBe('running');
        expect((await openstackJson(demo, 'server', 'show', id)).key_name).toBe('heat-app-key');
      }

      // Neutron: the router's gateway on the external network, its interface on the subnet's gateway IP,
      // and the floating IP on the database's port.
      const routerShown = await openstackJson(demo, 'router', 'show', 'heat-app-router');
      expect(routerShown.id).toBe(ids.router);
      const publicNet = await openstackJson(demo, 'network', 'show', 'public');
      expect(routerShown.external_gateway_info.network_id).toBe(publicNet.id);
      expect(ids.router_interface).toBe(`${ids.router}:subnet_id=${ids.subnet}`);
      const interfaces = await openstackJson<any[]>(demo, 'port', 'list', '--router', ids.router);
      expect(interfaces.map((p) => p['Fixed IP Addresses'])).toEqual([
        [{ subnet_id: ids.subnet, ip_address: '10.77.0.1' }],
      ]);
      const floating = await openstackJson(demo, 'floating', 'ip', 'show', ids.db_floating_ip);
      expect(floating).toMatchObject({
        port_id: ids.db_port,
        fixed_ip_address: '10.77.0.10',
        router_id: ids.router,
      });
      expect(floating.floating_ip_address).toMatch(/^172\.24\.4\.\d+$/);

      // Outputs.
      const outputs = (await openstackJson<any[]>(demo, 'stack', 'output', 'list', 'app')).map(
        (o) => o.output_key,
      );
      expect(outputs.sort()).toEqual([
        'boot_config',
        'db_address',
        'db_floating_ip',
        'gateway_network',
        'password',
        'web_networks',
      ]);
      const password = await output('password');
      expect(password).toMatch(/^[A-Za-z0-9]{20}$/);
      expect(await output('db_address')).toBe('10.77.0.10');
      expect(await output('db_floating_ip')).toBe(floating.floating_ip_address);
      expect(await output('gateway_network')).toBe(publicNet.id);
      const webAddresses = (await output('web_networks')) as string[];
      expect(webAddresses).toHaveLength(1);
      expect(webAddresses[0]).toMatch(/^10\.77\.0\.\d+$/);
      expect(load(await output('boot_config'))).toEqual({
        chpasswd: { expire: false, list: `root:${password}` },
      });

      // The guests booted with their user data: the database with the multi-part message holding the
      // cloud-config (the password in it) and the script, the web server with its script as a part.
      const dbUserData = userData(ids.db);
      expect(dbUserData).toMatch(/^Content-Type: multipart\/mixed; boundary=/);
      expect(dbUserData).toContain('Content-Type: text/cloud-config');
      expect(dbUserData).toContain(`list: root:${password}`);
      expect(dbUserData).toContain(
        'Content-Disposition: attachment; filename="ready.sh"\n\n#!/bin/sh\necho db ready',
      );
      const webUserData = userData(ids.web);
      expect(webUserData).toContain('Content-Type: text/x-shellscript');
      expect(webUserData).toContain('#!/bin/sh\necho web');

      // Resource show and the event list.
      const db = await resource('db');
      expect(db).toMatchObject({
        resource_type: 'OS::Nova::Server',
        physical_resource_id: ids.db,
        resource_status: 'CREATE_COMPLETE',
      });
      expect(db.attributes.first_address).toBe('10.77.0.10');
      const routerResource = await resource('router');
      expect(routerResource.attributes.external_gateway_info.network_id).toBe(publicNet.id);
      // The floating IP needs the router (its gateway is on the floating network) without naming it (Heat's
      // implicit dependencies), and the interface that reaches its port.
      expect(routerResource.required_by.sort()).toEqual(['db_floating_ip', 'router_interface']);
      expect((await resource('router_interface')).required_by.sort()).toEqual(['db_floating_ip', 'web']);
      const events = await openstackJson<any[]>(demo, 'stack', 'event', 'list', 'app');
      const order = events.map((e) => `${e.resource_name} ${e.resource_status}`);
      expect(order[0]).toBe('app CREATE_IN_PROGRESS');
      expect(order.at(-1)).toBe('app CREATE_COMPLETE');
      // Dependency order: the interface after the router and the subnet, the web server after the interface.
      const at = (entry: string) => order.indexOf(entry);
      expect(at('router_interface CREATE_IN_PROGRESS')).toBeGreaterThan(at('router CREATE_COMPLETE'));
      expect(at('router_interface CREATE_IN_PROGRESS')).toBeGreaterThan(at('subnet CREATE_COMPLETE'));
      expect(at('web CREATE_IN_PROGRESS')).toBeGreaterThan(at('router_interface CREATE_COMPLETE'));
      expect(at('db CREATE_IN_PROGRESS')).toBeGreaterThan(at('boot_parts CREATE_COMPLETE'));
      expect(at('db_floating_ip CREATE_IN_PROGRESS')).toBeGreaterThan(at('router_interface CREATE_COMPLETE'));
    });

    it('updates by diff: resizes the database in place and replaces the web server for its new image', async () => {
      const before = Object.fromEntries(
        (await openstackJson<any[]>(demo, 'stack', 'resource', 'list', 'app')).map((r) => [
          r.resource_name,
          r.physical_resource_id,
        ]),
      );
      const args = ['--existing', '--parameter', 'db_flavor=c1.small', '--parameter', 'web_image=busybox-v2'];
      const plan = await openstackJson(demo, 'stack', 'update', '--dry-run', ...args, 'app');
      const names = (kind: string) => (JSON.parse(plan[kind]) as any[]).map((c) => c.resource_name).sort();
      expect(names('updated')).toEqual(['db']);
      expect(names('replaced')).toEqual(['web']);

      const updated = await openstackWaitedJson(demo, 'stack', 'update', ...args, '--wait', 'app').catch(
        async (error: Error) => {
          // Where the database's resize was when the update did not end: its status, task and fault, and its
          // actions' events.
          const db = await openstack(demo, 'server', 'show', before.db, '-f', 'json');
          const actions = await openstackJson<any[]>(admin, 'server', 'event', 'list', before.db);
          // Each event's details (2.84) say why it failed.
          const last = await openstack(
            admin,
            ...['--os-compute-api-version', '2.84', 'server', 'event', 'show', before.db],
            actions[0]['Request ID'],
          );
          throw new Error(
            `${error.message}\ndb server: ${db.stdout}${db.stderr}\nlast action: ${last.stdout}`,
          );
        },
      );
      expect(updated.stack_status).toBe('UPDATE_COMPLETE');
      const after = Object.fromEntries(
        (await openstackJson<any[]>(demo, 'stack', 'resource', 'list', 'app')).map((r) => [
          r.resource_name,
          r.physical_resource_id,
        ]),
      );
      // Everything else kept its physical resource.
      for (const name of Object.keys(before).filter((n) => n !== 'web'))
        expect(after[name]).toBe(before[name]);

      // In place: the same database server, now on c1.small, its container's memory limit raised.
      const db = await openstackJson(demo, 'server', 'show', before.db);
      expect(db.status).toBe('ACTIVE');
      expect(JSON.stringify(db.flavor)).toContain('c1.small');
      expect(runtimeState(cloud, before.db)?.status).toBe('running');
      expect(Number(readTrimmed(cgroupPath('memory', before.db, 'memory.limit_in_bytes')))).toBe(
        1024 * 1024 * 1024,
      );

      // Replaced: a new web server from busybox-v2; the old one gone from Nova and from the host.
      expect(after.web).not.toBe(before.web);
      seen.add(after.web);
      const web = await openstackJson(demo, 'server', 'show', after.web);
      expect(web).toMatchObject({ name: 'heat-app-web', status: 'ACTIVE' });
      const image = await openstackJson(demo, 'image', 'show', 'busybox-v2');
      expect(JSON.stringify(web.image)).toContain(image.id);
      expect((await openstack(demo, 'server', 'show', before.web)).code).not.toBe(0);
      expect(runtimeState(cloud, before.web)).toBeUndefined();
      expect(runtimeState(cloud, after.web)?.status).toBe('running');

      const dbEvents = await openstackJson<any[]>(demo, 'stack', 'event', 'list', 'app', '--resource', 'db');
      expect(dbEvents.map((e) => e.resource_status)).toEqual([
        'CREATE_IN_PROGRESS',
        'CREATE_COMPLETE',
        'UPDATE_IN_PROGRESS',
        'UPDATE_COMPLETE',
      ]);
      const webEvents = (
        await openstackJson<any[]>(demo, 'stack', 'event', 'list', 'app', '--resource', 'web')
      ).map((e) => `${e.physical_resource_id} ${e.resource_status}`);
      // The new server is made before the old one goes (Heat's replacement order).
      expect(webEvents.indexOf(`${after.web} CREATE_COMPLETE`)).toBeLessThan(
        webEvents.indexOf(`${before.web} DELETE_IN_PROGRESS`),
      );
      expect(webEvents).toContain(`${before.web} DELETE_COMPLETE`);
      expect(await output('db_address')).toBe('10.77.0.10');
    });

    it('rolls a failed create back, leaving no network, router or server', async () => {
      await openstackJson(
        demo,
        'stack',
        'create',
        '-t',
        file('doomed.yaml', DOOMED),
        '--enable-rollback',
        'doomed',
      );
      let shown: any;
      const deadline = Date.now() + 60_000;
      do {
        await new Promise((r) => setTimeout(r, 500));
        shown = await openstackJson(demo, 'stack', 'show', 'doomed');
      } while (shown.stack_status.endsWith('IN_PROGRESS') && Date.now() < deadline);
      expect(shown).toMatchObject({
        stack_status: 'ROLLBACK_COMPLETE',
        stack_status_reason: 'Rollback completed',
      });
      const events = await openstackJson<any[]>(demo, 'stack', 'event', 'list', 'doomed');
      expect(
        events.find((e) => e.resource_name === 'server' && e.resource_status === 'CREATE_FAILED')
          ?.resource_status_reason,
      ).toBe('NotFound: resources.server: The Image (no-such-image) could not be found.');
      // Created, then deleted by the rollback.
      for (const name of ['net', 'subnet', 'router', 'router_interface'])
        expect(events.some((e) => e.resource_name === name && e.resource_status === 'DELETE_COMPLETE')).toBe(
          true,
        );
      expect((await openstack(demo, 'network', 'show', 'doomed-net')).code).not.toBe(0);
      expect((await openstack(demo, 'router', 'show', 'doomed-router')).code).not.toBe(0);
      expect((await openstackJson<any[]>(demo, 'server', 'list')).map((s) => s.Name).sort()).toEqual([
        'heat-app-db',
        'heat-app-web',
      ]);
      await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'doomed');
    });

    it('deletes the application, leaving no server, port, floating IP, router or network', async () => {
      await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'app');
      expect(await openstackJson<any[]>(demo, 'stack', 'list')).toEqual([]);
      expect(await openstackJson<any[]>(demo, 'server', 'list')).toEqual([]);
      expect(await openstackJson<any[]>(demo, 'port', 'list')).toEqual([]);
      expect(await openstackJson<any[]>(demo, 'floating', 'ip', 'list')).toEqual([]);
      expect(await openstackJson<any[]>(demo, 'router', 'list')).toEqual([]);
      expect((await openstackJson<any[]>(demo, 'network', 'list')).map((n) => n.Name).sort()).toEqual([
        'private',
        'public',
      ]);
      expect((await openstack(demo, 'keypair', 'show', 'heat-app-key')).code).not.toBe(0);
      // Nothing of the containers stays on the host, the replaced web server's included.
      expect(seen.size).toBe(3);
      expect(containerHostLeftovers(cloud, [...seen])).toEqual([]);
      // The router's gateway port and the floating IP's port went with them (the admin sees every port).
      const publicPorts = await openstackJson<any[]>(admin, 'port', 'list', '--network', 'public');
      expect(publicPorts).toEqual([]);
    });
  },
);
