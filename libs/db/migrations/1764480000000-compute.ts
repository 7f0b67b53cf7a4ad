import { MigrationInterface, QueryRunner, TableColumnOptions } from 'typeorm';
import { col, table } from './schema';

const float = (name: string): TableColumnOptions => ({ name, type: 'double precision' });
const serial = (name: string): TableColumnOptions => ({
  name,
  type: 'integer',
  isPrimary: true,
  isGenerated: true,
  generationStrategy: 'increment',
});

/** Nova's tables that do not involve servers: flavors, key pairs, quotas, server groups and services. */
export class Compute1764480000000 implements MigrationInterface {
  name = 'Compute1764480000000';

  async up(db: QueryRunner): Promise<void> {
    await db.createTable(
      table(
        'compute_flavor',
        [
          serial('internal_id'),
          col.str('flavorid', 255),
          col.str('name', 255),
          col.int('memory_mb'),
          col.int('vcpus'),
          col.int('root_gb'),
          col.int('ephemeral_gb'),
          col.int('swap'),
          float('rxtx_factor'),
          col.bool('is_public'),
          col.bool('disabled'),
          col.text('description', true),
          col.time('created_at'),
          col.time('updated_at', true),
        ],
        [
          { columns: ['flavorid'], unique: true },
          { columns: ['name'], unique: true },
        ],
      ),
    );
    await db.createTable(
      table('compute_flavor_extra_spec', [
        col.id('flavor_id', 255),
        col.id('key', 255),
        col.str('value', 255),
      ]),
    );
    await db.createTable(
      table(
        'compute_flavor_access',
        [col.id('flavor_id', 255), col.id('project_id', 255)],
        [{ columns: ['project_id'] }],
      ),
    );
    await db.createTable(
      table(
        'compute_key_pair',
        [
          serial('id'),
          col.str('user_id', 255),
          col.str('name', 255),
          col.str('type', 16),
          col.text('public_key'),
          col.str('fingerprint', 255),
          col.time('created_at'),
        ],
        [{ columns: ['user_id', 'name'], unique: true }],
      ),
    );
    await db.createTable(
      table('compute_quota', [col.id('project_id', 255), col.id('resource', 255), col.int('hard_limit')]),
    );
    await db.createTable(
      table('compute_quota_class', [
        col.id('class_name', 255),
        col.id('resource', 255),
        col.int('hard_limit'),
      ]),
    );
    await db.createTable(
      table(
        'compute_server_group',
        [
          col.id('id', 36),
          col.str('name', 255),
          col.str('project_id', 255),
          col.str('user_id', 255),
          col.str('policy', 32),
          col.json('rules'),
          col.time('created_at'),
        ],
        [{ columns: ['project_id'] }],
      ),
    );
    await db.createTable(
      table(
        'compute_server_group_member',
        [col.id('group_id', 36), col.id('instance_uuid', 36)],
        [{ columns: ['instance_uuid'], unique: true }],
      ),
    );
    await db.createTable(
      table(
        'compute_service',
        [
          serial('id'),
          col.str('uuid', 36),
          col.str('host', 255),
          col.str('binary', 255),
          col.str('topic', 255),
          col.int('report_count'),
          col.bool('disabled'),
          col.str('disabled_reason', 255, true),
          col.bool('forced_down'),
          col.time('last_seen_up', true),
          col.int('version'),
          col.time('created_at'),
          col.time('updated_at', true),
        ],
        [
          { columns: ['uuid'], unique: true },
          { columns: ['host', 'binary'], unique: true },
        ],
      ),
    );
  }

  async down(db: QueryRunner): Promise<void> {
    for (const name of [
      'compute_service',
      'compute_server_group_member',
      'compute_server_group',
      'compute_quota_class',
      'compute_quota',
      'compute_key_pair',
      'compute_flavor_access',
      'compute_flavor_extra_spec',
      'compute_flavor',
    ]) {
      await db.dropTable(name);
    }
  }
}
