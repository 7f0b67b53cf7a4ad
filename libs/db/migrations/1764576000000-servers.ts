import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';
import { col, table } from './schema';

/** The servers API: the ports of each instance, its security groups and disk config, and server tags. */
export class Servers1764576000000 implements MigrationInterface {
  name = 'Servers1764576000000';

  async up(db: QueryRunner): Promise<void> {
    await db.addColumns('instance', [
      new TableColumn({ name: 'network_info', type: 'text', default: "'[]'" }),
      new TableColumn({ name: 'security_groups', type: 'text', default: "'[]'" }),
      new TableColumn({ name: 'auto_disk_config', type: 'boolean', default: 'false' }),
    ]);
    await db.createTable(
      table(
        'instance_tag',
        [{ ...col.id('instance_uuid', 36) }, { ...col.id('tag', 60) }],
        [{ columns: ['tag'] }],
      ),
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.dropTable('instance_tag');
    await db.dropColumns('instance', ['network_info', 'security_groups', 'auto_disk_config']);
  }
}
