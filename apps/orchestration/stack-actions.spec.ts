import { ApiError } from '@novum/common';
import { HeatStackEntity } from '@novum/db';
import { Json, JsonMap } from '@novum/hot';
import { CloudError, CloudSession } from './cloud';
import { Engine } from './engine';
import { StackService, stackActionOf } from './stack.service';
import { StackStore } from './stack.store';
import { closeEngine, EngineHarness, memberAuth, openEngine } from './testing';

const auth = memberAuth;

/** Nova as the server and key pair resources use it: servers that suspend and resume at once. */
class FakeNova {
  servers = new Map<string, JsonMap>();
  keypairs = new Set<string>();
  calls: string[] = [];
  private next = 1;

  async request<T>(_type: string, method: string, path: string, body?: JsonMap): Promise<T> {
    if (method !== 'GET') this.calls.push(`${method} ${path}${body ? ` ${JSON.stringify(body)}` : ''}`);
    return (await this.answer(method, path, body)) as T;
  }

  private async answer(method: string, path: string, body?: JsonMap): Promise<Json> {
    if (path.startsWith('/flavors/detail'))
      return { flavors: [{ id: '1', name: 'm1.tiny', ram: 512, vcpus: 1, disk: 1 }] };
    if (method === 'POST' && path === '/os-keypairs') {
      const name = (body?.keypair as JsonMap).name as string;
      this.keypairs.add(name);
      return { keypair: { name, public_key: 'ssh-ed25519 AAAA', fingerprint: 'f' } };
    }
    const keypair = /^\/os-keypairs\/(.+)$/.exec(path);
    if (keypair) {
      const name = decodeURIComponent(keypair[1]);
      if (!this.keypairs.has(name)) throw new CloudError(404, `Keypair ${name} not found.`, 'compute');
      if (method === 'DELETE') this.keypairs.delete(name);
      return { keypair: { name } };
    }
    if (method === 'POST' && path === '/servers') {
      const id = `srv-${this.next++}`;
      this.servers.set(id, { id, name: (body?.server as JsonMap).name, status: 'ACTIVE', addresses: {} });
      return { server: { id } };
    }
    const action = /^\/servers\/([^/]+)\/action$/.exec(path);
    if (action && method === 'POST') {
      const server = this.servers.get(action[1]);
      if (!server) throw new CloudError(404, `Instance ${action[1]} could not be found.`, 'compute');
      if ('suspend' in (body ?? {})) server.status = 'SUSPENDED';
      if ('resume' in (body ?? {})) server.status = 'ACTIVE';
      return null;
    }
    const one = /^\/servers\/([^/]+)$/.exec(path);
    if (one) {
      const server = this.servers.get(one[1]);
      if (!server) throw new CloudError(404, `Instance ${one[1]} could not be found.`, 'compute');
      if (method === 'DELETE') this.servers.delete(one[1]);
      return { server: { ...server } };
    }
    throw new Error(`unexpected ${method} ${path}`);
  }
}

const SERVERS = {
  heat_template_version: '2021-04-16',
  resources: {
    key: { type: 'OS::Nova::KeyPair', properties: { name: 'k1' } },
    server: {
      type: 'OS::Nova::Server',
      properties: { flavor: 'm1.tiny', key_name: { get_resource: 'key' } },
    },
    secret: { type: 'OS::Heat::RandomString' },
  },
};

const GROUP = {
  heat_template_version: '2021-04-16',
  resources: {
    group: {
      type: 'OS::Heat::ResourceGroup',
      properties: {
        count: 2,
        resource_def: { type: 'OS::Nova::Server', properties: { flavor: 'm1.tiny' } },
      },
    },
  },
};

