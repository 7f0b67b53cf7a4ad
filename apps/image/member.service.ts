import { Injectable } from '@nestjs/common';
import { AuthContext, authorize, isAdmin } from '@novum/auth';
import {
  BadRequestError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
} from '@novum/common';
import { ImageEntity, ImageMemberEntity, MemberStatus, nowIso, inTransaction } from '@novum/db';
import { ImageService } from './image.service';
import { ImageStore, isUniqueViolation } from './image.store';
import { MEMBER_QUOTA, MEMBER_STATUSES } from './model';
import { canModifyImage } from './policy';

/**
 * Image sharing: the owner adds projects to a `shared` image; each member project accepts or rejects it
 * (only then does it appear in the member's default image list).
 */
@Injectable()
export class MemberService {
  constructor(
    private readonly store: ImageStore,
    private readonly images: ImageService,
  ) {}

  private isOwner(auth: AuthContext, image: ImageEntity): boolean {
    return canModifyImage(auth, image);
  }

  private notFound(imageId: string, memberId: string): NotFoundError {
    return new NotFoundError(`Member ${memberId} not found for image ${imageId}.`);
  }

  async list(auth: AuthContext, imageId: string): Promise<ImageMemberEntity[]> {
    const image = await this.images.visible(auth, imageId);
    if (image.visibility !== 'shared') throw new ForbiddenError('Only shared images have members.');
    if (this.isOwner(auth, image)) {
      return this.store.members.find({ where: { imageId }, order: { createdAt: 'ASC', memberId: 'ASC' } });
    }
    return this.store.members.findBy({ imageId, memberId: auth.projectId ?? '' });
  }

  async get(auth: AuthContext, imageId: string, memberId: string): Promise<ImageMemberEntity> {
    const image = await this.images.visible(auth, imageId);
    if (!this.isOwner(auth, image) && memberId !== auth.projectId) throw this.notFound(imageId, memberId);
    const member = await this.store.members.findOneBy({ imageId, memberId });
    if (!member) throw this.notFound(imageId, memberId);
    return member;
  }

  async add(auth: AuthContext, imageId: string, memberId: string): Promise<ImageMemberEntity> {
    const image = await this.images.visible(auth, imageId);
    authorize('add_member', this.isOwner(auth, image));
    if (image.visibility !== 'shared') throw new ForbiddenError('Only shared images have members.');
    if (memberId.length === 0 || memberId.length > 255)
      throw new BadRequestError("Invalid value for 'member': a project id of 1 to 255 characters.");
    const now = nowIso();
    const member = this.store.members.create({
      imageId,
      memberId,
      status: 'pending',
      createdAt: now,
      updatedAt: now,
    });
    try {
      await inTransaction(this.store.dataSource, async (manager) => {
        if ((await manager.countBy(ImageMemberEntity, { imageId })) >= MEMBER_QUOTA)
          throw new PayloadTooLargeError(`Maximum number of image members (${MEMBER_QUOTA}) exceeded.`);
        await manager.insert(ImageMemberEntity, member);
      });
    } catch (error) {
      if (isUniqueViolation(error))
        throw new ConflictError(`Member ${memberId} already associated with image ${imageId}.`);
      throw error;
    }
    return member;
  }

  /** Only the member project itself accepts or rejects an image shared with it. */
  async setStatus(
    auth: AuthContext,
    imageId: string,
    memberId: string,
    status: unknown,
  ): Promise<ImageMemberEntity> {
    if (!(MEMBER_STATUSES as readonly unknown[]).includes(status))
      throw new BadRequestError(`Invalid value for 'status': must be one of ${MEMBER_STATUSES.join(', ')}.`);
    const member = await this.get(auth, imageId, memberId);
    authorize('modify_member', memberId === auth.projectId || isAdmin(auth));
    member.status = status as MemberStatus;
    member.updatedAt = nowIso();
    await this.store.members.update(
      { imageId, memberId },
      { status: member.status, updatedAt: member.updatedAt },
    );
    return member;
  }

  async remove(auth: AuthContext, imageId: string, memberId: string): Promise<void> {
    const image = await this.images.visible(auth, imageId);
    if (!this.isOwner(auth, image)) {
      if (memberId === auth.projectId) authorize('delete_member', false);
      throw this.notFound(imageId, memberId);
    }
    const result = await this.store.members.delete({ imageId, memberId });
    if (!result.affected) throw this.notFound(imageId, memberId);
  }
}
