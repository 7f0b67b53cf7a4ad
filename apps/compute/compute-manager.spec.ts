import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { MessageBus } from '@novum/bus';
import { ComputeRpcClient, InstanceRecords, recordMigration } from '@novum/compute';
import { ComputeNodeEntity, InstanceFlavor, MigrationEntity, openDataSource } from '@novum/db';
import {
  ComputeDriver,
  ConsoleUnavailable,
  FakeDriver,
  NotSupportedByDriver,
  PowerState,
  TaskState,
  VmState,
} from '@novum/virt';
import { ComputeManager } from './compute-manager';
import { SerialConsoleRelay } from './serial-console-relay';

const FLAVOR: InstanceFlavor = {
  id: '1',
  name: 'tiny',
  vcpus: 1,
  memory_mb: 256,
  root_gb: 1,
  ephemeral_gb: 0,
  swap: 0,
  extra_specs: {},
};

/** A bus that only records what the agent serves and sends; the tests call the agent's methods directly. */
function recordingBus() {
  const sent: { queue: string; method: string; payload: unknown }[] = [];
  const bus = {
    serve: async () => undefined,
    cast: async (queue: string, method: string, payload: unknown) =>
      void sent.push({ queue, method, payload }),
    call: async () => {
      throw new Error('no calls in this test');
    },
  } as unknown as MessageBus;
  return { bus, sent };
}

