/**
 * The behaviour every ComputeDriver promises, as jest tests registered in the caller's describe block. Each
 * driver's spec runs it; it uses nothing but the contract, so it passes for the fake, kvm and container
 * drivers alike. Test support only: keep it out of the production build.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CAPABILITY_OPERATIONS,
  ComputeDriver,
  DriverCapabilities,
  DriverError,
  DriverOperation,
  FlavorSpec,
  ImageSource,
  InstanceExists,
  InstanceInvalidState,
  InstanceNotFound,
  InstanceSpec,
  NetworkInfo,
  NotSupportedByDriver,
  SnapshotData,
  Vif,
} from '../driver';
import { PowerState } from '../states';

export interface DriverContractFixtures {
  /** A bootable image for this driver; the default is an empty raw image, enough for the fake. */
  image?: () => ImageSource;
  /** The flavour guests boot with, and the one resize moves them to. */
  flavor?: FlavorSpec;
  largerFlavor?: FlavorSpec;
  networkInfo?: () => NetworkInfo;
  /** A port the driver can hot-plug (a bridge that exists on this host, for kvm). */
  extraVif?: () => Vif;
  host?: string;
  /**
   * The same driver on another host (its own data dir), to spawn exported disks on: the disk migration tests
   * run when the driver offers migrateDisks and this is given.
   */
  peer?: () => ComputeDriver;
  /** Per test; real guests take seconds to boot. */
  timeoutMs?: number;
}

const SMALL: FlavorSpec = { vcpus: 1, memoryMb: 128, rootGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {} };
const LARGER: FlavorSpec = { ...SMALL, vcpus: 2, memoryMb: 256, rootGb: 2 };

function emptyImage(): ImageSource {
  return {
    id: 'c0ffee00-0000-4000-8000-000000000001',
    name: 'contract-empty',
    diskFormat: 'raw',
    containerFormat: 'bare',
    minDiskGb: 0,
    minRamMb: 0,
    properties: {},
    sizeBytes: 0,
    open: async () => Readable.from([]),
  };
}

