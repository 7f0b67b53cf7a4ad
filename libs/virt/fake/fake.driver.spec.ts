import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  DriverError,
  FlavorSpec,
  ImageSource,
  InstanceExists,
  InstanceInvalidState,
  InstanceNotFound,
  InstanceSpec,
  NotSupportedByDriver,
  PowerState,
  SnapshotData,
  Vif,
} from '../index';
import { describeDriverContract } from '../testing/driver-contract';
import { FakeDriver } from './fake.driver';

const SMALL: FlavorSpec = { vcpus: 1, memoryMb: 512, rootGb: 10, ephemeralGb: 0, swapMb: 0, extraSpecs: {} };
const LARGE: FlavorSpec = {
  vcpus: 4,
  memoryMb: 4096,
  rootGb: 40,
  ephemeralGb: 5,
  swapMb: 1500,
  extraSpecs: {},
};

const image: ImageSource = {
  id: '70a599e0-31e7-49b7-b260-868f441e862b',
  diskFormat: 'qcow2',
  containerFormat: 'bare',
  minDiskGb: 0,
  minRamMb: 0,
  properties: {},
  open: async () => Readable.from([]),
};

function instance(flavor: FlavorSpec = SMALL): InstanceSpec {
  const uuid = randomUUID();
  return {
    uuid,
    name: `instance-${uuid.slice(0, 8)}`,
    hostname: 'web-1',
    projectId: 'p',
    userId: 'u',
    flavor,
    imageRef: image.id,
    imageProperties: {},
    metadata: {},
    configDrive: true,
  };
}

const vif = (id: string = randomUUID()): Vif => ({
  id,
  macAddress: 'fa:16:3e:00:00:01',
  networkId: 'net',
  fixedIps: [],
});

async function used(driver: FakeDriver) {
  const { vcpusUsed, memoryMbUsed, localGbUsed, runningVms } = await driver.hostResources();
  return { vcpusUsed, memoryMbUsed, localGbUsed, runningVms };
}

