import { HeatStackEntity } from '@novum/db';
import { Engine } from './engine';
import { StackService } from './stack.service';
import { StackStore } from './stack.store';
import { closeEngine, EngineHarness, memberAuth, openEngine } from './testing';

const auth = memberAuth;

const BEFORE = {
  heat_template_version: '2021-04-16',
  parameters: { v: { type: 'string', default: 'one' } },
  resources: {
    inplace: { type: 'OS::Heat::TestResource', properties: { value: { get_param: 'v' } } },
    replaced: { type: 'OS::Heat::TestResource', properties: { update_replace_value: 'first' } },
    kept: { type: 'OS::Heat::RandomString', properties: { length: 8 } },
  },
  outputs: { value: { value: { get_attr: ['inplace', 'output'] } } },
};

/** In place, a replacement and two new resources; the last one fails once the others are done. */
const FAILING = {
  ...BEFORE,
  resources: {
    ...BEFORE.resources,
    replaced: { type: 'OS::Heat::TestResource', properties: { update_replace_value: 'second' } },
    added: { type: 'OS::Heat::Value', properties: { value: { get_resource: 'replaced' } } },
    boom: {
      type: 'OS::Heat::TestResource',
      depends_on: ['inplace', 'replaced', 'added'],
      properties: { fail: true },
    },
  },
};

describe('orchestration engine: update rollback', () => {
  let harness: EngineHarness | undefined;
  let store: StackStore;
  let engine: Engine;
  let stacks: StackService;

  beforeAll(async () => {
    harness = await openEngine('novum-heat-rollback-');
    ({ store, engine, stacks } = harness);
  });

  afterAll(() => closeEngine(harness));

  const rows = async (stackId: string) =>
    Object.fromEntries((await store.resources.findBy({ stackId })).map((r) => [r.name, r]));
  const stackEvents = async (stackId: string) =>
    (await store.events.find({ where: { stackId }, order: { seq: 'ASC' } }))
      .filter((e) => e.physicalResourceId === stackId)
      .map((e) => `${e.action}_${e.status}`);

  const createAndFailUpdate = async (name: string, disableRollback: boolean) => {
    const created = await stacks.create(auth, {
      stack_name: name,
      template: BEFORE,
      disable_rollback: disableRollback,
    });
    await engine.settle(created.id);
    let stack = (await store.stacks.findOneByOrFail({ id: created.id })) as HeatStackEntity;
    expect(`${stack.action}_${stack.status}`).toBe('CREATE_COMPLETE');
    const before = await rows(stack.id);
    await stacks.update(auth, stack, { template: FAILING, parameters: { v: 'two' } }, false);
    await engine.settle(stack.id);
    stack = (await store.stacks.findOneByOrFail({ id: stack.id })) as HeatStackEntity;
    return { stack, before, after: await rows(stack.id) };
  };

  it('rolls a failed update back to the previous template when rollback is enabled', async () => {
    const { stack, before, after } = await createAndFailUpdate('rolled-update', false);
    expect(`${stack.action}_${stack.status}`).toBe('ROLLBACK_COMPLETE');
    expect(stack.statusReason).toBe('Stack ROLLBACK completed successfully');
    const events = await stackEvents(stack.id);
    expect(events).toEqual([
      'CREATE_IN_PROGRESS',
      'CREATE_COMPLETE',
      'UPDATE_IN_PROGRESS',
      'UPDATE_FAILED',
      'ROLLBACK_IN_PROGRESS',
      'ROLLBACK_COMPLETE',
    ]);
    // The resources of the previous template, the replaced one back with its own physical resource.
    expect(Object.keys(after).sort()).toEqual(['inplace', 'kept', 'replaced']);
    expect(after.replaced.id).toBe(before.replaced.id);
    expect(after.replaced.physicalId).toBe(before.replaced.physicalId);
    expect(after.kept.physicalId).toBe(before.kept.physicalId);
    // The in-place change undone: the old parameter and value again.
    expect(after.inplace.id).toBe(before.inplace.id);
    expect(after.inplace.data).toEqual({ value: 'one' });
    expect((stack.template as any).resources.boom).toBeUndefined();
    expect((stack.environment as any).parameters).toEqual({});
  });

  it('leaves a failed update as it is when rollback is disabled', async () => {
    const { stack, before, after } = await createAndFailUpdate('kept-update', true);
    expect(`${stack.action}_${stack.status}`).toBe('UPDATE_FAILED');
    expect(stack.statusReason).toMatch(
      /^Resource UPDATE failed: Error: resources\.boom: Test Resource failed/,
    );
    expect(after.boom.status).toBe('FAILED');
    expect(after.inplace.data).toEqual({ value: 'two' });
    // The replaced resource stays beside its replacement, for the next update to delete.
    const replaced = (await store.resources.findBy({ stackId: stack.id, name: 'replaced' })).map((r) => r.id);
    expect(replaced).toHaveLength(2);
    expect(replaced).toContain(before.replaced.id);
  });
});
