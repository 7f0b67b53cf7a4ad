import { randomUUID } from 'node:crypto';
import { ApiError } from '@novum/common';
import { AllocationEntity, ComputeNodeEntity, ComputeServiceEntity, MigrationEntity } from '@novum/db';
import {
  claim,
  ComputeMethod,
  isServiceUp,
  MAX_BUILD_ATTEMPTS,
  NO_VALID_HOST,
  recordMigration,
  resourcesOf,
} from '@novum/compute';
import { DriverError, PowerState, TaskState } from '@novum/virt';
import { ComputeManager, ImageUpload, instanceSpecOf } from '../../apps/compute/compute-manager';
import { conductorWorker } from '../../apps/conductor/worker';
import { ControlPlane, SMALL_FLAVOR } from './support/control-plane';

/**
 * The compute control plane below the API on the fake driver, through the bus and the database exactly as
 * the compute API will drive it: the conductor's scheduler and atomic claims, the compute agents' state
 * transitions, reschedules, restarts and heartbeats. Runs on SQLite + in-process bus, or PostgreSQL +
 * RabbitMQ with NOVUM_TEST_MODE=production.
 */
jest.setTimeout(120_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const EXACT = { cpu: 1, ram: 1, disk: 1 };

async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}

async function node(plane: ControlPlane, name: string): Promise<ComputeNodeEntity> {
  return plane.dataSource
    .getRepository(ComputeNodeEntity)
    .findOneByOrFail({ hypervisorHostname: plane.hostName(name) });
}

/**
 * The instance's action events once each has its result (or as they are after 10 s): an agent finishes an
 * event after it saved the instance's new state, as Nova's wrap_instance_event does, so a settled instance
 * may still have its last event open for a moment.
 */
