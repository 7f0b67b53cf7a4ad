import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireDataSource, HeatStackEntity, releaseDataSource } from '@novum/db';
import { DataSource } from 'typeorm';
import { Engine } from './engine';
import { RESOURCE_TYPES } from './resources/registry';
import { ResourceType } from './resources/types';
import { StackService } from './stack.service';
import { StackStore } from './stack.store';
import { memberAuth, offlineIdentity, waitFor } from './testing';

const auth = memberAuth;
const identity = offlineIdentity();

/** Physical ids the test types were asked to delete, in order. */
let deleted: string[] = [];

/** A cloud object whose create is accepted at once and then never completes (a server stuck building). */
const stuck: ResourceType = {
  name: 'Test::Stuck',
  description: 'accepted, then waits forever',
  properties: { id: { type: 'string', description: 'physical id', required: true } },
  attributes: {},
  async create(ctx, props) {
    await ctx.created?.(props.id as string, { accepted: true });
    return new Promise(() => undefined);
  },
  async delete(_ctx, state) {
    if (state.physicalId) deleted.push(state.physicalId);
  },
  attribute: () => null,
};

/** A cloud object named by its value (every change replaces it); `fail` fails its create after acceptance. */
const tracked: ResourceType = {
  name: 'Test::Tracked',
  description: 'recorded deletes',
  properties: {
    value: { type: 'string', description: 'physical id', required: true },
    fail: { type: 'boolean', description: 'fail after the cloud accepted', default: false },
  },
  attributes: {},
  async create(ctx, props) {
    await ctx.created?.(props.value as string);
    if (props.fail) throw new Error('refused after acceptance');
    return { physicalId: props.value as string, data: {} };
  },
  async delete(_ctx, state) {
    if (state.physicalId) deleted.push(state.physicalId);
  },
  attribute: () => null,
};

const TEMPLATE_VERSION = '2021-04-16';

describe('orchestration engine across a stop and after interrupted replacements', () => {
  let dir: string;
  let dataSource: DataSource;
  let store: StackStore;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'novum-heat-restart-'));
    dataSource = await acquireDataSource({ dataDir: dir });
    store = new StackStore(dataSource);
    const types = RESOURCE_TYPES as Map<string, ResourceType>;
    types.set(stuck.name, stuck);
    types.set(tracked.name, tracked);
  });

  afterAll(async () => {
    const types = RESOURCE_TYPES as Map<string, ResourceType>;
    types.delete(stuck.name);
    types.delete(tracked.name);
    await releaseDataSource(dataSource);
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    deleted = [];
  });

  const state = async (id: string) => {
    const stack = await store.stacks.findOneByOrFail({ id });
    return `${stack.action}_${stack.status}`;
  };

  it('a new engine fails what a stopped one left in progress, and the delete removes what the cloud accepted', async () => {
    const first = new Engine(store, identity);
    const stack = await new StackService(store, first, identity).create(auth, {
      stack_name: 'interrupted',
      template: {
        heat_template_version: TEMPLATE_VERSION,
        resources: {
          done: { type: 'Test::Tracked', properties: { value: 'made-before-stop' } },
          building: { type: 'Test::Stuck', properties: { id: 'accepted-not-done' }, depends_on: 'done' },
          waiting: { type: 'Test::Tracked', properties: { value: 'never' }, depends_on: 'building' },
        },
      },
    });
    await waitFor('the create to be accepted', async () =>
      (await store.resources.findBy({ stackId: stack.id })).some((r) => r.physicalId === 'accepted-not-done'),
    );
    // The first engine is abandoned mid-create, as a killed process is; a second one starts on the same database.
    const second = new Engine(store, identity);
    await second.failInterrupted();
    const failed = await store.stacks.findOneByOrFail({ id: stack.id });
    expect(`${failed.action}_${failed.status}`).toBe('CREATE_FAILED');
    expect(failed.statusReason).toBe('Engine went down during stack CREATE');
    const rows = Object.fromEntries(
      (await store.resources.findBy({ stackId: stack.id })).map((r) => [r.name, r]),
    );
    expect(rows.building).toMatchObject({
      action: 'CREATE',
      status: 'FAILED',
      statusReason: 'Engine went down during resource CREATE',
      physicalId: 'accepted-not-done',
      data: { accepted: true },
    });
    expect(`${rows.done.action}_${rows.done.status}`).toBe('CREATE_COMPLETE');
    expect(`${rows.waiting.action}_${rows.waiting.status}`).toBe('INIT_COMPLETE');

    const service = new StackService(store, second, identity);
    await service.delete(auth, (await store.stacks.findOneByOrFail({ id: stack.id })) as HeatStackEntity);
    await second.settle(stack.id);
    expect(await state(stack.id)).toBe('DELETE_COMPLETE');
    expect(deleted.sort()).toEqual(['accepted-not-done', 'made-before-stop']);
    expect(await store.resources.findBy({ stackId: stack.id })).toEqual([]);
  });

  it('keeps both rows of a failed replacement and deletes both, by a later update or by the stack delete', async () => {
    const engine = new Engine(store, identity);
    const service = new StackService(store, engine, identity);
    const template = (value: string, fail = false) => ({
      heat_template_version: TEMPLATE_VERSION,
      resources: { thing: { type: 'Test::Tracked', properties: { value, fail } } },
    });
    const update = async (stack: HeatStackEntity, value: string, fail = false) => {
      await service.update(auth, stack, { template: template(value, fail) }, false);
      await engine.settle(stack.id);
      return store.stacks.findOneByOrFail({ id: stack.id });
    };
    const physicalIds = async (id: string) =>
      (await store.resources.findBy({ stackId: id })).map((r) => r.physicalId).sort();

    let stack = await service.create(auth, { stack_name: 'replaced', template: template('one') });
    await engine.settle(stack.id);
    stack = await update(stack, 'two', true);
    expect(`${stack.action}_${stack.status}`).toBe('UPDATE_FAILED');
    expect(await physicalIds(stack.id)).toEqual(['one', 'two']);
    stack = await update(stack, 'three');
    expect(`${stack.action}_${stack.status}`).toBe('UPDATE_COMPLETE');
    expect(await physicalIds(stack.id)).toEqual(['three']);
    expect(deleted.sort()).toEqual(['one', 'two']);

    deleted = [];
    stack = await update(stack, 'four', true);
    expect(await physicalIds(stack.id)).toEqual(['four', 'three']);
    await service.delete(auth, stack);
    await engine.settle(stack.id);
    expect(await state(stack.id)).toBe('DELETE_COMPLETE');
    expect(deleted.sort()).toEqual(['four', 'three']);
    expect(await store.resources.findBy({ stackId: stack.id })).toEqual([]);
  });
});
