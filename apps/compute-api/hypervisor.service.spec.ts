import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { NovumConfig } from '@novum/common';
import { ComputeNodeEntity, ComputeServiceEntity, openDataSource } from '@novum/db';
import { ComputeStore } from './compute.store';
import { HypervisorService } from './hypervisor.service';

describe('HypervisorService on SQLite', () => {
  let dir: string;
  let dataSource: DataSource;
  let hypervisors: HypervisorService;

  /** A compute host (service and node) registered `second` seconds into the day. */
  async function register(host: string, second: number): Promise<void> {
    const at = new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString();
    await dataSource.getRepository(ComputeServiceEntity).insert({
      uuid: `service-${host}`,
      host,
      binary: 'nova-compute',
      topic: 'compute',
      reportCount: 1,
      disabled: false,
      disabledReason: null,
      forcedDown: false,
      lastSeenUp: new Date().toISOString(),
      version: 66,
      createdAt: at,
      updatedAt: at,
    });
    await dataSource.getRepository(ComputeNodeEntity).insert({
      uuid: `node-${host}`,
      host,
      hypervisorHostname: host,
      hypervisorType: 'fake',
      hypervisorVersion: 1,
      hostIp: '127.0.0.1',
      vcpus: 8,
      memoryMb: 8192,
      localGb: 100,
      vcpusUsed: 0,
      memoryMbUsed: 0,
      localGbUsed: 0,
      runningVms: 0,
      cpuAllocationRatio: 1,
      ramAllocationRatio: 1,
      diskAllocationRatio: 1,
      drivers: ['fake'],
      cpuInfo: {},
      failedBuilds: 0,
      createdAt: at,
      updatedAt: at,
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'novum-hypervisors-'));
    dataSource = await openDataSource({ dataDir: dir });
    hypervisors = new HypervisorService(new ComputeStore(dataSource), {
      serviceDownTimeSeconds: 60,
    } as NovumConfig);
  });

  afterAll(async () => {
    await dataSource.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('numbers the nodes in creation order at first sight, keeps the numbers, and numbers newcomers after them', async () => {
    for (let i = 0; i < 300; i++) await register(`host-${String(i).padStart(3, '0')}`, i);
    // Requests that meet the same new nodes at once agree on their numbers.
    const [first, racing] = await Promise.all([hypervisors.rows(), hypervisors.rows()]);
    expect(first.map((r) => [r.node.host, r.id])).toEqual(
      Array.from({ length: 300 }, (_, i) => [`host-${String(i).padStart(3, '0')}`, i + 1]),
    );
    expect(racing.map((r) => r.id)).toEqual(first.map((r) => r.id));
    expect(first[0]).toMatchObject({ up: true, workload: 0 });

    await register('late', 1000);
    const again = await hypervisors.rows();
    // Above every other (the race may have spent numbers: ids have gaps, as Nova's have).
    expect(again.slice(0, 300).map((r) => r.id)).toEqual(first.map((r) => r.id));
    expect(again[300]).toMatchObject({ node: { host: 'late' } });
    expect(again[300].id).toBeGreaterThan(300);
  });
});
