import { MigrationInterface, QueryRunner, TableColumnOptions } from 'typeorm';
import { col, table } from './schema';

const bigint = (name: string): TableColumnOptions => ({ name, type: 'bigint', isNullable: true });

export class Image1764403200000 implements MigrationInterface {
  name = 'Image1764403200000';

  async up(db: QueryRunner): Promise<void> {
    await db.createTable(
      table(
        'image',
        [
          col.id('id', 36),
          col.str('name', 255, true),
          col.str('status', 32),
          col.str('visibility', 16),
          col.str('owner', 64, true),
          col.bool('protected'),
          col.bool('os_hidden'),
          col.str('disk_format', 32, true),
          col.str('container_format', 32, true),
          bigint('size'),
          bigint('virtual_size'),
          col.str('checksum', 32, true),
          col.str('os_hash_algo', 64, true),
          col.str('os_hash_value', 128, true),
          col.int('min_disk'),
          col.int('min_ram'),
          col.json('properties'),
          col.time('created_at'),
          col.time('updated_at'),
        ],
        [{ columns: ['owner'] }],
      ),
    );
    await db.createTable(
      table('image_tag', [col.id('image_id', 36), col.id('value', 255)], [{ columns: ['value'] }]),
    );
    await db.createTable(
      table(
        'image_member',
        [
          col.id('image_id', 36),
          col.id('member_id', 255),
          col.str('status', 16),
          col.time('created_at'),
          col.time('updated_at'),
        ],
        [{ columns: ['member_id'] }],
      ),
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.dropTable('image_member');
    await db.dropTable('image_tag');
    await db.dropTable('image');
  }
}
