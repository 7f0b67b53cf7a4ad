import { hostname } from 'node:os';
import { BusTimeoutError, MessageBus, RemoteError } from '@novum/bus';
import { ApiError } from '@novum/common';
import { HeatStackEntity, nowIso } from '@novum/db';
import { Engine } from './engine';
import {
  CancelStackAction,
  ENGINE_QUEUE,
  EngineClient,
  EngineRegistry,
  EngineService,
  START_STACK_ACTION,
  StartStackAction,
} from './engine-rpc';
import { StackService } from './stack.service';
import { closeEngine, EngineHarness, memberAuth, offlineIdentity, openEngine, waitFor } from './testing';

const auth = memberAuth;

/**
 * The bus as the engines see it: a call to the engine queue goes to the engine `route` names (as RabbitMQ
 * hands a message to one consumer), its errors coming back as RemoteErrors with their status; a published
 * cancel reaches every engine.
 */
function busTo(engines: EngineService[], route: { to: number; silent?: boolean }): MessageBus {
  return {
    call: async (queue: string, method: string, payload: unknown) => {
      expect([queue, method]).toEqual([ENGINE_QUEUE, START_STACK_ACTION]);
      if (route.silent) throw new BusTimeoutError(queue, method, 30_000);
      try {
        return await engines[route.to].start(JSON.parse(JSON.stringify(payload)) as StartStackAction);
      } catch (error) {
        throw new RemoteError((error as Error).message, 'Error', (error as { status?: number }).status);
      }
    },
    publish: async (_topic: string, _event: string, payload: unknown) => {
      await Promise.all(engines.map((engine) => engine.cancel(payload as CancelStackAction)));
    },
  } as unknown as MessageBus;
}

const SLOW = {
  heat_template_version: '2021-04-16',
  resources: {
    first: { type: 'OS::Heat::TestResource', properties: { value: 'one' } },
    slow: { type: 'OS::Heat::TestResource', properties: { wait_secs: 0.6 }, depends_on: 'first' },
    after: { type: 'OS::Heat::TestResource', properties: { value: 'two' }, depends_on: 'slow' },
  },
};

