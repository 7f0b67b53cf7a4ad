import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { CloudHandle, startCloud } from './support/cloud';
import { openstack, openstackJson, openstackOk, openstackSettledStack } from './support/openstack';

const TEMPLATE = `
heat_template_version: 2018-08-31
description: A network, a port, a key pair and a server
parameters:
  image:
    type: string
    constraints: [{custom_constraint: glance.image}]
  flavor:
    type: string
    default: m1.tiny
    constraints: [{custom_constraint: nova.flavor}]
  label: {type: string, default: one}
resources:
  password: {type: OS::Heat::RandomString, properties: {length: 16}}
  net: {type: OS::Neutron::Net, properties: {name: heat-net}}
  subnet:
    type: OS::Neutron::Subnet
    properties: {network: {get_resource: net}, cidr: 192.168.77.0/24}
  port:
    type: OS::Neutron::Port
    depends_on: subnet
    properties: {network: {get_resource: net}, name: {str_replace: {template: port-L, params: {L: {get_param: label}}}}}
  key: {type: OS::Nova::KeyPair, properties: {name: heat-key, save_private_key: true}}
  server:
    type: OS::Nova::Server
    properties:
      name: heat-server
      image: {get_param: image}
      flavor: {get_param: flavor}
      key_name: {get_resource: key}
      networks: [{port: {get_resource: port}}]
      metadata: {label: {get_param: label}}
outputs:
  address: {value: {get_attr: [server, first_address]}}
  password_length: {value: {str_split: ["", {get_attr: [password, value]}]}}
  port_ip: {value: {get_attr: [port, fixed_ips, 0, ip_address]}}
`;

