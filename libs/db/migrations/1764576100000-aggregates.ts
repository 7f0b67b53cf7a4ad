import { MigrationInterface, QueryRunner, TableColumnOptions } from 'typeorm';
import { col, table } from './schema';

const serial = (name: string): TableColumnOptions => ({
  name,
  type: 'integer',
  isPrimary: true,
  isGenerated: true,
  generationStrategy: 'increment',
});
const intKey = (name: string): TableColumnOptions => ({ name, type: 'integer', isPrimary: true });
const strKey = (name: string): TableColumnOptions => ({ ...col.str(name), isPrimary: true });

/** The admin compute APIs' tables: host aggregates, migrations, and the hypervisors' integer ids. */
export class Aggregates1764576100000 implements MigrationInterface {
  name = 'Aggregates1764576100000';

  async up(db: QueryRunner): Promise<void> {
    await db.createTable(
      table(
        'aggregate',
        [
          serial('id'),
          col.str('uuid', 36),
          col.str('name'),
          col.time('created_at'),
          col.time('updated_at', true),
        ],
        [
          { columns: ['uuid'], unique: true },
          { columns: ['name'], unique: true },
        ],
      ),
    );
    await db.createTable(
      table('aggregate_host', [intKey('aggregate_id'), strKey('host')], [{ columns: ['host'] }]),
    );
    await db.createTable(
      table(
        'aggregate_metadata',
        [intKey('aggregate_id'), strKey('key'), col.str('value')],
        [{ columns: ['key'] }],
      ),
    );
    await db.createTable(
      table(
        'migration',
        [
          serial('id'),
          col.str('uuid', 36),
          col.str('instance_uuid', 36),
          col.str('migration_type', 32),
          col.str('status'),
          col.str('source_compute', 255, true),
          col.str('source_node', 255, true),
          col.str('dest_compute', 255, true),
          col.str('dest_node', 255, true),
          col.str('dest_host', 255, true),
          col.int('old_instance_type_id', true),
          col.int('new_instance_type_id', true),
          col.str('user_id', 64, true),
          col.str('project_id', 64, true),
          col.bool('hidden'),
          col.time('created_at'),
          col.time('updated_at', true),
        ],
        [
          { columns: ['uuid'], unique: true },
          { columns: ['instance_uuid'] },
          { columns: ['source_compute'] },
          { columns: ['dest_compute'] },
        ],
      ),
    );
    await db.createTable(
      table(
        'compute_node_id',
        [serial('id'), col.str('node_uuid', 36)],
        [{ columns: ['node_uuid'], unique: true }],
      ),
    );
  }

  async down(db: QueryRunner): Promise<void> {
    for (const name of [
      'compute_node_id',
      'migration',
      'aggregate_metadata',
      'aggregate_host',
      'aggregate',
    ]) {
      await db.dropTable(name);
    }
  }
}
