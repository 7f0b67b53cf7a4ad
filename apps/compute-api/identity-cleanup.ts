import { Injectable } from '@nestjs/common';
import { EventListener } from '@novum/bus';
import { rootLogger } from '@novum/common';
import {
  FlavorAccessEntity,
  inTransaction,
  KeyPairEntity,
  QuotaEntity,
  ServerGroupEntity,
  ServerGroupMemberEntity,
} from '@novum/db';
import { In } from 'typeorm';
import { ComputeStore } from './compute.store';

/**
 * When Keystone deletes a project, its quotas, server groups and private-flavor access go; when it deletes
 * a user, the user's key pairs go.
 */
@Injectable()
export class IdentityCleanup {
  private readonly log = rootLogger().child({ service: 'compute-api', component: 'identity-cleanup' });

  constructor(private readonly store: ComputeStore) {}

  @EventListener('notifications', 'identity.project.deleted')
  async projectDeleted(payload: { resource_info?: unknown }): Promise<void> {
    const projectId = payload?.resource_info;
    if (typeof projectId !== 'string') return;
    await inTransaction(this.store.dataSource, async (tx) => {
      const groups = await tx.find(ServerGroupEntity, { where: { projectId }, select: { id: true } });
      if (groups.length) {
        await tx.delete(ServerGroupMemberEntity, { groupId: In(groups.map((g) => g.id)) });
      }
      await tx.delete(ServerGroupEntity, { projectId });
      await tx.delete(QuotaEntity, { projectId });
      await tx.delete(FlavorAccessEntity, { projectId });
    });
    this.log.info(
      { project: projectId },
      "removed a deleted project's quotas, server groups and flavor access",
    );
  }

  @EventListener('notifications', 'identity.user.deleted')
  async userDeleted(payload: { resource_info?: unknown }): Promise<void> {
    const userId = payload?.resource_info;
    if (typeof userId !== 'string') return;
    await this.store.dataSource.getRepository(KeyPairEntity).delete({ userId });
    this.log.info({ user: userId }, "removed a deleted user's key pairs");
  }
}
