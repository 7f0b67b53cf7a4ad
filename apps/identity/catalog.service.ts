import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { BadRequestError, ConflictError, NotFoundError } from '@novum/common';
import { EndpointEntity, RegionEntity, ServiceEntity } from '@novum/db';
import { IdentityCache } from './identity-cache';
import { IdentityStore, isUniqueViolation } from './identity.store';

export interface CatalogEntry {
  id: string;
  type: string;
  name: string;
  endpoints: {
    id: string;
    interface: string;
    region: string | null;
    region_id: string | null;
    url: string;
  }[];
}

export const INTERFACES = ['public', 'internal', 'admin'];

/** Regions, services and endpoints: the service catalog is data, edited through the API like Keystone's. */
@Injectable()
export class CatalogService {
  constructor(
    private readonly store: IdentityStore,
    private readonly cache: IdentityCache,
  ) {}

  catalog(): Promise<CatalogEntry[]> {
    return this.cache.get('catalog', async () => {
      const [services, endpoints] = await Promise.all([
        this.store.services.findBy({ enabled: true }),
        this.store.endpoints.findBy({ enabled: true }),
      ]);
      return services.map((service) => ({
        id: service.id,
        type: service.type,
        name: service.name,
        endpoints: endpoints
          .filter((e) => e.serviceId === service.id)
          .map((e) => ({
            id: e.id,
            interface: e.interface,
            region: e.regionId,
            region_id: e.regionId,
            url: e.url,
          })),
      }));
    });
  }

  listRegions(filter: { parent_region_id?: string }): Promise<RegionEntity[]> {
    return this.store.regions.findBy(
      filter.parent_region_id ? { parentRegionId: filter.parent_region_id } : {},
    );
  }

  async getRegion(id: string): Promise<RegionEntity> {
    const region = await this.store.regions.findOneBy({ id });
    if (!region) throw new NotFoundError(`Could not find region: ${id}.`);
    return region;
  }

  async createRegion(input: {
    id?: string;
    description?: string;
    parent_region_id?: string | null;
  }): Promise<RegionEntity> {
    if (input.parent_region_id) await this.getRegion(input.parent_region_id);
    const region: RegionEntity = {
      id: input.id ?? randomUUID().replace(/-/g, ''),
      description: input.description ?? '',
      parentRegionId: input.parent_region_id ?? null,
      extra: {},
    };
    await this.insert(this.store.regions, region, `region ${region.id}`);
    return region;
  }

  async updateRegion(
    id: string,
    input: { description?: string; parent_region_id?: string | null },
  ): Promise<RegionEntity> {
    const region = await this.getRegion(id);
    if (input.parent_region_id) {
      if (input.parent_region_id === id) throw new BadRequestError('A region cannot be its own parent.');
      await this.getRegion(input.parent_region_id);
    }
    if (input.description !== undefined) region.description = input.description;
    if (input.parent_region_id !== undefined) region.parentRegionId = input.parent_region_id;
    await this.store.regions.save(region);
    return region;
  }

  async deleteRegion(id: string): Promise<void> {
    await this.getRegion(id);
    if (await this.store.regions.existsBy({ parentRegionId: id })) {
      throw new ConflictError(`Region ${id} has child regions and cannot be deleted.`);
    }
    await this.store.regions.delete({ id });
    await this.store.endpoints.update({ regionId: id }, { regionId: null });
    this.cache.invalidate();
  }

  listServices(filter: { type?: string; name?: string }): Promise<ServiceEntity[]> {
    return this.store.services.findBy({
      ...(filter.type && { type: filter.type }),
      ...(filter.name && { name: filter.name }),
    });
  }

  async getService(id: string): Promise<ServiceEntity> {
    const service = await this.store.services.findOneBy({ id });
    if (!service) throw new NotFoundError(`Could not find service: ${id}.`);
    return service;
  }

  async createService(input: {
    type: string;
    name?: string;
    description?: string;
    enabled?: boolean;
  }): Promise<ServiceEntity> {
    const service: ServiceEntity = {
      id: randomUUID().replace(/-/g, ''),
      type: input.type,
      name: input.name ?? '',
      description: input.description ?? '',
      enabled: input.enabled ?? true,
      extra: {},
    };
    await this.store.services.insert(service);
    this.cache.invalidate();
    return service;
  }

  async updateService(
    id: string,
    input: Partial<Pick<ServiceEntity, 'type' | 'name' | 'description' | 'enabled'>>,
  ) {
    const service = await this.getService(id);
    Object.assign(service, definedOnly(input));
    await this.store.services.save(service);
    this.cache.invalidate();
    return service;
  }

  async deleteService(id: string): Promise<void> {
    await this.getService(id);
    await this.store.endpoints.delete({ serviceId: id });
    await this.store.services.delete({ id });
    this.cache.invalidate();
  }

  listEndpoints(filter: {
    interface?: string;
    service_id?: string;
    region_id?: string;
  }): Promise<EndpointEntity[]> {
    return this.store.endpoints.findBy({
      ...(filter.interface && { interface: filter.interface }),
      ...(filter.service_id && { serviceId: filter.service_id }),
      ...(filter.region_id && { regionId: filter.region_id }),
    });
  }

  async getEndpoint(id: string): Promise<EndpointEntity> {
    const endpoint = await this.store.endpoints.findOneBy({ id });
    if (!endpoint) throw new NotFoundError(`Could not find endpoint: ${id}.`);
    return endpoint;
  }

  async createEndpoint(input: {
    service_id: string;
    interface: string;
    url: string;
    region_id?: string | null;
    region?: string | null;
    enabled?: boolean;
  }): Promise<EndpointEntity> {
    await this.getService(input.service_id);
    const regionId = input.region_id ?? input.region ?? null;
    if (regionId) await this.getRegion(regionId);
    const endpoint: EndpointEntity = {
      id: randomUUID().replace(/-/g, ''),
      serviceId: input.service_id,
      interface: input.interface,
      url: input.url,
      regionId,
      enabled: input.enabled ?? true,
      extra: {},
    };
    await this.store.endpoints.insert(endpoint);
    this.cache.invalidate();
    return endpoint;
  }

  async updateEndpoint(
    id: string,
    input: {
      service_id?: string;
      interface?: string;
      url?: string;
      region_id?: string | null;
      enabled?: boolean;
    },
  ): Promise<EndpointEntity> {
    const endpoint = await this.getEndpoint(id);
    if (input.service_id) await this.getService(input.service_id);
    if (input.region_id) await this.getRegion(input.region_id);
    Object.assign(
      endpoint,
      definedOnly({
        serviceId: input.service_id,
        interface: input.interface,
        url: input.url,
        regionId: input.region_id,
        enabled: input.enabled,
      }),
    );
    await this.store.endpoints.save(endpoint);
    this.cache.invalidate();
    return endpoint;
  }

  async deleteEndpoint(id: string): Promise<void> {
    await this.getEndpoint(id);
    await this.store.endpoints.delete({ id });
    this.cache.invalidate();
  }

  private async insert<T extends object>(repo: { insert(row: T): Promise<unknown> }, row: T, what: string) {
    try {
      await repo.insert(row);
    } catch (error) {
      if (isUniqueViolation(error))
        throw new ConflictError(`Conflict occurred attempting to store ${what}: duplicate entry.`);
      throw error;
    }
    this.cache.invalidate();
  }
}

/** Drops undefined members, so a PATCH changes only what it names. */
export function definedOnly<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as Partial<T>;
}
