import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudHandle, startCloud } from './support/cloud';
import { openstack, openstackJson, openstackOk } from './support/openstack';

const MAIN = `
heat_template_version: 2018-08-31
description: A group, a template resource and a Stack
resources:
  group:
    type: OS::Heat::ResourceGroup
    properties:
      count: 10
      resource_def:
        type: OS::Heat::RandomString
        properties: {length: 8, salt: member-%index%}
  thing:
    type: My::Thing
    properties: {length: 6}
  inner:
    type: OS::Heat::Stack
    properties:
      template: {get_file: inner.yaml}
      parameters: {word: hello}
outputs:
  values: {value: {get_attr: [group, value]}}
  refs: {value: {get_attr: [group, refs]}}
  fifth: {value: {get_attr: [group, resource.5.value]}}
  thing_value: {value: {get_attr: [thing, value]}}
  thing_leaf: {value: {get_attr: [thing, leaf]}}
  greeting: {value: {get_attr: [inner, outputs, greeting]}}
`;

const THING = `
heat_template_version: 2018-08-31
parameters:
  length: {type: number}
resources:
  secret:
    type: OS::Heat::RandomString
    properties: {length: {get_param: length}}
  leaf:
    type: leaf.yaml
    properties: {text: {get_attr: [secret, value]}}
outputs:
  value: {value: {get_attr: [secret, value]}}
  leaf: {value: {get_attr: [leaf, echoed]}}
`;

const LEAF = `
heat_template_version: 2018-08-31
parameters:
  text: {type: string}
resources:
  echo:
    type: OS::Heat::Value
    properties: {value: {get_param: text}}
outputs:
  echoed: {value: {get_attr: [echo, value]}}
`;

const INNER = `
heat_template_version: 2018-08-31
parameters:
  word: {type: string}
resources:
  greeting:
    type: OS::Heat::Value
    properties: {value: {str_replace: {template: W world, params: {W: {get_param: word}}}}}
outputs:
  greeting: {value: {get_attr: [greeting, value]}}
`;

