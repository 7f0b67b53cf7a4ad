import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { In, IsNull } from 'typeorm';
import { BadRequestError, ConflictError, NotFoundError } from '@novum/common';
import { AZ_METADATA_KEY, Binary } from '@novum/compute';
import { AggregateEntity, InstanceEntity, inTransaction, nowIso } from '@novum/db';
import { AggregateView } from './admin-views';
import { ComputeStore, isUniqueViolation } from './compute.store';

/** Nova's InvalidAggregateAction* messages, by action. */
const ACTION_MESSAGE = {
  add: (id: number, reason: string) => `Cannot add host to aggregate ${id}. Reason: ${reason}.`,
  remove: (id: number, reason: string) => `Cannot remove host from aggregate ${id}. Reason: ${reason}.`,
  update: (id: number, reason: string) => `Cannot update aggregate ${id}. Reason: ${reason}.`,
  updateMeta: (id: number, reason: string) => `Cannot update metadata of aggregate ${id}. Reason: ${reason}.`,
};
type Action = keyof typeof ACTION_MESSAGE;

/** A Python list's repr, as Nova's messages print lists: `['az1', 'az2']`. */
const pyList = (items: string[]) => `[${items.map((i) => `'${i}'`).join(', ')}]`;

/** Host aggregates as Nova's AggregateAPI keeps them, availability zone checks included. */
@Injectable()
export class AggregateService {
  constructor(private readonly store: ComputeStore) {}

  async list(): Promise<AggregateView[]> {
    const aggregates = await this.store.aggregates.find({ order: { id: 'ASC' } });
    return this.views(aggregates);
  }

  async get(id: string): Promise<AggregateView> {
    const numeric = parseAggregateId(id);
    const aggregate = await this.store.aggregates.findOneBy({ id: numeric });
    if (!aggregate) throw new NotFoundError(`Aggregate ${id} could not be found.`);
    return (await this.views([aggregate]))[0];
  }