describe('orchestration engines over the bus', () => {
  let harness: EngineHarness | undefined;
  let registry: EngineRegistry;
  let engines: Engine[];
  let services: EngineService[];
  const route = { to: 0, silent: false };
  let stacks: StackService;

  beforeAll(async () => {
    harness = await openEngine('novum-heat-engines-');
    registry = new EngineRegistry(harness.dataSource);
  });

  beforeEach(async () => {
    const { store } = harness!;
    engines = [new Engine(store, offlineIdentity()), new Engine(store, offlineIdentity())];
    services = engines.map((engine) => new EngineService(engine, store, registry));
    for (const service of services) await service.onModuleInit();
    Object.assign(route, { to: 0, silent: false });
    const client = new EngineClient(busTo(services, route), harness!.engine, store, registry);
    stacks = new StackService(store, client, offlineIdentity());
  });

  afterEach(async () => {
    for (const service of services) await service.onApplicationShutdown();
  });

  afterAll(() => closeEngine(harness));

  const state = async (id: string) => {
    const stack = await harness!.store.stacks.findOneByOrFail({ id });
    return `${stack.action}_${stack.status}`;
  };

  it('one engine takes an action and holds the stack until it ends; another engine refuses the stack meanwhile', async () => {
    const stack = await stacks.create(auth, { stack_name: 'held', template: SLOW });
    expect(await registry.locks.findOneBy({ stackId: stack.id })).toMatchObject({
      engineId: services[0].engineId,
    });
    expect(engines[0].busy(stack.id)).toBe(true);
    expect(engines[1].busy(stack.id)).toBe(false);
    // The API refuses a second action while a live engine holds the stack, and so does the other engine.
    await expect(stacks.delete(auth, stack)).rejects.toMatchObject({ status: 409 });
    route.to = 1;
    await expect(
      services[1].start({ stackId: stack.id, operation: { op: 'act', action: 'CHECK' } }),
    ).rejects.toMatchObject({ status: 409 });

    await engines[0].settle(stack.id);
    await waitFor('the lock to go', async () => !(await registry.busy(stack.id)));
    expect(await state(stack.id)).toBe('CREATE_COMPLETE');
    // Now the second engine takes the delete.
    await stacks.delete(
      auth,
      (await harness!.store.stacks.findOneByOrFail({ id: stack.id })) as HeatStackEntity,
    );
    expect(engines[1].busy(stack.id)).toBe(true);
    await engines[1].settle(stack.id);
    expect(await state(stack.id)).toBe('DELETE_COMPLETE');
  });

  it("a dead engine's stack is failed by a live one, which can then delete it", async () => {
    const stack = await stacks.create(auth, { stack_name: 'orphaned', template: SLOW });
    await waitFor('the slow resource to start', async () =>
      (await harness!.store.resources.findBy({ stackId: stack.id })).some(
        (r) => r.name === 'slow' && r.status === 'IN_PROGRESS',
      ),
    );
    // The first engine stops reporting, as a killed one elsewhere does (its last report ages past 3 intervals).
    const longAgo = new Date(Date.now() - 60_000).toISOString();
    await registry.services.update({ id: services[0].engineId }, { updatedAt: longAgo });
    expect(await registry.busy(stack.id)).toBe(false);
    await services[1].reap();
    const failed = await harness!.store.stacks.findOneByOrFail({ id: stack.id });
    expect(`${failed.action}_${failed.status}`).toBe('CREATE_FAILED');
    expect(failed.statusReason).toBe('Engine went down during stack CREATE');
    const slow = await harness!.store.resources.findOneByOrFail({ stackId: stack.id, name: 'slow' });
    expect(`${slow.action}_${slow.status}`).toBe('CREATE_FAILED');
    expect(await registry.locks.findOneBy({ stackId: stack.id })).toBeNull();
    expect(await registry.services.findOneBy({ id: services[0].engineId })).toBeNull();
    // A second reap by another engine does nothing more: one FAILED event for the stack.
    await services[1].reap();
    const failures = await harness!.store.events.findBy({
      stackId: stack.id,
      resourceName: 'orphaned',
      status: 'FAILED',
    });
    expect(failures).toHaveLength(1);

    route.to = 1;
    await stacks.delete(auth, failed);
    await engines[1].settle(stack.id);
    expect(await state(stack.id)).toBe('DELETE_COMPLETE');
    await engines[0].settle(stack.id);
  });

  it('counts an engine of this machine whose process is gone as dead at once, one elsewhere by its reports', () => {
    const now = nowIso();
    const row = { id: 'x', reportInterval: 5, createdAt: now, updatedAt: now };
    expect(registry.isAlive({ ...row, hostname: hostname(), pid: process.pid })).toBe(true);
    // A pid past Linux's pid_max is no process.
    expect(registry.isAlive({ ...row, hostname: hostname(), pid: 4_194_305 })).toBe(false);
    expect(registry.isAlive({ ...row, hostname: 'elsewhere', pid: 4_194_305 })).toBe(true);
    const stale = new Date(Date.now() - 16_000).toISOString();
    expect(registry.isAlive({ ...row, updatedAt: stale, hostname: 'elsewhere', pid: 1 })).toBe(false);
    expect(registry.isAlive(null)).toBe(false);
  });

  it('a cancel reaches the engine running the stack, wherever it runs', async () => {
    route.to = 1;
    const stack = await stacks.create(auth, { stack_name: 'cut', template: SLOW, disable_rollback: true });
    await waitFor('the slow resource to start', async () =>
      (await harness!.store.resources.findBy({ stackId: stack.id })).some(
        (r) => r.name === 'slow' && r.status === 'IN_PROGRESS',
      ),
    );
    await stacks.act(
      auth,
      (await harness!.store.stacks.findOneByOrFail({ id: stack.id })) as HeatStackEntity,
      'cancel_without_rollback',
    );
    await engines[1].settle(stack.id);
    const cut = await harness!.store.stacks.findOneByOrFail({ id: stack.id });
    expect(`${cut.action}_${cut.status}`).toBe('CREATE_FAILED');
    expect(cut.statusReason).toBe('Resource CREATE failed: Operation cancelled');
    const after = await harness!.store.resources.findOneByOrFail({ stackId: stack.id, name: 'after' });
    expect(`${after.action}_${after.status}`).toBe('INIT_COMPLETE');
  });

  it('refuses a request for a stack no longer in progress (one that waited on the queue past its caller)', async () => {
    const stack = await stacks.create(auth, { stack_name: 'done-already', template: SLOW });
    await engines[0].settle(stack.id);
    await waitFor('the lock to go', async () => !(await registry.busy(stack.id)));
    await expect(services[1].start({ stackId: stack.id, operation: { op: 'create' } })).rejects.toMatchObject(
      {
        status: 409,
        message: 'Stack done-already is CREATE_COMPLETE, not in progress.',
      },
    );
    expect(engines[1].busy(stack.id)).toBe(false);
  });

  it('no engine answering fails the stack and answers 503', async () => {
    route.silent = true;
    const failure = stacks.create(auth, { stack_name: 'unheard', template: SLOW });
    await expect(failure).rejects.toBeInstanceOf(ApiError);
    await expect(failure).rejects.toMatchObject({ status: 503 });
    const stack = await harness!.store.stacks.findOneByOrFail({ name: 'unheard' });
    expect(`${stack.action}_${stack.status}`).toBe('CREATE_FAILED');
    expect(stack.statusReason).toBe('No orchestration engine took the stack action in time');
  });
});