describe('ComputeManager on SQLite', () => {
  let dir: string;
  let dataSource: DataSource;
  let records: InstanceRecords;
  const managers: ComputeManager[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'novum-agent-'));
    dataSource = await openDataSource({ dataDir: dir });
    records = new InstanceRecords(dataSource);
  });

  afterAll(async () => {
    for (const manager of managers) await manager.onModuleDestroy();
    await dataSource.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  async function agent(host: string, drivers: ComputeDriver[]) {
    const { bus, sent } = recordingBus();
    const manager = new ComputeManager(dataSource, bus, records, new ComputeRpcClient(bus), {
      host,
      drivers,
      reportIntervalSeconds: 60,
      powerSyncIntervalSeconds: 60,
    });
    await manager.onApplicationBootstrap();
    managers.push(manager);
    return { manager, sent };
  }

  /** An instance the conductor placed on `host`, as build_and_run_instance finds it. */
  async function placed(host: string, flavor: InstanceFlavor) {
    const requestId = `req-${randomUUID()}`;
    const [instance] = await records.createInstances(
      { displayName: 'vm', projectId: 'p', userId: 'u', flavor, imageRef: randomUUID() },
      { requestId },
    );
    await records.update(instance.uuid, { host, node: host });
    return { uuid: instance.uuid, requestId };
  }

  /** An instance placed on `host` and built there by its agent. */
  async function built(manager: ComputeManager, host: string, flavor: InstanceFlavor) {
    const { uuid, requestId } = await placed(host, flavor);
    await manager.buildAndRunInstance({
      instanceUuid: uuid,
      requestId,
      node: host,
      attempt: 1,
      excludedHosts: [],
    });
    return uuid;
  }

  it('runs a flavor of a driver the host lacks on the fake driver, when the host offers fake', async () => {
    const fake = new FakeDriver();
    const { manager } = await agent('stand-in', [fake]);
    for (const driver of ['kvm', 'container']) {
      const uuid = await built(manager, 'stand-in', { ...FLAVOR, extra_specs: { 'novum:driver': driver } });
      expect(await records.get(uuid)).toMatchObject({
        vmState: VmState.ACTIVE,
        powerState: PowerState.RUNNING,
      });
      expect(fake.inspect(uuid)?.state).toBe(PowerState.RUNNING);
    }
  });

  it("counts the running guests of every driver in the node's running_vms", async () => {
    const container = Object.assign(new FakeDriver(), { name: 'container' }) as unknown as ComputeDriver;
    const fake = new FakeDriver();
    const { manager } = await agent('two-drivers', [container, fake]);
    for (const driver of ['container', 'kvm'])
      await built(manager, 'two-drivers', { ...FLAVOR, extra_specs: { 'novum:driver': driver } });
    // The node is reported at each start (and each heartbeat): a restarted agent finds both guests.
    await manager.onApplicationShutdown();
    await agent('two-drivers', [container, fake]);
    const node = await dataSource.getRepository(ComputeNodeEntity).findOneByOrFail({ host: 'two-drivers' });
    expect(node.runningVms).toBe(2);
  });

  it("names every driver's hypervisor type in the node's, each once", async () => {
    const runtime = (type: string) => {
      const driver = new FakeDriver();
      const own = driver.hostResources.bind(driver);
      return Object.assign(driver, {
        name: type,
        hostResources: async () => ({ ...(await own()), hypervisorType: type }),
      }) as unknown as ComputeDriver;
    };
    await agent('three-drivers', [runtime('runc'), runtime('QEMU'), runtime('runc')]);
    const node = await dataSource.getRepository(ComputeNodeEntity).findOneByOrFail({ host: 'three-drivers' });
    expect(node.hypervisorType).toBe('runc,QEMU');
  });

  it('reads an instance again for the power-state sync only when its guest differs from the listing', async () => {
    const fake = new FakeDriver();
    const { manager } = await agent('sync-reads', [fake]);
    const uuid = await built(manager, 'sync-reads', FLAVOR);
    const get = jest.spyOn(records, 'get');
    try {
      await manager.syncPowerStates();
      expect(get).not.toHaveBeenCalled();
      fake.simulatePowerState(uuid, PowerState.SHUTDOWN);
      await manager.syncPowerStates();
      expect(get.mock.calls).toEqual([[uuid]]);
      expect(await records.get(uuid)).toMatchObject({
        vmState: VmState.STOPPED,
        powerState: PowerState.SHUTDOWN,
      });
    } finally {
      get.mockRestore();
    }
  });

  it("saves the node's resources at a heartbeat only when they changed", async () => {
    const fake = new FakeDriver();
    const { manager } = await agent('quiet-node', [fake]);
    const report = () => (manager as unknown as { reportResources(): Promise<void> }).reportResources();
    const nodes = dataSource.getRepository(ComputeNodeEntity);
    const runningVms = async () => (await nodes.findOneByOrFail({ host: 'quiet-node' })).runningVms;
    await report();
    await nodes.update({ host: 'quiet-node' }, { runningVms: 99 });
    await report();
    expect(await runningVms()).toBe(99);
    await built(manager, 'quiet-node', FLAVOR);
    await report();
    expect(await runningVms()).toBe(1);
  });

  it('rebuilds an evacuated instance here, and its old host destroys the guest left there when back', async () => {
    const sourceDriver = new FakeDriver();
    const source = await agent('evac-src', [sourceDriver]);
    const uuid = await built(source.manager, 'evac-src', FLAVOR);
    const before = (await records.get(uuid))!;
    const destinationDriver = new FakeDriver();
    const destination = await agent('evac-dst', [destinationDriver]);
    // What the conductor does once the destination is claimed (the source agent being down).
    const migrationId = randomUUID();
    await records.update(uuid, { host: 'evac-dst', node: 'evac-dst', taskState: TaskState.REBUILDING });
    await recordMigration(dataSource, {
      uuid: migrationId,
      instance: before,
      type: 'evacuation',
      status: 'accepted',
      newFlavor: FLAVOR,
      destHost: 'evac-dst',
      destNode: 'evac-dst',
    });
    const migration = () => dataSource.getRepository(MigrationEntity).findOneByOrFail({ uuid: migrationId });

    await destination.manager.rebuildInstance({ instanceUuid: uuid, requestId: `req-${randomUUID()}` });
    expect(await records.get(uuid)).toMatchObject({
      host: 'evac-dst',
      vmState: VmState.ACTIVE,
      taskState: null,
    });
    expect(destinationDriver.inspect(uuid)?.state).toBe(PowerState.RUNNING);
    expect((await migration()).status).toBe('done');

    // The old host's agent starts again (its guest outlived it): the guest goes, the instance stays where it is.
    expect(sourceDriver.inspect(uuid)?.state).toBe(PowerState.RUNNING);
    await agent('evac-src', [sourceDriver]);
    expect(sourceDriver.inspect(uuid)).toBeUndefined();
    expect((await migration()).status).toBe('completed');
    expect(await records.get(uuid)).toMatchObject({ host: 'evac-dst', vmState: VmState.ACTIVE });
    expect(destinationDriver.inspect(uuid)?.state).toBe(PowerState.RUNNING);
  });

  it('without fake, a driver the host lacks fails the build, which goes back to the conductor', async () => {
    const container = Object.assign(new FakeDriver(), { name: 'container' }) as unknown as ComputeDriver;
    const { manager, sent } = await agent('containers-only', [container]);
    const uuid = await built(manager, 'containers-only', {
      ...FLAVOR,
      extra_specs: { 'novum:driver': 'kvm' },
    });
    expect(await records.get(uuid)).toMatchObject({ vmState: VmState.BUILDING, host: null });
    expect(sent).toEqual([
      expect.objectContaining({
        queue: 'conductor',
        payload: expect.objectContaining({
          excludedHosts: ['containers-only'],
          lastFault: 'Host containers-only does not offer the kvm driver.',
        }),
      }),
    ]);
  });

  it('does nothing for a redelivered rescue, rebuild, soft delete or restore whose task is over', async () => {
    const fake = new FakeDriver();
    const { manager } = await agent('redelivery', [fake]);
    const uuid = await built(manager, 'redelivery', FLAVOR);
    let rescues = 0;
    fake.failWhen(({ operation }) => {
      if (operation === 'rescue') rescues++;
      return undefined;
    });

    const act = async (
      task: string,
      run: (request: { instanceUuid: string; requestId: string }) => Promise<void>,
    ) => {
      const request = { instanceUuid: uuid, requestId: `req-${randomUUID()}` };
      expect(await records.update(uuid, { taskState: task }, { taskState: [null] })).toBe(true);
      await run(request);
      const done = await records.get(uuid);
      await run(request);
      const again = await records.get(uuid);
      expect(again?.version).toBe(done?.version);
      const action = (await records.actions(uuid)).find((a) => a.requestId === request.requestId)!;
      expect(await records.events(action.id)).toHaveLength(1);
      return again!;
    };
    expect(await act(TaskState.RESCUING, (r) => manager.rescueInstance(r))).toMatchObject({
      vmState: VmState.RESCUED,
    });
    expect(rescues).toBe(1);
    expect(await act(TaskState.UNRESCUING, (r) => manager.unrescueInstance(r))).toMatchObject({
      vmState: VmState.ACTIVE,
    });
    expect(await act(TaskState.REBUILDING, (r) => manager.rebuildInstance(r))).toMatchObject({
      vmState: VmState.ACTIVE,
    });
    expect(await act(TaskState.SOFT_DELETING, (r) => manager.softDeleteInstance(r))).toMatchObject({
      vmState: VmState.SOFT_DELETED,
      powerState: PowerState.SHUTDOWN,
    });
    expect(await act(TaskState.RESTORING, (r) => manager.restoreInstance(r))).toMatchObject({
      vmState: VmState.ACTIVE,
      powerState: PowerState.RUNNING,
    });
    // A method whose task the API did not set does nothing at all.
    const before = await records.get(uuid);
    await manager.shelveInstance({ instanceUuid: uuid, requestId: 'req-x' });
    await manager.confirmResize({ instanceUuid: uuid, requestId: 'req-y' });
    expect((await records.get(uuid))?.version).toBe(before?.version);
  });

  it("gives its relay's endpoint for a serial console, 501 for a driver without one, 400 for a guest without one", async () => {
    const relay = new SerialConsoleRelay({ address: '127.0.0.1', ticketSeconds: 60 });
    const fake = new FakeDriver();
    const { bus } = recordingBus();
    const manager = new ComputeManager(dataSource, bus, records, new ComputeRpcClient(bus), {
      host: 'consoles',
      drivers: [fake],
      reportIntervalSeconds: 60,
      powerSyncIntervalSeconds: 60,
      serialConsoleRelay: relay,
    });
    await manager.onApplicationBootstrap();
    managers.push(manager);
    const uuid = await built(manager, 'consoles', FLAVOR);
    const endpoint = await manager.getSerialConsole({ instanceUuid: uuid });
    expect(endpoint).toMatchObject({ host: '127.0.0.1', port: relay.port });
    expect(relay.verify(endpoint.internalAccessPath!)).toBe(uuid);
    fake.failNext('getSerialConsole', new ConsoleUnavailable(uuid, 'none'));
    await expect(manager.getSerialConsole({ instanceUuid: uuid })).rejects.toMatchObject({
      status: 400,
      message: 'Unavailable console type serial.',
    });
    fake.failNext('getSerialConsole', new NotSupportedByDriver('getSerialConsole', 'container'));
    await expect(manager.getSerialConsole({ instanceUuid: uuid })).rejects.toMatchObject({
      status: 501,
      message: 'The requested functionality is not supported.',
    });
    await manager.onApplicationShutdown();
  });
});