function testVif(): Vif {
  const id = randomUUID();
  const mac = ['fa', '16', '3e', ...randomBytes(3).toString('hex').match(/../g)!].join(':');
  return {
    id,
    macAddress: mac,
    networkId: randomUUID(),
    fixedIps: [],
    mtu: 1450,
    devname: `tap${id.slice(0, 11)}`,
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/**
 * Registers the contract tests. `makeDriver` constructs the driver synchronously (its capabilities decide
 * which tests apply); the suite calls init once, destroys every guest it made after each test, and closes
 * the driver at the end.
 */
export function describeDriverContract(
  makeDriver: () => ComputeDriver,
  fixtures: DriverContractFixtures = {},
): void {
  const driver = makeDriver();
  const image = fixtures.image ?? emptyImage;
  const flavor = fixtures.flavor ?? SMALL;
  const largerFlavor = fixtures.largerFlavor ?? LARGER;
  const networkInfo = fixtures.networkInfo ?? (() => []);
  const extraVif = fixtures.extraVif ?? testVif;
  const timeout = fixtures.timeoutMs ?? 5_000;
  const made = new Set<string>();
  const peer = driver.capabilities.migrateDisks ? fixtures.peer?.() : undefined;

  const spec = (): InstanceSpec => {
    const uuid = randomUUID();
    made.add(uuid);
    return {
      uuid,
      name: `instance-${uuid.slice(0, 8)}`,
      hostname: 'contract-guest',
      projectId: 'contract-project',
      userId: 'contract-user',
      flavor,
      imageRef: image().id,
      imageProperties: {},
      metadata: {},
      configDrive: false,
    };
  };
  const spawned = async (options: { powerOn?: boolean } = {}): Promise<InstanceSpec> => {
    const instance = spec();
    await driver.spawn(instance, image(), networkInfo(), options);
    return instance;
  };
  const stateOf = async (instance: InstanceSpec) => (await driver.getInfo(instance)).state;
  const supports = (capability: keyof DriverCapabilities) => driver.capabilities[capability];
  const test = (title: string, body: () => Promise<void>) => it(title, body, timeout);
  // A lacking capability registers no tests rather than skipped ones: 'capabilities it lacks' covers it.
  const testIf = (capability: keyof DriverCapabilities, title: string, body: () => Promise<void>) => {
    if (supports(capability)) test(title, body);
  };

  beforeAll(async () => {
    await driver.init(fixtures.host ?? 'contract-host');
    await peer?.init(`${fixtures.host ?? 'contract-host'}-peer`);
  }, timeout);
  afterEach(async () => {
    const uuids = [...made];
    made.clear();
    for (const each of peer ? [driver, peer] : [driver]) {
      await Promise.all(uuids.map((uuid) => each.destroy({ uuid }, networkInfo(), { destroyDisks: true })));
    }
  }, timeout);
  afterAll(async () => {
    await driver.close();
    await peer?.close();
  }, timeout);

  describe('host', () => {
    test('names itself and reports the host it runs on', async () => {
      expect(['kvm', 'container', 'fake']).toContain(driver.name);
      const host = await driver.hostResources();
      expect(host.hypervisorHostname).toEqual(expect.any(String));
      expect(host.hypervisorHostname.length).toBeGreaterThan(0);
      expect(Number.isInteger(host.hypervisorVersion)).toBe(true);
      for (const total of [host.vcpus, host.memoryMb, host.localGb]) expect(total).toBeGreaterThan(0);
      for (const used of [host.vcpusUsed, host.memoryMbUsed, host.localGbUsed, host.runningVms]) {
        expect(used).toBeGreaterThanOrEqual(0);
      }
      expect(host.cpuInfo.topology.sockets).toBeGreaterThan(0);
    });

    test('counts running guests in runningVms', async () => {
      const before = (await driver.hostResources()).runningVms;
      const instance = await spawned();
      expect((await driver.hostResources()).runningVms).toBe(before + 1);
      await driver.powerOff(instance, { timeoutSeconds: 0 });
      expect((await driver.hostResources()).runningVms).toBe(before);
    });
  });

  describe('lifecycle', () => {
    test('spawns a running guest that listInstances reports, and destroys it', async () => {
      const instance = await spawned();
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
      expect(await driver.listInstances()).toContain(instance.uuid);

      await driver.destroy(instance, networkInfo(), { destroyDisks: true });

      expect(await driver.listInstances()).not.toContain(instance.uuid);
      await expect(driver.getInfo(instance)).rejects.toBeInstanceOf(InstanceNotFound);
    });

    test('destroys a guest it does not have without complaint', async () => {
      await expect(
        driver.destroy({ uuid: randomUUID() }, [], { destroyDisks: true }),
      ).resolves.toBeUndefined();
    });

    test('spawns a stopped guest with powerOn false, which powerOn starts', async () => {
      const instance = await spawned({ powerOn: false });
      expect(await stateOf(instance)).toBe(PowerState.SHUTDOWN);
      expect(await driver.listInstances()).toContain(instance.uuid);
      await driver.powerOn(instance, networkInfo());
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
    });

    test('refuses to spawn a uuid twice and leaves the first guest alone', async () => {
      const instance = await spawned();
      await expect(driver.spawn(instance, image(), networkInfo())).rejects.toBeInstanceOf(InstanceExists);
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
    });

    test('powers off and on, each idempotent', async () => {
      const instance = await spawned();
      await driver.powerOff(instance, { timeoutSeconds: 0 });
      expect(await stateOf(instance)).toBe(PowerState.SHUTDOWN);
      await driver.powerOff(instance, { timeoutSeconds: 0 });
      expect(await stateOf(instance)).toBe(PowerState.SHUTDOWN);
      await driver.powerOn(instance, networkInfo());
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
      await driver.powerOn(instance, networkInfo());
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
    });

    test('reboots soft only a running guest, hard also a stopped one', async () => {
      const instance = await spawned();
      await driver.reboot(instance, 'SOFT', networkInfo());
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
      await driver.powerOff(instance, { timeoutSeconds: 0 });

      await expect(driver.reboot(instance, 'SOFT', networkInfo())).rejects.toBeInstanceOf(
        InstanceInvalidState,
      );
      expect(await stateOf(instance)).toBe(PowerState.SHUTDOWN);
      await driver.reboot(instance, 'HARD', networkInfo());
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
    });

    test('rebuilds a running or stopped guest into a running one', async () => {
      const instance = await spawned();
      await driver.rebuild(instance, image(), networkInfo());
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
      await driver.powerOff(instance, { timeoutSeconds: 0 });
      await driver.rebuild(instance, image(), networkInfo());
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
    });

    test('answers InstanceNotFound for a guest it does not have', async () => {
      const unknown = spec();
      const calls: Array<() => Promise<unknown>> = [
        () => driver.getInfo(unknown),
        () => driver.powerOff(unknown, { timeoutSeconds: 0 }),
        () => driver.powerOn(unknown, []),
        () => driver.reboot(unknown, 'HARD', []),
        () => driver.rebuild(unknown, image(), []),
      ];
      if (supports('pause')) calls.push(() => driver.pause(unknown));
      if (supports('snapshot'))
        calls.push(() => driver.snapshot(unknown, randomUUID(), async () => undefined));
      if (supports('consoleOutput')) calls.push(() => driver.getConsoleOutput(unknown));
      for (const call of calls) await expect(call()).rejects.toBeInstanceOf(InstanceNotFound);
    });
  });

  describe('pause', () => {
    testIf('pause', 'pauses a running guest and unpauses it', async () => {
      const instance = await spawned();
      await driver.pause(instance);
      expect(await stateOf(instance)).toBe(PowerState.PAUSED);
      await expect(driver.pause(instance)).rejects.toBeInstanceOf(InstanceInvalidState);
      await driver.unpause(instance);
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
    });

    testIf('pause', 'refuses to unpause a guest that is not paused', async () => {
      const instance = await spawned();
      await expect(driver.unpause(instance)).rejects.toBeInstanceOf(InstanceInvalidState);
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
    });
  });

  describe('suspend', () => {
    testIf('suspend', 'suspends a running guest and resumes it', async () => {
      const instance = await spawned();
      await driver.suspend(instance);
      expect(await stateOf(instance)).toBe(PowerState.SUSPENDED);
      await driver.resume(instance, networkInfo());
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
    });

    testIf(
      'suspend',
      'refuses to resume a guest that is not suspended, or suspend a stopped one',
      async () => {
        const instance = await spawned();
        await expect(driver.resume(instance, networkInfo())).rejects.toBeInstanceOf(InstanceInvalidState);
        await driver.powerOff(instance, { timeoutSeconds: 0 });
        await expect(driver.suspend(instance)).rejects.toBeInstanceOf(InstanceInvalidState);
        expect(await stateOf(instance)).toBe(PowerState.SHUTDOWN);
      },
    );
  });

  describe('rescue', () => {
    testIf(
      'rescue',
      'rescues a guest, accepts nothing but unrescue meanwhile, and unrescues it',
      async () => {
        const instance = await spawned();
        await driver.rescue(instance, image(), networkInfo(), { rescuePassword: 'contract' });
        expect(await stateOf(instance)).toBe(PowerState.RUNNING);
        await expect(driver.powerOff(instance, { timeoutSeconds: 0 })).rejects.toBeInstanceOf(
          InstanceInvalidState,
        );
        await expect(driver.rescue(instance, image(), networkInfo())).rejects.toBeInstanceOf(
          InstanceInvalidState,
        );

        await driver.unrescue(instance);
        expect(await stateOf(instance)).toBe(PowerState.RUNNING);
        await expect(driver.unrescue(instance)).rejects.toBeInstanceOf(InstanceInvalidState);
      },
    );

    testIf('rescue', 'rescues a stopped guest into a running rescue system', async () => {
      const instance = await spawned({ powerOn: false });
      await driver.rescue(instance, image(), networkInfo());
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
    });
  });

  describe('resize', () => {
    testIf('resize', 'resizes a guest and confirms, once', async () => {
      const instance = await spawned();
      await driver.resize(instance, largerFlavor, networkInfo(), { timeoutSeconds: 0 });
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
      await expect(driver.resize(instance, largerFlavor, networkInfo())).rejects.toBeInstanceOf(
        InstanceInvalidState,
      );

      await driver.confirmResize(instance);
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
      await expect(driver.confirmResize(instance)).rejects.toBeInstanceOf(InstanceInvalidState);
    });

    testIf('resize', 'reverts a resize to a running guest', async () => {
      const instance = await spawned();
      await driver.resize(instance, largerFlavor, networkInfo(), { timeoutSeconds: 0 });
      await driver.revertResize({ ...instance, flavor: largerFlavor }, networkInfo());
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
      await expect(driver.revertResize(instance, networkInfo())).rejects.toBeInstanceOf(InstanceInvalidState);
    });

    testIf('resize', 'keeps a stopped guest stopped with powerOn false', async () => {
      const instance = await spawned({ powerOn: false });
      await driver.resize(instance, largerFlavor, networkInfo(), { powerOn: false });
      expect(await stateOf(instance)).toBe(PowerState.SHUTDOWN);
      await driver.revertResize({ ...instance, flavor: largerFlavor }, networkInfo(), { powerOn: false });
      expect(await stateOf(instance)).toBe(PowerState.SHUTDOWN);
    });
  });

  describe('disk migration', () => {
    const testWithPeer = (title: string, body: (other: ComputeDriver) => Promise<void>) => {
      if (peer) test(title, () => body(peer));
    };

    testWithPeer(
      "spawns a stopped guest's exported disks on another host, the source keeping its guest",
      async (other) => {
        const instance = await spawned();
        await driver.powerOff(instance, { timeoutSeconds: 0 });
        const exported = await driver.exportDisks(instance);
        expect(exported.format).toEqual(expect.any(String));
        await other.spawn({ ...instance, flavor: largerFlavor }, image(), networkInfo(), {
          migratedDisks: { format: exported.format, data: exported.open() },
        });
        await exported.dispose();
        expect((await other.getInfo(instance)).state).toBe(PowerState.RUNNING);
        expect(await stateOf(instance)).toBe(PowerState.SHUTDOWN);
        // A revert: the destination's guest goes (it may share host-wide names with the source's here).
        await other.destroy(instance, networkInfo(), { destroyDisks: true });
        await driver.powerOn(instance, networkInfo());
        expect(await stateOf(instance)).toBe(PowerState.RUNNING);
      },
    );

    testWithPeer('refuses to export the disks of a running guest', async () => {
      const instance = await spawned();
      await expect(driver.exportDisks(instance)).rejects.toBeInstanceOf(InstanceInvalidState);
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
    });

    testWithPeer('refuses disks of another format, or a broken stream, leaving nothing', async (other) => {
      const instance = await spawned({ powerOn: false });
      const exported = await driver.exportDisks(instance);
      await expect(
        other.spawn(instance, image(), networkInfo(), {
          migratedDisks: { format: `${exported.format}-other`, data: exported.open() },
        }),
      ).rejects.toBeInstanceOf(DriverError);
      expect(await other.listInstances()).not.toContain(instance.uuid);

      // As a transfer's stream, it keeps its error for the driver to find whenever it reads.
      const broken = new Readable({ read() {} }).on('error', () => undefined);
      const spawning = other.spawn(instance, image(), networkInfo(), {
        migratedDisks: { format: exported.format, data: broken },
      });
      broken.destroy(new Error('the transfer broke off'));
      await expect(spawning).rejects.toBeInstanceOf(Error);
      expect(await other.listInstances()).not.toContain(instance.uuid);
      await exported.dispose();
    });
  });

  describe('snapshot', () => {
    testIf('snapshot', 'uploads the guest once, leaving its power state as it was', async () => {
      const instance = await spawned();
      const uploads: Array<Omit<SnapshotData, 'data'> & { size: number }> = [];
      await driver.snapshot(instance, randomUUID(), async ({ data, ...formats }) => {
        uploads.push({ ...formats, size: (await readAll(data)).length });
      });
      expect(uploads).toEqual([
        { diskFormat: expect.any(String), containerFormat: expect.any(String), size: expect.any(Number) },
      ]);
      expect(uploads[0].size).toBeGreaterThan(0);
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);

      await driver.powerOff(instance, { timeoutSeconds: 0 });
      await driver.snapshot(instance, randomUUID(), async ({ data }) => void (await readAll(data)));
      expect(await stateOf(instance)).toBe(PowerState.SHUTDOWN);
    });

    testIf('snapshot', "rejects with the upload's own error when the upload fails", async () => {
      const instance = await spawned();
      const refused = new Error('image service refused the data');
      await expect(
        driver.snapshot(instance, randomUUID(), async ({ data }) => {
          data.destroy();
          throw refused;
        }),
      ).rejects.toBe(refused);
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
    });
  });

  describe('consoles', () => {
    testIf('consoleOutput', 'returns the console output as text', async () => {
      const instance = await spawned();
      expect(await driver.getConsoleOutput(instance)).toEqual(expect.any(String));
    });

    testIf('serialConsole', 'tells where the serial console of a running guest listens', async () => {
      const instance = await spawned();
      const endpoint = await driver.getSerialConsole(instance);
      expect(endpoint.host.length).toBeGreaterThan(0);
      expect(Number.isInteger(endpoint.port)).toBe(true);
    });

    testIf('serialConsole', 'connects a byte stream to the serial port of a running guest only', async () => {
      const instance = await spawned();
      const stream = await driver.connectSerialConsole(instance);
      expect(stream.writable && stream.readable).toBe(true);
      stream.destroy();
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
      await driver.powerOff(instance, { timeoutSeconds: 0 });
      await expect(driver.connectSerialConsole(instance)).rejects.toBeInstanceOf(InstanceInvalidState);
    });
  });

  describe('interfaces', () => {
    testIf('attachInterface', 'attaches and detaches a port, each idempotent', async () => {
      const instance = await spawned();
      const vif = extraVif();
      await driver.attachInterface(instance, vif);
      await driver.attachInterface(instance, vif);
      await driver.detachInterface(instance, vif);
      await driver.detachInterface(instance, vif);
      expect(await stateOf(instance)).toBe(PowerState.RUNNING);
    });
  });

  describe('crash dump and diagnostics', () => {
    testIf('triggerCrashDump', 'sends an NMI to a running guest only', async () => {
      const instance = await spawned();
      await driver.triggerCrashDump(instance);
      await driver.powerOff(instance, { timeoutSeconds: 0 });
      await expect(driver.triggerCrashDump(instance)).rejects.toBeInstanceOf(InstanceInvalidState);
    });

    testIf('diagnostics', 'reports diagnostics that name the driver and the power state', async () => {
      const instance = await spawned();
      expect(await driver.getDiagnostics(instance)).toMatchObject({ state: 'running', driver: driver.name });
    });
  });

  const unsupported = (Object.keys(CAPABILITY_OPERATIONS) as (keyof DriverCapabilities)[])
    .filter((capability) => !supports(capability))
    .flatMap((capability) => CAPABILITY_OPERATIONS[capability]);
  if (unsupported.length > 0) {
    describe('capabilities it lacks', () => {
      const vif = testVif();
      const calls: Partial<Record<DriverOperation, (instance: InstanceSpec) => Promise<unknown>>> = {
        pause: (instance) => driver.pause(instance),
        unpause: (instance) => driver.unpause(instance),
        suspend: (instance) => driver.suspend(instance),
        resume: (instance) => driver.resume(instance, []),
        rescue: (instance) => driver.rescue(instance, image(), []),
        unrescue: (instance) => driver.unrescue(instance),
        snapshot: (instance) => driver.snapshot(instance, randomUUID(), async () => undefined),
        resize: (instance) => driver.resize(instance, largerFlavor, []),
        confirmResize: (instance) => driver.confirmResize(instance),
        revertResize: (instance) => driver.revertResize(instance, []),
        getConsoleOutput: (instance) => driver.getConsoleOutput(instance),
        getSerialConsole: (instance) => driver.getSerialConsole(instance),
        connectSerialConsole: (instance) => driver.connectSerialConsole(instance),
        attachInterface: (instance) => driver.attachInterface(instance, vif),
        detachInterface: (instance) => driver.detachInterface(instance, vif),
        triggerCrashDump: (instance) => driver.triggerCrashDump(instance),
        getDiagnostics: (instance) => driver.getDiagnostics(instance),
        preLiveMigration: (instance) =>
          driver.preLiveMigration(instance, image(), [], { listenAddress: '127.0.0.1' }),
        liveMigration: (instance) =>
          driver.liveMigration(instance, { address: '127.0.0.1', migrationPort: 1, disks: [] }),
        postLiveMigrationAtDestination: (instance) => driver.postLiveMigrationAtDestination(instance),
        postLiveMigration: (instance) => driver.postLiveMigration(instance, []),
        rollbackLiveMigrationAtDestination: (instance) =>
          driver.rollbackLiveMigrationAtDestination(instance, []),
        exportDisks: (instance) => driver.exportDisks(instance),
      };
      test(`rejects ${unsupported.join(', ')} with NotSupportedByDriver`, async () => {
        const instance = await spawned();
        for (const operation of unsupported) {
          const error = await calls[operation]!(instance).catch((caught: unknown) => caught);
          expect(error).toBeInstanceOf(NotSupportedByDriver);
          expect(error).toMatchObject({ operation, driver: driver.name });
        }
        expect(await stateOf(instance)).toBe(PowerState.RUNNING);
      });
    });
  }
}
