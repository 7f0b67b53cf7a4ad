import { HeatStackEntity } from '@novum/db';
import { HotError, JsonMap } from '@novum/hot';
import { IsNull } from 'typeorm';
import { Engine } from './engine';
import { groupBatches } from './resources/nested';
import { StackService } from './stack.service';
import { StackStore } from './stack.store';
import { closeEngine, EngineHarness, memberAuth, openEngine } from './testing';

const auth = memberAuth;

function groupTemplate(salt: string, policy: JsonMap, count = 4): JsonMap {
  return {
    heat_template_version: '2021-04-16',
    resources: {
      group: {
        type: 'OS::Heat::ResourceGroup',
        update_policy: policy,
        properties: {
          count,
          resource_def: { type: 'OS::Heat::RandomString', properties: { length: 6, salt } },
        },
      },
    },
  };
}

describe('orchestration: ResourceGroup update_policy (rolling_update, batch_create)', () => {
  let harness: EngineHarness | undefined;
  let store: StackStore;
  let engine: Engine;
  let stacks: StackService;

  beforeAll(async () => {
    harness = await openEngine('novum-heat-rolling-');
    ({ store, engine, stacks } = harness);
  });

  afterAll(() => closeEngine(harness));

  const reload = async (id: string) => (await store.stacks.findOneByOrFail({ id })) as HeatStackEntity;
  const state = (item: { action: string; status: string }) => `${item.action}_${item.status}`;
  const settled = async (id: string) => {
    await engine.settle(id);
    return reload(id);
  };
  const child = async (stack: HeatStackEntity) =>
    (await store.stacks.findOneByOrFail({ ownerId: stack.id, deletedAt: IsNull() })) as HeatStackEntity;
  /** The nested stack's events after `since`, as `name ACTION_STATUS`. */
  const eventsOf = async (stackId: string, since = 0) =>
    (await store.events.find({ where: { stackId }, order: { seq: 'ASC' } }))
      .filter((e) => e.seq > since)
      .map((e) => `${e.resourceName} ${e.action}_${e.status}`);
  const lastSeq = async (stackId: string) =>
    (await store.events.find({ where: { stackId }, order: { seq: 'DESC' }, take: 1 }))[0]?.seq ?? 0;
  const members = async (stackId: string) =>
    Object.fromEntries(
      (await store.resources.find({ where: { stackId }, order: { createdAt: 'ASC' } })).map((row) => [
        row.name,
        row.physicalId,
      ]),
    );

  it("computes Heat's batches: size during each batch and members given the new definition", () => {
    expect(groupBatches(4, 4, 2, 0)).toEqual([
      [4, 2],
      [4, 2],
    ]);
    expect(groupBatches(3, 3, 1, 3)).toEqual([
      [4, 1],
      [4, 1],
      [4, 1],
      [4, 1],
      [3, 0],
    ]);
    expect(groupBatches(5, 0, 2, 0)).toEqual([
      [2, 2],
      [4, 2],
      [5, 1],
    ]);
    expect(groupBatches(2, 2, 5, 0)).toEqual([[2, 2]]);
  });

  it('replaces members max_batch_size at a time, highest index first, when resource_def changes', async () => {
    const policy = { rolling_update: { max_batch_size: 2, pause_time: 0.01 } };
    let stack = await settled(
      (await stacks.create(auth, { stack_name: 'rolling', template: groupTemplate('a', policy) })).id,
    );
    expect(state(stack)).toBe('CREATE_COMPLETE');
    const nested = await child(stack);
    const before = await members(nested.id);
    const since = await lastSeq(nested.id);
    await stacks.update(auth, stack, { template: groupTemplate('b', policy) }, false);
    stack = await settled(stack.id);
    expect(state(stack)).toBe('UPDATE_COMPLETE');
    const events = await eventsOf(nested.id, since);
    // Two batches: two updates of the nested stack, members 3 and 2 replaced before 1 and 0 start.
    expect(events.filter((e) => e === `${nested.name} UPDATE_IN_PROGRESS`)).toHaveLength(2);
    const created = (name: string) => events.indexOf(`${name} CREATE_COMPLETE`);
    const started = (name: string) => events.indexOf(`${name} CREATE_IN_PROGRESS`);
    expect(Math.max(created('3'), created('2'))).toBeLessThan(Math.min(started('1'), started('0')));
    const after = await members(nested.id);
    expect(Object.keys(after).sort()).toEqual(['0', '1', '2', '3']);
    for (const name of ['0', '1', '2', '3']) expect(after[name]).not.toBe(before[name]);

    // Only the count changes: no batches, one update.
    const again = await lastSeq(nested.id);
    await stacks.update(auth, stack, { template: groupTemplate('b', policy, 2) }, false);
    expect(state(await settled(stack.id))).toBe('UPDATE_COMPLETE');
    expect(
      (await eventsOf(nested.id, again)).filter((e) => e === `${nested.name} UPDATE_IN_PROGRESS`),
    ).toHaveLength(1);
    expect(Object.keys(await members(nested.id)).sort()).toEqual(['0', '1']);
  });

  it('keeps min_in_service members by growing the group for the update, then shrinking it', async () => {
    const policy = { rolling_update: { max_batch_size: 1, min_in_service: 3 } };
    let stack = await settled(
      (await stacks.create(auth, { stack_name: 'in-service', template: groupTemplate('a', policy, 3) })).id,
    );
    const nested = await child(stack);
    const since = await lastSeq(nested.id);
    await stacks.update(auth, stack, { template: groupTemplate('b', policy, 3) }, false);
    stack = await settled(stack.id);
    expect(state(stack)).toBe('UPDATE_COMPLETE');
    const events = await eventsOf(nested.id, since);
    expect(events.filter((e) => e === `${nested.name} UPDATE_IN_PROGRESS`)).toHaveLength(5);
    // A fourth member comes first and goes last; the others never drop below three in service.
    expect(events.indexOf('3 CREATE_COMPLETE')).toBeLessThan(events.indexOf('2 CREATE_IN_PROGRESS'));
    expect(events.indexOf('3 DELETE_COMPLETE')).toBeGreaterThan(events.lastIndexOf('0 CREATE_COMPLETE'));
    expect(Object.keys(await members(nested.id)).sort()).toEqual(['0', '1', '2']);
    const group = await store.resources.findOneByOrFail({ stackId: stack.id, name: 'group' });
    expect((group.data as JsonMap).names).toEqual(['0', '1', '2']);
  });

  it('creates members in batches with batch_create', async () => {
    const policy = { batch_create: { max_batch_size: 2 } };
    const stack = await settled(
      (await stacks.create(auth, { stack_name: 'batched', template: groupTemplate('a', policy, 3) })).id,
    );
    expect(state(stack)).toBe('CREATE_COMPLETE');
    const nested = await child(stack);
    const events = await eventsOf(nested.id);
    expect(events.filter((e) => e.startsWith(`${nested.name} `))).toEqual([
      `${nested.name} CREATE_IN_PROGRESS`,
      `${nested.name} CREATE_COMPLETE`,
      `${nested.name} UPDATE_IN_PROGRESS`,
      `${nested.name} UPDATE_COMPLETE`,
    ]);
    expect(Object.keys(await members(nested.id)).sort()).toEqual(['0', '1', '2']);
  });

  it("refuses an update_policy Heat's schema refuses, with the template path", async () => {
    for (const [policy, message] of [
      [{ rolling_update: { batch_size: 2 } }, 'Unknown Property batch_size'],
      [{ rolling_update: { max_batch_size: 0 } }, '0 is out of range (min: 1, max: None)'],
      [{ rolling: {} }, 'Unknown Property rolling'],
    ] as const) {
      let error: unknown;
      try {
        await stacks.create(auth, { stack_name: 'bad', template: groupTemplate('a', policy) });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(HotError);
      expect((error as HotError).message).toContain(message);
      expect((error as HotError).message).toContain('resources.group.update_policy');
    }
  });
});
