import { InstanceEntity } from '@novum/db';
import { hoursIn, parseUsageTime, tenantUsages } from './usage';

const T = (s: string) => Date.parse(`${s}Z`);

function instance(uuid: string, project: string, launched: string | null, terminated: string | null = null) {
  return {
    uuid,
    projectId: project,
    displayName: `vm-${uuid}`,
    vmState: 'active',
    launchedAt: launched ? new Date(T(launched)).toISOString() : null,
    terminatedAt: terminated ? new Date(T(terminated)).toISOString() : null,
    flavor: { name: 'm1.small', vcpus: 2, memory_mb: 2048, root_gb: 20, ephemeral_gb: 5 },
  } as unknown as InstanceEntity;
}

describe('simple tenant usage', () => {
  const start = T('2026-01-01T00:00:00');
  const stop = T('2026-01-02T00:00:00');

  it('parses the three formats Nova accepts and refuses others', () => {
    expect(parseUsageTime('2026-01-01T10:00:00', 0)).toBe(T('2026-01-01T10:00:00'));
    expect(parseUsageTime('2026-01-01T10:00:00.500000', 0)).toBe(T('2026-01-01T10:00:00.500'));
    expect(parseUsageTime('2026-01-01 10:00:00.25', 0)).toBe(T('2026-01-01T10:00:00.250'));
    expect(parseUsageTime(undefined, 42)).toBe(42);
    expect(() => parseUsageTime('2026-01-01', 0)).toThrow('Datetime is in invalid format');
    expect(() => parseUsageTime('2026-02-30T00:00:00', 0)).toThrow('Datetime is in invalid format');
  });

  it('counts only the hours inside the window', () => {
    expect(hoursIn(instance('a', 'p', '2025-12-31T12:00:00'), start, stop)).toBe(24);
    expect(hoursIn(instance('b', 'p', '2026-01-01T06:00:00', '2026-01-01T12:00:00'), start, stop)).toBe(6);
    expect(hoursIn(instance('c', 'p', '2025-12-01T00:00:00', '2025-12-02T00:00:00'), start, stop)).toBe(0);
    expect(hoursIn(instance('d', 'p', null), start, stop)).toBe(0);
  });

  it('sums per project, with server usages only when detailed', () => {
    const rows = [
      instance('a', 'p1', '2026-01-01T00:00:00'),
      instance('b', 'p1', '2026-01-01T12:00:00', '2026-01-01T18:00:00'),
      instance('c', 'p2', '2026-01-01T23:00:00'),
    ];
    const now = T('2026-01-03T00:00:00');
    const { usages, servers } = tenantUsages(rows, start, stop, false, now);
    expect(usages).toHaveLength(2);
    expect(usages[0]).toMatchObject({
      tenant_id: 'p1',
      total_hours: 30,
      total_vcpus_usage: 60,
      total_memory_mb_usage: 2048 * 30,
      total_local_gb_usage: 25 * 30,
      start: '2026-01-01T00:00:00.000000',
      stop: '2026-01-02T00:00:00.000000',
    });
    expect(usages[0]).not.toHaveProperty('server_usages');
    expect(servers[1]).toMatchObject({
      state: 'terminated',
      uptime: 6 * 3600,
      ended_at: '2026-01-01T18:00:00.000000',
    });
    expect(servers[2]).toMatchObject({ state: 'active', hours: 1, uptime: 25 * 3600 });
    const detailed = tenantUsages(rows, start, stop, true, now).usages;
    expect((detailed[1].server_usages as unknown[]).length).toBe(1);
  });
});
