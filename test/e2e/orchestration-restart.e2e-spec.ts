import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudHandle, startCloud } from './support/cloud';
import { openstack, openstackJson, openstackOk } from './support/openstack';

/** Cloud resources that complete at once, then TestResources that take minutes, then one that waits for them. */
const TEMPLATE = `
heat_template_version: 2021-04-16
parameters:
  image: {type: string}
resources:
  net: {type: OS::Neutron::Net, properties: {name: restart-net}}
  subnet:
    type: OS::Neutron::Subnet
    properties: {network: {get_resource: net}, cidr: 192.168.91.0/24}
  port:
    type: OS::Neutron::Port
    depends_on: subnet
    properties: {network: {get_resource: net}}
  key: {type: OS::Nova::KeyPair, properties: {name: restart-key}}
  server:
    type: OS::Nova::Server
    properties:
      name: restart-server
      image: {get_param: image}
      flavor: m1.tiny
      key_name: {get_resource: key}
      networks: [{port: {get_resource: port}}]
  secret: {type: OS::Heat::RandomString, properties: {length: 12}}
  slow_a:
    type: OS::Heat::TestResource
    depends_on: [server, secret]
    properties: {value: a, action_wait_secs: {create: 600}}
  slow_b:
    type: OS::Heat::TestResource
    depends_on: [server, secret]
    properties: {value: b, action_wait_secs: {create: 600}}
  last:
    type: OS::Heat::TestResource
    depends_on: [slow_a, slow_b]
`;

interface ResourceRow {
  resource_name: string;
  resource_status: string;
  physical_resource_id: string;
}

/**
 * The whole cloud killed (SIGKILL) while a stack is being created, then started again: the stack ends
 * CREATE_FAILED with Heat's reason, what was in progress FAILED, what was made still tracked, and
 * `stack delete` removes it all, cloud resources made before the kill included.
 */
describe('orchestration across a killed cloud', () => {
  let cloud: CloudHandle;
  let demo: Record<string, string>;
  let templateFile: string;

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 26400 });
    const admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
    demo = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-demo' };
    const file = join(cloud.dataDir, 'restart.raw');
    writeFileSync(file, Buffer.alloc(4096, 1));
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
      'restart-image',
    );
    templateFile = join(cloud.dataDir, 'restart.yaml');
    writeFileSync(templateFile, TEMPLATE);
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  const resources = async (): Promise<Record<string, ResourceRow>> =>
    Object.fromEntries(
      (await openstackJson<ResourceRow[]>(demo, 'stack', 'resource', 'list', '--long', 'restart')).map(
        (row) => [row.resource_name, row],
      ),
    );

  it('kill -9 mid-create: the stack is FAILED with a reason after the restart, and delete removes everything', async () => {
    await openstackOk(
      demo,
      'stack',
      'create',
      '-t',
      templateFile,
      '--parameter',
      'image=restart-image',
      'restart',
    );
    let before: Record<string, ResourceRow> = {};
    const deadline = Date.now() + 90_000;
    for (;;) {
      before = await resources();
      if (
        before.slow_a?.resource_status === 'CREATE_IN_PROGRESS' &&
        before.slow_b?.resource_status === 'CREATE_IN_PROGRESS'
      )
        break;
      if (Date.now() > deadline)
        throw new Error(`the slow resources never started: ${JSON.stringify(before)}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    for (const name of ['net', 'subnet', 'port', 'key', 'server', 'secret'])
      expect(`${name} ${before[name].resource_status}`).toBe(`${name} CREATE_COMPLETE`);
    const serverId = before.server.physical_resource_id;
    const networkId = before.net.physical_resource_id;
    const portId = before.port.physical_resource_id;

    await cloud.stop('SIGKILL');
    await cloud.start();

    const stack = await openstackJson(demo, 'stack', 'show', 'restart');
    expect(stack.stack_status).toBe('CREATE_FAILED');
    expect(stack.stack_status_reason).toBe('Engine went down during stack CREATE');
    const after = await resources();
    for (const name of ['slow_a', 'slow_b']) {
      expect(after[name].resource_status).toBe('CREATE_FAILED');
      const shown = await openstackJson(demo, 'stack', 'resource', 'show', 'restart', name);
      expect(shown.resource_status_reason).toBe('Engine went down during resource CREATE');
    }
    expect(after.last.resource_status).toBe('INIT_COMPLETE');
    expect(after.server).toMatchObject({
      resource_status: 'CREATE_COMPLETE',
      physical_resource_id: serverId,
    });
    // What the stack made before the kill is still there, and still the stack's.
    expect((await openstackJson(demo, 'server', 'show', serverId)).name).toBe('restart-server');
    expect((await openstackJson(demo, 'network', 'show', networkId)).name).toBe('restart-net');
    // The last event is the reset of the stack by the restarted engine.
    const events = await openstackJson<{ resource_name: string; resource_status: string }[]>(
      demo,
      'stack',
      'event',
      'list',
      'restart',
    );
    expect(events.at(-1)).toMatchObject({ resource_name: 'restart', resource_status: 'CREATE_FAILED' });

    const deleted = await openstack(demo, 'stack', 'delete', '--yes', '--wait', 'restart');
    expect(deleted.stderr).toBe('');
    expect(deleted.code).toBe(0);
    expect((await openstack(demo, 'stack', 'show', 'restart')).code).not.toBe(0);
    expect((await openstack(demo, 'server', 'show', serverId)).code).not.toBe(0);
    expect((await openstack(demo, 'port', 'show', portId)).code).not.toBe(0);
    expect((await openstack(demo, 'network', 'show', networkId)).code).not.toBe(0);
    expect((await openstack(demo, 'keypair', 'show', 'restart-key')).code).not.toBe(0);
    expect(await openstackJson(demo, 'server', 'list')).toEqual([]);
  }, 300_000);
});
