import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { InstanceRecords } from '@novum/compute';
import { openDataSource, InstanceEntity, InstanceFlavor, nowIso } from '@novum/db';
import { ComputeStore } from './compute.store';
import { QuotaService } from './quota.service';

const flavor = (id: string, vcpus: number, memoryMb: number): InstanceFlavor => ({
  id,
  name: `f${id}`,
  vcpus,
  memory_mb: memoryMb,
  root_gb: 1,
  ephemeral_gb: 0,
  swap: 0,
  extra_specs: {},
});

describe('QuotaService usage on SQLite', () => {
  let dir: string;
  let dataSource: DataSource;
  let quotas: QuotaService;
  let records: InstanceRecords;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'novum-quota-'));
    dataSource = await openDataSource({ dataDir: dir });
    quotas = new QuotaService(new ComputeStore(dataSource));
    records = new InstanceRecords(dataSource);
  });

  afterAll(async () => {
    await dataSource.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts the live servers of the project with the flavor each keeps', async () => {
    expect(await quotas.usage('p')).toMatchObject({ instances: 0, cores: 0, ram: 0 });
    const spec = { displayName: 'vm', projectId: 'p', userId: 'u', imageRef: 'img' };
    await records.createInstances({ ...spec, flavor: flavor('1', 1, 512) }, { count: 3, requestId: 'r1' });
    const [big] = await records.createInstances(
      { ...spec, flavor: flavor('3', 4, 8192) },
      { count: 2, requestId: 'r2' },
    );
    // Another project's servers and a deleted one do not count.
    await records.createInstances(
      { ...spec, projectId: 'q', flavor: flavor('3', 4, 8192) },
      { requestId: 'r3' },
    );
    await dataSource.getRepository(InstanceEntity).update({ uuid: big.uuid }, { deletedAt: nowIso() });
    expect(await quotas.usage('p')).toMatchObject({ instances: 4, cores: 3 + 4, ram: 3 * 512 + 8192 });
    expect(await quotas.usage('q')).toMatchObject({ instances: 1, cores: 4, ram: 8192 });
  });
});