/** `openstack stack create/update --wait -f json` prints the events it waited for before the JSON. */
async function waitedJson(env: Record<string, string>, ...args: string[]): Promise<any> {
  const result = await openstack(env, ...args, '-f', 'json');
  if (result.code !== 0) throw new Error(`openstack ${args.join(' ')} failed: ${result.stderr}`);
  return JSON.parse(result.stdout.slice(result.stdout.search(/^\{/m)));
}

/** Nested stacks with the real client: ResourceGroup, a template resource from `-e`, OS::Heat::Stack. */
describe('orchestration nested stacks with /usr/bin/openstack', () => {
  let cloud: CloudHandle;
  let demo: Record<string, string>;
  let main: string;
  let env: string;

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 25000 });
    demo = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-demo' };
    main = join(cloud.dataDir, 'main.yaml');
    env = join(cloud.dataDir, 'env.yaml');
    writeFileSync(main, MAIN);
    writeFileSync(join(cloud.dataDir, 'thing.yaml'), THING);
    writeFileSync(join(cloud.dataDir, 'leaf.yaml'), LEAF);
    writeFileSync(join(cloud.dataDir, 'inner.yaml'), INNER);
    writeFileSync(env, 'resource_registry:\n  My::Thing: thing.yaml\n');
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('lists the nested resource types', async () => {
    const types = (await openstackJson<any[]>(demo, 'orchestration', 'resource', 'type', 'list')).map(
      (t) => t['Resource Type'],
    );
    expect(types).toEqual(expect.arrayContaining(['OS::Heat::ResourceGroup', 'OS::Heat::Stack']));
  }, 60_000);

  it('creates, lists, grows and deletes nested stacks', async () => {
    const created = await waitedJson(demo, 'stack', 'create', '-t', main, '-e', env, '--wait', 'nest');
    expect(created.stack_status).toBe('CREATE_COMPLETE');

    const output = async (key: string) =>
      (await openstackJson(demo, 'stack', 'output', 'show', 'nest', key)).output_value;
    const values = await output('values');
    expect(values).toHaveLength(10);
    expect(values.every((v: string) => /^[A-Za-z0-9]{8}$/.test(v))).toBe(true);
    expect(await output('fifth')).toBe(values[5]);
    expect(await output('refs')).toEqual(values);
    const thingValue = await output('thing_value');
    expect(thingValue).toMatch(/^[A-Za-z0-9]{6}$/);
    expect(await output('thing_leaf')).toBe(thingValue);
    expect(await output('greeting')).toBe('hello world');

    // Only the top stack without --nested; with it, the four nested stacks and their parents.
    const top = await openstackJson<any[]>(demo, 'stack', 'list');
    expect(top.map((s) => s['Stack Name'])).toEqual(['nest']);
    const all = await openstackJson<any[]>(demo, 'stack', 'list', '--nested');
    const byName = (prefix: string) =>
      all.find((s) => new RegExp(`^${prefix}[0-9a-f]{12}$`).test(s['Stack Name']));
    expect(all).toHaveLength(5);
    const parent = byName('nest-group-');
    expect(parent.Parent).toBe(top[0].ID);
    expect(byName('nest-thing-').Parent).toBe(top[0].ID);
    expect(byName('nest-inner-').Parent).toBe(top[0].ID);
    const leafStack = all.find((s) => /^nest-thing-[0-9a-f]{12}-leaf-/.test(s['Stack Name']));
    expect(leafStack.Parent).toBe(byName('nest-thing-').ID);

    const flat = await openstackJson<any[]>(demo, 'stack', 'resource', 'list', 'nest');
    expect(flat.map((r) => r.resource_name).sort()).toEqual(['group', 'inner', 'thing']);
    const group = flat.find((r) => r.resource_name === 'group');
    expect(group.physical_resource_id).toBe(parent.ID);
    expect(group.resource_type).toBe('OS::Heat::ResourceGroup');
    expect(flat.find((r) => r.resource_name === 'thing').resource_type).toBe('My::Thing');

    const deep = await openstackJson<any[]>(demo, 'stack', 'resource', 'list', '--nested-depth', '2', 'nest');
    const members = deep.filter((r) => r.stack_name === parent['Stack Name']);
    expect(members.map((r) => r.resource_name).sort((a, b) => a - b)).toEqual([
      '0',
      '1',
      '2',
      '3',
      '4',
      '5',
      '6',
      '7',
      '8',
      '9',
    ]);
    expect(members.every((r) => r.resource_status === 'CREATE_COMPLETE')).toBe(true);
    expect(deep.find((r) => r.resource_name === 'echo')?.stack_name).toBe(leafStack['Stack Name']);
    expect(deep.find((r) => r.resource_name === 'greeting')?.stack_name).toMatch(/^nest-inner-/);
    const shallow = await openstackJson<any[]>(
      demo,
      'stack',
      'resource',
      'list',
      '--nested-depth',
      '1',
      'nest',
    );
    expect(shallow.find((r) => r.resource_name === 'echo')).toBeUndefined();
    expect(shallow.find((r) => r.resource_name === 'leaf')).toBeDefined();

    // Growing the group keeps the first ten members and adds two.
    writeFileSync(main, MAIN.replace('count: 10', 'count: 12'));
    const bigger = await waitedJson(demo, 'stack', 'update', '-t', main, '-e', env, '--wait', 'nest');
    expect(bigger.stack_status).toBe('UPDATE_COMPLETE');
    const twelve = await output('values');
    expect(twelve).toHaveLength(12);
    expect(twelve.slice(0, 10)).toEqual(values);

    await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'nest');
    expect(await openstackJson<any[]>(demo, 'stack', 'list', '--nested')).toEqual([]);
  }, 240_000);

  it('fails a stack whose nested resource fails, saying where', async () => {
    const failing = join(cloud.dataDir, 'failing.yaml');
    writeFileSync(
      failing,
      [
        'heat_template_version: 2018-08-31',
        'resources:',
        '  group:',
        '    type: OS::Heat::ResourceGroup',
        '    properties:',
        '      count: 1',
        '      resource_def: {type: OS::Heat::TestResource, properties: {fail: true}}',
      ].join('\n'),
    );
    const result = await openstack(demo, 'stack', 'create', '-t', failing, '--wait', 'broken');
    expect(result.code).not.toBe(0);
    const shown = await openstackJson(demo, 'stack', 'show', 'broken');
    expect(shown.stack_status).toBe('CREATE_FAILED');
    expect(shown.stack_status_reason).toMatch(
      /^Resource CREATE failed: Error: resources\.group\.resources\[0\]: Test Resource failed /,
    );
    await openstackOk(demo, 'stack', 'delete', '--yes', '--wait', 'broken');
    expect(await openstackJson<any[]>(demo, 'stack', 'list', '--nested')).toEqual([]);
  }, 120_000);
});
