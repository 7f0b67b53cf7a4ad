import { Injectable } from '@nestjs/common';
import { ImageEntity, ImageMemberEntity, ImageTagEntity } from '@novum/db';
import { DataSource, QueryFailedError, Repository } from 'typeorm';

/** The image service's only way to the database: one repository per Glance table. */
@Injectable()
export class ImageStore {
  readonly images: Repository<ImageEntity>;
  readonly tags: Repository<ImageTagEntity>;
  readonly members: Repository<ImageMemberEntity>;

  constructor(readonly dataSource: DataSource) {
    this.images = dataSource.getRepository(ImageEntity);
    this.tags = dataSource.getRepository(ImageTagEntity);
    this.members = dataSource.getRepository(ImageMemberEntity);
  }

  /**
   * Moves an image from one status to another only if it is still in `from`: the compare-and-set that
   * lets exactly one of two concurrent uploads win.
   */
  async transition(id: string, from: string[], to: string, updatedAt: string): Promise<boolean> {
    const result = await this.images
      .createQueryBuilder()
      .update()
      .set({ status: to as ImageEntity['status'], updatedAt })
      .where('id = :id AND status IN (:...from)', { id, from })
      .execute();
    return (result.affected ?? 0) > 0;
  }

  async tagsOf(imageIds: string[]): Promise<Map<string, string[]>> {
    const byImage = new Map<string, string[]>(imageIds.map((id) => [id, []]));
    if (imageIds.length === 0) return byImage;
    for (let i = 0; i < imageIds.length; i += 500) {
      const rows = await this.tags
        .createQueryBuilder('t')
        .where('t.image_id IN (:...ids)', { ids: imageIds.slice(i, i + 500) })
        .orderBy('t.value', 'ASC')
        .getMany();
      for (const row of rows) byImage.get(row.imageId)?.push(row.value);
    }
    return byImage;
  }

  /** Bytes of image data a project holds (images with data, and uploads being committed). */
  async bytesUsed(owner: string, repository = this.images): Promise<number> {
    const row = await repository
      .createQueryBuilder('i')
      .select('COALESCE(SUM(i.size), 0)', 'total')
      .where('i.owner = :owner AND i.size IS NOT NULL', { owner })
      .getRawOne<{ total: string | number }>();
    return Number(row?.total ?? 0);
  }
}

/** True when an insert broke a unique constraint (SQLite and PostgreSQL spell it differently). */
export function isUniqueViolation(error: unknown): boolean {
  if (!(error instanceof QueryFailedError)) return false;
  const driverError = error.driverError as { code?: string; message?: string };
  return (
    driverError?.code === '23505' ||
    /UNIQUE constraint failed|PRIMARY KEY constraint/.test(driverError?.message ?? '')
  );
}
