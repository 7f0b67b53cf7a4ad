import { HeatStackEntity } from '@novum/db';
import { Json } from '@novum/hot';
import { IsNull } from 'typeorm';
import { Engine } from './engine';
import { StackService } from './stack.service';
import { StackStore } from './stack.store';
import { closeEngine, EngineHarness, memberAuth, openEngine } from './testing';

const auth = memberAuth;

const NESTED = `
heat_template_version: 2018-08-31
parameters:
  length: {type: number}
  prefix: {type: string, default: pre}
resources:
  secret:
    type: OS::Heat::RandomString
    properties: {length: {get_param: length}}
outputs:
  value:
    value: {list_join: ['-', [{get_param: prefix}, {get_attr: [secret, value]}]]}
`;

describe('nested stacks', () => {
  let harness: EngineHarness | undefined;
  let store: StackStore;
  let engine: Engine;
  let stacks: StackService;

  beforeAll(async () => {
    harness = await openEngine('novum-heat-nested-');
    ({ store, engine, stacks } = harness);
  });

  afterAll(() => closeEngine(harness));

  const reload = (id: string) => store.stacks.findOneByOrFail({ id });
  const create = async (name: string, template: object, extra: object = {}) => {
    const stack = await stacks.create(auth, { stack_name: name, template, ...extra });
    await engine.settle(stack.id);
    return reload(stack.id);
  };
  const update = async (stack: HeatStackEntity, template: object, extra: object = {}) => {
    await stacks.update(auth, stack, { template, ...extra }, false);
    await engine.settle(stack.id);
    return reload(stack.id);
  };
  const outputs = async (stack: HeatStackEntity) => {
    const bound = await stacks.bound(stack);
    return Object.fromEntries((bound?.outputs() ?? []).map((o) => [o.name, bound?.output(o).value]));
  };
  const children = (stack: HeatStackEntity) =>
    store.stacks.findBy({ ownerId: stack.id, deletedAt: IsNull() });
  const rowNames = async (stackId: string) =>
    (await store.resources.findBy({ stackId })).map((r) => r.name).sort();
  const state = (stack: HeatStackEntity) => `${stack.action}_${stack.status}`;

  const group = (count: number, extra: object = {}) => ({
    heat_template_version: '2021-04-16',
    resources: {
      group: {
        type: 'OS::Heat::ResourceGroup',
        properties: {
          count,
          resource_def: {
            type: 'OS::Heat::Value',
            properties: { value: 'member-%index%' },
          },
          ...extra,
        },
      },
    },
    outputs: {
      refs: { value: { get_attr: ['group', 'refs'] } },
      values: { value: { get_attr: ['group', 'value'] } },
      map: { value: { get_attr: ['group', 'attributes', 'value'] } },
      one: { value: { get_attr: ['group', 'resource.1.value'] } },
      two: { value: { get_attr: ['group', 'resource.2', 'value'] } },
      first_ref: { value: { get_attr: ['group', 'resource.0'] } },
      refs_map: { value: { get_attr: ['group', 'refs_map'] } },
      removed: { value: { get_attr: ['group', 'removed_rsrc_list'] } },
    },
  });

  it('creates a ResourceGroup as a nested stack with index substitution and group attributes', async () => {
    const stack = await create('grp', group(3));
    expect(state(stack)).toBe('CREATE_COMPLETE');
    const [child] = await children(stack);
    expect(child.name).toMatch(/^grp-group-[0-9a-f]{12}$/);
    expect(child.nestedDepth).toBe(1);
    expect(state(child)).toBe('CREATE_COMPLETE');
    expect(await rowNames(child.id)).toEqual(['0', '1', '2']);
    const row = (await store.resources.findOneByOrFail({ stackId: stack.id, name: 'group' })) as {
      physicalId: string | null;
    };
    expect(row.physicalId).toBe(child.id);
    const out = await outputs(stack);
    expect(out.values).toEqual(['member-0', 'member-1', 'member-2']);
    expect(out.map).toEqual({ 0: 'member-0', 1: 'member-1', 2: 'member-2' });
    expect(out.one).toBe('member-1');
    expect(out.two).toBe('member-2');
    expect(out.refs).toHaveLength(3);
    expect(out.first_ref).toBe((out.refs as Json[])[0]);
    expect(out.refs_map).toEqual({
      0: (out.refs as Json[])[0],
      1: (out.refs as Json[])[1],
      2: (out.refs as Json[])[2],
    });
    expect(out.removed).toEqual([]);

    // Listed only with show_nested, with its parent.
    expect((await stacks.list(auth, {})).map((s) => s.id)).not.toContain(child.id);
    const nested = await stacks.list(auth, { show_nested: 'True' });
    expect(nested.find((s) => s.id === child.id)?.ownerId).toBe(stack.id);
  });

  it('applies get_attr paths to each member, and groups template resources from the registry', async () => {
    const stack = await create(
      'paths',
      {
        heat_template_version: '2021-04-16',
        resources: {
          maps: {
            type: 'OS::Heat::ResourceGroup',
            properties: {
              count: 2,
              index_var: '@@@',
              resource_def: {
                type: 'OS::Heat::Value',
                properties: { value: { name: 'm@@@', tags: ['t@@@'] } },
              },
            },
          },
          things: {
            type: 'OS::Heat::ResourceGroup',
            properties: { count: 2, resource_def: { type: 'My::Thing', properties: { length: 3 } } },
          },
        },
        outputs: {
          names: { value: { get_attr: ['maps', 'value', 'name'] } },
          tag: { value: { get_attr: ['maps', 'resource.1.value', 'tags', 0] } },
          byName: { value: { get_attr: ['maps', 'attributes', 'value', 'name'] } },
          things: { value: { get_attr: ['things', 'value'] } },
          ids: { value: { get_attr: ['things', 'OS::stack_id'] } },
        },
      },
      {
        environment: { resource_registry: { 'My::Thing': 'nested.yaml' } },
        files: { 'nested.yaml': NESTED },
      },
    );
    expect(state(stack)).toBe('CREATE_COMPLETE');
    const out = await outputs(stack);
    expect(out.names).toEqual(['m0', 'm1']);
    expect(out.tag).toBe('t1');
    expect(out.byName).toEqual({ 0: 'm0', 1: 'm1' });
    expect(out.things).toEqual([expect.stringMatching(/^pre-\w{3}$/), expect.stringMatching(/^pre-\w{3}$/)]);
    const group = (await children(stack)).find((s) => s.name.startsWith('paths-things-')) as HeatStackEntity;
    const grandchildren = await children(group);
    expect(grandchildren.map((s) => s.nestedDepth)).toEqual([2, 2]);
    expect([...(out.ids as string[])].sort()).toEqual(grandchildren.map((s) => s.id).sort());
  });

  it('grows, shrinks and removes members by removal policy without reusing names', async () => {
    let stack = await create('resize', group(2));
    const [child] = await children(stack);
    const before = await store.resources.findBy({ stackId: child.id });
    stack = await update(stack, group(4));
    expect(state(stack)).toBe('UPDATE_COMPLETE');
    expect(await rowNames(child.id)).toEqual(['0', '1', '2', '3']);
    // Existing members are kept as they were.
    const after = await store.resources.findBy({ stackId: child.id });
    for (const row of before) expect(after.find((r) => r.name === row.name)?.id).toBe(row.id);

    stack = await update(stack, group(1));
    expect(await rowNames(child.id)).toEqual(['0']);

    stack = await update(stack, group(2, { removal_policies: [{ resource_list: ['0'] }] }));
    expect(state(stack)).toBe('UPDATE_COMPLETE');
    expect(await rowNames(child.id)).toEqual(['1', '2']);
    const out = await outputs(stack);
    expect(out.values).toEqual(['member-1', 'member-2']);
    expect(out.removed).toEqual(['0']);
    // The removed name stays removed even once the policy is gone.
    stack = await update(stack, group(3));
    expect(await rowNames(child.id)).toEqual(['1', '2', '3']);
  });

  it('maps a type to a template file through the environment: properties in, outputs out', async () => {
    const stack = await create(
      'tmpl',
      {
        heat_template_version: '2021-04-16',
        resources: {
          thing: { type: 'My::Thing', properties: { length: 6 } },
          direct: { type: 'file:///t/nested.yaml', properties: { length: 4, prefix: 'dir' } },
        },
        outputs: {
          value: { value: { get_attr: ['thing', 'value'] } },
          direct: { value: { get_attr: ['direct', 'value'] } },
          id: { value: { get_attr: ['thing', 'OS::stack_id'] } },
          ref: { value: { get_resource: 'thing' } },
        },
      },
      {
        environment: { resource_registry: { 'My::Thing': 'file:///t/nested.yaml' } },
        files: { 'file:///t/nested.yaml': NESTED },
      },
    );
    expect(state(stack)).toBe('CREATE_COMPLETE');
    const nested = await children(stack);
    expect(nested).toHaveLength(2);
    const thing = nested.find((s) => s.name.startsWith('tmpl-thing-')) as HeatStackEntity;
    expect((thing.environment as { parameters: object }).parameters).toEqual({ length: 6 });
    // The mapping that led to the template is not in the child's registry (Heat's recursion guard).
    expect((thing.environment as { resource_registry: object }).resource_registry).toEqual({});
    const out = await outputs(stack);
    expect(out.value).toMatch(/^pre-[A-Za-z0-9]{6}$/);
    expect(out.direct).toMatch(/^dir-[A-Za-z0-9]{4}$/);
    expect(out.id).toBe(thing.id);
    expect(out.ref).toBe(`arn:openstack:heat::project-1:stacks/${thing.name}/${thing.id}`);
  });

  it('follows registry aliases and wildcards', async () => {
    const stack = await create(
      'aliases',
      {
        heat_template_version: '2021-04-16',
        resources: {
          value: { type: 'My::Value', properties: { value: 7 } },
          random: { type: 'Test::RandomString', properties: { length: 5 } },
        },
        outputs: {
          value: { value: { get_attr: ['value', 'value'] } },
          random: { value: { get_resource: 'random' } },
        },
      },
      { environment: { resource_registry: { 'My::Value': 'OS::Heat::Value', 'Test::*': 'OS::Heat::*' } } },
    );
    expect(state(stack)).toBe('CREATE_COMPLETE');
    expect(await outputs(stack)).toEqual({ value: 7, random: expect.stringMatching(/^\w{5}$/) });
    expect((await store.resources.findOneByOrFail({ stackId: stack.id, name: 'random' })).type).toBe(
      'Test::RandomString',
    );
  });

  it('honours the registry in validate and preview', async () => {
    const body = {
      stack_name: 'previewed',
      template: {
        heat_template_version: '2021-04-16',
        resources: { thing: { type: 'My::Thing', properties: { length: 2 } } },
      },
      environment: { resource_registry: { 'My::Thing': 'nested.yaml' } },
      files: { 'nested.yaml': NESTED },
    };
    expect((await stacks.validate(auth, body)).Environment.resource_registry).toEqual({
      'My::Thing': 'nested.yaml',
    });
    const preview = await stacks.preview(auth, body);
    expect(preview.resources.map((r) => [r.resource_name, r.resource_type])).toEqual([
      ['thing', 'My::Thing'],
    ]);
    await expect(stacks.validate(auth, { ...body, environment: {} })).rejects.toThrow(
      'resources.thing: The Resource Type (My::Thing) could not be found.',
    );
    await expect(stacks.preview(auth, { ...body, files: {} })).rejects.toThrow(
      'Could not fetch remote template "nested.yaml"',
    );
  });

  it('updates a template resource in place when its properties or its file change', async () => {
    const template = (length: number) => ({
      heat_template_version: '2021-04-16',
      resources: { thing: { type: 'My::Thing', properties: { length } } },
      outputs: { value: { value: { get_attr: ['thing', 'value'] } } },
    });
    const environment = { resource_registry: { 'My::Thing': 'nested.yaml' } };
    let stack = await create('inplace', template(3), { environment, files: { 'nested.yaml': NESTED } });
    const [child] = await children(stack);
    stack = await update(stack, template(9), { environment, files: { 'nested.yaml': NESTED } });
    expect(state(stack)).toBe('UPDATE_COMPLETE');
    expect((await children(stack)).map((s) => s.id)).toEqual([child.id]);
    expect(state(await reload(child.id))).toBe('UPDATE_COMPLETE');
    expect((await outputs(stack)).value).toMatch(/^pre-[A-Za-z0-9]{9}$/);

    const changed = NESTED.replace('default: pre', 'default: post');
    const plan = await stacks.previewUpdate(
      auth,
      stack,
      { template: template(9), environment, files: { 'nested.yaml': changed } },
      false,
    );
    expect(
      (plan.resource_changes.updated as { resource_name: string }[]).map((c) => c.resource_name),
    ).toEqual(['thing']);
    stack = await update(stack, template(9), { environment, files: { 'nested.yaml': changed } });
    expect(state(stack)).toBe('UPDATE_COMPLETE');
    expect((await children(stack)).map((s) => s.id)).toEqual([child.id]);
    expect((await outputs(stack)).value).toMatch(/^post-[A-Za-z0-9]{9}$/);
  });

  it('refuses template resources with unknown properties, missing required ones or missing files', async () => {
    const files = { 'file:///t/nested.yaml': NESTED };
    const attempt = (properties: object, type = 'file:///t/nested.yaml') =>
      stacks.create(auth, {
        stack_name: 'badtmpl',
        template: { heat_template_version: '2021-04-16', resources: { t: { type, properties } } },
        files,
      });
    await expect(attempt({ length: 3, colour: 'red' })).rejects.toThrow(
      'Property error: resources.t.properties: Unknown Property colour',
    );
    await expect(attempt({})).rejects.toThrow(
      'Property error: resources.t.properties: Property length not assigned',
    );
    await expect(attempt({}, 'missing.yaml')).rejects.toThrow(
      'resources.t: Could not fetch remote template "missing.yaml"',
    );
    await expect(
      stacks.create(auth, {
        stack_name: 'badgroup',
        template: {
          heat_template_version: '2021-04-16',
          resources: {
            g: { type: 'OS::Heat::ResourceGroup', properties: { resource_def: { type: 'OS::Nope' } } },
          },
        },
      }),
    ).rejects.toThrow('Failed to validate: The Resource Type (OS::Nope) could not be found.');
    const badGroup = (properties: object) =>
      stacks.create(auth, {
        stack_name: 'badgroup',
        template: {
          heat_template_version: '2021-04-16',
          resources: {
            g: {
              type: 'OS::Heat::ResourceGroup',
              properties: { resource_def: { type: 'OS::Heat::None' }, ...properties },
            },
          },
        },
      });
    await expect(badGroup({ count: -1 })).rejects.toThrow(
      'Property error: resources.g.properties.count: -1 is out of range (min: 0, max: None)',
    );
    await expect(badGroup({ index_var: '%' })).rejects.toThrow(
      'resources.g.properties.index_var: length (1) is out of range (min: 3, max: None)',
    );
    expect(await store.stacks.countBy({ name: 'badtmpl' })).toBe(0);
  });

  it('runs OS::Heat::Stack with its template, parameters and outputs attribute', async () => {
    const stack = await create('remote', {
      heat_template_version: '2021-04-16',
      resources: {
        inner: {
          type: 'OS::Heat::Stack',
          properties: {
            template: NESTED,
            parameters: { length: 5, prefix: 'in' },
            timeout: 7,
          },
        },
      },
      outputs: {
        all: { value: { get_attr: ['inner', 'outputs'] } },
        one: { value: { get_attr: ['inner', 'outputs', 'value'] } },
        name: { value: { get_attr: ['inner', 'stack_name'] } },
        ref: { value: { get_resource: 'inner' } },
      },
    });
    expect(state(stack)).toBe('CREATE_COMPLETE');
    const [child] = await children(stack);
    expect(child.timeoutMins).toBe(7);
    const out = await outputs(stack);
    expect(out.one).toMatch(/^in-[A-Za-z0-9]{5}$/);
    expect(out.all).toEqual({ value: out.one });
    expect(out.name).toBe(child.name);
    expect(out.ref).toBe(child.id);
  });

  it('propagates a nested failure with its path and rolls the nested stack back', async () => {
    const failing = {
      heat_template_version: '2021-04-16',
      resources: {
        group: {
          type: 'OS::Heat::ResourceGroup',
          properties: {
            count: 1,
            resource_def: { type: 'OS::Heat::TestResource', properties: { fail: true } },
          },
        },
      },
    };
    const kept = await create('failing', failing);
    expect(state(kept)).toBe('CREATE_FAILED');
    expect(kept.statusReason).toMatch(
      /^Resource CREATE failed: Error: resources\.group\.resources\[0\]: Test Resource failed failing-group-[0-9a-f]{12}-0-/,
    );
    const row = await store.resources.findOneByOrFail({ stackId: kept.id, name: 'group' });
    expect(`${row.action}_${row.status}`).toBe('CREATE_FAILED');
    const [child] = await children(kept);
    expect(row.physicalId).toBe(child.id);
    expect(state(child)).toBe('CREATE_FAILED');

    const rolled = await create('rolledgroup', failing, { disable_rollback: false });
    expect(state(rolled)).toBe('ROLLBACK_COMPLETE');
    expect(await children(rolled)).toEqual([]);
    expect(await store.stacks.countBy({ ownerId: rolled.id, deletedAt: IsNull() })).toBe(0);
  });

  it('stops a template that nests itself at the depth limit', async () => {
    const self = `
heat_template_version: 2021-04-16
resources:
  again: {type: file:///t/self.yaml}
`;
    const stack = await create(
      'recursive',
      { heat_template_version: '2021-04-16', resources: { top: { type: 'file:///t/self.yaml' } } },
      { files: { 'file:///t/self.yaml': self } },
    );
    expect(state(stack)).toBe('CREATE_FAILED');
    expect(stack.statusReason).toContain('Recursion depth exceeds 5.');
    const depths = (await store.stacks.findBy({ projectId: 'project-1' }))
      .filter((s) => s.name.startsWith('recursive-'))
      .map((s) => s.nestedDepth);
    expect(Math.max(...depths)).toBe(5);
  });

  it('deletes nested stacks with their parent', async () => {
    const stack = await create('doomed', group(2));
    const [child] = await children(stack);
    await stacks.delete(auth, stack);
    await engine.settle(stack.id);
    expect((await reload(stack.id)).deletedAt).not.toBeNull();
    const gone = await reload(child.id);
    expect(gone.deletedAt).not.toBeNull();
    expect(`${gone.action}_${gone.status}`).toBe('DELETE_COMPLETE');
    expect(await store.resources.countBy({ stackId: child.id })).toBe(0);
  });

  it('deletes a nested stack its resource lost track of (an engine that died mid-create)', async () => {
    const stack = await create('orphaning', group(1));
    const [child] = await children(stack);
    await store.resources.update(
      { stackId: stack.id, name: 'group' },
      { physicalId: null, action: 'CREATE', status: 'FAILED' },
    );
    await stacks.delete(auth, stack);
    await engine.settle(stack.id);
    expect(state(await reload(stack.id))).toBe('DELETE_COMPLETE');
    expect((await reload(child.id)).deletedAt).not.toBeNull();
  });
});
