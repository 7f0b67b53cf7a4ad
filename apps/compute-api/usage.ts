import { BadRequestError } from '@novum/common';
import { InstanceEntity } from '@novum/db';

/** A time as Nova's JSON shows datetimes: `2026-11-28T07:30:00.123000` (microseconds, no zone). */
export function novaMicroTime(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 19)}.${iso.slice(20, 23)}000`;
}

const FORMATS = [
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/,
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{1,6})$/,
  /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{1,6})$/,
];

/** simple-tenant-usage's `start`/`end`: Nova's three strptime formats, UTC; absent or empty: now. */
export function parseUsageTime(raw: string | undefined, now: number): number {
  if (!raw) return now;
  for (const format of FORMATS) {
    const m = format.exec(raw);
    if (!m) continue;
    const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
    const micro = Number((m[7] ?? '0').padEnd(6, '0'));
    const ms = Date.UTC(y, mo - 1, d, h, mi, s) + Math.floor(micro / 1000);
    const back = new Date(ms);
    if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) break;
    return ms;
  }
  throw new BadRequestError('Invalid datetime string: Datetime is in invalid format');
}

/** Nova's `_hours_for`: the hours of [launched, terminated] that fall in [start, stop]. */
export function hoursIn(
  instance: Pick<InstanceEntity, 'launchedAt' | 'terminatedAt'>,
  start: number,
  stop: number,
): number {
  if (!instance.launchedAt) return 0;
  const launched = Date.parse(instance.launchedAt);
  const terminated = instance.terminatedAt ? Date.parse(instance.terminatedAt) : undefined;
  if (terminated !== undefined && terminated < start) return 0;
  if (launched > stop) return 0;
  const from = Math.max(launched, start);
  const to = terminated !== undefined ? Math.min(stop, terminated) : stop;
  return (to - from) / 3_600_000;
}

export interface ServerUsage {
  instance_id: string;
  name: string;
  tenant_id: string;
  flavor: string;
  hours: number;
  memory_mb: number;
  local_gb: number;
  vcpus: number;
  started_at: string;
  ended_at: string | null;
  state: string;
  uptime: number;
}

/**
 * Nova's `_tenant_usages_for_period`: per project, the totals over its instances (in the given order), with
 * each server's usage when `detailed`. Also returns every server usage, for paging links.
 */
export function tenantUsages(
  instances: InstanceEntity[],
  start: number,
  stop: number,
  detailed: boolean,
  now: number,
): { usages: Record<string, unknown>[]; servers: ServerUsage[] } {
  const byProject = new Map<string, Record<string, unknown> & { server_usages?: ServerUsage[] }>();
  const servers: ServerUsage[] = [];
  for (const i of instances) {
    const hours = hoursIn(i, start, stop);
    const launched = Date.parse(i.launchedAt!);
    const ended = i.terminatedAt ? Date.parse(i.terminatedAt) : undefined;
    const usage: ServerUsage = {
      instance_id: i.uuid,
      name: i.displayName,
      tenant_id: i.projectId,
      flavor: i.flavor?.name ?? '',
      hours,
      memory_mb: i.flavor?.memory_mb ?? 0,
      local_gb: (i.flavor?.root_gb ?? 0) + (i.flavor?.ephemeral_gb ?? 0),
      vcpus: i.flavor?.vcpus ?? 0,
      started_at: novaMicroTime(launched),
      ended_at: ended !== undefined ? novaMicroTime(ended) : null,
      state: ended !== undefined ? 'terminated' : i.vmState,
      uptime: Math.trunc(((ended ?? now) - launched) / 1000),
    };
    let summary = byProject.get(i.projectId);
    if (!summary) {
      summary = {
        tenant_id: i.projectId,
        ...(detailed ? { server_usages: [] } : {}),
        total_local_gb_usage: 0,
        total_vcpus_usage: 0,
        total_memory_mb_usage: 0,
        total_hours: 0,
        start: novaMicroTime(start),
        stop: novaMicroTime(stop),
      };
      byProject.set(i.projectId, summary);
    }
    (summary.total_local_gb_usage as number) += usage.local_gb * hours;
    (summary.total_vcpus_usage as number) += usage.vcpus * hours;
    (summary.total_memory_mb_usage as number) += usage.memory_mb * hours;
    (summary.total_hours as number) += hours;
    summary.server_usages?.push(usage);
    servers.push(usage);
  }
  return { usages: [...byProject.values()], servers };
}