describe('orchestration engine: stack actions (suspend, resume, check, cancel_update)', () => {
  let harness: EngineHarness | undefined;
  let store: StackStore;
  let engine: Engine;
  let stacks: StackService;
  const nova = new FakeNova();

  beforeAll(async () => {
    harness = await openEngine('novum-heat-actions-', nova as unknown as CloudSession);
    ({ store, engine, stacks } = harness);
  });

  afterAll(() => closeEngine(harness));

  const reload = async (id: string) => (await store.stacks.findOneByOrFail({ id })) as HeatStackEntity;
  const state = (item: { action: string; status: string }) => `${item.action}_${item.status}`;
  const create = async (name: string, template: JsonMap, extra: JsonMap = {}) => {
    const created = await stacks.create(auth, { stack_name: name, template, ...extra });
    await engine.settle(created.id);
    const stack = await reload(created.id);
    expect(state(stack)).toBe('CREATE_COMPLETE');
    return stack;
  };
  const act = async (stack: HeatStackEntity, action: Parameters<StackService['act']>[2]) => {
    await stacks.act(auth, stack, action);
    await engine.settle(stack.id);
    return reload(stack.id);
  };
  /** The events after `since` (a seq), as `name ACTION_STATUS reason`. */
  const eventsOf = async (stackId: string, since = 0) =>
    (await store.events.find({ where: { stackId }, order: { seq: 'ASC' } }))
      .filter((e) => e.seq > since)
      .map((e) => `${e.resourceName} ${e.action}_${e.status} ${e.statusReason}`);
  const lastSeq = async (stackId: string) =>
    (await store.events.find({ where: { stackId }, order: { seq: 'DESC' }, take: 1 }))[0]?.seq ?? 0;
  const resource = async (stackId: string, name: string) =>
    store.resources.findOneByOrFail({ stackId, name });
  /** Waits until the resource's action has started (so that a cancel comes while it is under way). */
  const started = async (stackId: string, name: string, action: string) => {
    for (let i = 0; i < 200; i++) {
      const rows = await store.resources.findBy({ stackId, name });
      if (rows.some((row) => row.action === action && row.status === 'IN_PROGRESS')) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error(`${name} never started its ${action}`);
  };
  const refusal = async (run: Promise<unknown>): Promise<ApiError> => {
    try {
      await run;
    } catch (error) {
      if (error instanceof ApiError) return error;
      throw error;
    }
    throw new Error('the action was accepted');
  };

  it('takes the action of a body as Heat does, refusing none, several or an unknown one', () => {
    expect(stackActionOf({ suspend: null })).toBe('suspend');
    expect(stackActionOf({ cancel_without_rollback: null })).toBe('cancel_without_rollback');
    for (const [body, message] of [
      [{}, 'No action specified'],
      [null, 'No action specified'],
      [{ suspend: null, resume: null }, 'Multiple actions specified'],
      [{ pause: null }, 'Invalid action pause specified'],
    ] as const) {
      expect(() => stackActionOf(body)).toThrow(message);
    }
  });

  it('suspends resources in reverse dependency order (servers through Nova) and resumes them in order', async () => {
    let stack = await create('suspended', SERVERS);
    const server = await resource(stack.id, 'server');
    let seq = await lastSeq(stack.id);
    nova.calls = [];
    stack = await act(stack, 'suspend');
    expect(state(stack)).toBe('SUSPEND_COMPLETE');
    expect(stack.statusReason).toBe('Stack SUSPEND completed successfully');
    expect(nova.calls).toEqual([`POST /servers/${server.physicalId}/action {"suspend":null}`]);
    expect(nova.servers.get(server.physicalId as string)?.status).toBe('SUSPENDED');
    const suspendEvents = await eventsOf(stack.id, seq);
    expect(suspendEvents[0]).toBe('suspended SUSPEND_IN_PROGRESS Stack SUSPEND started');
    expect(suspendEvents.at(-1)).toBe('suspended SUSPEND_COMPLETE Stack SUSPEND completed successfully');
    // The server (which needs the key) is done before the key starts.
    expect(suspendEvents.indexOf('server SUSPEND_COMPLETE state changed')).toBeLessThan(
      suspendEvents.indexOf('key SUSPEND_IN_PROGRESS state changed'),
    );
    for (const name of ['key', 'server', 'secret'])
      expect(state(await resource(stack.id, name))).toBe('SUSPEND_COMPLETE');
    expect(((await resource(stack.id, 'server')).data.server as JsonMap).status).toBe('SUSPENDED');

    // A suspended stack is not suspended again: nothing happens, no event.
    seq = await lastSeq(stack.id);
    stack = await act(stack, 'suspend');
    expect(await eventsOf(stack.id, seq)).toEqual([]);

    seq = await lastSeq(stack.id);
    nova.calls = [];
    stack = await act(stack, 'resume');
    expect(state(stack)).toBe('RESUME_COMPLETE');
    expect(stack.statusReason).toBe('Stack RESUME completed successfully');
    expect(nova.calls).toEqual([`POST /servers/${server.physicalId}/action {"resume":null}`]);
    expect(nova.servers.get(server.physicalId as string)?.status).toBe('ACTIVE');
    const resumeEvents = await eventsOf(stack.id, seq);
    expect(resumeEvents.indexOf('key RESUME_COMPLETE state changed')).toBeLessThan(
      resumeEvents.indexOf('server RESUME_IN_PROGRESS state changed'),
    );
    expect(state(await resource(stack.id, 'server'))).toBe('RESUME_COMPLETE');
  });

  it('fails a resume of a stack that was never suspended, its resources left as they were', async () => {
    let stack = await create('not-suspended', SERVERS);
    nova.calls = [];
    stack = await act(stack, 'resume');
    expect(state(stack)).toBe('RESUME_FAILED');
    expect(stack.statusReason).toMatch(
      /^Resource RESUME failed: Error: resources\.(key|secret): State \('CREATE', 'COMPLETE'\) invalid for resume$/,
    );
    expect(nova.calls).toEqual([]);
    expect(state(await resource(stack.id, 'server'))).toBe('CREATE_COMPLETE');
  });

  it('fails a suspend whose server is gone, with Heat’s NotFound reason', async () => {
    let stack = await create('server-gone', SERVERS);
    const server = await resource(stack.id, 'server');
    nova.servers.delete(server.physicalId as string);
    stack = await act(stack, 'suspend');
    expect(state(stack)).toBe('SUSPEND_FAILED');
    expect(stack.statusReason).toBe(
      `Resource SUSPEND failed: NotFound: resources.server: Failed to find server ${server.physicalId}`,
    );
    const row = await resource(stack.id, 'server');
    expect(`${row.action}_${row.status} ${row.statusReason}`).toBe(
      `SUSPEND_FAILED NotFound: resources.server: Failed to find server ${server.physicalId}`,
    );
    // Nothing that the server needs was suspended after its failure.
    expect(state(await resource(stack.id, 'key'))).toBe('CREATE_COMPLETE');
  });

  it('checks servers and key pairs, completes what cannot be checked and says the check was partial', async () => {
    let stack = await create('checked', SERVERS);
    const seq = await lastSeq(stack.id);
    stack = await act(stack, 'check');
    expect(state(stack)).toBe('CHECK_COMPLETE');
    expect(stack.statusReason).toBe(
      "Stack CHECK completed successfully. 'CHECK' not fully supported (see resources)",
    );
    const events = await eventsOf(stack.id, seq);
    expect(events.filter((e) => e.startsWith('checked '))).toEqual([
      'checked CHECK_IN_PROGRESS Stack CHECK started',
      'checked CHECK_COMPLETE Stack CHECK completed successfully',
      "checked CHECK_COMPLETE Stack CHECK completed successfully. 'CHECK' not fully supported (see resources)",
    ]);
    expect(events).toContain('secret CHECK_COMPLETE CHECK not supported for OS::Heat::RandomString');
    expect(events).toContain('server CHECK_COMPLETE state changed');
    expect(events).toContain('key CHECK_COMPLETE state changed');
  });

  it('fails the check of a suspended server and of a missing key pair, reporting every failure', async () => {
    let stack = await create('check-fails', SERVERS);
    stack = await act(stack, 'suspend');
    nova.keypairs.delete('k1');
    stack = await act(stack, 'check');
    expect(state(stack)).toBe('CHECK_FAILED');
    expect(stack.statusReason).toBe(
      `Resource CHECK failed: ['NotFound: resources.key: Keypair k1 not found.'].` +
        " 'CHECK' not fully supported (see resources)",
    );
    // The server comes after the key in the check's order: it is not checked after the key failed.
    expect(state(await resource(stack.id, 'server'))).toBe('SUSPEND_COMPLETE');
    nova.keypairs.add('k1');
    stack = await act(stack, 'check');
    expect(stack.statusReason).toBe(
      `Resource CHECK failed: ["Error: resources.server: 'status': expected 'ACTIVE', got 'SUSPENDED'"].` +
        " 'CHECK' not fully supported (see resources)",
    );
    const server = await resource(stack.id, 'server');
    expect(`${server.action}_${server.status}`).toBe('CHECK_FAILED');
    // A failed check leaves the stack resumable only from SUSPEND_COMPLETE resources: the server is not.
    stack = await act(stack, 'resume');
    expect(state(stack)).toBe('RESUME_FAILED');
  });

  it('propagates suspend, resume and check to nested stacks (a group of servers)', async () => {
    let stack = await create('grouped', GROUP);
    const group = await resource(stack.id, 'group');
    const child = await reload(group.physicalId as string);
    stack = await act(stack, 'suspend');
    expect(state(stack)).toBe('SUSPEND_COMPLETE');
    expect(state(await reload(child.id))).toBe('SUSPEND_COMPLETE');
    const members = await store.resources.findBy({ stackId: child.id });
    expect(members.map((m) => nova.servers.get(m.physicalId as string)?.status)).toEqual([
      'SUSPENDED',
      'SUSPENDED',
    ]);
    stack = await act(stack, 'resume');
    expect(state(stack)).toBe('RESUME_COMPLETE');
    expect(state(await reload(child.id))).toBe('RESUME_COMPLETE');
    expect(members.map((m) => nova.servers.get(m.physicalId as string)?.status)).toEqual([
      'ACTIVE',
      'ACTIVE',
    ]);
    stack = await act(stack, 'check');
    expect(`${state(stack)} ${stack.statusReason}`).toBe('CHECK_COMPLETE Stack CHECK completed successfully');
    expect(state(await reload(child.id))).toBe('CHECK_COMPLETE');

    nova.servers.delete(members[0].physicalId as string);
    stack = await act(stack, 'suspend');
    expect(state(stack)).toBe('SUSPEND_FAILED');
    expect(stack.statusReason).toBe(
      `Resource SUSPEND failed: NotFound: resources.group.resources[${members[0].name}]: Failed to find server ${members[0].physicalId}`,
    );
  });

  it('refuses an action while another is in progress (409) and cancels only an update in progress (400)', async () => {
    const stack = await create('busy', {
      heat_template_version: '2021-04-16',
      resources: { slow: { type: 'OS::Heat::TestResource', properties: { value: 'a' } } },
    });
    for (const action of ['cancel_update', 'cancel_without_rollback'] as const) {
      const error = await refusal(stacks.act(auth, stack, action));
      expect([error.status, error.type, error.message]).toEqual([
        400,
        'NotSupported',
        'Cancelling update when stack is CREATE_COMPLETE is not supported.',
      ]);
    }
    await stacks.update(
      auth,
      stack,
      {
        template: {
          heat_template_version: '2021-04-16',
          resources: {
            slow: { type: 'OS::Heat::TestResource', properties: { value: 'b', wait_secs: 0.3 } },
          },
        },
      },
      false,
    );
    const error = await refusal(stacks.act(auth, stack, 'suspend'));
    expect([error.status, error.type, error.message]).toEqual([
      409,
      'ActionInProgress',
      'Stack busy already has an action (UPDATE) in progress.',
    ]);
    await engine.settle(stack.id);
    expect(state(await reload(stack.id))).toBe('UPDATE_COMPLETE');
  });

  const SLOW = (value: string) => ({
    heat_template_version: '2021-04-16',
    resources: {
      first: { type: 'OS::Heat::TestResource', properties: { value, wait_secs: 0.4 } },
      second: { type: 'OS::Heat::TestResource', depends_on: ['first'], properties: { value } },
    },
  });

  it('cancel_update: the update stops after the resources under way, fails "Operation cancelled" and rolls back', async () => {
    let stack = await create('cancelled', SLOW('a'));
    await stacks.update(auth, stack, { template: SLOW('b') }, false);
    await started(stack.id, 'first', 'UPDATE');
    await stacks.act(auth, await reload(stack.id), 'cancel_update');
    await engine.settle(stack.id);
    stack = await reload(stack.id);
    expect(state(stack)).toBe('ROLLBACK_COMPLETE');
    const stackEvents = (await eventsOf(stack.id)).filter((e) => e.startsWith('cancelled '));
    expect(stackEvents.slice(2)).toEqual([
      'cancelled UPDATE_IN_PROGRESS Stack UPDATE started',
      'cancelled UPDATE_FAILED Operation cancelled',
      'cancelled ROLLBACK_IN_PROGRESS Stack ROLLBACK started',
      'cancelled ROLLBACK_COMPLETE Stack ROLLBACK completed successfully',
    ]);
    expect((await resource(stack.id, 'first')).data.value).toBe('a');
    expect((await resource(stack.id, 'second')).data.value).toBe('a');
  });

  it('cancel_without_rollback: a stack with rollback disabled stays UPDATE_FAILED with what was done', async () => {
    let stack = await create('kept', SLOW('a'), { disable_rollback: true });
    await stacks.update(auth, stack, { template: SLOW('b') }, false);
    await started(stack.id, 'first', 'UPDATE');
    await stacks.act(auth, await reload(stack.id), 'cancel_without_rollback');
    await engine.settle(stack.id);
    stack = await reload(stack.id);
    expect(`${state(stack)} ${stack.statusReason}`).toBe('UPDATE_FAILED Operation cancelled');
    expect((await resource(stack.id, 'first')).data.value).toBe('b');
    expect((await resource(stack.id, 'second')).data.value).toBe('a');
  });

  it('cancel_without_rollback of a create fails it as Heat does ("Resource CREATE failed: Operation cancelled")', async () => {
    const created = await stacks.create(auth, { stack_name: 'create-cancelled', template: SLOW('a') });
    await started(created.id, 'first', 'CREATE');
    await stacks.act(auth, await reload(created.id), 'cancel_without_rollback');
    await engine.settle(created.id);
    const stack = await reload(created.id);
    expect(`${state(stack)} ${stack.statusReason}`).toBe(
      'CREATE_FAILED Resource CREATE failed: Operation cancelled',
    );
    expect(state(await resource(stack.id, 'second'))).toBe('INIT_COMPLETE');
  });

  it("404s another project's stack and a deleted one", async () => {
    const stack = await create('mine', SLOW('a'));
    await expect(
      stacks.identify({ ...auth, projectId: 'project-2' }, stack.name, stack.id),
    ).rejects.toMatchObject({ status: 404, message: 'The Stack (mine) could not be found.' });
    await stacks.delete(auth, stack);
    await engine.settle(stack.id);
    const error = await refusal(stacks.act(auth, await reload(stack.id), 'suspend'));
    expect([error.status, error.type]).toEqual([404, 'EntityNotFound']);
  });
});
