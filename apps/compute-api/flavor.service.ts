import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuthContext, isAdmin } from '@novum/auth';
import { BadRequestError, ConflictError, NotFoundError } from '@novum/common';
import { FlavorAccessEntity, FlavorEntity, FlavorExtraSpecEntity, inTransaction, nowIso } from '@novum/db';
import { ComputeStore, isUniqueViolation } from './compute.store';
import { FlavorCreate, toNovaBoolean, toNovaInt } from './controllers/dto';
import { validateExtraSpecs } from './extra-specs';

export interface FlavorView extends FlavorEntity {
  extraSpecs: Record<string, string>;
}

export interface FlavorQuery {
  isPublic?: string;
  minRam?: string;
  minDisk?: string;
  sortKey?: string;
  sortDir?: string;
  limit?: string;
  marker?: string;
}

const MAX_INT = 2147483647;

const SORT_KEYS: Record<string, keyof FlavorEntity> = {
  created_at: 'createdAt',
  description: 'description',
  disabled: 'disabled',
  ephemeral_gb: 'ephemeralGb',
  flavorid: 'id',
  id: 'internalId',
  is_public: 'isPublic',
  memory_mb: 'memoryMb',
  name: 'name',
  root_gb: 'rootGb',
  rxtx_factor: 'rxtxFactor',
  swap: 'swap',
  updated_at: 'updatedAt',
  vcpus: 'vcpus',
};

/** Flavors, their extra specs and, for private flavors, the projects that may use them. */
@Injectable()
export class FlavorService {
  constructor(private readonly store: ComputeStore) {}

  notFound(id: string): NotFoundError {
    return new NotFoundError(`Flavor ${id} could not be found.`);
  }

  /** A flavor the caller may see: public, or private with access (admins see every flavor). */
  async get(auth: AuthContext, id: string): Promise<FlavorView> {
    const flavor = await this.store.flavors.findOneBy({ id });
    if (!flavor) throw this.notFound(id);
    if (!flavor.isPublic && !isAdmin(auth)) {
      const access = await this.store.flavorAccess.findOneBy({
        flavorId: id,
        projectId: auth.projectId ?? '',
      });
      if (!access) throw this.notFound(id);
    }
    return this.withSpecs(flavor);
  }

  private async withSpecs(flavor: FlavorEntity): Promise<FlavorView> {
    return Object.assign(flavor, { extraSpecs: await this.extraSpecs(flavor.id) });
  }

  async list(auth: AuthContext, query: FlavorQuery, withSpecs: boolean): Promise<FlavorView[]> {
    const qb = this.store.flavors.createQueryBuilder('f');
    if (isAdmin(auth)) {
      const isPublic = parseIsPublic(query.isPublic);
      if (isPublic !== null) qb.andWhere('f.is_public = :isPublic', { isPublic });
    } else {
      qb.andWhere('f.disabled = :disabled', { disabled: false });
      qb.andWhere(
        '(f.is_public = :yes OR f.flavorid IN (SELECT a.flavor_id FROM compute_flavor_access a WHERE a.project_id = :project))',
        { yes: true, project: auth.projectId ?? '' },
      );
    }
    if (query.minRam !== undefined) {
      const minRam = toNovaInt(query.minRam);
      if (minRam === undefined || Math.abs(minRam) > MAX_INT)
        throw new BadRequestError(`Invalid minRam filter [${query.minRam}]`);
      qb.andWhere('f.memory_mb >= :minRam', { minRam });
    }
    if (query.minDisk !== undefined) {
      const minDisk = toNovaInt(query.minDisk);
      if (minDisk === undefined || Math.abs(minDisk) > MAX_INT)
        throw new BadRequestError(`Invalid minDisk filter [${query.minDisk}]`);
      qb.andWhere('f.root_gb >= :minDisk', { minDisk });
    }
    const sortKey = query.sortKey ?? 'flavorid';
    const sortDir = (query.sortDir ?? 'asc').toLowerCase();
    if (!Object.hasOwn(SORT_KEYS, sortKey))
      throw new BadRequestError(`Invalid input received: Invalid sort_key ${sortKey}`);
    if (sortDir !== 'asc' && sortDir !== 'desc') {
      throw new BadRequestError(`Invalid input received: Unknown sort direction, must be 'desc' or 'asc'`);
    }
    const order = sortDir === 'asc' ? 'ASC' : 'DESC';
    let flavors = await qb
      .orderBy(`f.${SORT_KEYS[sortKey]}`, order)
      .addOrderBy('f.internalId', order)
      .getMany();
    if (query.marker !== undefined) {
      const at = flavors.findIndex((f) => f.id === query.marker);
      if (at < 0) throw new BadRequestError(`marker [${query.marker}] not found`);
      flavors = flavors.slice(at + 1);
    }
    const limit = parseLimit(query.limit);
    if (limit !== undefined) flavors = flavors.slice(0, limit);
    if (!withSpecs) return flavors.map((f) => Object.assign(f, { extraSpecs: {} }));
    const specs = flavors.length
      ? await this.store.extraSpecs
          .createQueryBuilder('s')
          .where('s.flavor_id IN (:...ids)', { ids: flavors.map((f) => f.id) })
          .getMany()
      : [];
    return flavors.map((f) =>
      Object.assign(f, {
        extraSpecs: Object.fromEntries(specs.filter((s) => s.flavorId === f.id).map((s) => [s.key, s.value])),
      }),
    );
  }

