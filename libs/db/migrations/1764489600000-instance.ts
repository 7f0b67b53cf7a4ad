import { MigrationInterface, QueryRunner, TableColumnOptions } from 'typeorm';
import { col, table } from './schema';

const real = (name: string): TableColumnOptions => ({ name, type: 'real' });

/** Servers and the control plane below the compute API: instances, their actions and faults, nodes, claims. */
export class Instance1764489600000 implements MigrationInterface {
  name = 'Instance1764489600000';

  async up(db: QueryRunner): Promise<void> {
    await db.createTable(
      table(
        'instance',
        [
          col.id('uuid', 36),
          col.str('display_name'),
          col.str('hostname'),
          col.str('project_id', 64),
          col.str('user_id', 64),
          col.str('host', 255, true),
          col.str('node', 255, true),
          col.str('availability_zone', 255, true),
          col.str('vm_state', 32),
          col.str('task_state', 64, true),
          col.int('power_state'),
          col.json('flavor'),
          col.str('image_ref'),
          col.str('key_name', 255, true),
          col.text('key_data', true),
          col.text('user_data', true),
          col.json('metadata'),
          col.json('system_metadata'),
          col.json('scheduler_hints'),
          col.bool('config_drive'),
          col.bool('locked'),
          col.str('locked_reason', 255, true),
          col.str('access_ip_v4', 64, true),
          col.str('access_ip_v6', 64, true),
          col.str('description', 255, true),
          col.str('reservation_id', 32),
          col.int('launch_index'),
          col.time('launched_at', true),
          col.time('terminated_at', true),
          col.time('created_at'),
          col.time('updated_at'),
          col.time('deleted_at', true),
          col.int('version'),
        ],
        [{ columns: ['project_id'] }, { columns: ['host'] }, { columns: ['reservation_id'] }],
      ),
    );
    await db.createTable(
      table(
        'instance_action',
        [
          col.id('id', 36),
          col.str('instance_uuid', 36),
          col.str('action'),
          col.str('request_id'),
          col.str('user_id', 64, true),
          col.str('project_id', 64, true),
          col.time('start_time'),
          col.time('finish_time', true),
          col.str('message', 255, true),
          col.time('updated_at'),
        ],
        [{ columns: ['instance_uuid', 'request_id'], unique: true }],
      ),
    );
    await db.createTable(
      table(
        'instance_action_event',
        [
          col.id('id', 36),
          col.str('action_id', 36),
          col.str('event'),
          col.time('start_time'),
          col.time('finish_time', true),
          col.str('result', 255, true),
          col.text('traceback', true),
          col.str('host', 255, true),
          col.text('details', true),
        ],
        [{ columns: ['action_id'] }],
      ),
    );
    await db.createTable(
      table(
        'instance_fault',
        [
          col.id('id', 36),
          col.str('instance_uuid', 36),
          col.int('code'),
          col.str('message'),
          col.text('details'),
          col.str('host', 255, true),
          col.time('created_at'),
        ],
        [{ columns: ['instance_uuid'] }],
      ),
    );
    await db.createTable(
      table(
        'compute_node',
        [
          col.id('uuid', 36),
          col.str('host'),
          col.str('hypervisor_hostname'),
          col.str('hypervisor_type'),
          col.int('hypervisor_version'),
          col.str('host_ip', 64),
          col.int('vcpus'),
          col.int('memory_mb'),
          col.int('local_gb'),
          col.int('vcpus_used'),
          col.int('memory_mb_used'),
          col.int('local_gb_used'),
          col.int('running_vms'),
          real('cpu_allocation_ratio'),
          real('ram_allocation_ratio'),
          real('disk_allocation_ratio'),
          col.json('drivers'),
          col.json('cpu_info'),
          col.int('failed_builds'),
          col.time('created_at'),
          col.time('updated_at'),
        ],
        [{ columns: ['hypervisor_hostname'], unique: true }, { columns: ['host'] }],
      ),
    );
    await db.createTable(
      table(
        'allocation',
        [
          col.id('instance_uuid', 36),
          col.str('node_uuid', 36),
          col.int('vcpus'),
          col.int('memory_mb'),
          col.int('disk_gb'),
          col.time('created_at'),
        ],
        [{ columns: ['node_uuid'] }],
      ),
    );
  }

  async down(db: QueryRunner): Promise<void> {
    for (const name of [
      'allocation',
      'compute_node',
      'instance_fault',
      'instance_action_event',
      'instance_action',
      'instance',
    ]) {
      await db.dropTable(name);
    }
  }
}
