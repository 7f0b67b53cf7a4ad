import { Column, Entity, Index, PrimaryColumn, ValueTransformer } from 'typeorm';
import { booleanTransformer, isoTimestamp } from '../columns';

/** Byte counts beyond 2^31 live in bigint columns, which PostgreSQL hands back as strings. */
const bigintTransformer: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: unknown) => (value === null || value === undefined ? null : Number(value)),
};

export type ImageStatus =
  | 'queued'
  | 'saving'
  | 'uploading'
  | 'importing'
  | 'active'
  | 'deactivated'
  | 'killed'
  | 'deleted'
  | 'pending_delete';
export type ImageVisibility = 'public' | 'private' | 'shared' | 'community';

/** A Glance image: core attributes as columns, custom properties in one JSON column. */
@Entity('image')
@Index(['owner'])
export class ImageEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ type: 'varchar', length: 255, nullable: true }) name: string | null;
  @Column({ type: 'varchar', length: 32 }) status: ImageStatus;
  @Column({ type: 'varchar', length: 16 }) visibility: ImageVisibility;
  @Column({ type: 'varchar', length: 64, nullable: true }) owner: string | null;
  @Column({ type: 'boolean', transformer: booleanTransformer }) protected: boolean;
  @Column({ name: 'os_hidden', type: 'boolean', transformer: booleanTransformer }) osHidden: boolean;
  @Column({ name: 'disk_format', type: 'varchar', length: 32, nullable: true }) diskFormat: string | null;
  @Column({ name: 'container_format', type: 'varchar', length: 32, nullable: true }) containerFormat:
    string | null;
  @Column({ type: 'bigint', nullable: true, transformer: bigintTransformer }) size: number | null;
  @Column({ name: 'virtual_size', type: 'bigint', nullable: true, transformer: bigintTransformer })
  virtualSize: number | null;
  @Column({ type: 'varchar', length: 32, nullable: true }) checksum: string | null;
  @Column({ name: 'os_hash_algo', type: 'varchar', length: 64, nullable: true }) osHashAlgo: string | null;
  @Column({ name: 'os_hash_value', type: 'varchar', length: 128, nullable: true }) osHashValue: string | null;
  @Column({ name: 'min_disk', type: 'integer' }) minDisk: number;
  @Column({ name: 'min_ram', type: 'integer' }) minRam: number;
  @Column({ type: 'simple-json' }) properties: Record<string, string>;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp }) updatedAt: string;
}

/** One tag of an image; the primary key makes tags a set. */
@Entity('image_tag')
@Index(['value'])
export class ImageTagEntity {
  @PrimaryColumn({ name: 'image_id', type: 'varchar', length: 36 }) imageId: string;
  @PrimaryColumn({ type: 'varchar', length: 255 }) value: string;
}

export type MemberStatus = 'pending' | 'accepted' | 'rejected';

/** A project an image is shared with, and whether that project accepted it. */
@Entity('image_member')
@Index(['memberId'])
export class ImageMemberEntity {
  @PrimaryColumn({ name: 'image_id', type: 'varchar', length: 36 }) imageId: string;
  @PrimaryColumn({ name: 'member_id', type: 'varchar', length: 255 }) memberId: string;
  @Column({ type: 'varchar', length: 16 }) status: MemberStatus;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp }) updatedAt: string;
}

export const IMAGE_ENTITIES = [ImageEntity, ImageTagEntity, ImageMemberEntity];
