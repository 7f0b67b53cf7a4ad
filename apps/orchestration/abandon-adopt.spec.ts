import { ApiError } from '@novum/common';
import { HeatStackEntity } from '@novum/db';
import { Json, JsonMap } from '@novum/hot';
import { IsNull } from 'typeorm';
import { CloudError, CloudSession } from './cloud';
import { Engine } from './engine';
import { StackService } from './stack.service';
import { StackStore } from './stack.store';
import { closeEngine, EngineHarness, memberAuth, offlineIdentity, openEngine } from './testing';

const auth = memberAuth;

/** Nova's key pairs, recording every call that changes something. */
class FakeNova {
  keypairs = new Set<string>();
  calls: string[] = [];

  async request<T>(_type: string, method: string, path: string, body?: JsonMap): Promise<T> {
    if (method !== 'GET') this.calls.push(`${method} ${path}`);
    if (method === 'POST' && path === '/os-keypairs') {
      const name = (body?.keypair as JsonMap).name as string;
      this.keypairs.add(name);
      return { keypair: { name, public_key: 'ssh-ed25519 AAAA', fingerprint: 'f' } } as T;
    }
    const keypair = /^\/os-keypairs\/(.+)$/.exec(path);
    if (keypair) {
      const name = decodeURIComponent(keypair[1]);
      if (!this.keypairs.has(name)) throw new CloudError(404, `Keypair ${name} not found.`, 'compute');
      if (method === 'DELETE') this.keypairs.delete(name);
      return { keypair: { name } } as T;
    }
    throw new Error(`unexpected ${method} ${path}`);
  }
}

const TEMPLATE = {
  heat_template_version: '2021-04-16',
  parameters: { length: { type: 'number', default: 8 } },
  resources: {
    key: { type: 'OS::Nova::KeyPair', properties: { name: 'adopted-key' } },
    secret: {
      type: 'OS::Heat::RandomString',
      properties: { length: { get_param: 'length' } },
      metadata: { role: 'password' },
    },
    group: {
      type: 'OS::Heat::ResourceGroup',
      properties: { count: 2, resource_def: { type: 'OS::Heat::RandomString', properties: { length: 4 } } },
    },
  },
  outputs: {
    secret: { value: { get_attr: ['secret', 'value'] } },
    members: { value: { get_attr: ['group', 'value'] } },
  },
};

