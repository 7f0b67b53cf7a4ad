import { MigrationInterface, QueryRunner } from 'typeorm';
import { col, table } from './schema';

/** Heat's stack snapshots (`/stacks/{name}/{id}/snapshots`). */
export class StackSnapshots1764780000000 implements MigrationInterface {
  name = 'StackSnapshots1764780000000';

  async up(db: QueryRunner): Promise<void> {
    await db.createTable(
      table(
        'heat_snapshot',
        [
          col.id('id', 36),
          col.str('stack_id', 36),
          col.str('name', 255, true),
          col.str('project_id', 64),
          col.str('action', 32),
          col.str('status', 32),
          col.text('status_reason', true),
          col.text('data', true),
          col.time('created_at'),
          col.time('updated_at', true),
        ],
        [{ columns: ['stack_id'] }],
      ),
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.dropTable('heat_snapshot');
  }
}