  async create(input: FlavorCreate): Promise<FlavorView> {
    const id = input.id === undefined || input.id === null ? randomUUID() : String(input.id);
    const flavor = this.store.flavors.create({
      id,
      name: input.name,
      memoryMb: toNovaInt(input.ram)!,
      vcpus: toNovaInt(input.vcpus)!,
      rootGb: toNovaInt(input.disk)!,
      ephemeralGb: toNovaInt(input['OS-FLV-EXT-DATA:ephemeral'] ?? 0)!,
      swap: toNovaInt(input.swap ?? 0)!,
      rxtxFactor: Number(input.rxtx_factor ?? 1),
      isPublic: toNovaBoolean(input['os-flavor-access:is_public'] ?? true)!,
      disabled: false,
      description: input.description ?? null,
      createdAt: nowIso(),
      updatedAt: null,
    });
    if (await this.store.flavors.existsBy({ id })) throw this.duplicateId(id);
    if (await this.store.flavors.existsBy({ name: input.name })) throw this.duplicateName(input.name);
    try {
      await this.store.flavors.insert(flavor);
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      if (await this.store.flavors.existsBy({ id })) throw this.duplicateId(id);
      throw this.duplicateName(input.name);
    }
    return Object.assign(flavor, { extraSpecs: {} });
  }

  private duplicateId(id: string): ConflictError {
    return new ConflictError(`Flavor with ID ${id} already exists.`);
  }

  private duplicateName(name: string): ConflictError {
    return new ConflictError(`Flavor with name ${name} already exists.`);
  }

  async updateDescription(auth: AuthContext, id: string, description: string | null): Promise<FlavorView> {
    const flavor = await this.get(auth, id);
    flavor.description = description;
    flavor.updatedAt = nowIso();
    await this.store.flavors.update({ id }, { description, updatedAt: flavor.updatedAt });
    return flavor;
  }

  async delete(id: string): Promise<void> {
    await inTransaction(this.store.dataSource, async (tx) => {
      const result = await tx.delete(FlavorEntity, { id });
      if (!result.affected) throw this.notFound(id);
      await tx.delete(FlavorAccessEntity, { flavorId: id });
      await tx.delete(FlavorExtraSpecEntity, { flavorId: id });
    });
  }

  async extraSpecs(flavorId: string): Promise<Record<string, string>> {
    const rows = await this.store.extraSpecs.findBy({ flavorId });
    return Object.fromEntries(rows.map((row) => [row.key, row.value]));
  }

  async setExtraSpecs(
    flavorId: string,
    specs: Record<string, unknown>,
    strict: boolean,
  ): Promise<Record<string, string>> {
    if (!(await this.store.flavors.existsBy({ id: flavorId }))) throw this.notFound(flavorId);
    const valid = validateExtraSpecs(specs, strict);
    const rows = Object.entries(valid).map(([key, value]) => ({ flavorId, key, value }));
    if (rows.length) await this.store.extraSpecs.upsert(rows, ['flavorId', 'key']);
    return valid;
  }

  async deleteExtraSpec(flavorId: string, key: string): Promise<void> {
    if (!(await this.store.flavors.existsBy({ id: flavorId }))) throw this.notFound(flavorId);
    const result = await this.store.extraSpecs.delete({ flavorId, key });
    if (!result.affected) throw this.noSpec(flavorId, key);
  }

  noSpec(flavorId: string, key: string): NotFoundError {
    return new NotFoundError(`Flavor ${flavorId} has no extra specs with key ${key}.`);
  }

  async accessList(flavorId: string): Promise<FlavorAccessEntity[]> {
    const flavor = await this.store.flavors.findOneBy({ id: flavorId });
    if (!flavor) throw this.notFound(flavorId);
    if (flavor.isPublic) throw new NotFoundError('Access list not available for public flavors.');
    return this.store.flavorAccess.find({ where: { flavorId }, order: { projectId: 'ASC' } });
  }

  async addAccess(flavorId: string, projectId: string): Promise<FlavorAccessEntity[]> {
    const flavor = await this.store.flavors.findOneBy({ id: flavorId });
    if (!flavor) throw this.notFound(flavorId);
    if (flavor.isPublic) throw new ConflictError('Can not add access to a public flavor.');
    try {
      await this.store.flavorAccess.insert({ flavorId, projectId });
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      throw new ConflictError(
        `Flavor access already exists for flavor ${flavorId} and project ${projectId} combination.`,
      );
    }
    return this.accessList(flavorId);
  }

  async removeAccess(flavorId: string, projectId: string): Promise<FlavorAccessEntity[]> {
    const flavor = await this.store.flavors.findOneBy({ id: flavorId });
    if (!flavor) throw this.notFound(flavorId);
    const result = await this.store.flavorAccess.delete({ flavorId, projectId });
    if (!result.affected) {
      throw new NotFoundError(`Flavor access not found for ${flavorId} / ${projectId} combination.`);
    }
    return this.accessList(flavorId);
  }
}

/** Nova's `is_public` list filter for admins: absent means public only, `none` means all. */
function parseIsPublic(raw: string | undefined): boolean | null {
  if (raw === undefined) return true;
  if (raw.toLowerCase() === 'none') return null;
  const value = toNovaBoolean(raw);
  if (value === undefined) throw new BadRequestError(`Invalid is_public filter [${raw}]`);
  return value;
}

export function parseLimit(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const limit = toNovaInt(raw);
  if (limit === undefined || limit < 0 || limit > MAX_INT) {
    throw new BadRequestError(
      `Invalid input for query parameters limit. Value: ${raw}. must be an integer >= 0`,
    );
  }
  return limit;
}
