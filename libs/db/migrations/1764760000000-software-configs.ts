import { MigrationInterface, QueryRunner } from 'typeorm';
import { col, table } from './schema';

/** Heat's software configs and deployments (`/software_configs`, `/software_deployments`). */
export class SoftwareConfigs1764760000000 implements MigrationInterface {
  name = 'SoftwareConfigs1764760000000';

  async up(db: QueryRunner): Promise<void> {
    await db.createTable(
      table(
        'heat_software_config',
        [
          col.id('id', 36),
          col.str('name', 255, true),
          col.str('config_group', 255, true),
          col.json('config'),
          col.str('project_id', 64),
          col.time('created_at'),
          col.time('updated_at', true),
        ],
        [{ columns: ['project_id'] }],
      ),
    );
    await db.createTable(
      table(
        'heat_software_deployment',
        [
          col.id('id', 36),
          col.str('config_id', 36),
          col.str('server_id'),
          col.json('input_values'),
          col.json('output_values'),
          col.str('action', 255, true),
          col.str('status', 255, true),
          col.text('status_reason', true),
          col.str('project_id', 64),
          col.time('created_at'),
          col.time('updated_at', true),
        ],
        [{ columns: ['project_id'] }, { columns: ['server_id'] }, { columns: ['config_id'] }],
      ),
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.dropTable('heat_software_deployment');
    await db.dropTable('heat_software_config');
  }
}