describe('orchestration: stack abandon and adopt (Heat)', () => {
  let harness: EngineHarness | undefined;
  let store: StackStore;
  let engine: Engine;
  let stacks: StackService;
  const nova = new FakeNova();

  beforeAll(async () => {
    harness = await openEngine('novum-heat-abandon-', nova as unknown as CloudSession);
    ({ store, engine, stacks } = harness);
  });

  afterAll(() => closeEngine(harness));

  const reload = async (id: string) => (await store.stacks.findOneByOrFail({ id })) as HeatStackEntity;
  const state = (item: { action: string; status: string }) => `${item.action}_${item.status}`;
  const settled = async (id: string) => {
    await engine.settle(id);
    return reload(id);
  };
  const refusal = async (run: Promise<unknown>): Promise<ApiError> => {
    try {
      await run;
    } catch (error) {
      if (error instanceof ApiError) return error;
      throw error;
    }
    throw new Error('the request was accepted');
  };
  const rowsOf = async (stackId: string) =>
    Object.fromEntries((await store.resources.findBy({ stackId })).map((row) => [row.name, row]));

  it("abandons a stack: Heat's abandon data, the records gone, every physical resource left", async () => {
    const created = await stacks.create(auth, { stack_name: 'old', template: TEMPLATE, tags: 'a,b' });
    const stack = await settled(created.id);
    expect(state(stack)).toBe('CREATE_COMPLETE');
    const rows = await rowsOf(stack.id);
    const [child] = await store.stacks.findBy({ ownerId: stack.id });
    nova.calls = [];

    const data = await stacks.abandon(auth, async () => stack);
    expect(Object.keys(data).sort()).toEqual([
      'action',
      'environment',
      'files',
      'id',
      'name',
      'project_id',
      'resources',
      'stack_user_project_id',
      'status',
      'tags',
      'template',
    ]);
    expect(data).toMatchObject({
      name: 'old',
      id: stack.id,
      action: 'CREATE',
      status: 'COMPLETE',
      template: TEMPLATE,
      environment: { parameters: {}, parameter_defaults: {}, resource_registry: {} },
      files: {},
      project_id: 'project-1',
      stack_user_project_id: 'project-1',
      tags: ['a', 'b'],
    });
    const resources = data.resources as Record<string, JsonMap>;
    expect(resources.key).toEqual({
      name: 'key',
      resource_id: 'adopted-key',
      type: 'OS::Nova::KeyPair',
      action: 'CREATE',
      status: 'COMPLETE',
      metadata: {},
      resource_data: rows.key.data,
    });
    expect(resources.secret).toMatchObject({
      resource_id: rows.secret.physicalId,
      metadata: { role: 'password' },
      resource_data: { value: (rows.secret.data as JsonMap).value },
    });
    // A nested stack's resource gives the nested stack's own abandon data (Heat's StackResource).
    expect(resources.group).toMatchObject({ id: child.id, name: child.name, action: 'CREATE' });
    expect(Object.keys((resources.group as JsonMap).resources as JsonMap).sort()).toEqual(['0', '1']);

    const gone = await settled(stack.id);
    expect(state(gone)).toBe('DELETE_COMPLETE');
    expect(gone.deletedAt).not.toBeNull();
    expect((await reload(child.id)).deletedAt).not.toBeNull();
    expect(await store.resources.countBy({ stackId: stack.id })).toBe(0);
    expect(await store.resources.countBy({ stackId: child.id })).toBe(0);
    expect(nova.calls).toEqual([]);
    expect(nova.keypairs.has('adopted-key')).toBe(true);
    expect(
      (await store.events.findBy({ stackId: stack.id, resourceName: 'key' })).map((e) => state(e)).slice(-2),
    ).toEqual(['DELETE_IN_PROGRESS', 'DELETE_COMPLETE']);

    // Adopt: the resources take over the abandoned ones, nothing is made.
    const adopted = await stacks.create(auth, {
      stack_name: 'new',
      adopt_stack_data: JSON.stringify(data),
      parameters: {},
    });
    expect(state(adopted)).toBe('ADOPT_IN_PROGRESS');
    const after = await settled(adopted.id);
    expect(state(after)).toBe('ADOPT_COMPLETE');
    expect(after.statusReason).toBe('Stack ADOPT completed successfully');
    expect(nova.calls).toEqual([]);
    const adoptedRows = await rowsOf(after.id);
    expect(state(adoptedRows.key)).toBe('ADOPT_COMPLETE');
    expect(adoptedRows.key.physicalId).toBe('adopted-key');
    expect(adoptedRows.secret.physicalId).toBe(rows.secret.physicalId);
    expect(adoptedRows.secret.data).toEqual(rows.secret.data);
    expect(adoptedRows.secret.metadata).toEqual({ role: 'password' });
    const [newChild] = await store.stacks.findBy({ ownerId: after.id, deletedAt: IsNull() });
    expect(state(newChild)).toBe('ADOPT_COMPLETE');
    const members = await rowsOf(newChild.id);
    const oldMembers = (resources.group as JsonMap).resources as Record<string, JsonMap>;
    expect(members['0'].physicalId).toBe(oldMembers['0'].resource_id);
    expect(members['1'].data).toEqual(oldMembers['1'].resource_data);
    const bound = await stacks.bound(after);
    const values = Object.fromEntries(
      (bound?.outputs() ?? []).map((o) => [o.name, bound?.output(o).value as Json]),
    );
    expect(values).toEqual({
      secret: (rows.secret.data as JsonMap).value,
      members: [oldMembers['0'], oldMembers['1']].map((m) => (m.resource_data as JsonMap).value),
    });
    const events = (await store.events.findBy({ stackId: after.id, resourceName: 'key' })).map(state);
    expect(events).toEqual(['ADOPT_IN_PROGRESS', 'ADOPT_COMPLETE']);

    // The adopted stack owns them now: its delete deletes them.
    await stacks.delete(auth, after);
    expect(state(await settled(after.id))).toBe('DELETE_COMPLETE');
    expect(nova.calls).toEqual(['DELETE /os-keypairs/adopted-key']);
  });

  it("fails an adopt whose data lacks a resource's physical id, and rolls back as an abandon when asked", async () => {
    nova.keypairs.add('kept-key');
    nova.calls = [];
    const data = {
      template: {
        heat_template_version: '2021-04-16',
        resources: {
          key: { type: 'OS::Nova::KeyPair', properties: { name: 'kept-key' } },
          other: { type: 'OS::Heat::None', depends_on: 'key' },
        },
      },
      resources: { key: { resource_id: 'kept-key', resource_data: {}, metadata: {} } },
    };
    const failed = await settled(
      (await stacks.create(auth, { stack_name: 'partial', adopt_stack_data: data })).id,
    );
    expect(state(failed)).toBe('ADOPT_FAILED');
    expect(failed.statusReason).toBe(
      'Resource ADOPT failed: Exception: resources.other: Resource ID was not provided.',
    );
    const rolled = await settled(
      (
        await stacks.create(auth, {
          stack_name: 'rolled',
          adopt_stack_data: JSON.stringify(data),
          disable_rollback: false,
        })
      ).id,
    );
    expect(state(rolled)).toBe('ROLLBACK_COMPLETE');
    expect(rolled.statusReason).toBe('Stack ROLLBACK completed successfully');
    expect(rolled.deletedAt).not.toBeNull();
    expect(nova.calls).toEqual([]);
    expect(nova.keypairs.has('kept-key')).toBe(true);
  });

  it("refuses bad adopt data, a busy stack, and both when the operator turned them off, in Heat's terms", async () => {
    for (const [given, message] of [
      ['{"resources": {}}', `Invalid adopt data: 'template'`],
      ['[1, 2]', 'Invalid adopt data: The template is not a JSON object or YAML mapping.'],
      [{ template: TEMPLATE, resources: [] }, 'Invalid adopt data: resources must be a mapping'],
    ] as const) {
      const error = await refusal(stacks.create(auth, { stack_name: 'bad', adopt_stack_data: given }));
      expect(error.status).toBe(400);
      expect(error.message).toContain(message);
    }
    const stack = await stacks.create(auth, {
      stack_name: 'busy',
      template: { heat_template_version: '2021-04-16', resources: {} },
    });
    const busy = await refusal(stacks.abandon(auth, async () => stack));
    expect({ status: busy.status, type: busy.type }).toEqual({ status: 409, type: 'ActionInProgress' });
    await engine.settle(stack.id);

    const { store: same, engine: sameEngine } = harness as EngineHarness;
    const closed = new StackService(same, sameEngine, offlineIdentity(), {
      heatEnableStackAbandon: false,
      heatEnableStackAdopt: false,
    });
    const abandon = await refusal(
      closed.abandon(auth, async () => {
        throw new Error('not looked up');
      }),
    );
    expect(abandon).toMatchObject({
      status: 400,
      type: 'NotSupported',
      message: 'Stack Abandon is not supported.',
    });
    const adopt = await refusal(
      closed.create(auth, { stack_name: 'x', adopt_stack_data: { template: TEMPLATE } }),
    );
    expect(adopt).toMatchObject({
      status: 400,
      type: 'NotSupported',
      message: 'Stack Adopt is not supported.',
    });
    expect(state(await reload(stack.id))).toBe('CREATE_COMPLETE');
  });
});
