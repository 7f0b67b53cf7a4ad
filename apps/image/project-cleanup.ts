import { Injectable } from '@nestjs/common';
import { EventListener } from '@novum/bus';
import { rootLogger } from '@novum/common';
import { ImageService } from './image.service';

/** When Keystone deletes a project, its images and its memberships in other projects' images go too. */
@Injectable()
export class ProjectCleanup {
  private readonly log = rootLogger().child({ service: 'image', component: 'project-cleanup' });

  constructor(private readonly images: ImageService) {}

  @EventListener('notifications', 'identity.project.deleted')
  async projectDeleted(payload: { resource_info?: unknown }): Promise<void> {
    if (typeof payload?.resource_info !== 'string') return;
    await this.images.forgetProject(payload.resource_info);
    this.log.info({ project: payload.resource_info }, "removed a deleted project's images and memberships");
  }
}
