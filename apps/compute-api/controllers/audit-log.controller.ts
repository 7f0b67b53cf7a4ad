import { Controller, Get, Param } from '@nestjs/common';
import { Auth, AuthContext } from '@novum/auth';
import { Binary } from '@novum/compute';
import { InstanceEntity } from '@novum/db';
import { ComputeStore } from '../compute.store';
import { adminOnly } from '../policy';
import { AuditHostLog, auditLogView, lastCompletedAuditPeriod, parseAuditTimestamp } from '../proxy-views';

const RULE = 'os_compute_api:os-instance-usage-audit-log';

/**
 * `/os-instance_usage_audit_log` (admin): Nova's audit of the last completed month per compute host. Novum
 * runs no audit task; each host's entry counts the instances that were live on it during the period.
 */
@Controller('v2.1/os-instance_usage_audit_log')
export class InstanceUsageAuditLogController {
  constructor(private readonly store: ComputeStore) {}

  @Get()
  async list(@Auth() auth: AuthContext) {
    adminOnly(auth, `${RULE}:list`);
    return { instance_usage_audit_logs: await this.audit(new Date()) };
  }

  @Get(':before')
  async show(@Auth() auth: AuthContext, @Param('before') before: string) {
    adminOnly(auth, `${RULE}:show`);
    return { instance_usage_audit_log: await this.audit(parseAuditTimestamp(before)) };
  }

  private async audit(before: Date) {
    const period = lastCompletedAuditPeriod(before);
    const services = await this.store.services.findBy({ binary: Binary.COMPUTE });
    const hosts = [...new Set(services.map((s) => s.host))].sort();
    const begin = period.begin.toISOString();
    const end = period.end.toISOString();
    const rows = await this.store.dataSource
      .getRepository(InstanceEntity)
      .createQueryBuilder('i')
      .select('i.host', 'host')
      .addSelect('COUNT(*)', 'count')
      .where('i.host IS NOT NULL')
      .andWhere('i.launched_at IS NOT NULL AND i.launched_at < :end', { end })
      .andWhere('(i.terminated_at IS NULL OR i.terminated_at > :begin)', { begin })
      .groupBy('i.host')
      .getRawMany<{ host: string; count: string | number }>();
    const counts = new Map(rows.map((r) => [r.host, Number(r.count)]));
    const logs: AuditHostLog[] = hosts.map((host) => ({ host, instances: counts.get(host) ?? 0 }));
    return auditLogView(period, hosts, logs);
  }
}