async function eventsOf(plane: ControlPlane, uuid: string) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const events = [];
    for (const action of await plane.records.actions(uuid)) {
      for (const event of await plane.records.events(action.id)) {
        events.push({ action: action.action, event: event.event, result: event.result, host: event.host });
      }
    }
    if (events.every((event) => event.result !== null) || Date.now() > deadline) return events;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('conductor, scheduler and compute agent', () => {
  let plane: ControlPlane;

  beforeAll(async () => {
    plane = await ControlPlane.start({ NOVUM_REPORT_INTERVAL: '1', NOVUM_SERVICE_DOWN_TIME: '3' });
  });

  afterAll(async () => {
    await plane?.close();
  });

  afterEach(async () => {
    for (const name of [...plane.agents.keys()]) await plane.stopAgent(name);
    // Hosts of earlier tests stay in the database; disabling them keeps each test's placement its own.
    await plane.dataSource
      .createQueryBuilder()
      .update(ComputeServiceEntity)
      .set({ disabled: true })
      .execute();
  });

  it('50 parallel builds against a host with room for 10: exactly 10 ACTIVE and 40 in ERROR with No valid host', async () => {
    plane.hypervisor('full', { vcpus: 10, memoryMb: 5120, localGb: 10 });
    await plane.startAgent('full', { allocationRatios: EXACT });

    const uuids = await Promise.all(Array.from({ length: 50 }, () => plane.createServer(SMALL_FLAVOR)));
    const instances = await Promise.all(uuids.map((uuid) => plane.settled(uuid, 60_000)));

    const active = instances.filter((i) => i.vmState === 'active');
    const failed = instances.filter((i) => i.vmState === 'error');
    expect(active).toHaveLength(10);
    expect(failed).toHaveLength(40);
    for (const instance of active) {
      expect(instance).toMatchObject({ host: plane.hostName('full'), powerState: PowerState.RUNNING });
      expect(instance.launchedAt).not.toBeNull();
    }
    for (const instance of failed) {
      expect(instance.host).toBeNull();
      expect(await plane.records.latestFault(instance.uuid)).toMatchObject({
        code: 500,
        message: NO_VALID_HOST,
      });
    }
    expect(await node(plane, 'full')).toMatchObject({ vcpusUsed: 10, memoryMbUsed: 5120, localGbUsed: 10 });
    const allocations = await plane.dataSource.getRepository(AllocationEntity).count();
    expect(allocations).toBe(10);
    expect(await plane.hypervisor('full').listInstances()).toHaveLength(10);

    // Deleting frees the claims: the freed room takes new builds.
    for (const instance of active.slice(0, 3)) {
      await plane.act(instance.uuid, ComputeMethod.TERMINATE_INSTANCE, TaskState.DELETING, 'delete');
    }
    for (const instance of active.slice(0, 3)) {
      const gone = await plane.settled(instance.uuid);
      expect(gone).toMatchObject({ vmState: 'deleted', powerState: PowerState.NOSTATE });
      expect(gone.deletedAt).not.toBeNull();
    }
    expect(await node(plane, 'full')).toMatchObject({ vcpusUsed: 7, memoryMbUsed: 3584 });
    expect(await plane.hypervisor('full').listInstances()).toHaveLength(7);
    const again = await plane.settled(await plane.createServer(SMALL_FLAVOR));
    expect(again.vmState).toBe('active');
  });

  it('50 concurrent claims on a node with room for 10: exactly 10 succeed, and the counters match', async () => {
    plane.hypervisor('race', { vcpus: 10, memoryMb: 10240, localGb: 100 });
    await plane.startAgent('race', { allocationRatios: EXACT });
    const raced = await node(plane, 'race');
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        claim(plane.dataSource, randomUUID(), raced.uuid, { vcpus: 1, memoryMb: 1024, diskGb: 1 }),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(10);
    expect(await node(plane, 'race')).toMatchObject({ vcpusUsed: 10, memoryMbUsed: 10240, localGbUsed: 10 });
    expect(await plane.dataSource.getRepository(AllocationEntity).countBy({ nodeUuid: raced.uuid })).toBe(10);
  });

  it('moves an instance through the compute manager transitions and records an event for each', async () => {
    await plane.startAgent('ops');
    const uuid = await plane.createServer(SMALL_FLAVOR);
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'active', powerState: PowerState.RUNNING });

    const steps: [string, string, string, string, PowerState][] = [
      [ComputeMethod.STOP_INSTANCE, TaskState.POWERING_OFF, 'stop', 'stopped', PowerState.SHUTDOWN],
      [ComputeMethod.START_INSTANCE, TaskState.POWERING_ON, 'start', 'active', PowerState.RUNNING],
      [ComputeMethod.PAUSE_INSTANCE, TaskState.PAUSING, 'pause', 'paused', PowerState.PAUSED],
      [ComputeMethod.UNPAUSE_INSTANCE, TaskState.UNPAUSING, 'unpause', 'active', PowerState.RUNNING],
      [ComputeMethod.SUSPEND_INSTANCE, TaskState.SUSPENDING, 'suspend', 'suspended', PowerState.SUSPENDED],
      [ComputeMethod.RESUME_INSTANCE, TaskState.RESUMING, 'resume', 'active', PowerState.RUNNING],
    ];
    for (const [method, task, action, vmState, powerState] of steps) {
      await plane.act(uuid, method as never, task, action);
      expect(await plane.settled(uuid)).toMatchObject({ vmState, powerState, taskState: null });
    }
    await plane.act(uuid, ComputeMethod.REBOOT_INSTANCE, TaskState.REBOOTING_HARD, 'reboot', {
      rebootType: 'HARD',
    });
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'active', powerState: PowerState.RUNNING });

    const events = await eventsOf(plane, uuid);
    expect(events.map((e) => `${e.action}:${e.event}:${e.result}`)).toEqual([
      'create:conductor_schedule_and_build_instances:Success',
      'create:compute_build_and_run_instance:Success',
      'stop:compute_stop_instance:Success',
      'start:compute_start_instance:Success',
      'pause:compute_pause_instance:Success',
      'unpause:compute_unpause_instance:Success',
      'suspend:compute_suspend_instance:Success',
      'resume:compute_resume_instance:Success',
      'reboot:compute_reboot_instance:Success',
    ]);
    const actions = await plane.records.actions(uuid);
    expect(actions.every((a) => a.finishTime !== null && a.message === null)).toBe(true);

    const host = plane.hostName('ops');
    const console = await plane.rpc.getConsoleOutput(host, { instanceUuid: uuid, length: 2 });
    // Nova's tail: the last 2 pieces of the text split at newlines (a trailing newline is one of them).
    expect(console.split('\n')).toHaveLength(2);
    expect(console).toContain('login:');
    // The agent's 404 reaches the compute API as its own NotFoundError (a 404 fault, not a 500): the fuzzing
    // test once caught a guest gone mid-unshelve answered with a 500.
    const missing = plane.rpc.getConsoleOutput(host, { instanceUuid: randomUUID() });
    await expect(missing).rejects.toBeInstanceOf(ApiError);
    await expect(missing).rejects.toMatchObject({ status: 404 });
  });

  it('a failing action leaves the vm_state, ends the task and records a fault and an Error event', async () => {
    await plane.startAgent('faulty');
    const uuid = await plane.createServer(SMALL_FLAVOR);
    await plane.settled(uuid);
    plane.hypervisor('faulty').failNext('pause', new DriverError('The hypervisor refused to pause.'));

    await plane.act(uuid, ComputeMethod.PAUSE_INSTANCE, TaskState.PAUSING, 'pause');
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'active', taskState: null });
    expect(await plane.records.latestFault(uuid)).toMatchObject({
      message: 'The hypervisor refused to pause.',
    });
    const [pause] = await plane.records.actions(uuid).then((all) => all.filter((a) => a.action === 'pause'));
    expect(pause.message).toBe('Error');
    expect(await plane.records.events(pause.id)).toEqual([
      expect.objectContaining({
        result: 'Error',
        details: 'The hypervisor refused to pause.',
        traceback: null,
      }),
    ]);
  });

  it('a redelivered build or action does nothing twice', async () => {
    await plane.startAgent('twice');
    let spawns = 0;
    const stop = plane.hypervisor('twice').failWhen(({ operation }) => {
      if (operation === 'spawn') spawns++;
      return undefined;
    });
    try {
      const uuid = await plane.createServer(SMALL_FLAVOR);
      const active = await plane.settled(uuid);
      const [create] = await plane.records.actions(uuid);
      await plane.rpc.buildInstances({ instanceUuids: [uuid], requestId: create.requestId });
      await plane.rpc.buildAndRunInstance(active.host!, {
        instanceUuid: uuid,
        requestId: create.requestId,
        node: active.node!,
        attempt: 1,
        excludedHosts: [],
      });
      await sleep(300);
      expect(spawns).toBe(1);
      expect(await plane.instance(uuid)).toMatchObject({ vmState: 'active', version: active.version });
      expect(await plane.dataSource.getRepository(AllocationEntity).countBy({ instanceUuid: uuid })).toBe(1);

      await plane.act(uuid, ComputeMethod.STOP_INSTANCE, TaskState.POWERING_OFF, 'stop');
      const stopped = await plane.settled(uuid);
      const stop = (await plane.records.actions(uuid)).find((a) => a.action === 'stop')!;
      await plane.rpc.instanceAction(active.host!, ComputeMethod.STOP_INSTANCE, {
        instanceUuid: uuid,
        requestId: stop.requestId,
      });
      await sleep(300);
      expect(await plane.records.events(stop.id)).toHaveLength(1);
      expect(await plane.instance(uuid)).toMatchObject({ vmState: 'stopped', version: stopped.version });
    } finally {
      stop();
    }
  });

  it('reschedules a build whose spawn fails to another host, and frees the failed claim', async () => {
    // The bigger host wins every weigher, so the first attempt lands there, and fails.
    const broken = plane.hypervisor('broken', { vcpus: 64, memoryMb: 65536, localGb: 1000 });
    plane.hypervisor('sound', { vcpus: 8, memoryMb: 8192, localGb: 100 });
    const stop = broken.failWhen(({ operation }) =>
      operation === 'spawn' ? new DriverError('Injected spawn failure.') : undefined,
    );
    try {
      await plane.startAgent('broken');
      await plane.startAgent('sound');

      const uuid = await plane.createServer(SMALL_FLAVOR);
      const instance = await plane.settled(uuid);
      expect(instance).toMatchObject({ vmState: 'active', host: plane.hostName('sound') });
      expect(await eventsOf(plane, uuid)).toEqual([
        expect.objectContaining({ event: 'conductor_schedule_and_build_instances', result: 'Success' }),
        expect.objectContaining({
          event: 'compute_build_and_run_instance',
          result: 'Error',
          host: plane.hostName('broken'),
        }),
        expect.objectContaining({ event: 'conductor_schedule_and_build_instances', result: 'Success' }),
        expect.objectContaining({
          event: 'compute_build_and_run_instance',
          result: 'Success',
          host: plane.hostName('sound'),
        }),
      ]);
      expect(await node(plane, 'broken')).toMatchObject({ vcpusUsed: 0, memoryMbUsed: 0, failedBuilds: 1 });
      expect(await node(plane, 'sound')).toMatchObject({ vcpusUsed: 1, memoryMbUsed: 512, failedBuilds: 0 });
      expect(await broken.listInstances()).toEqual([]);
    } finally {
      stop();
    }
  });

  it(`gives up after ${MAX_BUILD_ATTEMPTS} attempts with the last failure in the fault`, async () => {
    const stops = [];
    for (const name of ['bad-1', 'bad-2', 'bad-3', 'bad-4']) {
      const driver = plane.hypervisor(name);
      stops.push(
        driver.failWhen(({ operation }) =>
          operation === 'spawn' ? new DriverError(`Spawn failed on ${name}.`) : undefined,
        ),
      );
      await plane.startAgent(name);
    }
    try {
      const uuid = await plane.createServer(SMALL_FLAVOR);
      const instance = await plane.settled(uuid);
      expect(instance).toMatchObject({ vmState: 'error', host: null, taskState: null });
      const fault = await plane.records.latestFault(uuid);
      expect(fault?.message).toMatch(
        new RegExp(
          `^Exceeded maximum number of retries. Exceeded max scheduling attempts ${MAX_BUILD_ATTEMPTS} ` +
            `for instance ${uuid}. Last exception: Spawn failed on bad-\\d.$`,
        ),
      );
      const builds = (await eventsOf(plane, uuid)).filter(
        (e) => e.event === 'compute_build_and_run_instance',
      );
      expect(builds).toHaveLength(MAX_BUILD_ATTEMPTS);
      expect(new Set(builds.map((b) => b.host)).size).toBe(MAX_BUILD_ATTEMPTS);
      expect(await plane.dataSource.getRepository(AllocationEntity).countBy({ instanceUuid: uuid })).toBe(0);
    } finally {
      stops.forEach((stop) => stop());
    }
  });

  it('runs any novum:driver on hosts offering fake (the fake stands in), and honours different_host', async () => {
    await plane.startAgent('a');
    await plane.startAgent('b');
    for (const driver of ['kvm', 'container']) {
      const standIn = await plane.settled(
        await plane.createServer({ ...SMALL_FLAVOR, extra_specs: { 'novum:driver': driver } }),
      );
      expect(standIn).toMatchObject({ vmState: 'active', powerState: PowerState.RUNNING });
      const name = standIn.host === plane.hostName('a') ? 'a' : 'b';
      expect(plane.hypervisor(name).inspect(standIn.uuid)?.flavor.extraSpecs).toEqual({
        'novum:driver': driver,
      });
      await plane.act(standIn.uuid, ComputeMethod.STOP_INSTANCE, TaskState.POWERING_OFF, 'stop');
      expect(await plane.settled(standIn.uuid)).toMatchObject({ vmState: 'stopped' });
    }

    const fake = await plane.settled(
      await plane.createServer({ ...SMALL_FLAVOR, extra_specs: { 'novum:driver': 'fake' } }),
    );
    expect(fake.vmState).toBe('active');
    for (let i = 0; i < 4; i++) {
      const apart = await plane.settled(
        await plane.createServer(SMALL_FLAVOR, { schedulerHints: { different_host: [fake.uuid] } }),
      );
      expect(apart.vmState).toBe('active');
      expect(apart.host).not.toBe(fake.host);
      const together = await plane.settled(
        await plane.createServer(SMALL_FLAVOR, { schedulerHints: { same_host: [fake.uuid] } }),
      );
      expect(together.host).toBe(fake.host);
    }
  });

  it('keeps anti-affinity members apart and affinity members together, also when built in parallel', async () => {
    for (const name of ['g1', 'g2', 'g3']) await plane.startAgent(name);
    const apart = await plane.createGroup('anti-affinity');
    const spread = await Promise.all(
      [1, 2, 3].map(() => plane.createServer(SMALL_FLAVOR, { schedulerHints: { group: apart } })),
    );
    const placed = await Promise.all(spread.map((uuid) => plane.settled(uuid)));
    expect(placed.map((i) => i.vmState)).toEqual(['active', 'active', 'active']);
    expect(new Set(placed.map((i) => i.host)).size).toBe(3);
    const fourth = await plane.settled(
      await plane.createServer(SMALL_FLAVOR, { schedulerHints: { group: apart } }),
    );
    expect(fourth.vmState).toBe('error');

    const two = await plane.createGroup('anti-affinity', { max_server_per_host: 2 });
    const pairs = await Promise.all(
      Array.from({ length: 6 }, () => plane.createServer(SMALL_FLAVOR, { schedulerHints: { group: two } })),
    );
    const paired = await Promise.all(pairs.map((uuid) => plane.settled(uuid)));
    expect(paired.every((i) => i.vmState === 'active')).toBe(true);
    const perHost = new Map<string, number>();
    for (const i of paired) perHost.set(i.host!, (perHost.get(i.host!) ?? 0) + 1);
    expect([...perHost.values()]).toEqual([2, 2, 2]);

    const together = await plane.createGroup('affinity');
    const packed = await Promise.all(
      Array.from({ length: 4 }, () =>
        plane.createServer(SMALL_FLAVOR, { schedulerHints: { group: together } }),
      ),
    );
    const hosts = await Promise.all(packed.map(async (uuid) => (await plane.settled(uuid)).host));
    expect(new Set(hosts).size).toBe(1);
    expect(hosts[0]).not.toBeNull();
  });

  it("keeps anti-affinity when two conductors race: the agent's late check reschedules the loser", async () => {
    const second = await conductorWorker.start(plane.config);
    try {
      for (const name of ['r1', 'r2', 'r3']) await plane.startAgent(name);
      for (let round = 0; round < 4; round++) {
        const group = await plane.createGroup('anti-affinity');
        const members = await Promise.all(
          [1, 2, 3].map(() => plane.createServer(SMALL_FLAVOR, { schedulerHints: { group } })),
        );
        const placed = await Promise.all(members.map((uuid) => plane.settled(uuid)));
        const active = placed.filter((i) => i.vmState === 'active');
        // A member may lose every race and end in error; the ones that run never share a host.
        expect(active.length).toBeGreaterThanOrEqual(2);
        expect(new Set(active.map((i) => i.host)).size).toBe(active.length);
      }
    } finally {
      for (const closable of second) await closable.close();
    }
  });

  it('an agent stopped and started again re-adopts its instances without losing or duplicating one', async () => {
    const hypervisor = plane.hypervisor('restart');
    await plane.startAgent('restart');
    const uuids = await Promise.all(Array.from({ length: 5 }, () => plane.createServer(SMALL_FLAVOR)));
    for (const uuid of uuids) expect((await plane.settled(uuid)).vmState).toBe('active');
    await plane.act(uuids[0], ComputeMethod.STOP_INSTANCE, TaskState.POWERING_OFF, 'stop');
    expect((await plane.settled(uuids[0])).vmState).toBe('stopped');
    const before = await node(plane, 'restart');

    await plane.stopAgent('restart');
    // While the agent is away: one guest vanishes, one crashes, and one appears that no instance knows.
    hypervisor.simulateLoss(uuids[1]);
    hypervisor.simulatePowerState(uuids[2], PowerState.CRASHED);
    const stranger = randomUUID();
    await hypervisor.spawn(
      {
        uuid: stranger,
        name: 'stranger',
        hostname: 'stranger',
        projectId: 'p',
        userId: 'u',
        flavor: { vcpus: 1, memoryMb: 64, rootGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {} },
        imageRef: 'i',
        imageProperties: {},
        metadata: {},
        configDrive: false,
      },
      {
        id: 'i',
        diskFormat: 'raw',
        containerFormat: 'bare',
        minDiskGb: 0,
        minRamMb: 0,
        properties: {},
        open: async () => {
          throw new Error('unused');
        },
      },
      [],
    );
    // A build placed on the host while its agent is away (not yet down) waits in the host's queue.
    const queued = await plane.createServer(SMALL_FLAVOR);
    await waitUntil(async () => (await plane.instance(queued)).host === plane.hostName('restart'));
    expect(await plane.instance(queued)).toMatchObject({ vmState: 'building', taskState: 'scheduling' });
    await plane.startAgent('restart');
    expect(await plane.settled(queued)).toMatchObject({ vmState: 'active', powerState: PowerState.RUNNING });

    expect(await plane.instance(uuids[0])).toMatchObject({
      vmState: 'stopped',
      powerState: PowerState.SHUTDOWN,
    });
    expect(await plane.instance(uuids[1])).toMatchObject({
      vmState: 'error',
      powerState: PowerState.NOSTATE,
    });
    expect((await plane.records.latestFault(uuids[1]))?.message).toBe(
      `Instance ${uuids[1]} could not be found on host ${plane.hostName('restart')}.`,
    );
    expect(await plane.instance(uuids[2])).toMatchObject({
      vmState: 'active',
      powerState: PowerState.CRASHED,
    });
    for (const uuid of uuids.slice(3)) {
      expect(await plane.instance(uuid)).toMatchObject({ vmState: 'active', powerState: PowerState.RUNNING });
    }
    // Nothing spawned twice, and the stranger is left alone.
    expect((await hypervisor.listInstances()).sort()).toEqual(
      [uuids[0], uuids[2], uuids[3], uuids[4], stranger, queued].sort(),
    );
    expect(await node(plane, 'restart')).toMatchObject({
      vcpusUsed: before.vcpusUsed + 1,
      memoryMbUsed: before.memoryMbUsed + 512,
    });

    // The re-adopted instances answer again, and the power sync stops the crashed one.
    await plane.act(uuids[3], ComputeMethod.STOP_INSTANCE, TaskState.POWERING_OFF, 'stop');
    expect((await plane.settled(uuids[3])).vmState).toBe('stopped');
    const manager = plane.agents.get('restart')!.get(ComputeManager);
    await manager.syncPowerStates();
    expect(await plane.instance(uuids[2])).toMatchObject({
      vmState: 'stopped',
      powerState: PowerState.CRASHED,
    });
  });

  it("the power-state sync loop stops an instance whose guest shut down on its own, and powers off a stopped one's running guest", async () => {
    const hypervisor = plane.hypervisor('sync');
    await plane.startAgent('sync', { powerSyncIntervalSeconds: 1 });
    const [off, on] = [await plane.createServer(SMALL_FLAVOR), await plane.createServer(SMALL_FLAVOR)];
    await Promise.all([plane.settled(off), plane.settled(on)]);
    await plane.act(on, ComputeMethod.STOP_INSTANCE, TaskState.POWERING_OFF, 'stop');
    expect((await plane.settled(on)).vmState).toBe('stopped');

    hypervisor.simulatePowerState(off, PowerState.SHUTDOWN);
    hypervisor.simulatePowerState(on, PowerState.RUNNING);
    await waitUntil(async () => (await plane.instance(off)).vmState === 'stopped', 5_000);
    expect(await plane.instance(off)).toMatchObject({ powerState: PowerState.SHUTDOWN, taskState: null });
    await waitUntil(async () => hypervisor.inspect(on)?.state === PowerState.SHUTDOWN, 5_000);
    expect(await plane.instance(on)).toMatchObject({ vmState: 'stopped', powerState: PowerState.SHUTDOWN });
  });

  it('a host whose agent falls silent turns down after the service-down time and gets no builds', async () => {
    await plane.startAgent('silent');
    const services = plane.dataSource.getRepository(ComputeServiceEntity);
    const service = () =>
      services.findOneByOrFail({ host: plane.hostName('silent'), binary: 'nova-compute' });
    expect(isServiceUp(await service(), Date.now(), plane.config.serviceDownTimeSeconds)).toBe(true);
    const count = (await service()).reportCount;
    await sleep(1_500);
    expect((await service()).reportCount).toBeGreaterThan(count);

    await plane.stopAgent('silent');
    await sleep(3_500);
    expect(isServiceUp(await service(), Date.now(), plane.config.serviceDownTimeSeconds)).toBe(false);
    const refused = await plane.settled(await plane.createServer(SMALL_FLAVOR));
    expect(refused.vmState).toBe('error');

    await plane.startAgent('silent');
    expect(isServiceUp(await service(), Date.now(), plane.config.serviceDownTimeSeconds)).toBe(true);
    expect((await plane.settled(await plane.createServer(SMALL_FLAVOR))).vmState).toBe('active');
  });

  it('registers the conductor and the scheduler, and the nodes with their drivers and resources', async () => {
    await plane.startAgent('report');
    const services = await plane.dataSource
      .getRepository(ComputeServiceEntity)
      .findBy({ host: plane.config.host });
    expect(services.map((s) => s.binary).sort()).toEqual(['nova-conductor', 'nova-scheduler']);
    expect(await node(plane, 'report')).toMatchObject({
      host: plane.hostName('report'),
      hypervisorType: 'fake',
      drivers: ['fake'],
      cpuAllocationRatio: 16,
      ramAllocationRatio: 1.5,
      diskAllocationRatio: 1,
      vcpus: 1000,
    });
  });
});

