import { Injectable } from '@nestjs/common';
import { InstanceEntity, InstanceFlavor } from '@novum/db';
import { BadRequestError, ForbiddenError } from '@novum/common';
import { toNovaBoolean, toNovaInt } from './controllers/dto';
import { ComputeStore } from './compute.store';
import { ApiVersion } from './microversion';

/** Nova's default quotas (`[quota]` in nova.conf); -1 is unlimited. */
export const DEFAULT_QUOTAS: Record<string, number> = {
  instances: 10,
  cores: 20,
  ram: 51200,
  floating_ips: 10,
  fixed_ips: -1,
  metadata_items: 128,
  injected_files: 5,
  injected_file_content_bytes: 10240,
  injected_file_path_bytes: 255,
  security_groups: 10,
  security_group_rules: 20,
  key_pairs: 100,
  server_groups: 10,
  server_group_members: 10,
};

/** Resources nova-network owned, gone from quota sets at 2.36 and from quota classes at 2.50. */
const NETWORK_RESOURCES = ['floating_ips', 'fixed_ips', 'security_groups', 'security_group_rules'];
/** Personality (file injection) resources, gone at 2.57. */
const INJECTION_RESOURCES = ['injected_files', 'injected_file_content_bytes', 'injected_file_path_bytes'];

/** The quota resources a quota set shows at a microversion. */
export function quotaSetResources(version: ApiVersion): string[] {
  return Object.keys(DEFAULT_QUOTAS).filter(
    (r) =>
      !(version.atLeast('2.36') && NETWORK_RESOURCES.includes(r)) &&
      !(version.atLeast('2.57') && INJECTION_RESOURCES.includes(r)),
  );
}

/** The quota resources a quota class set shows: no server groups before 2.50, as in Nova. */
export function quotaClassResources(version: ApiVersion): string[] {
  return Object.keys(DEFAULT_QUOTAS).filter((r) =>
    version.atLeast('2.50')
      ? !NETWORK_RESOURCES.includes(r) && !(version.atLeast('2.57') && INJECTION_RESOURCES.includes(r))
      : !['server_groups', 'server_group_members'].includes(r),
  );
}

/** What a project uses of each resource, counted from the tables that exist. */
export type Usage = Record<string, number>;

/** Per-project limits over the `default` quota class, and the checks that enforce them. */
@Injectable()
export class QuotaService {
  constructor(private readonly store: ComputeStore) {}

  async classLimits(className: string): Promise<Record<string, number>> {
    const rows = await this.store.quotaClasses.findBy({ className: 'default' });
    const own = className === 'default' ? [] : await this.store.quotaClasses.findBy({ className });
    return {
      ...DEFAULT_QUOTAS,
      ...Object.fromEntries([...rows, ...own].map((row) => [row.resource, row.hardLimit])),
    };
  }

  async limits(projectId: string): Promise<Record<string, number>> {
    const defaults = await this.classLimits('default');
    const rows = await this.store.quotas.findBy({ projectId });
    return { ...defaults, ...Object.fromEntries(rows.map((row) => [row.resource, row.hardLimit])) };
  }

  /** Usage of a project (key pairs belong to users: the caller's own count). */
  async usage(projectId: string, userId?: string): Promise<Usage> {
    const serverGroups = await this.store.serverGroups.countBy({ projectId });
    const keyPairs = userId ? await this.store.keyPairs.countBy({ userId }) : 0;
    // Counted per distinct flavor copy in the database: a create must not load every server of the project.
    const byFlavor: { flavor: string; servers: number | string }[] = await this.store.dataSource
      .getRepository(InstanceEntity)
      .createQueryBuilder('i')
      .select('i.flavor', 'flavor')
      .addSelect('COUNT(*)', 'servers')
      .where('i.project_id = :projectId', { projectId })
      .andWhere('i.deleted_at IS NULL')
      .groupBy('i.flavor')
      .getRawMany();
    let instances = 0;
    let cores = 0;
    let ram = 0;
    for (const row of byFlavor) {
      const count = Number(row.servers);
      const flavor = JSON.parse(row.flavor) as Partial<InstanceFlavor> | null;
      instances += count;
      cores += count * (flavor?.vcpus ?? 0);
      ram += count * (flavor?.memory_mb ?? 0);
    }
    return {
      instances,
      cores,
      ram,
      server_groups: serverGroups,
      key_pairs: keyPairs,
    };
  }

  /** Refuses one more `resource` beyond the limit, with Nova's 403 message. */
  async checkOneMore(projectId: string, resource: string, used: number, message: string): Promise<void> {
    const limit = (await this.limits(projectId))[resource];
    if (limit >= 0 && used + 1 > limit) throw new ForbiddenError(message);
  }

  /**
   * Validates a quota_set/quota_class_set body against the resources of the microversion: integers from
   * -1, and for projects (unless `force`) not below what is in use.
   */
  parseUpdate(
    body: Record<string, unknown>,
    resources: string[],
    allowForce: boolean,
  ): { limits: Record<string, number>; force: boolean } {
    const limits: Record<string, number> = {};
    let force = false;
    for (const [key, raw] of Object.entries(body)) {
      if (allowForce && key === 'force') {
        const value = toNovaBoolean(raw);
        if (value === undefined) {
          throw new BadRequestError(
            `Invalid input for field/attribute force. Value: ${String(raw)}. is not a boolean`,
          );
        }
        force = value;
        continue;
      }
      if (!resources.includes(key)) {
        throw new BadRequestError(
          `Invalid input for field/attribute quota_set. Value: ${JSON.stringify(body)}. Additional properties are not allowed ('${key}' was unexpected)`,
        );
      }
      const value = toNovaInt(raw);
      if (value === undefined || value < -1 || value > 2147483647) {
        throw new BadRequestError(
          `Invalid input for field/attribute ${key}. Value: ${String(raw)}. must be an integer from -1 to 2147483647`,
        );
      }
      limits[key] = value;
    }
    return { limits, force };
  }

  async update(projectId: string, limits: Record<string, number>, force: boolean): Promise<void> {
    if (!force) {
      const used = await this.usage(projectId);
      for (const [resource, limit] of Object.entries(limits)) {
        const inUse = resource === 'key_pairs' ? 0 : (used[resource] ?? 0);
        if (limit >= 0 && limit < inUse) {
          throw new BadRequestError(
            `Quota limit ${limit} for ${resource} must be greater than or equal to already used and reserved ${inUse}.`,
          );
        }
      }
    }
    const rows = Object.entries(limits).map(([resource, hardLimit]) => ({ projectId, resource, hardLimit }));
    if (rows.length) await this.store.quotas.upsert(rows, ['projectId', 'resource']);
  }

  async updateClass(className: string, limits: Record<string, number>): Promise<void> {
    const rows = Object.entries(limits).map(([resource, hardLimit]) => ({ className, resource, hardLimit }));
    if (rows.length) await this.store.quotaClasses.upsert(rows, ['className', 'resource']);
  }

  async reset(projectId: string): Promise<void> {
    await this.store.quotas.delete({ projectId });
  }
}
