import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuthContext, authorize, canActOnProject } from '@novum/auth';
import {
  BadRequestError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
} from '@novum/common';
import {
  ImageEntity,
  ImageMemberEntity,
  ImageTagEntity,
  MemberStatus,
  nowIso,
  inTransaction,
} from '@novum/db';
import { EntityManager } from 'typeorm';
import {
  checkDraftPolicy,
  checkTag,
  checkWritable,
  ConflictingPropertyError,
  hasAttribute,
  ImageDraft,
  removeAttribute,
  setAttribute,
} from './attributes';
import { PatchOperation } from './json-patch';
import { TAG_QUOTA } from './model';
import { canModifyImage, canSeeImage } from './policy';
import { ImageStore, isUniqueViolation } from './image.store';
import { ImageFileStore } from './file-store';

export interface ImageView {
  image: ImageEntity;
  tags: string[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function draftOf(image: ImageEntity, tags: string[]): ImageDraft {
  return {
    name: image.name,
    visibility: image.visibility,
    protected: image.protected,
    os_hidden: image.osHidden,
    disk_format: image.diskFormat,
    container_format: image.containerFormat,
    min_disk: image.minDisk,
    min_ram: image.minRam,
    owner: image.owner,
    tags: [...tags],
    properties: { ...image.properties },
  };
}

function applyDraft(image: ImageEntity, draft: ImageDraft): void {
  image.name = draft.name;
  image.visibility = draft.visibility;
  image.protected = draft.protected;
  image.osHidden = draft.os_hidden;
  image.diskFormat = draft.disk_format;
  image.containerFormat = draft.container_format;
  image.minDisk = draft.min_disk;
  image.minRam = draft.min_ram;
  image.owner = draft.owner;
  image.properties = draft.properties;
}

/** Image metadata: create, show, JSON-patch update, delete, (de)activation and tags, under Glance's policy. */
@Injectable()
export class ImageService {
  constructor(
    private readonly store: ImageStore,
    private readonly files: ImageFileStore,
  ) {}

  notFound(id: string): NotFoundError {
    return new NotFoundError(`No image found with ID ${id}`);
  }

  async membership(auth: AuthContext, imageId: string): Promise<MemberStatus | undefined> {
    if (!auth.projectId) return undefined;
    const row = await this.store.members.findOneBy({ imageId, memberId: auth.projectId });
    return row?.status;
  }

  /** The image if the caller may see it; otherwise 404, exactly as if it did not exist. */
  async visible(auth: AuthContext, id: string): Promise<ImageEntity> {
    const image = UUID.test(id) ? await this.store.images.findOneBy({ id }) : null;
    if (!image || !canSeeImage(auth, image, await this.membership(auth, id))) throw this.notFound(id);
    return image;
  }

  /** The image if the caller may change it: 404 when invisible, 403 when only readable. */
  async modifiable(auth: AuthContext, id: string, action: string): Promise<ImageEntity> {
    const image = await this.visible(auth, id);
    authorize(action, canModifyImage(auth, image));
    return image;
  }

  async view(image: ImageEntity): Promise<ImageView> {
    return { image, tags: (await this.store.tagsOf([image.id])).get(image.id) ?? [] };
  }

  async show(auth: AuthContext, id: string): Promise<ImageView> {
    return this.view(await this.visible(auth, id));
  }

  async create(auth: AuthContext, body: Record<string, unknown>): Promise<ImageView> {
    authorize('add_image', canActOnProject(auth, auth.projectId));
    const draft: ImageDraft = {
      name: null,
      visibility: 'shared',
      protected: false,
      os_hidden: false,
      disk_format: null,
      container_format: null,
      min_disk: 0,
      min_ram: 0,
      owner: auth.projectId ?? null,
      tags: [],
      properties: {},
    };
    let id: string = randomUUID();
    for (const [key, value] of Object.entries(body)) {
      if (key === 'id') {
        if (typeof value !== 'string' || !UUID.test(value))
          throw new BadRequestError(`Invalid value for 'id': ${JSON.stringify(value)} is not a UUID.`);
        id = value.toLowerCase();
        continue;
      }
      setAttribute(draft, key, value);
    }
    checkDraftPolicy(auth, draft);
    const now = nowIso();
    const image = this.store.images.create({
      id,
      status: 'queued',
      size: null,
      virtualSize: null,
      checksum: null,
      osHashAlgo: null,
      osHashValue: null,
      createdAt: now,
      updatedAt: now,
    });
    applyDraft(image, draft);
    try {
      await inTransaction(this.store.dataSource, async (manager) => {
        await manager.insert(ImageEntity, image);
        if (draft.tags.length)
          await manager.insert(
            ImageTagEntity,
            draft.tags.map((value) => ({ imageId: id, value })),
          );
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictError(`Image with identifier ${id} already exists!`);
      throw error;
    }
    return { image, tags: [...draft.tags].sort() };
  }

  async update(auth: AuthContext, id: string, operations: PatchOperation[]): Promise<ImageView> {
    const image = await this.modifiable(auth, id, 'modify_image');
    const { tags } = await this.view(image);
    const before = draftOf(image, tags);
    const draft = draftOf(image, tags);
    for (const operation of operations) {
      checkWritable(operation.attribute);
      if (operation.op === 'remove') {
        removeAttribute(draft, operation.attribute);
      } else {
        if (operation.op === 'replace' && !hasAttribute(draft, operation.attribute))
          throw new ConflictingPropertyError(operation.attribute);
        setAttribute(draft, operation.attribute, operation.value);
      }
    }
    checkDraftPolicy(auth, draft, before);
    for (const key of ['disk_format', 'container_format'] as const) {
      if (draft[key] !== before[key] && image.status !== 'queued') {
        throw new ForbiddenError(`Attribute ${key} can be only replaced for a queued image.`);
      }
    }
    applyDraft(image, draft);
    image.updatedAt = nowIso();
    try {
      await inTransaction(this.store.dataSource, async (manager) => {
        const current = await manager.findOneBy(ImageEntity, { id });
        if (!current) throw this.notFound(id);
        const { status: _status, ...metadata } = image;
        await manager.update(ImageEntity, { id }, metadata);
        await this.replaceTags(manager, id, draft.tags);
        image.status = current.status;
      });
    } catch (error) {
      if (isUniqueViolation(error))
        throw new ConflictError(`Image ${id} was changed by another request at the same time; try again.`);
      throw error;
    }
    return { image, tags: [...draft.tags].sort() };
  }

  private async replaceTags(manager: EntityManager, imageId: string, tags: string[]): Promise<void> {
    await manager.delete(ImageTagEntity, { imageId });
    if (tags.length)
      await manager.insert(
        ImageTagEntity,
        tags.map((value) => ({ imageId, value })),
      );
  }

  async delete(auth: AuthContext, id: string): Promise<void> {
    const image = await this.modifiable(auth, id, 'delete_image');
    if (image.protected) throw new ForbiddenError(`Image ${id} is protected and cannot be deleted.`);
    await this.remove(id);
  }

  /** Removes an image with its tags, members and data (no policy: callers decide). */
  async remove(id: string): Promise<void> {
    await inTransaction(this.store.dataSource, async (manager) => {
      await manager.delete(ImageTagEntity, { imageId: id });
      await manager.delete(ImageMemberEntity, { imageId: id });
      await manager.delete(ImageEntity, { id });
    });
    await this.files.remove(id);
  }

  async deactivate(auth: AuthContext, id: string): Promise<void> {
    const image = await this.modifiable(auth, id, 'deactivate');
    if (image.status === 'deactivated') return;
    if (!(await this.store.transition(id, ['active'], 'deactivated', nowIso())))
      throw new ForbiddenError(`Not allowed to deactivate image in status '${image.status}'.`);
  }

  async reactivate(auth: AuthContext, id: string): Promise<void> {
    const image = await this.modifiable(auth, id, 'reactivate');
    if (image.status === 'active') return;
    if (!(await this.store.transition(id, ['deactivated'], 'active', nowIso())))
      throw new ForbiddenError(`Not allowed to reactivate image in status '${image.status}'.`);
  }

  async addTag(auth: AuthContext, id: string, tag: string): Promise<void> {
    await this.modifiable(auth, id, 'modify_image');
    checkTag(tag);
    try {
      await inTransaction(this.store.dataSource, async (manager) => {
        if (await manager.existsBy(ImageTagEntity, { imageId: id, value: tag })) return;
        if ((await manager.countBy(ImageTagEntity, { imageId: id })) >= TAG_QUOTA)
          throw new PayloadTooLargeError(`Maximum number of tags (${TAG_QUOTA}) exceeded.`);
        await manager.insert(ImageTagEntity, { imageId: id, value: tag });
        await manager.update(ImageEntity, { id }, { updatedAt: nowIso() });
      });
    } catch (error) {
      // The same tag added by a concurrent request: adding a tag is idempotent.
      if (!isUniqueViolation(error)) throw error;
    }
  }

  async removeTag(auth: AuthContext, id: string, tag: string): Promise<void> {
    await this.modifiable(auth, id, 'modify_image');
    const result = await this.store.tags.delete({ imageId: id, value: tag });
    if (!result.affected) throw new NotFoundError(`Tag ${tag} not found on image ${id}.`);
    await this.store.images.update({ id }, { updatedAt: nowIso() });
  }

  /** Everything of a deleted project: its images (and their data) and its memberships. */
  async forgetProject(projectId: string): Promise<void> {
    const owned = await this.store.images.find({ where: { owner: projectId }, select: { id: true } });
    for (const { id } of owned) await this.remove(id);
    await this.store.members.delete({ memberId: projectId });
  }
}