describe('compute agent: rebuild, resize, rescue, shelve, snapshot, soft delete and the calls', () => {
  let plane: ControlPlane;
  const uploads: { imageId: string; diskFormat: string; body: string }[] = [];
  const imageUpload: ImageUpload = async (imageId, snapshot) => {
    const chunks: Buffer[] = [];
    for await (const chunk of snapshot.data) chunks.push(Buffer.from(chunk as Buffer));
    uploads.push({ imageId, diskFormat: snapshot.diskFormat, body: Buffer.concat(chunks).toString() });
  };
  const NEW_FLAVOR = { ...SMALL_FLAVOR, id: '2', name: 'f1.medium', vcpus: 2, memory_mb: 1024, root_gb: 2 };

  beforeAll(async () => {
    plane = await ControlPlane.start({ NOVUM_REPORT_INTERVAL: '1', NOVUM_SERVICE_DOWN_TIME: '3' });
  });

  afterAll(async () => {
    await plane?.close();
  });

  afterEach(async () => {
    for (const name of [...plane.agents.keys()]) await plane.stopAgent(name);
    await plane.dataSource
      .createQueryBuilder()
      .update(ComputeServiceEntity)
      .set({ disabled: true })
      .execute();
  });

  const allocations = async (consumer: string) =>
    plane.dataSource.getRepository(AllocationEntity).findBy({ instanceUuid: consumer });

  /** What the API does for resize / migrate: task resize_prep on condition, the action, the call. */
  async function migrate(uuid: string, flavor?: typeof NEW_FLAVOR) {
    const requestId = `req-${randomUUID()}`;
    expect(
      await plane.records.update(uuid, { taskState: TaskState.RESIZE_PREP }, { taskState: [null] }),
    ).toBe(true);
    await plane.records.startAction(uuid, flavor ? 'resize' : 'migrate', requestId);
    return plane.rpc.migrateServer({ instanceUuid: uuid, requestId, flavor });
  }

  it('rebuilds onto the new image; a stopped server stays stopped; events for each', async () => {
    await plane.startAgent('rebuild');
    const hypervisor = plane.hypervisor('rebuild');
    const uuid = await plane.createServer(SMALL_FLAVOR);
    await plane.settled(uuid);
    const image = randomUUID();
    await plane.records.update(uuid, { imageRef: image });
    await plane.act(uuid, ComputeMethod.REBUILD_INSTANCE, TaskState.REBUILDING, 'rebuild', {
      adminPassword: 'secret',
      preserveEphemeral: true,
    });
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'active', powerState: PowerState.RUNNING });
    expect(hypervisor.inspect(uuid)?.imageRef).toBe(image);

    await plane.act(uuid, ComputeMethod.STOP_INSTANCE, TaskState.POWERING_OFF, 'stop');
    await plane.settled(uuid);
    const second = randomUUID();
    await plane.records.update(uuid, { imageRef: second });
    await plane.act(uuid, ComputeMethod.REBUILD_INSTANCE, TaskState.REBUILDING, 'rebuild');
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'stopped', powerState: PowerState.SHUTDOWN });
    expect(hypervisor.inspect(uuid)).toMatchObject({ imageRef: second, state: PowerState.SHUTDOWN });
    const rebuilds = (await eventsOf(plane, uuid)).filter((e) => e.action === 'rebuild');
    expect(rebuilds.map((e) => `${e.event}:${e.result}`)).toEqual([
      'compute_rebuild_instance:Success',
      'compute_rebuild_instance:Success',
    ]);

    // A failed rebuild is ERROR with a fault; a rebuild from ERROR brings it back.
    hypervisor.failNext('rebuild', new DriverError('The disk could not be re-created.'));
    await plane.act(uuid, ComputeMethod.REBUILD_INSTANCE, TaskState.REBUILDING, 'rebuild');
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'error', taskState: null });
    expect((await plane.records.latestFault(uuid))?.message).toBe('The disk could not be re-created.');
    await plane.act(uuid, ComputeMethod.REBUILD_INSTANCE, TaskState.REBUILDING, 'rebuild');
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'active', powerState: PowerState.RUNNING });
  });

  it('resizes on the same host with both claims held until confirm, and reverts to the old flavor', async () => {
    plane.hypervisor('resize', { vcpus: 8, memoryMb: 8192, localGb: 100 });
    await plane.startAgent('resize', { allocationRatios: EXACT });
    const hypervisor = plane.hypervisor('resize');
    const uuid = await plane.createServer(SMALL_FLAVOR);
    await plane.settled(uuid);

    const placed = await migrate(uuid, NEW_FLAVOR);
    expect(placed?.migrationId).toBeDefined();
    const resized = await plane.settled(uuid);
    expect(resized).toMatchObject({ vmState: 'resized', host: plane.hostName('resize'), flavor: NEW_FLAVOR });
    expect(JSON.parse(resized.systemMetadata.old_flavor)).toEqual(SMALL_FLAVOR);
    expect(hypervisor.inspect(uuid)).toMatchObject({ resizePending: true, state: PowerState.RUNNING });
    expect(await node(plane, 'resize')).toMatchObject({ vcpusUsed: 3, memoryMbUsed: 1536, localGbUsed: 3 });

    await plane.act(uuid, ComputeMethod.CONFIRM_RESIZE, TaskState.RESIZE_CONFIRMING, 'confirmResize');
    const confirmed = await plane.settled(uuid);
    expect(confirmed).toMatchObject({ vmState: 'active', flavor: NEW_FLAVOR });
    expect(confirmed.systemMetadata.migration_id).toBeUndefined();
    expect(await node(plane, 'resize')).toMatchObject({ vcpusUsed: 2, memoryMbUsed: 1024, localGbUsed: 2 });
    expect(await allocations(uuid)).toHaveLength(1);
    expect(await allocations(placed!.migrationId)).toHaveLength(0);
    expect(hypervisor.inspect(uuid)?.resizePending).toBe(false);

    // Back down, then revert: the flavor and the claims are as before the resize.
    await plane.act(uuid, ComputeMethod.STOP_INSTANCE, TaskState.POWERING_OFF, 'stop');
    await plane.settled(uuid);
    await migrate(uuid, SMALL_FLAVOR);
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'resized', flavor: SMALL_FLAVOR });
    expect(hypervisor.inspect(uuid)?.state).toBe(PowerState.SHUTDOWN);
    await plane.act(uuid, ComputeMethod.REVERT_RESIZE, TaskState.RESIZE_REVERTING, 'revertResize');
    expect(await plane.settled(uuid)).toMatchObject({
      vmState: 'stopped',
      flavor: NEW_FLAVOR,
      powerState: PowerState.SHUTDOWN,
    });
    expect(await node(plane, 'resize')).toMatchObject({ vcpusUsed: 2, memoryMbUsed: 1024, localGbUsed: 2 });
    expect(
      (await eventsOf(plane, uuid)).filter((e) => /resize|migrate/.test(e.event)).map((e) => e.event),
    ).toEqual([
      'conductor_migrate_server',
      'compute_resize_instance',
      'compute_confirm_resize',
      'conductor_migrate_server',
      'compute_resize_instance',
      'compute_revert_resize',
    ]);
  });

  it('cold-migrates to another host (never its own), confirms and reverts across hosts, 400 without a host', async () => {
    const [one, two] = [plane.hypervisor('mig-1'), plane.hypervisor('mig-2')];
    await plane.startAgent('mig-1');
    const uuid = await plane.createServer(SMALL_FLAVOR);
    expect((await plane.settled(uuid)).host).toBe(plane.hostName('mig-1'));

    // The only host is the server's own: No valid host, the task ends with a fault.
    await expect(migrate(uuid)).rejects.toMatchObject({ status: 400, message: NO_VALID_HOST });
    expect(await plane.instance(uuid)).toMatchObject({ vmState: 'active', taskState: null });
    expect((await plane.records.latestFault(uuid))?.message).toBe(NO_VALID_HOST);

    await plane.startAgent('mig-2');
    // What the guest wrote on its disk goes with it (over the source's disk transfer), and stays on the
    // source until confirm.
    one.writeDisk(uuid, 'written on mig-1\n');
    const placed = await migrate(uuid);
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'resized', host: plane.hostName('mig-2') });
    expect(one.inspect(uuid)).toMatchObject({ state: PowerState.SHUTDOWN, disk: 'written on mig-1\n' });
    expect(two.inspect(uuid)).toMatchObject({ state: PowerState.RUNNING, disk: 'written on mig-1\n' });
    two.writeDisk(uuid, 'written on mig-2 before the revert\n');
    expect(await allocations(placed!.migrationId)).toEqual([
      expect.objectContaining({ nodeUuid: (await node(plane, 'mig-2')).uuid }),
    ]);

    await plane.act(uuid, ComputeMethod.REVERT_RESIZE, TaskState.RESIZE_REVERTING, 'revertResize');
    expect(await plane.settled(uuid)).toMatchObject({
      vmState: 'active',
      host: plane.hostName('mig-1'),
      node: plane.hostName('mig-1'),
      powerState: PowerState.RUNNING,
    });
    expect(two.inspect(uuid)).toBeUndefined();
    expect(one.inspect(uuid)).toMatchObject({ state: PowerState.RUNNING, disk: 'written on mig-1\n' });
    expect(await node(plane, 'mig-2')).toMatchObject({ vcpusUsed: 0 });

    one.writeDisk(uuid, 'written on mig-1 after the revert\n');
    await migrate(uuid);
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'resized', host: plane.hostName('mig-2') });
    await plane.act(uuid, ComputeMethod.CONFIRM_RESIZE, TaskState.RESIZE_CONFIRMING, 'confirmResize');
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'active', host: plane.hostName('mig-2') });
    expect(two.inspect(uuid)?.disk).toBe('written on mig-1\nwritten on mig-1 after the revert\n');
    expect(one.inspect(uuid)).toBeUndefined();

    // Disks that cannot be exported fail the migration: the guest runs on where it was, nothing elsewhere.
    two.failNext('exportDisks');
    await migrate(uuid);
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'active', host: plane.hostName('mig-2') });
    expect((await plane.records.latestFault(uuid))?.message).toBe('Injected failure of exportDisks.');
    expect(two.inspect(uuid)?.state).toBe(PowerState.RUNNING);
    expect(one.inspect(uuid)).toBeUndefined();
    expect(await node(plane, 'mig-1')).toMatchObject({ vcpusUsed: 0 });
    expect(await node(plane, 'mig-2')).toMatchObject({ vcpusUsed: 1, memoryMbUsed: 512 });

    // Still works on the new host; and deleting frees everything.
    await plane.act(uuid, ComputeMethod.TERMINATE_INSTANCE, TaskState.DELETING, 'delete');
    expect((await plane.settled(uuid)).vmState).toBe('deleted');
    expect(await node(plane, 'mig-2')).toMatchObject({ vcpusUsed: 0 });
  });

  /** What the API does for os-migrateLive: task migrating on condition, the action, the call. */
  async function liveMigrate(uuid: string, host?: string) {
    const requestId = `req-${randomUUID()}`;
    expect(await plane.records.update(uuid, { taskState: TaskState.MIGRATING }, { taskState: [null] })).toBe(
      true,
    );
    await plane.records.startAction(uuid, 'live-migration', requestId);
    return plane.rpc.liveMigrateInstance({ instanceUuid: uuid, requestId, ...(host ? { host } : {}) });
  }
  const liveMigrations = (uuid: string) =>
    plane.dataSource
      .getRepository(MigrationEntity)
      .find({ where: { instanceUuid: uuid, migrationType: 'live-migration' }, order: { id: 'ASC' } });

  it('live-migrates a running server: the claim moves, the source is emptied; a failure rolls back', async () => {
    const [one, two] = [plane.hypervisor('live-1'), plane.hypervisor('live-2')];
    await plane.startAgent('live-1');
    const uuid = await plane.createServer(SMALL_FLAVOR);
    expect((await plane.settled(uuid)).host).toBe(plane.hostName('live-1'));

    // Alone, or to its own host: a 400, the task ended with a fault, the migration `error`.
    await expect(liveMigrate(uuid)).rejects.toMatchObject({ status: 400, message: NO_VALID_HOST });
    expect(await plane.instance(uuid)).toMatchObject({ vmState: 'active', taskState: null });
    await expect(liveMigrate(uuid, plane.hostName('live-1'))).rejects.toMatchObject({
      status: 400,
      message: `Unable to migrate instance (${uuid}) to current host (${plane.hostName('live-1')}).`,
    });
    expect((await liveMigrations(uuid)).map((m) => m.status)).toEqual(['error', 'error']);

    await plane.startAgent('live-2');
    const placed = await liveMigrate(uuid, plane.hostName('live-2'));
    expect(await plane.settled(uuid)).toMatchObject({
      vmState: 'active',
      host: plane.hostName('live-2'),
      node: plane.hostName('live-2'),
      powerState: PowerState.RUNNING,
    });
    expect(one.inspect(uuid)).toBeUndefined();
    expect(two.inspect(uuid)?.state).toBe(PowerState.RUNNING);
    expect(await allocations(uuid)).toEqual([
      expect.objectContaining({ nodeUuid: (await node(plane, 'live-2')).uuid }),
    ]);
    expect(await allocations(placed!.migrationId)).toEqual([]);
    expect(await node(plane, 'live-1')).toMatchObject({ vcpusUsed: 0, memoryMbUsed: 0 });
    expect(await node(plane, 'live-2')).toMatchObject({ vcpusUsed: 1, memoryMbUsed: 512 });
    // The source marks the migration completed once the destination's post step has answered, as Nova's
    // _post_live_migration does: the server may show settled on the destination a moment before.
    await waitUntil(async () => (await liveMigrations(uuid)).pop()?.status !== 'running');
    expect((await liveMigrations(uuid)).pop()).toMatchObject({
      uuid: placed!.migrationId,
      status: 'completed',
      sourceCompute: plane.hostName('live-1'),
      destCompute: plane.hostName('live-2'),
    });
    const events = (await eventsOf(plane, uuid)).filter((e) => e.action === 'live-migration');
    expect(events.slice(-4).map((e) => `${e.event}:${e.result}`)).toEqual([
      'conductor_live_migrate_instance:Success',
      'compute_live_migration:Success',
      'compute_pre_live_migration:Success',
      'compute_post_live_migration_at_destination:Success',
    ]);

    // The copy fails: the guest runs on where it was, the destination is emptied, the migration `failed`.
    two.failNext('liveMigration');
    await liveMigrate(uuid, plane.hostName('live-1'));
    expect(await plane.settled(uuid)).toMatchObject({
      vmState: 'active',
      host: plane.hostName('live-2'),
      powerState: PowerState.RUNNING,
    });
    expect(one.inspect(uuid)).toBeUndefined();
    expect(two.inspect(uuid)?.state).toBe(PowerState.RUNNING);
    expect((await plane.records.latestFault(uuid))?.message).toBe('Injected failure of liveMigration.');
    expect((await liveMigrations(uuid)).pop()?.status).toBe('failed');
    expect(await node(plane, 'live-1')).toMatchObject({ vcpusUsed: 0 });
    // The destination cannot prepare the guest: `error`, nothing moved.
    one.failNext('preLiveMigration');
    await liveMigrate(uuid);
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'active', host: plane.hostName('live-2') });
    expect((await liveMigrations(uuid)).pop()?.status).toBe('error');
    expect(one.inspect(uuid)).toBeUndefined();

    // A paused server arrives paused; the scheduler picks the host.
    await plane.act(uuid, ComputeMethod.PAUSE_INSTANCE, TaskState.PAUSING, 'pause');
    expect((await plane.settled(uuid)).vmState).toBe('paused');
    await liveMigrate(uuid);
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'paused', host: plane.hostName('live-1') });
    expect(one.inspect(uuid)?.state).toBe(PowerState.PAUSED);
    expect(two.inspect(uuid)).toBeUndefined();
    await plane.act(uuid, ComputeMethod.TERMINATE_INSTANCE, TaskState.DELETING, 'delete');
    expect((await plane.settled(uuid)).vmState).toBe('deleted');
    expect(await node(plane, 'live-1')).toMatchObject({ vcpusUsed: 0 });
  });

  it('remakes the guest from its image on the destination when the source cannot export its disks', async () => {
    const one = plane.hypervisor('nox-1', { capabilities: { migrateDisks: false } });
    const two = plane.hypervisor('nox-2');
    await plane.startAgent('nox-1');
    const uuid = await plane.createServer(SMALL_FLAVOR);
    expect((await plane.settled(uuid)).host).toBe(plane.hostName('nox-1'));
    one.writeDisk(uuid, 'not carried\n');
    await plane.startAgent('nox-2');
    await migrate(uuid);
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'resized', host: plane.hostName('nox-2') });
    expect(two.inspect(uuid)).toMatchObject({ state: PowerState.RUNNING, disk: '' });
    await plane.act(uuid, ComputeMethod.CONFIRM_RESIZE, TaskState.RESIZE_CONFIRMING, 'confirmResize');
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'active', host: plane.hostName('nox-2') });
    expect(one.inspect(uuid)).toBeUndefined();
  });

  it('ends a live migration its source agent stopped in the middle of, when that agent starts again', async () => {
    const [one, two] = [plane.hypervisor('halt-1'), plane.hypervisor('halt-2')];
    await plane.startAgent('halt-1');
    const uuid = await plane.createServer(SMALL_FLAVOR);
    const instance = await plane.settled(uuid);
    await plane.startAgent('halt-2');
    await plane.stopAgent('halt-1');
    // As the agent left it: the task `migrating`, the migration `running`, the destination claimed and waiting.
    const migrationId = randomUUID();
    await plane.records.update(uuid, { taskState: TaskState.MIGRATING });
    expect(
      await claim(
        plane.dataSource,
        migrationId,
        (await node(plane, 'halt-2')).uuid,
        resourcesOf(instance.flavor),
      ),
    ).toBe(true);
    await recordMigration(plane.dataSource, {
      uuid: migrationId,
      instance,
      type: 'live-migration',
      status: 'running',
      newFlavor: instance.flavor,
      destHost: plane.hostName('halt-2'),
      destNode: plane.hostName('halt-2'),
    });
    await two.preLiveMigration(
      instanceSpecOf(instance),
      {
        id: instance.imageRef,
        diskFormat: 'raw',
        containerFormat: 'bare',
        minDiskGb: 0,
        minRamMb: 0,
        properties: {},
        open: async () => {
          throw new Error('no image');
        },
      },
      [],
      { listenAddress: '127.0.0.1' },
    );
    expect(two.inspect(uuid)).toBeDefined();

    await plane.startAgent('halt-1');
    expect(await plane.instance(uuid)).toMatchObject({
      taskState: null,
      vmState: 'active',
      host: plane.hostName('halt-1'),
    });
    expect((await liveMigrations(uuid)).pop()).toMatchObject({ uuid: migrationId, status: 'error' });
    expect(await allocations(migrationId)).toEqual([]);
    expect(two.inspect(uuid)).toBeUndefined();
    expect(one.inspect(uuid)?.state).toBe(PowerState.RUNNING);
  });

  it('confirms a resize by itself after the confirm window', async () => {
    const manager = await plane.startAgent('window', { resizeConfirmWindowSeconds: 1 });
    const uuid = await plane.createServer(SMALL_FLAVOR);
    await plane.settled(uuid);
    await migrate(uuid, NEW_FLAVOR);
    expect((await plane.settled(uuid)).vmState).toBe('resized');
    await manager.runPeriodicTasks();
    expect((await plane.instance(uuid)).vmState).toBe('resized');
    await manager.runPeriodicTasks(Date.now() + 2_000);
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'active', flavor: NEW_FLAVOR });
    expect((await eventsOf(plane, uuid)).at(-1)).toMatchObject({
      event: 'compute_confirm_resize',
      result: 'Success',
    });
  });

  it('rescues and unrescues; a failed rescue is ERROR as in Nova', async () => {
    await plane.startAgent('rescue');
    const hypervisor = plane.hypervisor('rescue');
    const uuid = await plane.createServer(SMALL_FLAVOR);
    await plane.settled(uuid);
    const rescueImage = randomUUID();
    await plane.act(uuid, ComputeMethod.RESCUE_INSTANCE, TaskState.RESCUING, 'rescue', {
      rescueImageRef: rescueImage,
      rescuePassword: 'pw',
    });
    const rescued = await plane.settled(uuid);
    expect(rescued).toMatchObject({ vmState: 'rescued', powerState: PowerState.RUNNING });
    expect(rescued.systemMetadata).toMatchObject({ old_vm_state: 'active', rescue_image_ref: rescueImage });
    expect(hypervisor.inspect(uuid)?.rescued).toBe(true);
    await plane.act(uuid, ComputeMethod.UNRESCUE_INSTANCE, TaskState.UNRESCUING, 'unrescue');
    const back = await plane.settled(uuid);
    expect(back).toMatchObject({ vmState: 'active' });
    expect(back.systemMetadata.old_vm_state).toBeUndefined();
    expect(hypervisor.inspect(uuid)?.rescued).toBe(false);

    hypervisor.failNext('rescue');
    await plane.act(uuid, ComputeMethod.RESCUE_INSTANCE, TaskState.RESCUING, 'rescue');
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'error', taskState: null });
  });

  it('shelves (offloading at once), unshelves through the conductor, and uploads the shelve snapshot', async () => {
    await plane.startAgent('shelf', { imageUpload });
    const hypervisor = plane.hypervisor('shelf');
    const uuid = await plane.createServer(SMALL_FLAVOR);
    await plane.settled(uuid);
    const imageId = randomUUID();
    await plane.act(uuid, ComputeMethod.SHELVE_INSTANCE, TaskState.SHELVING, 'shelve', { imageId });
    await waitUntil(async () => (await plane.instance(uuid)).vmState === 'shelved_offloaded');
    const offloaded = await plane.settled(uuid);
    expect(offloaded).toMatchObject({ host: null, node: null, powerState: PowerState.NOSTATE });
    expect(offloaded.systemMetadata).toMatchObject({ shelved_image_id: imageId });
    expect(hypervisor.inspect(uuid)).toBeUndefined();
    expect(await allocations(uuid)).toHaveLength(0);
    expect(uploads.find((u) => u.imageId === imageId)?.body).toContain(`instance ${uuid}`);

    const requestId = `req-${randomUUID()}`;
    await plane.records.update(uuid, { taskState: TaskState.UNSHELVING }, { taskState: [null] });
    await plane.records.startAction(uuid, 'unshelve', requestId);
    await plane.rpc.unshelveInstance({ instanceUuid: uuid, requestId });
    const active = await plane.settled(uuid);
    expect(active).toMatchObject({ vmState: 'active', host: plane.hostName('shelf') });
    expect(active.systemMetadata.shelved_at).toBeUndefined();
    expect(hypervisor.inspect(uuid)?.imageRef).toBe(imageId);
    expect(await allocations(uuid)).toHaveLength(1);
    expect((await eventsOf(plane, uuid)).map((e) => e.event)).toEqual(
      expect.arrayContaining([
        'compute_shelve_instance',
        'compute_shelve_offload_instance',
        'conductor_unshelve_instance',
        'compute_unshelve_instance',
      ]),
    );
  });

  it('keeps a shelved server on its host until the offload time, and unshelving it just starts it', async () => {
    const manager = await plane.startAgent('shelf-wait', { shelvedOffloadTimeSeconds: 60 });
    const uuid = await plane.createServer(SMALL_FLAVOR);
    await plane.settled(uuid);
    await plane.act(uuid, ComputeMethod.SHELVE_INSTANCE, TaskState.SHELVING, 'shelve');
    expect(await plane.settled(uuid)).toMatchObject({
      vmState: 'shelved',
      host: plane.hostName('shelf-wait'),
    });
    const requestId = `req-${randomUUID()}`;
    await plane.records.update(uuid, { taskState: TaskState.UNSHELVING }, { taskState: [null] });
    await plane.rpc.unshelveInstance({ instanceUuid: uuid, requestId });
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'active', powerState: PowerState.RUNNING });

    await plane.act(uuid, ComputeMethod.SHELVE_INSTANCE, TaskState.SHELVING, 'shelve');
    await plane.settled(uuid);
    await manager.runPeriodicTasks();
    expect((await plane.instance(uuid)).vmState).toBe('shelved');
    await manager.runPeriodicTasks(Date.now() + 61_000);
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'shelved_offloaded', host: null });
  });

  it('snapshots through image_snapshot, image_pending_upload and image_uploading; fails without an uploader', async () => {
    await plane.startAgent('snap', { imageUpload });
    const uuid = await plane.createServer(SMALL_FLAVOR);
    await plane.settled(uuid);
    const seen: (string | null)[] = [];
    const watch = setInterval(
      () =>
        void plane.records.get(uuid).then((i) => {
          if (i && seen.at(-1) !== i.taskState) seen.push(i.taskState);
        }),
      1,
    );
    plane.hypervisor('snap').setDelay('snapshot', 100);
    const imageId = randomUUID();
    try {
      await plane.act(
        uuid,
        ComputeMethod.SNAPSHOT_INSTANCE,
        TaskState.IMAGE_SNAPSHOT_PENDING,
        'createImage',
        {
          imageId,
        },
      );
      expect(await plane.settled(uuid)).toMatchObject({ vmState: 'active', taskState: null });
    } finally {
      clearInterval(watch);
      plane.hypervisor('snap').setDelay('snapshot', 0);
    }
    expect(seen).toContain(TaskState.IMAGE_PENDING_UPLOAD);
    expect(uploads.find((u) => u.imageId === imageId)).toMatchObject({ diskFormat: 'raw' });

    await plane.stopAgent('snap');
    await plane.startAgent('snap', { imageUpload: undefined });
    await plane.act(uuid, ComputeMethod.SNAPSHOT_INSTANCE, TaskState.IMAGE_SNAPSHOT_PENDING, 'createImage', {
      imageId: randomUUID(),
    });
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'active', taskState: null });
    expect((await plane.records.latestFault(uuid))?.message).toMatch(/no image service credential/);
  });

  it('soft-deletes and restores, and reclaims a soft-deleted server after the interval', async () => {
    const manager = await plane.startAgent('soft', { reclaimInstanceIntervalSeconds: 30 });
    const hypervisor = plane.hypervisor('soft');
    const uuid = await plane.createServer(SMALL_FLAVOR);
    await plane.settled(uuid);
    await plane.act(uuid, ComputeMethod.SOFT_DELETE_INSTANCE, TaskState.SOFT_DELETING, 'delete');
    const soft = await plane.settled(uuid);
    expect(soft).toMatchObject({ vmState: 'soft-delete', powerState: PowerState.SHUTDOWN, deletedAt: null });
    await plane.act(uuid, ComputeMethod.RESTORE_INSTANCE, TaskState.RESTORING, 'restore');
    expect(await plane.settled(uuid)).toMatchObject({ vmState: 'active', powerState: PowerState.RUNNING });

    await plane.act(uuid, ComputeMethod.SOFT_DELETE_INSTANCE, TaskState.SOFT_DELETING, 'delete');
    await plane.settled(uuid);
    await manager.runPeriodicTasks();
    expect((await plane.instance(uuid)).vmState).toBe('soft-delete');
    await manager.runPeriodicTasks(Date.now() + 31_000);
    const gone = await plane.instance(uuid);
    expect(gone.vmState).toBe('deleted');
    expect(gone.deletedAt).not.toBeNull();
    expect(hypervisor.inspect(uuid)).toBeUndefined();
    expect(await allocations(uuid)).toHaveLength(0);
  });

  it('answers the serial console, diagnostics and admin password calls, and triggers a crash dump', async () => {
    await plane.startAgent('calls');
    const uuid = await plane.createServer(SMALL_FLAVOR);
    await plane.settled(uuid);
    const host = plane.hostName('calls');
    // The agent's console relay, with a ticket for the instance (the proxy connects there).
    expect(await plane.rpc.getSerialConsole(host, { instanceUuid: uuid })).toEqual({
      host: '127.0.0.1',
      port: expect.any(Number),
      internalAccessPath: expect.stringMatching(new RegExp(`^${uuid}\\.\\d+\\.[0-9a-f]{64}$`)),
    });
    expect(await plane.rpc.getDiagnostics(host, { instanceUuid: uuid })).toMatchObject({
      state: 'running',
      driver: 'fake',
      memory: { maximumMb: 512, usedMb: 512 },
    });
    await expect(plane.rpc.getDiagnostics(host, { instanceUuid: randomUUID() })).rejects.toMatchObject({
      status: 404,
    });

    await plane.records.update(uuid, { taskState: TaskState.UPDATING_PASSWORD }, { taskState: [null] });
    await expect(
      plane.rpc.setAdminPassword(host, {
        instanceUuid: uuid,
        requestId: `req-${randomUUID()}`,
        newPassword: 'x',
      }),
    ).rejects.toMatchObject({ status: 409, message: 'Set admin password is not supported' });
    expect((await plane.instance(uuid)).taskState).toBeNull();

    const requestId = `req-${randomUUID()}`;
    await plane.records.startAction(uuid, 'trigger_crash_dump', requestId);
    await plane.rpc.triggerCrashDump(host, { instanceUuid: uuid, requestId });
    await waitUntil(async () =>
      (await plane.rpc.getConsoleOutput(host, { instanceUuid: uuid })).includes('NMI'),
    );
    expect((await eventsOf(plane, uuid)).at(-1)).toMatchObject({
      action: 'trigger_crash_dump',
      event: 'compute_trigger_crash_dump',
      result: 'Success',
    });
  });
});
