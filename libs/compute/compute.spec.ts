import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { AllocationEntity, ComputeNodeEntity, ComputeServiceEntity, openDataSource, nowIso } from '@novum/db';
import { PowerState, TaskState, VmState } from '@novum/virt';
import { claim, confirmMigrationClaim, recomputeUsage, release, resourcesOf } from './claims';
import { checkRequest, MalformedRequestError } from './contract';
import { InstanceRecords, sanitizeHostname } from './instance-records';
import { isServiceUp } from './service-state';

const FLAVOR = {
  id: '1',
  name: 'tiny',
  vcpus: 1,
  memory_mb: 512,
  root_gb: 1,
  ephemeral_gb: 1,
  swap: 1500,
  extra_specs: {},
};

describe('compute records and claims on SQLite', () => {
  let dir: string;
  let dataSource: DataSource;
  let records: InstanceRecords;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'novum-compute-'));
    dataSource = await openDataSource({ dataDir: dir });
    records = new InstanceRecords(dataSource);
  });

  afterAll(async () => {
    await dataSource.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  async function addNode(vcpus: number, ratio = 1): Promise<string> {
    const uuid = randomUUID();
    await dataSource.getRepository(ComputeNodeEntity).insert({
      uuid,
      host: uuid,
      hypervisorHostname: uuid,
      hypervisorType: 'fake',
      hypervisorVersion: 1000,
      hostIp: '127.0.0.1',
      vcpus,
      memoryMb: 100_000,
      localGb: 1000,
      vcpusUsed: 0,
      memoryMbUsed: 0,
      localGbUsed: 0,
      runningVms: 0,
      cpuAllocationRatio: ratio,
      ramAllocationRatio: 1,
      diskAllocationRatio: 1,
      drivers: ['fake'],
      cpuInfo: {},
      failedBuilds: 0,
      createdAt: nowIso(),
      updatedAt: nowIso(),
    });
    return uuid;
  }

  const nodeOf = (uuid: string) => dataSource.getRepository(ComputeNodeEntity).findOneByOrFail({ uuid });

  it('counts root, ephemeral and swap rounded up to whole GB', () => {
    expect(resourcesOf(FLAVOR)).toEqual({ vcpus: 1, memoryMb: 512, diskGb: 4 });
  });

  it('claims atomically up to total x ratio, once per instance, and releases once', async () => {
    const node = await addNode(2, 1.5);
    const one = { vcpus: 1, memoryMb: 10, diskGb: 1 };
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    const results = await Promise.all([
      claim(dataSource, a, node, one),
      claim(dataSource, b, node, one),
      claim(dataSource, c, node, one),
    ]);
    expect(results.filter(Boolean)).toHaveLength(3);
    expect(await claim(dataSource, randomUUID(), node, one)).toBe(false);
    // Claiming again on the same node is a no-op success; on another node it fails.
    expect(await claim(dataSource, a, node, one)).toBe(true);
    expect(await claim(dataSource, a, await addNode(8), one)).toBe(false);
    expect(await nodeOf(node)).toMatchObject({ vcpusUsed: 3, memoryMbUsed: 30, localGbUsed: 3 });

    expect(await release(dataSource, a)).toBe(true);
    expect(await release(dataSource, a)).toBe(false);
    expect(await nodeOf(node)).toMatchObject({ vcpusUsed: 2, memoryMbUsed: 20, localGbUsed: 2 });

    await dataSource.getRepository(ComputeNodeEntity).update({ uuid: node }, { vcpusUsed: 99 });
    await recomputeUsage(dataSource, node);
    expect(await nodeOf(node)).toMatchObject({ vcpusUsed: 2, memoryMbUsed: 20, localGbUsed: 2 });
  });

  it('holds a resize’s migration claim beside the instance’s, and confirming makes it the instance’s', async () => {
    const [source, dest] = [await addNode(4), await addNode(4)];
    const [instance, migration] = [randomUUID(), randomUUID()];
    expect(await claim(dataSource, instance, source, { vcpus: 1, memoryMb: 10, diskGb: 1 })).toBe(true);
    expect(await claim(dataSource, migration, dest, { vcpus: 2, memoryMb: 20, diskGb: 2 })).toBe(true);
    expect(await nodeOf(source)).toMatchObject({ vcpusUsed: 1 });
    expect(await nodeOf(dest)).toMatchObject({ vcpusUsed: 2 });

    expect(await confirmMigrationClaim(dataSource, instance, migration)).toBe(true);
    expect(await confirmMigrationClaim(dataSource, instance, migration)).toBe(false);
    expect(await nodeOf(source)).toMatchObject({ vcpusUsed: 0, memoryMbUsed: 0, localGbUsed: 0 });
    expect(await nodeOf(dest)).toMatchObject({ vcpusUsed: 2, memoryMbUsed: 20, localGbUsed: 2 });
    const rows = await dataSource.getRepository(AllocationEntity).findBy({ nodeUuid: dest });
    expect(rows.map((row) => row.instanceUuid)).toEqual([instance]);
    // A revert instead frees the migration's claim alone.
    const reverted = randomUUID();
    expect(await claim(dataSource, reverted, dest, { vcpus: 1, memoryMb: 10, diskGb: 1 })).toBe(true);
    expect(await release(dataSource, reverted)).toBe(true);
    expect(await nodeOf(dest)).toMatchObject({ vcpusUsed: 2, memoryMbUsed: 20, localGbUsed: 2 });
    expect(await dataSource.getRepository(AllocationEntity).countBy({ instanceUuid: instance })).toBe(1);
  });

  it('refuses amounts that are not whole numbers', async () => {
    const node = await addNode(4);
    await expect(
      claim(dataSource, randomUUID(), node, { vcpus: 0.5, memoryMb: 1, diskGb: 1 }),
    ).rejects.toThrow('whole');
  });

  it('creates instances as the API will, and updates them only in the expected state', async () => {
    const [first, second] = await records.createInstances(
      { displayName: 'Web Server_1', projectId: 'p', userId: 'u', flavor: FLAVOR, imageRef: 'img' },
      { count: 2, requestId: 'req-1' },
    );
    expect(first).toMatchObject({
      displayName: 'Web Server_1-1',
      hostname: 'web-server-1-1',
      vmState: VmState.BUILDING,
      taskState: TaskState.SCHEDULING,
      powerState: PowerState.NOSTATE,
      launchIndex: 0,
    });
    expect(second.reservationId).toBe(first.reservationId);
    expect((await records.actions(first.uuid)).map((a) => [a.action, a.requestId])).toEqual([
      ['create', 'req-1'],
    ]);

    expect(await records.update(first.uuid, { taskState: null }, { taskState: [TaskState.SPAWNING] })).toBe(
      false,
    );
    expect(
      await records.update(first.uuid, { host: 'h1' }, { taskState: [TaskState.SCHEDULING], host: null }),
    ).toBe(true);
    expect(await records.update(first.uuid, { host: 'h2' }, { host: null })).toBe(false);
    expect(await records.update(first.uuid, { taskState: null }, { taskState: ['x', null] })).toBe(false);
    expect(await records.get(first.uuid)).toMatchObject({ host: 'h1', version: 2 });
    expect(await records.hostsOf([first.uuid, second.uuid])).toEqual(['h1']);

    // A fault goes in with the change that it explains, and only when that change applied.
    const refused = { vmState: VmState.ERROR, taskState: null };
    expect(await records.update(second.uuid, refused, { host: 'h9' }, { message: 'not this one' })).toBe(
      false,
    );
    expect(await records.latestFault(second.uuid)).toBeNull();
    expect(
      await records.update(second.uuid, refused, { host: null }, { code: 400, message: 'No valid host' }),
    ).toBe(true);
    expect(await records.get(second.uuid)).toMatchObject({ vmState: VmState.ERROR, taskState: null });
    expect(await records.latestFault(second.uuid)).toMatchObject({ code: 400, message: 'No valid host' });

    const event = await records.startEvent(first.uuid, 'req-2', 'compute_stop_instance', 'h1', 'stop');
    await records.finishEvent(event, new Error('boom'));
    const stop = (await records.actions(first.uuid)).find((a) => a.action === 'stop')!;
    expect(stop).toMatchObject({ message: 'Error' });
    expect(stop.finishTime).not.toBeNull();
    expect(await records.events(stop.id)).toEqual([
      expect.objectContaining({
        event: 'compute_stop_instance',
        result: 'Error',
        details: 'boom',
        traceback: null,
      }),
    ]);
  });

  it('turns server names into host names as Nova does', () => {
    expect(sanitizeHostname('My Web_Server!')).toBe('my-web-server');
    expect(sanitizeHostname('---')).toBe('server');
    expect(sanitizeHostname('a'.repeat(70))).toHaveLength(63);
  });

  it('counts a service up within the down time and when not forced down', async () => {
    const now = Date.parse('2026-11-28T09:00:00.000Z');
    const service = {
      lastSeenUp: '2026-11-28T08:59:30.000Z',
      forcedDown: false,
      createdAt: '2026-11-28T08:00:00.000Z',
    } as ComputeServiceEntity;
    expect(isServiceUp(service, now, 60)).toBe(true);
    expect(isServiceUp(service, now, 20)).toBe(false);
    expect(isServiceUp({ ...service, forcedDown: true } as ComputeServiceEntity, now, 60)).toBe(false);
  });
});

