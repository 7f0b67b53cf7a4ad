import { MigrationInterface, QueryRunner } from 'typeorm';
import { col, table } from './schema';

/** Heat's tables: stacks (soft-deleted), their resources, and the events of both. */
export class Orchestration1764700000000 implements MigrationInterface {
  name = 'Orchestration1764700000000';

  async up(db: QueryRunner): Promise<void> {
    await db.createTable(
      table(
        'heat_stack',
        [
          col.id('id', 36),
          col.str('name'),
          col.str('project_id', 64),
          col.str('user_id', 64),
          col.str('username'),
          col.str('action', 32),
          col.str('status', 32),
          col.text('status_reason'),
          col.json('template'),
          col.json('environment'),
          col.json('files'),
          col.int('timeout_mins', true),
          col.bool('disable_rollback'),
          col.json('tags'),
          col.json('credential'),
          col.time('created_at'),
          col.time('updated_at', true),
          col.time('deleted_at', true),
        ],
        [{ columns: ['project_id', 'name'] }],
      ),
    );
    await db.createTable(
      table(
        'heat_resource',
        [
          col.id('id', 36),
          col.str('stack_id', 36),
          col.str('name'),
          col.str('type'),
          col.str('physical_id', 255, true),
          col.str('action', 32),
          col.str('status', 32),
          col.text('status_reason'),
          col.json('properties'),
          col.json('data'),
          col.json('metadata'),
          col.time('created_at'),
          col.time('updated_at', true),
        ],
        [{ columns: ['stack_id'] }],
      ),
    );
    await db.createTable(
      table(
        'heat_event',
        [
          {
            name: 'seq',
            type: 'integer',
            isPrimary: true,
            isGenerated: true,
            generationStrategy: 'increment',
          },
          col.str('id', 36),
          col.str('stack_id', 36),
          col.str('resource_name'),
          col.str('physical_resource_id', 255, true),
          col.str('resource_type'),
          col.str('action', 32),
          col.str('status', 32),
          col.text('status_reason'),
          col.time('created_at'),
        ],
        [{ columns: ['id'], unique: true }, { columns: ['stack_id', 'seq'] }],
      ),
    );
  }

  async down(db: QueryRunner): Promise<void> {
    for (const name of ['heat_event', 'heat_resource', 'heat_stack']) await db.dropTable(name);
  }
}
