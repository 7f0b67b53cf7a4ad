import { ApiError } from '@novum/common';
import { HeatStackEntity } from '@novum/db';
import { Json, JsonMap } from '@novum/hot';
import { CloudError, CloudSession } from './cloud';
import { Engine } from './engine';
import { StackService } from './stack.service';
import { StackStore } from './stack.store';
import { closeEngine, EngineHarness, memberAuth, offlineIdentity, openEngine } from './testing';

const auth = memberAuth;

/** Nova's servers (createImage included) and Glance's images, recording every call that changes something. */
class FakeCloud {
  servers = new Map<string, JsonMap>();
  images = new Map<string, JsonMap>();
  calls: string[] = [];
  imageHeaders: Record<string, string> = {};
  private next = 1;

  async request<T>(
    _type: string,
    method: string,
    path: string,
    body?: JsonMap,
    headers: Record<string, string> = {},
  ): Promise<T> {
    if (method !== 'GET') this.calls.push(`${method} ${path}${body ? ` ${JSON.stringify(body)}` : ''}`);
    return (await this.answer(method, path, body, headers)) as T;
  }

  private async answer(
    method: string,
    path: string,
    body: JsonMap | undefined,
    headers: Record<string, string>,
  ): Promise<Json> {
    if (path.startsWith('/flavors/detail'))
      return { flavors: [{ id: '1', name: 'm1.tiny', ram: 512, vcpus: 1, disk: 1 }] };
    const image = /^\/v2\/images\/(.+)$/.exec(path);
    if (image) {
      const id = decodeURIComponent(image[1]);
      const found = this.images.get(id) ?? [...this.images.values()].find((i) => i.name === id);
      if (!found) throw new CloudError(404, `No image found with ID ${id}`, 'image');
      if (method === 'DELETE') this.images.delete(found.id as string);
      return found;
    }
    if (path.startsWith('/v2/images?name=')) {
      const name = decodeURIComponent(path.slice('/v2/images?name='.length));
      return { images: [...this.images.values()].filter((i) => i.name === name) };
    }
    if (method === 'POST' && path === '/servers') {
      const id = `srv-${this.next++}`;
      const server = body?.server as JsonMap;
      this.servers.set(id, {
        id,
        name: server.name,
        image: server.imageRef,
        status: 'ACTIVE',
        addresses: {},
      });
      return { server: { id } };
    }
    const action = /^\/servers\/([^/]+)\/action$/.exec(path);
    if (action && method === 'POST' && body?.createImage) {
      const id = `img-${this.next++}`;
      this.imageHeaders = headers;
      this.images.set(id, { id, name: (body.createImage as JsonMap).name, status: 'active' });
      return { image_id: id };
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

const TEMPLATE = {
  heat_template_version: '2021-04-16',
  parameters: { length: { type: 'number', default: 8 } },
  resources: {
    server: { type: 'OS::Nova::Server', properties: { image: 'cirros', flavor: 'm1.tiny' } },
    secret: { type: 'OS::Heat::RandomString', properties: { length: { get_param: 'length' } } },
  },
};

describe('orchestration: stack snapshots and restore (Heat)', () => {
  let harness: EngineHarness | undefined;
  let store: StackStore;
  let engine: Engine;
  let stacks: StackService;
  const cloud = new FakeCloud();

  beforeAll(async () => {
    harness = await openEngine('novum-heat-snapshots-', cloud as unknown as CloudSession);
    ({ store, engine, stacks } = harness);
    cloud.images.set('cirros-id', { id: 'cirros-id', name: 'cirros', status: 'active' });
  });

  afterAll(() => closeEngine(harness));

  const reload = async (id: string) => (await store.stacks.findOneByOrFail({ id })) as HeatStackEntity;
  const state = (item: { action: string; status: string }) => `${item.action}_${item.status}`;
  const settled = async (id: string) => {
    await engine.settle(id);
    return reload(id);
  };
  const create = async (name: string) => {
    const stack = await settled((await stacks.create(auth, { stack_name: name, template: TEMPLATE })).id);
    expect(state(stack)).toBe('CREATE_COMPLETE');
    return stack;
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
  const row = async (stackId: string, name: string) =>
    store.resources.findOneOrFail({ where: { stackId, name }, order: { createdAt: 'DESC' } });

  it("snapshots a stack: servers as Glance images, the stack's data kept, then restores it", async () => {
    let stack = await create('snapped');
    const server = await row(stack.id, 'server');
    const secret = await row(stack.id, 'secret');
    cloud.calls = [];

    const taken = await stacks.snapshot(auth, stack, { name: 'first' });
    expect(taken).toMatchObject({ name: 'first', action: 'CREATE', status: 'IN_PROGRESS', data: null });
    expect(state(await reload(stack.id))).toBe('SNAPSHOT_IN_PROGRESS');
    stack = await settled(stack.id);
    expect(state(stack)).toBe('SNAPSHOT_COMPLETE');
    expect(stack.statusReason).toBe('Stack SNAPSHOT completed successfully');
    const snapshot = await stacks.snapshotOf(auth, stack, taken.id);
    expect(snapshot).toMatchObject({
      action: 'CREATE',
      status: 'COMPLETE',
      statusReason: 'Stack SNAPSHOT completed successfully',
    });
    const imageId = [...cloud.images.keys()].find((id) => id !== 'cirros-id') as string;
    expect(cloud.calls).toEqual([
      `POST /servers/${server.physicalId}/action {"createImage":{"name":"snapped-server-${server.id.replace(/-/g, '').slice(0, 12)}"}}`,
    ]);
    expect(cloud.imageHeaders['OpenStack-API-Version']).toBe('compute 2.45');
    const data = snapshot.data as JsonMap;
    expect(data).toMatchObject({ name: 'snapped', id: stack.id, action: 'SNAPSHOT', status: 'COMPLETE' });
    expect((data.resources as Record<string, JsonMap>).server).toMatchObject({
      resource_id: server.physicalId,
      action: 'SNAPSHOT',
      status: 'COMPLETE',
      resource_data: { snapshot_image_id: imageId },
    });
    expect((data.resources as Record<string, JsonMap>).secret.resource_data).toEqual(secret.data);
    expect(state(await row(stack.id, 'server'))).toBe('SNAPSHOT_COMPLETE');
    expect((await stacks.snapshots(auth, stack)).map((s) => s.id)).toEqual([taken.id]);

    // An update changes the stack; a restore brings the snapshot's template back, the server from its image.
    await stacks.update(auth, stack, { template: TEMPLATE, parameters: { length: 12 } }, false);
    stack = await settled(stack.id);
    expect(state(stack)).toBe('UPDATE_COMPLETE');
    cloud.calls = [];
    await stacks.restore(auth, stack, taken.id);
    expect(state(await reload(stack.id))).toBe('RESTORE_IN_PROGRESS');
    stack = await settled(stack.id);
    expect(state(stack)).toBe('RESTORE_COMPLETE');
    expect(stack.statusReason).toBe('Stack RESTORE completed successfully');
    expect(stack.environment).toMatchObject({ parameters: {} });
    expect((stack.template as JsonMap).resources).toMatchObject({
      server: { properties: { image: imageId, flavor: 'm1.tiny' } },
    });
    const restored = await row(stack.id, 'server');
    expect(restored.physicalId).not.toBe(server.physicalId);
    expect(cloud.servers.get(restored.physicalId as string)?.image).toBe(imageId);
    expect(cloud.servers.has(server.physicalId as string)).toBe(false);
    expect(((await row(stack.id, 'secret')).data.value as string).length).toBe(8);

    // Deleting the snapshot deletes its image.
    await stacks.deleteSnapshot(auth, stack, taken.id);
    expect(cloud.images.has(imageId)).toBe(false);
    expect(await stacks.snapshots(auth, stack)).toEqual([]);
    const gone = await refusal(stacks.snapshotOf(auth, stack, taken.id));
    expect(gone).toMatchObject({
      status: 404,
      type: 'NotFound',
      message: `Snapshot with id ${taken.id} not found`,
    });
  });

  it('deletes the snapshots and their images with the stack', async () => {
    const stack = await create('doomed');
    const taken = await stacks.snapshot(auth, stack, {});
    await settled(stack.id);
    const imageId = ((taken.data?.resources as Record<string, JsonMap>).server.resource_data as JsonMap)
      .snapshot_image_id as string;
    expect(cloud.images.has(imageId)).toBe(true);
    expect(taken.name).toBeNull();
    await stacks.delete(auth, await reload(stack.id));
    expect(state(await settled(stack.id))).toBe('DELETE_COMPLETE');
    expect(cloud.images.has(imageId)).toBe(false);
    expect(await store.snapshots.countBy({ stackId: stack.id })).toBe(0);
  });

  it('marks a snapshot an engine stopped in the middle of FAILED, so it can be deleted', async () => {
    const stack = await create('interrupted');
    const taken = await stacks.snapshot(auth, stack, { name: 'cut' });
    await settled(stack.id);
    await store.snapshots.update({ id: taken.id }, { status: 'IN_PROGRESS', data: null });
    await new Engine(store, offlineIdentity()).failInterrupted();
    expect(await stacks.snapshotOf(auth, stack, taken.id)).toMatchObject({
      action: 'CREATE',
      status: 'FAILED',
      statusReason: 'Engine went down during snapshot CREATE',
    });
    await stacks.deleteSnapshot(auth, stack, taken.id);
    expect(await stacks.snapshots(auth, stack)).toEqual([]);
  });

  it("refuses what Heat refuses: a busy stack, a snapshot too many, another stack's, an incomplete one", async () => {
    const stack = await create('strict');
    const other = await create('other');
    const limited = new StackService(store, engine, offlineIdentity(cloud as unknown as CloudSession), {
      heatMaxSnapshotsPerStack: 1,
    });
    const first = await limited.snapshot(auth, stack, { name: 'one' });
    const busy = await refusal(limited.snapshot(auth, await reload(stack.id), {}));
    expect(busy).toMatchObject({ status: 409, type: 'ActionInProgress' });
    const inProgress = await refusal(stacks.deleteSnapshot(auth, stack, first.id));
    expect(inProgress).toMatchObject({
      status: 400,
      type: 'NotSupported',
      message: 'Deleting in-progress snapshot is not supported.',
    });
    await settled(stack.id);
    const tooMany = await refusal(limited.snapshot(auth, await reload(stack.id), {}));
    expect(tooMany).toMatchObject({
      status: 400,
      type: 'RequestLimitExceeded',
      message:
        'Request limit exceeded: You have reached the maximum snapshots per stack, 1. Please delete some snapshots.',
    });
    const foreign = await refusal(stacks.snapshotOf(auth, other, first.id));
    expect(foreign).toMatchObject({
      status: 404,
      type: 'SnapshotNotFound',
      message: `The Snapshot (${first.id}) for Stack (other) could not be found.`,
    });
    for (const body of [[], 'name', { name: 7 }, { name: 'x'.repeat(256) }]) {
      expect((await refusal(stacks.snapshot(auth, await reload(stack.id), body))).status).toBe(400);
    }
    await store.snapshots.update({ id: first.id }, { status: 'FAILED' });
    const incomplete = await refusal(stacks.restore(auth, await reload(stack.id), first.id));
    expect(incomplete).toMatchObject({
      status: 400,
      type: 'NotSupported',
      message: 'Restoring incomplete snapshot is not supported.',
    });
  });
});