describe('checkRequest', () => {
  const uuid = randomUUID();
  it('accepts the contract and refuses anything else before any work', () => {
    expect(checkRequest.instance({ instanceUuid: uuid, requestId: 'req-1' }, 'stop_instance')).toEqual({
      instanceUuid: uuid,
      requestId: 'req-1',
    });
    expect(() => checkRequest.instance({ instanceUuid: 'x', requestId: 'r' }, 'stop_instance')).toThrow(
      'stop_instance: instanceUuid must be a UUID',
    );
    expect(() => checkRequest.instance([], 'stop_instance')).toThrow(MalformedRequestError);
    expect(() => checkRequest.buildInstances({ instanceUuids: [uuid], requestId: 'r\u0000' })).toThrow(
      'build_instances: requestId must be a non-empty string without NUL',
    );
    expect(() =>
      checkRequest.buildInstances({ instanceUuids: [uuid], requestId: 'r', attempt: 1.5 }),
    ).toThrow('attempt must be a whole number');
    expect(() => checkRequest.reboot({ instanceUuid: uuid, requestId: 'r', rebootType: 'soft' })).toThrow(
      'rebootType must be SOFT or HARD',
    );
    expect(checkRequest.consoleOutput({ instanceUuid: uuid })).toEqual({ instanceUuid: uuid });
  });

  it('checks the payloads of rebuild, resize, rescue, shelve, snapshot, password and the agents’ calls', () => {
    const base = { instanceUuid: uuid, requestId: 'req-1' };
    expect(checkRequest.rebuild({ ...base, preserveEphemeral: true })).toMatchObject(base);
    expect(() => checkRequest.rebuild({ ...base, preserveEphemeral: 'yes' })).toThrow(
      'rebuild_instance: preserveEphemeral must be true or false',
    );
    expect(checkRequest.migrateServer({ ...base, flavor: FLAVOR }).flavor).toEqual(FLAVOR);
    expect(checkRequest.migrateServer(base)).toEqual(base);
    for (const flavor of [
      { ...FLAVOR, vcpus: 0 },
      { ...FLAVOR, memory_mb: -1 },
      { ...FLAVOR, extra_specs: { a: 1 } },
      { ...FLAVOR, name: '' },
      [],
    ]) {
      expect(() => checkRequest.migrateServer({ ...base, flavor })).toThrow('migrate_server: flavor must be');
    }
    expect(() => checkRequest.resize(base)).toThrow('resize_instance: migrationId must be a UUID');
    expect(checkRequest.rescue({ ...base, rescueImageRef: 'img' })).toMatchObject({ rescueImageRef: 'img' });
    expect(() => checkRequest.shelve({ ...base, imageId: 'nope' })).toThrow('shelve_instance: imageId');
    expect(() => checkRequest.snapshot(base)).toThrow('snapshot_instance: imageId must be a UUID');
    expect(() => checkRequest.setAdminPassword({ ...base, newPassword: '' })).toThrow(
      'set_admin_password: newPassword',
    );
    expect(checkRequest.instanceCall({ instanceUuid: uuid }, 'get_diagnostics')).toEqual({
      instanceUuid: uuid,
    });
    const migrationId = randomUUID();
    expect(checkRequest.migrationSource({ ...base, migrationId, step: 'destroy' }).step).toBe('destroy');
    expect(checkRequest.migrationSource({ ...base, migrationId, step: 'export_disks' }).step).toBe(
      'export_disks',
    );
    expect(() => checkRequest.migrationSource({ ...base, migrationId, step: 'boom' })).toThrow(
      'step must be power_off, power_on, destroy or export_disks',
    );
  });
});
