import { ComputeNodeEntity, ComputeServiceEntity, MigrationEntity } from '@novum/db';
import {
  HypervisorRow,
  hypervisorStatistics,
  hypervisorView,
  migrationView,
  uptimeText,
} from './admin-views';
import { ApiVersion } from './microversion';

const v = (text: string) => ApiVersion.parse(text);

function row(disabled = false, up = true): HypervisorRow {
  return {
    id: 7,
    up,
    workload: 1,
    node: {
      uuid: '0f0e2c0d-1111-4222-8333-444455556666',
      host: 'h1',
      hypervisorHostname: 'h1',
      hypervisorType: 'fake',
      hypervisorVersion: 1000,
      hostIp: '127.0.0.1',
      vcpus: 8,
      memoryMb: 8192,
      localGb: 100,
      vcpusUsed: 2,
      memoryMbUsed: 1024,
      localGbUsed: 10,
      runningVms: 2,
      cpuInfo: { arch: 'x86_64' },
    } as unknown as ComputeNodeEntity,
    service: {
      id: 3,
      uuid: 'svc-uuid',
      disabled,
      disabledReason: disabled ? 'maint' : null,
    } as ComputeServiceEntity,
  };
}

describe('hypervisor views', () => {
  it('shows integer ids and text cpu_info at 2.1, objects from 2.28, uuids from 2.53', () => {
    const at21 = hypervisorView(row(), true, v('2.1'));
    expect(at21).toMatchObject({
      id: 7,
      state: 'up',
      status: 'enabled',
      free_ram_mb: 7168,
      free_disk_gb: 90,
    });
    expect(at21.cpu_info).toBe('{"arch":"x86_64"}');
    expect(at21.service).toEqual({ id: 3, host: 'h1', disabled_reason: null });
    expect(hypervisorView(row(), true, v('2.28')).cpu_info).toEqual({ arch: 'x86_64' });
    const at253 = hypervisorView(row(true, false), false, v('2.53'));
    expect(at253).toEqual({
      id: '0f0e2c0d-1111-4222-8333-444455556666',
      hypervisor_hostname: 'h1',
      state: 'down',
      status: 'disabled',
    });
  });

  it('drops the usage fields and adds uptime at 2.88; servers only when asked', () => {
    const at288 = hypervisorView(row(), true, v('2.88'), { uptime: 'up' });
    expect(at288).not.toHaveProperty('vcpus');
    expect(at288).not.toHaveProperty('cpu_info');
    expect(at288.uptime).toBe('up');
    expect(hypervisorView(row(), false, v('2.75'), { withServers: true }).servers).toEqual([]);
    expect(hypervisorView(row(), false, v('2.53'), { withServers: true })).not.toHaveProperty('servers');
  });

  it('sums statistics over enabled services only', () => {
    const stats = hypervisorStatistics([row(), row(true)]);
    expect(stats).toMatchObject({
      count: 1,
      vcpus: 8,
      free_ram_mb: 7168,
      running_vms: 2,
      current_workload: 1,
    });
  });

  it('prints uptime as uptime(1) does', () => {
    expect(
      uptimeText(new Date('2026-01-01T08:32:11Z'), 3 * 86400 + 2 * 3600 + 5 * 60, [0.2, 0.13, 0.175]),
    ).toBe(' 08:32:11 up 3 days,  2:05,  0 users,  load average: 0.20, 0.13, 0.17');
    expect(uptimeText(new Date('2026-01-01T00:00:00Z'), 600, [])).toContain('up 10 min,');
  });
});

describe('migration view', () => {
  const m = {
    id: 1,
    uuid: 'u',
    instanceUuid: 'i',
    migrationType: 'live-migration',
    status: 'running',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: null,
    userId: 'user',
    projectId: 'proj',
  } as unknown as MigrationEntity;

  it('adds fields per microversion and links an in-progress live migration', () => {
    expect(migrationView(m, v('2.1'), 'http://x')).not.toHaveProperty('migration_type');
    const at223 = migrationView(m, v('2.23'), 'http://x');
    expect(at223.links).toEqual([
      { rel: 'self', href: 'http://x/v2.1/servers/i/migrations/1' },
      { rel: 'bookmark', href: 'http://x/servers/i/migrations/1' },
    ]);
    expect(at223).not.toHaveProperty('uuid');
    expect(migrationView(m, v('2.59'), 'http://x').uuid).toBe('u');
    expect(migrationView(m, v('2.80'), 'http://x')).toMatchObject({ user_id: 'user', project_id: 'proj' });
    expect(
      migrationView({ ...m, status: 'completed' } as MigrationEntity, v('2.23'), 'x'),
    ).not.toHaveProperty('links');
  });
});
