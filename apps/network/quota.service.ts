import { Injectable } from '@nestjs/common';
import { BadRequestError, ConflictError } from '@novum/common';
import { NetworkStore } from './network.store';

/** Neutron's default quotas (`[quotas]` in neutron.conf); -1 is unlimited. */
export const DEFAULT_QUOTAS: Record<string, number> = {
  network: 100,
  subnet: 100,
  subnetpool: -1,
  port: 500,
  router: 10,
  floatingip: 50,
  security_group: 10,
  security_group_rule: 100,
  rbac_policy: 10,
};

/** Per-project limits. */
@Injectable()
export class QuotaService {
  constructor(private readonly store: NetworkStore) {}

  async limits(projectId: string): Promise<Record<string, number>> {
    const overrides = await this.store.quotas.findBy({ projectId });
    return { ...DEFAULT_QUOTAS, ...Object.fromEntries(overrides.map((q) => [q.resource, q.limit])) };
  }

  /** Projects whose quotas differ from the defaults. */
  async projectsWithOverrides(): Promise<string[]> {
    const rows = await this.store.quotas.find({ select: { projectId: true } });
    return [...new Set(rows.map((row) => row.projectId))];
  }

  /** 409 OverQuota when one more `resource` would exceed the project's limit. */
  async check(projectId: string, resource: string, count: () => Promise<number>): Promise<void> {
    const limit = (await this.limits(projectId))[resource];
    if (limit < 0) return;
    if ((await count()) + 1 > limit) {
      throw new ConflictError(`Quota exceeded for resources: ['${resource}'].`, 'OverQuota');
    }
  }

  async update(projectId: string, input: Record<string, unknown>): Promise<Record<string, number>> {
    const changes = Object.entries(input).map(([resource, raw]) => {
      if (!(resource in DEFAULT_QUOTAS)) throw new BadRequestError(`Unrecognized attribute(s) '${resource}'`);
      const limit = typeof raw === 'string' && /^-?\d+$/.test(raw) ? Number(raw) : raw;
      if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < -1 || limit > 2 ** 31 - 1) {
        throw new BadRequestError(
          `Invalid input for ${resource}. Reason: '${String(raw)}' is not a valid quota value (an integer from -1).`,
        );
      }
      return { projectId, resource, limit };
    });
    if (changes.length) await this.store.quotas.upsert(changes, ['projectId', 'resource']);
    return this.limits(projectId);
  }

  async reset(projectId: string): Promise<void> {
    await this.store.quotas.delete({ projectId });
  }

  /** Used counts per resource, for `/quotas/{project}/details`. */
  async usage(projectId: string): Promise<Record<string, number>> {
    const s = this.store;
    return {
      network: await s.networks.countBy({ projectId }),
      subnet: await s.subnets.countBy({ projectId }),
      subnetpool: 0,
      port: await s.ports.countBy({ projectId }),
      router: await s.routers.countBy({ projectId }),
      floatingip: await s.floatingIps.countBy({ projectId }),
      security_group: await s.securityGroups.countBy({ projectId }),
      security_group_rule: await s.securityGroupRules.countBy({ projectId }),
      rbac_policy: 0,
    };
  }
}
