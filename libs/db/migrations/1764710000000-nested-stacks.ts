import { MigrationInterface, QueryRunner, TableColumn, TableIndex } from 'typeorm';

/** Nested stacks (Heat's `owner_id` and `nested_depth`): a template resource's, group's or Stack's child. */
export class NestedStacks1764710000000 implements MigrationInterface {
  name = 'NestedStacks1764710000000';

  async up(db: QueryRunner): Promise<void> {
    await db.addColumns('heat_stack', [
      new TableColumn({ name: 'owner_id', type: 'varchar', length: '36', isNullable: true }),
      new TableColumn({ name: 'nested_depth', type: 'integer', default: 0 }),
    ]);
    await db.createIndex(
      'heat_stack',
      new TableIndex({ name: 'ix_heat_stack_owner_id', columnNames: ['owner_id'] }),
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.dropIndex('heat_stack', 'ix_heat_stack_owner_id');
    await db.dropColumn('heat_stack', 'nested_depth');
    await db.dropColumn('heat_stack', 'owner_id');
  }
}
