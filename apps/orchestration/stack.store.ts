import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { HeatEventEntity, HeatResourceEntity, HeatSnapshotEntity, HeatStackEntity, nowIso } from '@novum/db';
import { DataSource, Repository } from 'typeorm';

/** The orchestration tables, and the one way state changes are written: with their event. */
@Injectable()
export class StackStore {
  readonly stacks: Repository<HeatStackEntity>;
  readonly resources: Repository<HeatResourceEntity>;
  readonly events: Repository<HeatEventEntity>;
  readonly snapshots: Repository<HeatSnapshotEntity>;

  constructor(dataSource: DataSource) {
    this.stacks = dataSource.getRepository(HeatStackEntity);
    this.resources = dataSource.getRepository(HeatResourceEntity);
    this.events = dataSource.getRepository(HeatEventEntity);
    this.snapshots = dataSource.getRepository(HeatSnapshotEntity);
  }

  async setStackState(stack: HeatStackEntity, action: string, status: string, reason: string): Promise<void> {
    stack.action = action;
    stack.status = status;
    stack.statusReason = reason;
    stack.updatedAt = action === 'CREATE' ? stack.updatedAt : nowIso();
    await this.stacks.update(
      { id: stack.id },
      { action, status, statusReason: reason, updatedAt: stack.updatedAt },
    );
    await this.event(stack.id, {
      resourceName: stack.name,
      physicalResourceId: stack.id,
      resourceType: 'OS::Heat::Stack',
      action,
      status,
      statusReason: reason,
    });
  }

  async setResourceState(
    resource: HeatResourceEntity,
    action: string,
    status: string,
    reason: string,
    changes: Partial<HeatResourceEntity> = {},
  ): Promise<void> {
    Object.assign(resource, changes, { action, status, statusReason: reason, updatedAt: nowIso() });
    await this.resources.save(resource);
    await this.event(resource.stackId, {
      resourceName: resource.name,
      physicalResourceId: resource.physicalId,
      resourceType: resource.type,
      action,
      status,
      statusReason: reason,
    });
  }

  private async event(
    stackId: string,
    fields: Pick<
      HeatEventEntity,
      'resourceName' | 'physicalResourceId' | 'resourceType' | 'action' | 'status' | 'statusReason'
    >,
  ): Promise<void> {
    await this.events.insert({ id: randomUUID(), stackId, createdAt: nowIso(), ...fields });
  }
}