/** `openstack stack create/update --wait -f json` prints the events it waited for before the JSON. */
async function waitedJson(env: Record<string, string>, ...args: string[]): Promise<any> {
  const result = await openstack(env, ...args, '-f', 'json');
  if (result.code !== 0) throw new Error(`openstack ${args.join(' ')} failed: ${result.stderr}`);
  return JSON.parse(result.stdout.slice(result.stdout.search(/^\{/m)));
}

/** Heat with the real client: stack create/list/show/update/delete over Nova and Neutron resources. */
describe('orchestration with /usr/bin/openstack', () => {
  let cloud: CloudHandle;
  let demo: Record<string, string>;
  let alt: Record<string, string>;
  let templateFile: string;

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 24200 });
    const admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
    demo = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-demo' };
    alt = { ...demo, OS_CLOUD: 'novum-admin' };
    const file = join(cloud.dataDir, 'cirros.raw');
    writeFileSync(file, Buffer.alloc(8192, 1));
    await openstackOk(
      admin,
      'image',
      'create',
      '--disk-format',
      'raw',
      '--container-format',
      'bare',
      '--public',
      '--file',
      file,
      'cirros-heat',
    );
    templateFile = join(cloud.dataDir, 'stack.yaml');
    writeFileSync(templateFile, TEMPLATE);
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('is in the catalog and lists its resource types and template versions', async () => {
    const catalog = await openstackJson<any[]>(demo, 'catalog', 'list');
    expect(catalog.find((entry) => entry.Type === 'orchestration')?.Name).toBe('heat');
    const types = (await openstackJson<any[]>(demo, 'orchestration', 'resource', 'type', 'list')).map(
      (t) => t['Resource Type'],
    );
    expect(types).toEqual(
      expect.arrayContaining(['OS::Nova::Server', 'OS::Neutron::Port', 'OS::Heat::RandomString']),
    );
    const versions = await openstackJson<any[]>(demo, 'orchestration', 'template', 'version', 'list');
    expect(versions.map((v) => v.Version)).toContain('heat_template_version.2021-04-16');
    // The engine of the all-in-one reports; only an admin may list the engines (Heat's service:index).
    const engines = await openstackJson<any[]>(alt, 'orchestration', 'service', 'list');
    expect(engines).toEqual([
      expect.objectContaining({ Binary: 'heat-engine', Topic: 'engine', Status: 'up', Hostname: hostname() }),
    ]);
    const refused = await openstack(demo, 'orchestration', 'service', 'list');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/403|denied/i);
  }, 60_000);

  it('validates templates, naming the path of an error', async () => {
    const valid = await openstackJson(demo, 'orchestration', 'template', 'validate', '-t', templateFile);
    expect(valid.Description).toBe('A network, a port, a key pair and a server');
    expect(Object.keys(valid.Parameters)).toEqual(['image', 'flavor', 'label']);
    const preview = await openstackJson(
      demo,
      'stack',
      'create',
      '--dry-run',
      '-t',
      templateFile,
      '--parameter',
      'image=cirros-heat',
      'dry',
    );
    expect(preview.stack_name).toBe('dry');
    const planned = typeof preview.resources === 'string' ? JSON.parse(preview.resources) : preview.resources;
    expect(planned.map((r: any) => r.resource_name).sort()).toEqual([
      'key',
      'net',
      'password',
      'port',
      'server',
      'subnet',
    ]);
    expect(planned.find((r: any) => r.resource_name === 'net').required_by.sort()).toEqual([
      'port',
      'subnet',
    ]);
    expect(await openstackJson<any[]>(demo, 'stack', 'list')).toEqual([]);
    const bad = join(cloud.dataDir, 'bad.yaml');
    writeFileSync(
      bad,
      'heat_template_version: 2018-08-31\nresources:\n  v:\n    type: OS::Heat::Value\n    properties:\n      value: {get_resource: nothere}\n',
    );
    const result = await openstack(demo, 'orchestration', 'template', 'validate', '-t', bad);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      'resources.v.properties: The specified reference "nothere" (in v) is incorrect.',
    );
  }, 60_000);

  it('creates a stack of Nova and Neutron resources, then updates and deletes it', async () => {
    const created = await waitedJson(
      demo,
      'stack',
      'create',
      '-t',
      templateFile,
      '--parameter',
      'image=cirros-heat',
      '--wait',
      'web',
    );
    expect(created.stack_status).toBe('CREATE_COMPLETE');
    const listed = await openstackJson<any[]>(demo, 'stack', 'list');
    expect(listed.map((s) => s['Stack Name'])).toEqual(['web']);

    const resources = await openstackJson<any[]>(demo, 'stack', 'resource', 'list', 'web');
    expect(resources.map((r) => r.resource_name).sort()).toEqual([
      'key',
      'net',
      'password',
      'port',
      'server',
      'subnet',
    ]);
    expect(resources.every((r) => r.resource_status === 'CREATE_COMPLETE')).toBe(true);
    const serverResource = await openstackJson(demo, 'stack', 'resource', 'show', 'web', 'server');
    const server = await openstackJson(demo, 'server', 'show', serverResource.physical_resource_id);
    expect(server).toMatchObject({ name: 'heat-server', status: 'ACTIVE', key_name: 'heat-key' });
    const portResource = resources.find((r) => r.resource_name === 'port');
    const port = await openstackJson(demo, 'port', 'show', portResource.physical_resource_id);
    expect(port).toMatchObject({ name: 'port-one', device_id: server.id });

    const outputs = await openstackJson<any[]>(demo, 'stack', 'output', 'list', 'web');
    expect(outputs.map((o) => o.output_key).sort()).toEqual(['address', 'password_length', 'port_ip']);
    const address = await openstackJson(demo, 'stack', 'output', 'show', 'web', 'address');
    expect(address.output_value).toMatch(/^192\.168\.77\.\d+$/);
    expect((await openstackJson(demo, 'stack', 'output', 'show', 'web', 'port_ip')).output_value).toBe(
      address.output_value,
    );
    expect(
      (await openstackJson(demo, 'stack', 'output', 'show', 'web', 'password_length')).output_value,
    ).toHaveLength(16);

    const events = await openstackJson<any[]>(demo, 'stack', 'event', 'list', 'web');
    expect(events.filter((e) => e.resource_name === 'server').map((e) => e.resource_status)).toEqual([
      'CREATE_IN_PROGRESS',
      'CREATE_COMPLETE',
    ]);
    expect(events.at(-1)).toMatchObject({ resource_name: 'web', resource_status: 'CREATE_COMPLETE' });
    const template = await openstackJson(demo, 'stack', 'template', 'show', 'web');
    expect(template.description).toBe('A network, a port, a key pair and a server');

    // Another project does not see the stack.
    const hidden = await openstack(alt, 'stack', 'show', 'web');
    expect(hidden.code).not.toBe(0);
    expect(hidden.stderr).toContain('Stack not found: web');

    // `stack update --dry-run` prints each kind of change as a JSON list.
    const plan = await openstackJson(
      demo,
      'stack',
      'update',
      '--dry-run',
      '--existing',
      '--parameter',
      'label=two',
      'web',
    );
    const names = (kind: string) => (JSON.parse(plan[kind]) as any[]).map((c) => c.resource_name).sort();
    expect(names('updated')).toEqual(['port', 'server']);
    expect(names('unchanged')).toEqual(['key', 'net', 'password', 'subnet']);
    expect(names('replaced')).toEqual([]);

    // Update in place: the label renames the port and changes the server's metadata; the flavor resizes it.
    const updated = await waitedJson(
      demo,
      'stack',
      'update',
      '--existing',
      '--parameter',
      'label=two',
      '--parameter',
      'flavor=m1.small',
      '--wait',
      'web',
    );
    expect(updated.stack_status).toBe('UPDATE_COMPLETE');
    expect((await openstackJson(demo, 'port', 'show', port.id)).name).toBe('port-two');
    const after = await openstackJson(demo, 'server', 'show', server.id);
    expect(after.id).toBe(server.id);
    expect(JSON.stringify(after.properties)).toContain('two');
    expect(after.flavor).toContain('m1.small');
    const updateEvents = await openstackJson<any[]>(
      demo,
      'stack',
      'event',
      'list',
      'web',
      '--resource',
      'server',
    );
    expect(updateEvents.map((e) => e.resource_status)).toEqual([
      'CREATE_IN_PROGRESS',
      'CREATE_COMPLETE',
      'UPDATE_IN_PROGRESS',
      'UPDATE_COMPLETE',
    ]);

    await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'web');
    expect(await openstackJson<any[]>(demo, 'stack', 'list')).toEqual([]);
    expect((await openstack(demo, 'server', 'show', server.id)).code).not.toBe(0);
    expect((await openstack(demo, 'port', 'show', port.id)).code).not.toBe(0);
    expect((await openstack(demo, 'network', 'show', 'heat-net')).code).not.toBe(0);
    expect((await openstack(demo, 'keypair', 'show', 'heat-key')).code).not.toBe(0);
  }, 240_000);

  it('suspends, resumes and checks a stack (openstack stack suspend/resume/check), its server through Nova', async () => {
    const paused = join(cloud.dataDir, 'paused.yaml');
    writeFileSync(
      paused,
      [
        'heat_template_version: 2021-04-16',
        'parameters: {image: {type: string}}',
        'resources:',
        '  secret: {type: OS::Heat::RandomString}',
        '  net: {type: OS::Neutron::Net, properties: {name: paused-net}}',
        '  subnet: {type: OS::Neutron::Subnet, properties: {network: {get_resource: net}, cidr: 192.168.78.0/24}}',
        '  server:',
        '    type: OS::Nova::Server',
        '    depends_on: subnet',
        '    properties: {name: paused-server, image: {get_param: image}, flavor: m1.tiny, networks: [{network: {get_resource: net}}]}',
        '',
      ].join('\n'),
    );
    const created = await waitedJson(
      demo,
      'stack',
      'create',
      '-t',
      paused,
      '--parameter',
      'image=cirros-heat',
      '--wait',
      'paused',
    );
    expect(created.stack_status).toBe('CREATE_COMPLETE');
    const serverId = (await openstackJson(demo, 'stack', 'resource', 'show', 'paused', 'server'))
      .physical_resource_id;
    const status = async () => {
      const shown = await openstackJson(demo, 'stack', 'show', 'paused');
      return `${shown.stack_status} ${shown.stack_status_reason}`;
    };
    const resourceStatuses = async () =>
      Object.fromEntries(
        (await openstackJson<any[]>(demo, 'stack', 'resource', 'list', 'paused')).map((r) => [
          r.resource_name,
          r.resource_status,
        ]),
      );

    await openstackOk(demo, 'stack', 'check', '--wait', 'paused');
    expect(await status()).toBe(
      "CHECK_COMPLETE Stack CHECK completed successfully. 'CHECK' not fully supported (see resources)",
    );
    const checked = await openstackJson(demo, 'stack', 'resource', 'show', 'paused', 'secret');
    expect(checked.resource_status_reason).toBe('CHECK not supported for OS::Heat::RandomString');

    await openstackOk(demo, 'stack', 'suspend', '--wait', 'paused');
    expect(await status()).toBe('SUSPEND_COMPLETE Stack SUSPEND completed successfully');
    expect((await openstackJson(demo, 'server', 'show', serverId)).status).toBe('SUSPENDED');
    expect(await resourceStatuses()).toEqual({
      secret: 'SUSPEND_COMPLETE',
      net: 'SUSPEND_COMPLETE',
      subnet: 'SUSPEND_COMPLETE',
      server: 'SUSPEND_COMPLETE',
    });
    // Reverse dependency order: the server before the subnet it needs.
    const events = await openstackJson<any[]>(demo, 'stack', 'event', 'list', 'paused');
    const at = (name: string, status: string) =>
      events.findIndex((e) => e.resource_name === name && e.resource_status === status);
    expect(at('server', 'SUSPEND_COMPLETE')).toBeLessThan(at('subnet', 'SUSPEND_IN_PROGRESS'));

    await openstackOk(demo, 'stack', 'resume', '--wait', 'paused');
    expect(await status()).toBe('RESUME_COMPLETE Stack RESUME completed successfully');
    expect((await openstackJson(demo, 'server', 'show', serverId)).status).toBe('ACTIVE');

    // A suspended server fails the check (Heat expects ACTIVE), and `--wait` reports the failure.
    await openstackOk(demo, 'stack', 'suspend', '--wait', 'paused');
    const failedCheck = await openstack(demo, 'stack', 'check', '--wait', 'paused');
    expect(failedCheck.code).not.toBe(0);
    expect(await status()).toBe(
      `CHECK_FAILED Resource CHECK failed: ["Error: resources.server: 'status': expected 'ACTIVE', got 'SUSPENDED'"].` +
        " 'CHECK' not fully supported (see resources)",
    );

    // The raw API: Heat's status codes and fault bodies.
    const issued = (await openstackJson(demo, 'token', 'issue')) as { id: string; project_id: string };
    const base = cloud.services.orchestration.replace('$(project_id)s', issued.project_id);
    const stackId = (await openstackJson(demo, 'stack', 'show', 'paused')).id;
    const post = (url: string, body: unknown, token = issued.id) =>
      fetch(url, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'x-auth-token': token, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const byName = await post(`${base}/stacks/paused/actions`, { check: null });
    expect(byName.status).toBe(302);
    expect(byName.headers.get('location')).toMatch(new RegExp(`/stacks/paused/${stackId}/actions$`));
    const cancel = await post(`${base}/stacks/paused/${stackId}/actions`, { cancel_update: null });
    expect(cancel.status).toBe(400);
    expect(await cancel.json()).toMatchObject({
      code: 400,
      title: 'Bad Request',
      error: {
        type: 'NotSupported',
        message: 'Cancelling update when stack is CHECK_FAILED is not supported.',
      },
    });
    const none = await post(`${base}/stacks/paused/${stackId}/actions`, {});
    expect([none.status, ((await none.json()) as any).error.message]).toEqual([400, 'No action specified']);
    const tokenAlt = (await openstackJson(alt, 'token', 'issue')) as { id: string; project_id: string };
    const altBase = cloud.services.orchestration.replace('$(project_id)s', tokenAlt.project_id);
    const foreign = await post(`${altBase}/stacks/paused/${stackId}/actions`, { suspend: null }, tokenAlt.id);
    expect(foreign.status).toBe(404);
    expect(((await foreign.json()) as any).error.type).toBe('EntityNotFound');
    const resumed = await post(`${base}/stacks/paused/${stackId}/actions`, { resume: null });
    expect([resumed.status, await resumed.text()]).toEqual([200, 'null']);

    await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'paused');
    expect((await openstack(demo, 'server', 'show', serverId)).code).not.toBe(0);
  }, 240_000);

  it('cancels a running update (openstack stack cancel), which rolls back', async () => {
    const slow = (value: string, wait: number) =>
      `heat_template_version: 2021-04-16\nresources:\n  first: {type: OS::Heat::TestResource, properties: {value: ${value}, wait_secs: ${wait}}}\n  second: {type: OS::Heat::TestResource, depends_on: first, properties: {value: ${value}}}\n`;
    const before = join(cloud.dataDir, 'slow-a.yaml');
    const after = join(cloud.dataDir, 'slow-b.yaml');
    writeFileSync(before, slow('a', 0));
    writeFileSync(after, slow('b', 8));
    await waitedJson(demo, 'stack', 'create', '-t', before, '--wait', 'slow');
    await openstackOk(demo, 'stack', 'update', '-t', after, 'slow');
    const cancelled = await openstack(demo, 'stack', 'cancel', 'slow');
    expect(cancelled.code).toBe(0);
    const shown = await openstackSettledStack(demo, 'slow');
    expect(shown.stack_status).toBe('ROLLBACK_COMPLETE');
    const events = await openstackJson<any[]>(demo, 'stack', 'event', 'list', 'slow');
    expect(
      events.find((e) => e.resource_name === 'slow' && e.resource_status === 'UPDATE_FAILED')
        ?.resource_status_reason,
    ).toBe('Operation cancelled');
    const second = await openstackJson(demo, 'stack', 'resource', 'show', 'slow', 'second');
    const attributes =
      typeof second.attributes === 'string' ? JSON.parse(second.attributes) : second.attributes;
    expect(attributes.output).toBe('a');
    const refused = await openstack(demo, 'stack', 'cancel', 'slow');
    expect(refused.stderr).toContain('not in cancelable state');
    await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'slow');
  }, 120_000);

  it('checks custom constraints at create and rolls a failed create back', async () => {
    const refused = await openstack(
      demo,
      'stack',
      'create',
      '-t',
      templateFile,
      '--parameter',
      'image=cirros-heat',
      '--parameter',
      'flavor=m1.nope',
      'nope',
    );
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(
      "Parameter 'flavor' is invalid: Error validating value 'm1.nope': The Flavor ID (m1.nope) could not be found.",
    );
    const failing = join(cloud.dataDir, 'failing.yaml');
    writeFileSync(
      failing,
      'heat_template_version: 2021-04-16\nresources:\n  net: {type: OS::Neutron::Net, properties: {name: doomed-net}}\n  boom:\n    type: OS::Heat::TestResource\n    depends_on: net\n    properties: {fail: true}\n',
    );
    await openstackJson(demo, 'stack', 'create', '-t', failing, '--enable-rollback', 'doomed');
    const shown = await openstackSettledStack(demo, 'doomed');
    expect(shown).toMatchObject({
      stack_status: 'ROLLBACK_COMPLETE',
      stack_status_reason: 'Rollback completed',
    });
    const events = await openstackJson<any[]>(demo, 'stack', 'event', 'list', 'doomed');
    expect(
      events.find((e) => e.resource_name === 'boom' && e.resource_status === 'CREATE_FAILED')
        ?.resource_status_reason,
    ).toMatch(/^Error: resources\.boom: Test Resource failed /);
    expect((await openstack(demo, 'network', 'show', 'doomed-net')).code).not.toBe(0);
    await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'doomed');
  }, 120_000);

  it('abandons a stack and adopts its resources into another (openstack stack abandon/adopt)', async () => {
    const file = join(cloud.dataDir, 'movable.yaml');
    writeFileSync(
      file,
      [
        'heat_template_version: 2021-04-16',
        'resources:',
        '  net: {type: OS::Neutron::Net, properties: {name: movable-net}}',
        '  secret: {type: OS::Heat::RandomString, properties: {length: 12}}',
        'outputs:',
        '  secret: {value: {get_attr: [secret, value]}}',
        '',
      ].join('\n'),
    );
    await waitedJson(demo, 'stack', 'create', '-t', file, '--wait', 'movable');
    const netId = (await openstackJson(demo, 'stack', 'resource', 'show', 'movable', 'net'))
      .physical_resource_id;
    const secret = (await openstackJson(demo, 'stack', 'output', 'show', 'movable', 'secret')).output_value;
    const exported = await openstackJson(demo, 'stack', 'export', 'movable');
    expect(exported.resources.net.resource_id).toBe(netId);
    expect((await openstackJson(demo, 'stack', 'show', 'movable')).stack_status).toBe('CREATE_COMPLETE');

    const abandonFile = join(cloud.dataDir, 'movable-abandon.json');
    await openstackOk(demo, 'stack', 'abandon', '--output-file', abandonFile, 'movable');
    const data = JSON.parse(readFileSync(abandonFile, 'utf8'));
    expect(data).toMatchObject({ name: 'movable', action: 'CREATE', status: 'COMPLETE' });
    expect(data.resources.net).toMatchObject({
      resource_id: netId,
      type: 'OS::Neutron::Net',
      action: 'CREATE',
      status: 'COMPLETE',
    });
    expect(data.resources.secret.resource_data.value).toBe(secret);
    for (let i = 0; i < 60; i++) {
      if ((await openstack(demo, 'stack', 'show', 'movable')).code !== 0) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect((await openstack(demo, 'stack', 'show', 'movable')).code).not.toBe(0);
    expect((await openstackJson(demo, 'network', 'show', netId)).name).toBe('movable-net');

    const adopted = await waitedJson(demo, 'stack', 'adopt', '--adopt-file', abandonFile, '--wait', 'moved');
    expect(adopted.stack_status).toBe('ADOPT_COMPLETE');
    const net = await openstackJson(demo, 'stack', 'resource', 'show', 'moved', 'net');
    expect(net).toMatchObject({ physical_resource_id: netId, resource_status: 'ADOPT_COMPLETE' });
    expect((await openstackJson(demo, 'stack', 'output', 'show', 'moved', 'secret')).output_value).toBe(
      secret,
    );
    const nets = await openstackJson<any[]>(demo, 'network', 'list', '--name', 'movable-net');
    expect(nets.map((n) => n.ID)).toEqual([netId]);
    await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'moved');
    expect((await openstack(demo, 'network', 'show', netId)).code).not.toBe(0);
  }, 120_000);

  it('snapshots a stack and restores it (openstack stack snapshot create/list/show/restore/delete)', async () => {
    const file = join(cloud.dataDir, 'snapshotted.yaml');
    writeFileSync(
      file,
      [
        'heat_template_version: 2021-04-16',
        'parameters:',
        '  length: {type: number, default: 8}',
        'resources:',
        '  net: {type: OS::Neutron::Net}',
        '  subnet: {type: OS::Neutron::Subnet, properties: {network: {get_resource: net}, cidr: 192.168.79.0/24}}',
        '  server:',
        '    type: OS::Nova::Server',
        '    properties: {name: snap-server, image: cirros-heat, flavor: m1.tiny, networks: [{network: {get_resource: net}}]}',
        '  secret: {type: OS::Heat::RandomString, properties: {length: {get_param: length}}}',
        '',
      ].join('\n'),
    );
    await waitedJson(demo, 'stack', 'create', '-t', file, '--wait', 'snapped');
    const serverId = (await openstackJson(demo, 'stack', 'resource', 'show', 'snapped', 'server'))
      .physical_resource_id;
    const created = await openstackJson(demo, 'stack', 'snapshot', 'create', '--name', 'first', 'snapped');
    expect(created).toMatchObject({ name: 'first', status: 'IN_PROGRESS' });
    expect((await openstackSettledStack(demo, 'snapped', 60_000)).stack_status).toBe('SNAPSHOT_COMPLETE');
    const listed = await openstackJson<any[]>(demo, 'stack', 'snapshot', 'list', 'snapped');
    expect(listed).toEqual([
      expect.objectContaining({
        id: created.ID,
        name: 'first',
        status: 'COMPLETE',
        status_reason: 'Stack SNAPSHOT completed successfully',
      }),
    ]);
    const shown = (await openstackJson(demo, 'stack', 'snapshot', 'show', 'snapped', created.ID)).snapshot;
    expect(shown.data).toMatchObject({ name: 'snapped', action: 'SNAPSHOT', status: 'COMPLETE' });
    const imageId = shown.data.resources.server.resource_data.snapshot_image_id;
    expect(shown.data.resources.server.resource_id).toBe(serverId);
    expect(await openstackJson(demo, 'image', 'show', imageId)).toMatchObject({ status: 'active' });

    await waitedJson(demo, 'stack', 'update', '-t', file, '--parameter', 'length=12', '--wait', 'snapped');
    await openstackOk(demo, 'stack', 'snapshot', 'restore', 'snapped', created.ID);
    const restored = await openstackSettledStack(demo, 'snapped', 90_000);
    expect(restored).toMatchObject({
      stack_status: 'RESTORE_COMPLETE',
      stack_status_reason: 'Stack RESTORE completed successfully',
    });
    const newServerId = (await openstackJson(demo, 'stack', 'resource', 'show', 'snapped', 'server'))
      .physical_resource_id;
    expect(newServerId).not.toBe(serverId);
    expect(JSON.stringify((await openstackJson(demo, 'server', 'show', newServerId)).image)).toContain(
      imageId,
    );
    expect((await openstack(demo, 'server', 'show', serverId)).code).not.toBe(0);
    const secret = await openstackJson(demo, 'stack', 'resource', 'show', 'snapped', 'secret');
    const attributes =
      typeof secret.attributes === 'string' ? JSON.parse(secret.attributes) : secret.attributes;
    expect(attributes.value).toHaveLength(8);

    const missing = await openstack(demo, 'stack', 'snapshot', 'show', 'snapped', 'nope');
    expect(missing.stderr).toContain('Snapshot ID <nope> not found for stack <snapped>');
    await openstackOk(demo, 'stack', 'snapshot', 'delete', '--yes', 'snapped', created.ID);
    expect(await openstackJson<any[]>(demo, 'stack', 'snapshot', 'list', 'snapped')).toEqual([]);
    expect((await openstack(demo, 'image', 'show', imageId)).code).not.toBe(0);
    await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'snapped');
  }, 240_000);

  it('rolls a ResourceGroup of servers over in batches (update_policy rolling_update)', async () => {
    const template = (suffix: string) =>
      [
        'heat_template_version: 2021-04-16',
        'resources:',
        '  net: {type: OS::Neutron::Net}',
        '  subnet: {type: OS::Neutron::Subnet, properties: {network: {get_resource: net}, cidr: 192.168.81.0/24}}',
        '  group:',
        '    type: OS::Heat::ResourceGroup',
        '    depends_on: subnet',
        '    update_policy: {rolling_update: {max_batch_size: 1, pause_time: 1}}',
        '    properties:',
        '      count: 2',
        '      resource_def:',
        '        type: OS::Nova::Server',
        `        properties: {name: roll-%index%-${suffix}, image: cirros-heat, flavor: m1.tiny, networks: [{network: {get_resource: net}}]}`,
        '',
      ].join('\n');
    const file = join(cloud.dataDir, 'rolling.yaml');
    writeFileSync(file, template('a'));
    await waitedJson(demo, 'stack', 'create', '-t', file, '--wait', 'rolling');
    const nestedId = (await openstackJson(demo, 'stack', 'resource', 'show', 'rolling', 'group'))
      .physical_resource_id;
    const before = await openstackJson<any[]>(demo, 'stack', 'event', 'list', nestedId);
    writeFileSync(file, template('b'));
    const updated = await waitedJson(demo, 'stack', 'update', '-t', file, '--wait', 'rolling');
    expect(updated.stack_status).toBe('UPDATE_COMPLETE');
    const events = (await openstackJson<any[]>(demo, 'stack', 'event', 'list', nestedId))
      .slice(before.length)
      .map((e) => `${e.resource_name} ${e.resource_status}`);
    const nestedName = events
      .find((e) => e.endsWith(' UPDATE_IN_PROGRESS') && !/^\d /.test(e))
      ?.split(' ')[0];
    // One nested update per batch; member 1 done before member 0 starts.
    expect(events.filter((e) => e === `${nestedName} UPDATE_IN_PROGRESS`)).toHaveLength(2);
    expect(events.indexOf('1 UPDATE_COMPLETE')).toBeLessThan(events.indexOf('0 UPDATE_IN_PROGRESS'));
    const names = (await openstackJson<any[]>(demo, 'server', 'list', '--name', '^roll-')).map((s) => s.Name);
    expect(names.sort()).toEqual(['roll-0-b', 'roll-1-b']);
    await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'rolling');
  }, 240_000);

  it("answers bad templates and other projects' stacks with Heat's fault body", async () => {
    const issued = (await openstackJson(demo, 'token', 'issue')) as { id: string; project_id: string };
    const token = issued.id;
    const tokenAlt = (await openstackJson(alt, 'token', 'issue')) as { id: string; project_id: string };
    const base = cloud.services.orchestration.replace('$(project_id)s', issued.project_id);
    const call = (method: string, url: string, auth: string, body?: unknown) =>
      fetch(url, {
        method,
        redirect: 'manual',
        headers: { 'x-auth-token': auth, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const bad = await call('POST', `${base}/stacks`, token, {
      stack_name: 'bad',
      template: { heat_template_version: '2012-01-01', resources: {} },
    });
    expect(bad.status).toBe(400);
    const fault = (await bad.json()) as any;
    expect(fault).toMatchObject({
      code: 400,
      title: 'Bad Request',
      error: { type: 'StackValidationFailed', traceback: null },
    });
    expect(fault.error.message).toMatch(
      /^The template version is invalid: "heat_template_version: 2012-01-01"/,
    );
    expect(fault.explanation).toContain('malformed');

    const made = await call('POST', `${base}/stacks`, token, {
      stack_name: 'mine',
      template: {
        heat_template_version: '2021-04-16',
        resources: { v: { type: 'OS::Heat::Value', properties: { value: 1 } } },
      },
    });
    expect(made.status).toBe(201);
    const { stack } = (await made.json()) as any;
    expect(made.headers.get('location')).toBe(stack.links[0].href);
    const byName = await call('GET', `${base}/stacks/mine`, token);
    expect(byName.status).toBe(302);
    expect(byName.headers.get('location')).toMatch(new RegExp(`/stacks/mine/${stack.id}$`));
    const altBase = cloud.services.orchestration.replace('$(project_id)s', tokenAlt.project_id);
    const foreign = await call('GET', `${altBase}/stacks/mine`, tokenAlt.id);
    expect(foreign.status).toBe(404);
    expect(((await foreign.json()) as any).error).toMatchObject({
      message: 'The Stack (mine) could not be found.',
    });
    const foreignAbandon = await call('DELETE', `${altBase}/stacks/mine/${stack.id}/abandon`, tokenAlt.id);
    expect(foreignAbandon.status).toBe(404);
    expect(((await foreignAbandon.json()) as any).error.type).toBe('EntityNotFound');
    const foreignSnapshot = await call(
      'POST',
      `${altBase}/stacks/mine/${stack.id}/snapshots`,
      tokenAlt.id,
      {},
    );
    expect(foreignSnapshot.status).toBe(404);
    const unknownSnapshot = await call('GET', `${base}/stacks/mine/${stack.id}/snapshots/nope`, token);
    expect(unknownSnapshot.status).toBe(404);
    expect(((await unknownSnapshot.json()) as any).error).toMatchObject({
      type: 'NotFound',
      message: 'Snapshot with id nope not found',
    });
    const badAdopt = await call('POST', `${base}/stacks`, token, {
      stack_name: 'adopted',
      adopt_stack_data: '{"resources": {}}',
    });
    expect(badAdopt.status).toBe(400);
    expect(((await badAdopt.json()) as any).error.message).toBe("Invalid adopt data: 'template'");
    const duplicate = await call('POST', `${base}/stacks`, token, {
      stack_name: 'mine',
      template: { heat_template_version: '2021-04-16' },
    });
    expect(duplicate.status).toBe(409);
    expect(await call('DELETE', `${base}/stacks/mine/${stack.id}`, token).then((r) => r.status)).toBe(204);
  }, 60_000);
});