describe('FakeDriver', () => {
  describe('contract', () => {
    describeDriverContract(() => new FakeDriver(), { peer: () => new FakeDriver() });
  });

  describe('contract without optional capabilities', () => {
    describeDriverContract(
      () =>
        new FakeDriver({
          capabilities: {
            pause: false,
            suspend: false,
            rescue: false,
            snapshot: false,
            resize: false,
            consoleOutput: false,
            serialConsole: false,
            attachInterface: false,
            triggerCrashDump: false,
            diagnostics: false,
            migrateDisks: false,
          },
        }),
    );
  });

  describe('host', () => {
    it('reports its configured size and hostname, apart from other fake hosts in the process', async () => {
      const one = new FakeDriver({ hostname: 'compute-1', vcpus: 16, memoryMb: 32_768, localGb: 500 });
      const two = new FakeDriver();
      await one.init('ignored');
      await two.init('compute-2');
      await one.spawn(instance(), image, []);

      expect(await one.hostResources()).toMatchObject({
        hypervisorType: 'fake',
        hypervisorVersion: 1000,
        hypervisorHostname: 'compute-1',
        vcpus: 16,
        memoryMb: 32_768,
        localGb: 500,
        vcpusUsed: 1,
        runningVms: 1,
      });
      expect(await two.hostResources()).toMatchObject({
        hypervisorHostname: 'compute-2',
        vcpusUsed: 0,
        runningVms: 0,
      });
      expect(await two.listInstances()).toEqual([]);
    });

    it('accounts the flavours of every guest whatever its power state, and counts active ones', async () => {
      const driver = new FakeDriver();
      const [small, large] = [instance(SMALL), instance(LARGE)];
      await driver.spawn(small, image, []);
      await driver.spawn(large, image, [], { powerOn: false });

      // 40 root + 5 ephemeral + 1500 MB of swap, which takes 2 GB of disk.
      expect(await used(driver)).toEqual({
        vcpusUsed: 5,
        memoryMbUsed: 4608,
        localGbUsed: 57,
        runningVms: 1,
      });
      await driver.pause(small);
      expect((await used(driver)).runningVms).toBe(1);
      await driver.unpause(small);
      await driver.suspend(small);
      expect(await used(driver)).toEqual({
        vcpusUsed: 5,
        memoryMbUsed: 4608,
        localGbUsed: 57,
        runningVms: 0,
      });

      await driver.destroy(large, []);
      expect(await used(driver)).toEqual({ vcpusUsed: 1, memoryMbUsed: 512, localGbUsed: 10, runningVms: 0 });
      driver.simulateLoss(small.uuid);
      expect(await used(driver)).toEqual({ vcpusUsed: 0, memoryMbUsed: 0, localGbUsed: 0, runningVms: 0 });
    });

    it('holds both flavours during a resize and the kept one after confirm or revert', async () => {
      const driver = new FakeDriver();
      const [confirmed, reverted] = [instance(SMALL), instance(SMALL)];
      await driver.spawn(confirmed, image, []);
      await driver.spawn(reverted, image, []);

      await driver.resize(confirmed, LARGE, []);
      await driver.resize(reverted, LARGE, []);
      expect(await used(driver)).toMatchObject({ vcpusUsed: 10, memoryMbUsed: 9216 });
      expect(driver.inspect(confirmed.uuid)).toMatchObject({ flavor: LARGE, resizePending: true });

      await driver.confirmResize(confirmed);
      expect(driver.inspect(confirmed.uuid)).toMatchObject({ flavor: LARGE, resizePending: false });
      await driver.revertResize(reverted, []);
      expect(driver.inspect(reverted.uuid)).toMatchObject({ flavor: SMALL, resizePending: false });
      expect(await used(driver)).toMatchObject({ vcpusUsed: 5, memoryMbUsed: 4608, localGbUsed: 57 });

      await driver.resize(reverted, LARGE, []);
      await driver.destroy(reverted, []);
      await driver.destroy(confirmed, []);
      expect(await used(driver)).toEqual({ vcpusUsed: 0, memoryMbUsed: 0, localGbUsed: 0, runningVms: 0 });
    });
  });

  describe('power states', () => {
    it('follow the operations, and the console records each step', async () => {
      const driver = new FakeDriver({ hostname: 'compute-1' });
      const guest = instance();
      const state = async () => (await driver.getInfo(guest)).state;

      await driver.spawn(guest, image, []);
      expect(await state()).toBe(PowerState.RUNNING);
      await driver.pause(guest);
      expect(await state()).toBe(PowerState.PAUSED);
      await driver.reboot(guest, 'HARD', []);
      expect(await state()).toBe(PowerState.RUNNING);
      await driver.suspend(guest);
      expect(await state()).toBe(PowerState.SUSPENDED);
      await driver.powerOff(guest);
      expect(await state()).toBe(PowerState.SHUTDOWN);
      await driver.rescue(guest, { ...image, id: 'rescue-image' }, []);
      expect(driver.inspect(guest.uuid)).toMatchObject({ state: PowerState.RUNNING, rescued: true });
      await driver.unrescue(guest);
      await driver.rebuild(guest, { ...image, id: 'other-image' }, []);
      expect(driver.inspect(guest.uuid)).toMatchObject({
        state: PowerState.RUNNING,
        imageRef: 'other-image',
      });
      await driver.triggerCrashDump(guest);

      // Each boot writes a short boot log ending at the login prompt.
      const boot = [
        '[    0.000000] Linux version 6.1.0-fake (novum fake hypervisor)',
        `[    0.100000] Booting ${guest.name}`,
        'Welcome to the Novum fake guest web-1',
        'web-1 login:',
      ];
      expect(await driver.getConsoleOutput(guest)).toBe(
        [
          `spawn: ${guest.name} from image ${image.id} on compute-1`,
          ...boot,
          'pause: paused',
          'reboot: hard reset',
          ...boot,
          'suspend: suspended',
          'reboot: Power down',
          'rescue: booting rescue image rescue-image',
          ...boot,
          'unrescue: booting the instance disk',
          ...boot,
          `rebuild: ${guest.name} from image other-image`,
          ...boot,
          'Kernel panic - not syncing: NMI: Not continuing',
          '',
        ].join('\n'),
      );
    });

    it('let a crashed guest be powered on or hard rebooted, but not paused', async () => {
      const driver = new FakeDriver();
      const guest = instance();
      await driver.spawn(guest, image, []);
      driver.simulatePowerState(guest.uuid, PowerState.CRASHED);
      expect(await driver.getDiagnostics(guest)).toMatchObject({ state: 'crashed', uptimeSeconds: 0 });

      await expect(driver.pause(guest)).rejects.toBeInstanceOf(InstanceInvalidState);
      await driver.powerOn(guest, []);
      expect((await driver.getInfo(guest)).state).toBe(PowerState.RUNNING);
      driver.simulatePowerState(guest.uuid, PowerState.CRASHED);
      await driver.reboot(guest, 'HARD', []);
      expect((await driver.getInfo(guest)).state).toBe(PowerState.RUNNING);
    });

    it("reject invalid transitions with Nova's message, changing nothing", async () => {
      const driver = new FakeDriver();
      const guest = instance();
      await driver.spawn(guest, image, []);

      await expect(driver.unpause(guest)).rejects.toThrow(
        new InstanceInvalidState(guest.uuid, 'unpause', PowerState.RUNNING),
      );
      await expect(driver.unpause(guest)).rejects.toThrow(
        `Instance ${guest.uuid} in power_state running. Cannot unpause while the instance is in this state.`,
      );
      await expect(driver.resume(guest, [])).rejects.toBeInstanceOf(InstanceInvalidState);
      await expect(driver.confirmResize(guest)).rejects.toThrow(/No resize is pending/);
      await expect(driver.spawn(guest, image, [])).rejects.toBeInstanceOf(InstanceExists);

      await driver.pause(guest);
      for (const call of [
        () => driver.suspend(guest),
        () => driver.powerOn(guest, []),
        () => driver.reboot(guest, 'SOFT', []),
        () => driver.rescue(guest, image, []),
        () => driver.resize(guest, LARGE, []),
        () => driver.rebuild(guest, image, []),
        () => driver.triggerCrashDump(guest),
      ]) {
        await expect(call()).rejects.toBeInstanceOf(InstanceInvalidState);
      }
      expect(driver.inspect(guest.uuid)).toMatchObject({
        state: PowerState.PAUSED,
        flavor: SMALL,
        rescued: false,
      });
      expect(await used(driver)).toMatchObject({ vcpusUsed: 1, runningVms: 1 });
    });

    it('accept nothing but confirm, revert and destroy while a resize is pending', async () => {
      const driver = new FakeDriver();
      const guest = instance();
      await driver.spawn(guest, image, []);
      await driver.resize(guest, LARGE, []);

      await expect(driver.powerOff(guest)).rejects.toThrow(/A resize awaits confirmation/);
      await expect(driver.attachInterface(guest, vif())).rejects.toBeInstanceOf(InstanceInvalidState);
      await driver.destroy(guest, []);
      expect(await driver.listInstances()).toEqual([]);
    });
  });

  describe('injected failures', () => {
    it('fail the next calls of an operation in turn, leaving no partial guest', async () => {
      const driver = new FakeDriver();
      const first = new Error('no space left on device');
      driver.failNext('spawn', first);
      driver.failNext('spawn');
      const guest = instance();

      await expect(driver.spawn(guest, image, [])).rejects.toBe(first);
      const second = await driver.spawn(guest, image, []).catch((error: unknown) => error);
      expect(second).toBeInstanceOf(DriverError);
      expect(second).toMatchObject({ message: 'Injected failure of spawn.' });
      expect(await driver.listInstances()).toEqual([]);
      expect(await used(driver)).toEqual({ vcpusUsed: 0, memoryMbUsed: 0, localGbUsed: 0, runningVms: 0 });

      await driver.spawn(guest, image, []);
      expect((await driver.getInfo(guest)).state).toBe(PowerState.RUNNING);
    });

    it('fail the calls a predicate picks until removed, and clearFailures drops them all', async () => {
      const driver = new FakeDriver();
      const [doomed, fine] = [instance(), instance()];
      await driver.spawn(doomed, image, []);
      await driver.spawn(fine, image, []);
      const remove = driver.failWhen(({ operation, uuid }) =>
        operation === 'reboot' && uuid === doomed.uuid ? new DriverError('guest agent hung') : undefined,
      );

      await expect(driver.reboot(doomed, 'SOFT', [])).rejects.toThrow('guest agent hung');
      await driver.reboot(fine, 'SOFT', []);
      remove();
      await driver.reboot(doomed, 'SOFT', []);

      driver.failWhen(() => new DriverError('host on fire'));
      driver.failNext('powerOff');
      await expect(driver.hostResources()).rejects.toThrow('host on fire');
      driver.clearFailures();
      await driver.powerOff(doomed);
      expect(await driver.listInstances()).toEqual([doomed.uuid, fine.uuid]);
    });

    it('refuse an operation of a missing capability before anything else', async () => {
      const driver = new FakeDriver({ capabilities: { pause: false }, delays: { pause: 10_000 } });
      driver.failNext('pause');
      await expect(driver.pause({ uuid: randomUUID() })).rejects.toBeInstanceOf(NotSupportedByDriver);
      expect(driver.capabilities).toMatchObject({ pause: false, suspend: true, liveMigration: true });
    });
  });

  describe('delays', () => {
    afterEach(() => jest.useRealTimers());

    it('make an operation take its time, checking the state once it is done', async () => {
      jest.useFakeTimers();
      const driver = new FakeDriver({ delays: { spawn: 500 } });
      driver.setDelay('pause', 200);
      const guest = instance();

      const spawning = driver.spawn(guest, image, []);
      await jest.advanceTimersByTimeAsync(499);
      expect(driver.inspect(guest.uuid)).toBeUndefined();
      await jest.advanceTimersByTimeAsync(1);
      await spawning;
      expect(driver.inspect(guest.uuid)?.state).toBe(PowerState.RUNNING);

      const pausing = driver.pause(guest).catch((error: unknown) => error);
      await driver.powerOff(guest);
      await jest.advanceTimersByTimeAsync(200);
      expect(await pausing).toBeInstanceOf(InstanceInvalidState);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('leave no timer behind when there are none', async () => {
      jest.useFakeTimers();
      const driver = new FakeDriver();
      const guest = instance();
      await driver.spawn(guest, image, [vif()]);
      await driver.snapshot(guest, 'snap', async () => undefined);
      await driver.destroy(guest, []);
      expect(jest.getTimerCount()).toBe(0);
    });
  });

  describe('guest data', () => {
    it('snapshots to the same small byte stream every time', async () => {
      const driver = new FakeDriver();
      const guest = instance();
      await driver.spawn(guest, image, []);
      const taken: string[] = [];
      const upload = async ({ data, diskFormat, containerFormat }: SnapshotData) => {
        const chunks: Buffer[] = [];
        for await (const chunk of data) chunks.push(chunk as Buffer);
        taken.push(`${diskFormat}/${containerFormat}\n${Buffer.concat(chunks).toString()}`);
      };

      await driver.snapshot(guest, 'snap-1', upload);
      await driver.snapshot(guest, 'snap-1', upload);

      expect(taken[0]).toBe(taken[1]);
      expect(taken[0]).toBe(
        `raw/bare\nNOVUM FAKE SNAPSHOT\ninstance ${guest.uuid}\nimage snap-1\n` +
          `base ${image.id}\nflavor 1 512 10\n`,
      );
    });

    it('tracks ports from spawn and hot-plug, and reports them in the diagnostics', async () => {
      const driver = new FakeDriver();
      const guest = instance(LARGE);
      await driver.spawn(guest, image, [vif('port-a')]);
      await driver.attachInterface(guest, vif('port-b'));
      await driver.detachInterface(guest, vif('port-a'));
      await driver.detachInterface(guest, vif('port-c'));

      expect(driver.inspect(guest.uuid)?.portIds).toEqual(['port-b']);
      const diagnostics = await driver.getDiagnostics(guest);
      expect(diagnostics).toMatchObject({ state: 'running', driver: 'fake', configDrive: true });
      expect(diagnostics.cpus).toHaveLength(4);
      expect(diagnostics.nics).toEqual([expect.objectContaining({ macAddress: 'fa:16:3e:00:00:01' })]);
      expect(diagnostics.memory).toEqual({ maximumMb: 4096, usedMb: 4096 });
      await expect(driver.getSerialConsole(guest)).resolves.toEqual({
        host: 'fake-mini',
        port: 6969,
        internalAccessPath: guest.uuid,
      });
    });

    it('answers InstanceNotFound for a guest it lost', async () => {
      const driver = new FakeDriver();
      const guest = instance();
      await driver.spawn(guest, image, []);
      driver.simulateLoss(guest.uuid);
      await expect(driver.getConsoleOutput(guest)).rejects.toBeInstanceOf(InstanceNotFound);
      expect(() => driver.simulateLoss(guest.uuid)).toThrow(InstanceNotFound);
    });
  });

  it("carries what a guest wrote to its disk to another host's fake", async () => {
    const [source, destination] = [new FakeDriver(), new FakeDriver()];
    const guest = instance();
    await source.spawn(guest, image, []);
    source.writeDisk(guest.uuid, 'hello from the source\n');
    await source.powerOff(guest);
    const exported = await source.exportDisks(guest);
    await destination.spawn(guest, image, [], {
      migratedDisks: { format: exported.format, data: exported.open() },
    });
    expect(destination.inspect(guest.uuid)).toMatchObject({
      disk: 'hello from the source\n',
      state: PowerState.RUNNING,
    });
    expect(source.inspect(guest.uuid)).toMatchObject({
      disk: 'hello from the source\n',
      state: PowerState.SHUTDOWN,
    });
  });

  it('handles thousands of guests with constant-time operations', async () => {
    const driver = new FakeDriver({ vcpus: 10_000, memoryMb: 10_000 * 512, localGb: 100_000 });
    const guests = Array.from({ length: 5_000 }, () => instance());
    await Promise.all(guests.map((guest) => driver.spawn(guest, image, [])));
    await Promise.all(guests.map((guest) => driver.powerOff(guest)));

    expect(await used(driver)).toEqual({
      vcpusUsed: 5_000,
      memoryMbUsed: 5_000 * 512,
      localGbUsed: 50_000,
      runningVms: 0,
    });
    expect(await driver.listInstances()).toHaveLength(5_000);
    await Promise.all(guests.map((guest) => driver.destroy(guest, [])));
    expect(await used(driver)).toEqual({ vcpusUsed: 0, memoryMbUsed: 0, localGbUsed: 0, runningVms: 0 });
  });
});
