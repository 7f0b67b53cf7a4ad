import { MigrationInterface, QueryRunner } from 'typeorm';
import { col, table } from './schema';

/** Orchestration engines apart from the API: Heat's `service` table and its `stack_lock`. */
export class HeatEngines1764800000000 implements MigrationInterface {
  name = 'HeatEngines1764800000000';

  async up(db: QueryRunner): Promise<void> {
    await db.createTable(
      table('heat_service', [
        col.id('id', 36),
        col.str('hostname', 255),
        col.int('pid'),
        col.int('report_interval'),
        col.time('created_at'),
        col.time('updated_at'),
      ]),
    );
    await db.createTable(
      table(
        'heat_stack_lock',
        [col.id('stack_id', 36), col.str('engine_id', 36), col.time('created_at')],
        [{ columns: ['engine_id'] }],
      ),
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.dropTable('heat_stack_lock');
    await db.dropTable('heat_service');
  }
}