  async create(name: string, zone: string | null | undefined): Promise<AggregateView> {
    const now = nowIso();
    let aggregate: AggregateEntity;
    try {
      aggregate = await inTransaction(this.store.dataSource, async (tx) => {
        if (await tx.findOneBy(AggregateEntity, { name })) throw this.nameExists(name);
        const created = await tx.save(AggregateEntity, {
          uuid: randomUUID(),
          name,
          createdAt: now,
          updatedAt: null,
        });
        if (zone) {
          await tx.insert(this.store.aggregateMetadata.target, {
            aggregateId: created.id,
            key: AZ_METADATA_KEY,
            value: zone,
          });
        }
        return created;
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw this.nameExists(name);
      throw error;
    }
    return this.get(String(aggregate.id));
  }

  /** PUT: a new name and/or availability zone. */
  async update(
    id: string,
    changes: { name?: string; availability_zone?: string | null },
  ): Promise<AggregateView> {
    let view = await this.get(id);
    if (changes.name !== undefined && changes.name !== view.aggregate.name) {
      const other = await this.store.aggregates.findOneBy({ name: changes.name });
      if (other) throw this.nameExists(changes.name);
      try {
        await this.store.aggregates.update(
          { id: view.aggregate.id },
          { name: changes.name, updatedAt: nowIso() },
        );
      } catch (error) {
        if (isUniqueViolation(error)) throw this.nameExists(changes.name);
        throw error;
      }
    }
    if ('availability_zone' in changes) {
      const metadata = { [AZ_METADATA_KEY]: changes.availability_zone ?? null };
      await this.checkZoneChange(view, metadata, view.hosts, 'update', true);
      await this.writeMetadata(view.aggregate.id, metadata);
    }
    view = await this.get(id);
    return view;
  }

  async delete(id: string): Promise<void> {
    const view = await this.get(id);
    if (view.hosts.length) {
      throw new BadRequestError(ACTION_MESSAGE.remove(view.aggregate.id, 'Host aggregate is not empty'));
    }
    await inTransaction(this.store.dataSource, async (tx) => {
      await tx.delete(this.store.aggregateMetadata.target, { aggregateId: view.aggregate.id });
      await tx.delete(AggregateEntity, { id: view.aggregate.id });
    });
  }

  async addHost(id: string, host: string): Promise<AggregateView> {
    const numeric = parseAggregateId(id);
    await this.computeHost(host);
    const view = await this.get(String(numeric));
    if (view.hosts.includes(host)) throw new ConflictError(`Aggregate ${numeric} already has host ${host}.`);
    const conflict = (reason: string) => new ConflictError(ACTION_MESSAGE.add(numeric, reason));
    const zone = view.metadata[AZ_METADATA_KEY];
    if (zone !== undefined) {
      const others = await this.zonesOfHosts([host], numeric);
      const conflicting = others.filter((z) => z !== zone);
      if (conflicting.length)
        throw conflict(`One or more hosts already in availability zone(s) ${pyList(conflicting)}`);
      // A host with instances must not change zone by joining (Nova's ensure_no_instances_need_to_move_az...).
      const instances = await this.instanceCount([host]);
      const oldZone = others[0] ?? 'None';
      if (instances && oldZone !== zone)
        throw conflict(this.zoneMoveReason('added to', oldZone, zone, instances));
    }
    try {
      await this.store.aggregateHosts.insert({ aggregateId: numeric, host });
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictError(`Aggregate ${numeric} already has host ${host}.`);
      throw error;
    }
    return this.get(String(numeric));
  }

  async removeHost(id: string, host: string): Promise<AggregateView> {
    const numeric = parseAggregateId(id);
    const missing = () => new NotFoundError(`Cannot remove host ${host} in aggregate ${id}`);
    const view = await this.store.aggregates
      .findOneBy({ id: numeric })
      .then((a) => (a ? this.get(id) : undefined));
    if (!view || !view.hosts.includes(host)) throw missing();
    const zone = view.metadata[AZ_METADATA_KEY];
    if (zone !== undefined) {
      const instances = await this.instanceCount([host]);
      const newZone = (await this.zonesOfHosts([host], numeric))[0] ?? 'None';
      if (instances && newZone !== zone) {
        throw new ConflictError(
          ACTION_MESSAGE.remove(numeric, this.zoneMoveReason('removed from', zone, newZone, instances)),
        );
      }
    }
    await this.store.aggregateHosts.delete({ aggregateId: numeric, host });
    return this.get(id);
  }

  /** set_metadata: null deletes a key; `availability_zone` is checked as Nova checks it. */
  async setMetadata(id: string, metadata: Record<string, string | null>): Promise<AggregateView> {
    const view = await this.get(id);
    await this.checkZoneChange(view, metadata, view.hosts, 'updateMeta', true);
    await this.writeMetadata(view.aggregate.id, metadata);
    await this.store.aggregates.update({ id: view.aggregate.id }, { updatedAt: nowIso() });
    return this.get(id);
  }

  /** Nova's is_safe_to_update_az. */
  private async checkZoneChange(
    view: AggregateView,
    metadata: Record<string, string | null>,
    hosts: string[],
    action: Action,
    checkInstances: boolean,
  ): Promise<void> {
    if (!(AZ_METADATA_KEY in metadata)) return;
    const id = view.aggregate.id;
    const zone = metadata[AZ_METADATA_KEY];
    const refuse = (reason: string) => new BadRequestError(ACTION_MESSAGE[action](id, reason));
    if (!zone)
      throw refuse(`Aggregate ${view.aggregate.name} does not support empty named availability zone`);
    const conflicting = (await this.zonesOfHosts(hosts, id)).filter((z) => z !== zone);
    if (conflicting.length)
      throw refuse(`One or more hosts already in availability zone(s) ${pyList(conflicting)}`);
    if (checkInstances && view.metadata[AZ_METADATA_KEY] !== zone && (await this.instanceCount(hosts))) {
      throw refuse('One or more hosts contain instances in this zone');
    }
  }

  private async writeMetadata(aggregateId: number, metadata: Record<string, string | null>): Promise<void> {
    await inTransaction(this.store.dataSource, async (tx) => {
      for (const [key, value] of Object.entries(metadata)) {
        await tx.delete(this.store.aggregateMetadata.target, { aggregateId, key });
        if (value !== null) await tx.insert(this.store.aggregateMetadata.target, { aggregateId, key, value });
      }
    });
  }

  /** The availability zones other aggregates (not `exceptId`) give these hosts, one entry per aggregate. */
  private async zonesOfHosts(hosts: string[], exceptId: number): Promise<string[]> {
    if (!hosts.length) return [];
    const memberships = await this.store.aggregateHosts.findBy({ host: In(hosts) });
    const ids = [...new Set(memberships.map((m) => m.aggregateId).filter((a) => a !== exceptId))];
    if (!ids.length) return [];
    const zones = await this.store.aggregateMetadata.find({
      where: { aggregateId: In(ids), key: AZ_METADATA_KEY },
      order: { aggregateId: 'ASC' },
    });
    return zones.map((z) => z.value);
  }

  private instanceCount(hosts: string[]): Promise<number> {
    if (!hosts.length) return Promise.resolve(0);
    return this.store.dataSource
      .getRepository(InstanceEntity)
      .countBy({ host: In(hosts), deletedAt: IsNull() });
  }

  private zoneMoveReason(verb: string, from: string, to: string, instances: number): string {
    return (
      `The host cannot be ${verb} the aggregate as the availability zone of the host would change from ` +
      `'${from}' to '${to}' but the host already has ${instances} instance(s). Changing the AZ of an existing ` +
      'instance is not supported by this action. Move the instances away from this host then try again. If you ' +
      'need to move the instances between AZs then you can use shelve_offload and unshelve to achieve this.'
    );
  }

  /** The compute service of `host`, or Nova's 404. */
  private async computeHost(host: string): Promise<void> {
    const service = await this.store.services.findOneBy({ host, binary: Binary.COMPUTE });
    if (!service) throw new NotFoundError(`Compute host ${host} could not be found.`);
  }

  private nameExists(name: string): ConflictError {
    return new ConflictError(`Aggregate ${name} already exists.`);
  }

  private async views(aggregates: AggregateEntity[]): Promise<AggregateView[]> {
    if (!aggregates.length) return [];
    const ids = aggregates.map((a) => a.id);
    const [hosts, metadata] = await Promise.all([
      this.store.aggregateHosts.find({ where: { aggregateId: In(ids) }, order: { host: 'ASC' } }),
      this.store.aggregateMetadata.find({ where: { aggregateId: In(ids) }, order: { key: 'ASC' } }),
    ]);
    return aggregates.map((aggregate) => ({
      aggregate,
      hosts: hosts.filter((h) => h.aggregateId === aggregate.id).map((h) => h.host),
      metadata: Object.fromEntries(
        metadata.filter((m) => m.aggregateId === aggregate.id).map((m) => [m.key, m.value]),
      ),
    }));
  }
}

/** Nova's validate_integer on the aggregate id: 400 otherwise. */
export function parseAggregateId(id: string): number {
  if (!/^-?\d+$/.test(id.trim())) throw new BadRequestError('Invalid input received: id must be an integer.');
  return Number(id);
}
