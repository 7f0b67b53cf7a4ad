import { HeatStackEntity } from '@novum/db';
import { Engine } from './engine';
import { StackService } from './stack.service';
import { StackStore } from './stack.store';
import { closeEngine, EngineHarness, memberAuth, offlineIdentity, openEngine } from './testing';

const auth = memberAuth;
const identity = offlineIdentity();

describe('orchestration engine', () => {
  let harness: EngineHarness | undefined;
  let store: StackStore;
  let engine: Engine;
  let stacks: StackService;

  beforeAll(async () => {
    harness = await openEngine('novum-heat-');
    ({ store, engine, stacks } = harness);
  });

  afterAll(() => closeEngine(harness));

  const create = async (name: string, template: object, extra: object = {}) => {
    const stack = await stacks.create(auth, { stack_name: name, template, ...extra });
    await engine.settle(stack.id);
    return (await store.stacks.findOneByOrFail({ id: stack.id })) as HeatStackEntity;
  };
  const events = async (stackId: string) =>
    (await store.events.find({ where: { stackId }, order: { seq: 'ASC' } })).map(
      (e) => `${e.resourceName} ${e.action}_${e.status}`,
    );
  const rows = async (stackId: string) =>
    Object.fromEntries((await store.resources.findBy({ stackId })).map((r) => [r.name, r]));

  it('creates requirements first and independent resources in parallel', async () => {
    const stack = await create('order', {
      heat_template_version: '2021-04-16',
      resources: {
        a: { type: 'OS::Heat::TestResource', properties: { value: 'A', wait_secs: 0.05 } },
        b: { type: 'OS::Heat::TestResource', properties: { value: { get_attr: ['a', 'output'] } } },
        c: { type: 'OS::Heat::Value', properties: { value: { get_resource: 'b' } }, depends_on: ['a'] },
        d: { type: 'OS::Heat::TestResource', properties: { wait_secs: 0.05 } },
      },
      outputs: { chain: { value: { get_attr: ['c', 'value'] } } },
    });
    expect(`${stack.action}_${stack.status}`).toBe('CREATE_COMPLETE');
    const log = await events(stack.id);
    const at = (entry: string) => log.indexOf(entry);
    expect(at('a CREATE_COMPLETE')).toBeLessThan(at('b CREATE_IN_PROGRESS'));
    expect(at('b CREATE_COMPLETE')).toBeLessThan(at('c CREATE_IN_PROGRESS'));
    // a and d run at the same time: both start before either ends.
    expect(at('d CREATE_IN_PROGRESS')).toBeLessThan(at('a CREATE_COMPLETE'));
    expect(log[0]).toBe('order CREATE_IN_PROGRESS');
    expect(log.at(-1)).toBe('order CREATE_COMPLETE');
    const resources = await rows(stack.id);
    expect(resources.b.data).toEqual({ value: 'A' });
    const bound = await stacks.bound(stack);
    expect(bound?.output(bound.outputs()[0]).value).toBe(resources.b.physicalId);
  });

  it('rolls a failed create back, deleting what it made, unless rollback is disabled', async () => {
    const template = {
      heat_template_version: '2021-04-16',
      resources: {
        ok: { type: 'OS::Heat::TestResource' },
        broken: { type: 'OS::Heat::TestResource', properties: { fail: true }, depends_on: 'ok' },
        never: { type: 'OS::Heat::TestResource', depends_on: 'broken' },
      },
    };
    const rolled = await create('rolled', template, { disable_rollback: false });
    expect(`${rolled.action}_${rolled.status}`).toBe('ROLLBACK_COMPLETE');
    expect(rolled.statusReason).toBe('Rollback completed');
    expect(await rows(rolled.id)).toEqual({});
    const log = await events(rolled.id);
    expect(log).toContain('ok DELETE_COMPLETE');
    expect(log).not.toContain('never CREATE_IN_PROGRESS');
    expect(log).toContain('rolled CREATE_FAILED');

    const kept = await create('kept', template);
    expect(`${kept.action}_${kept.status}`).toBe('CREATE_FAILED');
    expect(kept.statusReason).toMatch(
      /^Resource CREATE failed: Error: resources\.broken: Test Resource failed /,
    );
    const left = await rows(kept.id);
    expect(left.ok.status).toBe('COMPLETE');
    expect(`${left.broken.action}_${left.broken.status}`).toBe('CREATE_FAILED');
    expect(`${left.never.action}_${left.never.status}`).toBe('INIT_COMPLETE');
  });

  it('updates by diff: in place, by replacement, adding and removing resources', async () => {
    const stack = await create('diff', {
      heat_template_version: '2021-04-16',
      parameters: { v: { type: 'string', default: 'one' } },
      resources: {
        inplace: { type: 'OS::Heat::TestResource', properties: { value: { get_param: 'v' } } },
        replaced: { type: 'OS::Heat::RandomString', properties: { length: 8 } },
        gone: { type: 'OS::Heat::None' },
      },
    });
    const before = await rows(stack.id);
    await stacks.update(
      auth,
      stack,
      {
        template: {
          heat_template_version: '2021-04-16',
          parameters: { v: { type: 'string', default: 'one' } },
          resources: {
            inplace: { type: 'OS::Heat::TestResource', properties: { value: { get_param: 'v' } } },
            replaced: { type: 'OS::Heat::RandomString', properties: { length: 12 } },
            added: { type: 'OS::Heat::Value', properties: { value: { get_resource: 'replaced' } } },
          },
        },
        parameters: { v: 'two' },
      },
      false,
    );
    await engine.settle(stack.id);
    const updated = await store.stacks.findOneByOrFail({ id: stack.id });
    expect(`${updated.action}_${updated.status}`).toBe('UPDATE_COMPLETE');
    const after = await rows(stack.id);
    expect(Object.keys(after).sort()).toEqual(['added', 'inplace', 'replaced']);
    expect(after.inplace.id).toBe(before.inplace.id);
    expect(after.inplace.physicalId).toBe(before.inplace.physicalId);
    expect(after.inplace.data).toEqual({ value: 'two' });
    expect(after.replaced.id).not.toBe(before.replaced.id);
    expect((after.replaced.data.value as string).length).toBe(12);
    expect(after.added.data).toEqual({ value: after.replaced.data.value });
    const log = await events(stack.id);
    expect(log).toEqual(
      expect.arrayContaining(['inplace UPDATE_COMPLETE', 'gone DELETE_COMPLETE', 'replaced DELETE_COMPLETE']),
    );
    // The replacement exists before the old one goes (Heat's create-before-delete).
    expect(log.indexOf('replaced CREATE_COMPLETE', log.indexOf('diff UPDATE_IN_PROGRESS'))).toBeLessThan(
      log.indexOf('replaced DELETE_IN_PROGRESS'),
    );
  });

  it('refuses invalid templates before creating anything', async () => {
    await expect(
      stacks.create(auth, {
        stack_name: 'invalid',
        template: { heat_template_version: '2021-04-16', resources: { x: { type: 'OS::Nope' } } },
      }),
    ).rejects.toThrow('resources.x: The Resource Type (OS::Nope) could not be found.');
    await expect(
      stacks.create(auth, {
        stack_name: 'invalid',
        template: {
          heat_template_version: '2021-04-16',
          resources: { x: { type: 'OS::Heat::RandomString', properties: { colour: 'red' } } },
        },
      }),
    ).rejects.toThrow('Property error: resources.x.properties: Unknown Property colour');
    await expect(
      stacks.create(auth, {
        stack_name: 'invalid',
        template: {
          heat_template_version: '2021-04-16',
          resources: { x: { type: 'OS::Heat::RandomString', properties: { length: 'long' } } },
        },
      }),
    ).rejects.toThrow("Property error: resources.x.properties.length: Value 'long' is not an integer");
    expect(await store.stacks.countBy({ name: 'invalid' })).toBe(0);
  });

  it('marks stacks an engine left in progress FAILED when the next one starts', async () => {
    const stack = await stacks.create(auth, {
      stack_name: 'interrupted',
      template: {
        heat_template_version: '2021-04-16',
        resources: { slow: { type: 'OS::Heat::TestResource', properties: { wait_secs: 0.3 } } },
      },
    });
    // A second engine starting over the same database sees the stack in progress (the first one "died").
    await new Promise((resolve) => setTimeout(resolve, 50));
    await new Engine(store, identity).failInterrupted();
    const failed = await store.stacks.findOneByOrFail({ id: stack.id });
    expect(`${failed.action}_${failed.status}`).toBe('CREATE_FAILED');
    expect(failed.statusReason).toBe('Engine went down during stack CREATE');
    const slow = (await rows(stack.id)).slow;
    expect(`${slow.action}_${slow.status}`).toBe('CREATE_FAILED');
    await engine.settle(stack.id);
  });
});
