import { randomUUID } from 'node:crypto';
import { AllocationEntity, ComputeNodeEntity, ComputeServiceEntity } from '@novum/db';
import { claim, ComputeMethod, isServiceUp, MAX_BUILD_ATTEMPTS, NO_VALID_HOST } from '@novum/compute';
import { DriverError, PowerState, TaskState } from '@novum/virt';
import { ComputeManager } from '../../apps/compute/compute-manager';
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

async function eventsOf(plane: ControlPlane, uuid: string) {
  const events = [];
  for (const action of await plane.records.actions(uuid)) {
    for (const event of await plane.records.events(action.id)) {
      events.push({ action: action.action, event: event.event, result: event.result, host: event.host });
    }
  }
  return events;
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
    expect(console.split('\n').filter(Boolean)).toHaveLength(2);
    expect(console).toContain('login:');
    await expect(plane.rpc.getConsoleOutput(host, { instanceUuid: randomUUID() })).rejects.toMatchObject({
      status: 404,
    });
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

  it('places a flavor only on hosts offering its driver, and honours different_host', async () => {
    await plane.startAgent('a');
    await plane.startAgent('b');
    const kvm = await plane.settled(
      await plane.createServer({ ...SMALL_FLAVOR, extra_specs: { 'novum:driver': 'kvm' } }),
    );
    expect(kvm.vmState).toBe('error');
    expect(await plane.records.latestFault(kvm.uuid)).toMatchObject({ message: NO_VALID_HOST });

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
