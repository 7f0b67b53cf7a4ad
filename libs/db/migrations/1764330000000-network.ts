import { MigrationInterface, QueryRunner, TableColumnOptions } from 'typeorm';
import { col, table } from './schema';

/** Neutron's standard attributes, which every network resource carries. */
const standard = (): TableColumnOptions[] => [
  col.id(),
  col.str('project_id', 64),
  col.str('name'),
  col.str('description'),
  col.int('revision_number'),
  col.time('created_at'),
  col.time('updated_at'),
  col.json('tags'),
];

export class Network1764330000000 implements MigrationInterface {
  name = 'Network1764330000000';

  async up(db: QueryRunner): Promise<void> {
    await db.createTable(
      table(
        'network',
        [
          ...standard(),
          col.bool('admin_state_up'),
          col.bool('shared'),
          col.bool('router_external'),
          col.bool('is_default'),
          col.bool('port_security_enabled'),
          col.int('mtu'),
          col.str('network_type', 32),
          col.str('physical_network', 64),
          col.int('segmentation_id', true),
        ],
        [
          { columns: ['project_id'] },
          { columns: ['network_type', 'physical_network', 'segmentation_id'], unique: true },
        ],
      ),
    );
    await db.createTable(
      table(
        'subnet',
        [
          ...standard(),
          col.str('network_id', 64),
          col.int('ip_version'),
          col.str('cidr', 64),
          col.str('gateway_ip', 64, true),
          col.json('allocation_pools'),
          col.bool('enable_dhcp'),
          col.json('dns_nameservers'),
          col.json('host_routes'),
          col.str('ipv6_ra_mode', 16, true),
          col.str('ipv6_address_mode', 16, true),
        ],
        [{ columns: ['project_id'] }, { columns: ['network_id'] }],
      ),
    );
    await db.createTable(
      table(
        'ip_allocation',
        [
          { ...col.id('subnet_id'), isPrimary: true },
          { ...col.id('ip_address'), isPrimary: true },
          col.str('network_id', 64),
          col.str('port_id', 64),
        ],
        [{ columns: ['port_id'] }],
      ),
    );
    await db.createTable(
      table(
        'port',
        [
          ...standard(),
          col.str('network_id', 64),
          col.str('mac_address', 32),
          col.bool('admin_state_up'),
          col.str('status', 16),
          col.str('device_id'),
          col.str('device_owner'),
          col.str('binding_host_id'),
          col.str('binding_vnic_type', 64),
          col.json('binding_profile'),
          col.bool('port_security_enabled'),
          col.json('security_groups'),
          col.json('allowed_address_pairs'),
        ],
        [
          { columns: ['project_id'] },
          { columns: ['network_id'] },
          { columns: ['device_id'] },
          { columns: ['network_id', 'mac_address'], unique: true },
        ],
      ),
    );
    await db.createTable(
      table('security_group', [...standard(), col.bool('stateful')], [{ columns: ['project_id'] }]),
    );
    await db.createTable(
      table('default_security_group', [col.id('project_id'), col.str('security_group_id', 64)]),
    );
    await db.createTable(
      table(
        'security_group_rule',
        [
          col.id(),
          col.str('project_id', 64),
          col.str('security_group_id', 64),
          col.str('direction', 8),
          col.str('ethertype', 8),
          col.str('protocol', 40, true),
          col.int('port_range_min', true),
          col.int('port_range_max', true),
          col.str('remote_ip_prefix', 64, true),
          col.str('remote_group_id', 64, true),
          col.str('description'),
          col.int('revision_number'),
          col.time('created_at'),
          col.time('updated_at'),
        ],
        [{ columns: ['project_id'] }, { columns: ['security_group_id'] }],
      ),
    );
    await db.createTable(
      table(
        'router',
        [
          ...standard(),
          col.bool('admin_state_up'),
          col.str('status', 16),
          col.str('gateway_network_id', 64, true),
          col.str('gateway_port_id', 64, true),
          col.bool('enable_snat'),
          col.json('routes'),
        ],
        [{ columns: ['project_id'] }],
      ),
    );
    await db.createTable(
      table(
        'floating_ip',
        [
          ...standard(),
          col.str('floating_network_id', 64),
          col.str('floating_ip_address', 64),
          col.str('floating_port_id', 64),
          col.str('port_id', 64, true),
          col.str('fixed_ip_address', 64, true),
          col.str('router_id', 64, true),
          col.str('status', 16),
        ],
        [{ columns: ['project_id'] }, { columns: ['port_id'] }],
      ),
    );
    await db.createTable(
      table('network_quota', [
        { ...col.id('project_id'), isPrimary: true },
        { ...col.id('resource'), isPrimary: true },
        col.int('hard_limit'),
      ]),
    );
  }

  async down(db: QueryRunner): Promise<void> {
    for (const name of [
      'network_quota',
      'floating_ip',
      'router',
      'security_group_rule',
      'default_security_group',
      'security_group',
      'port',
      'ip_allocation',
      'subnet',
      'network',
    ]) {
      await db.dropTable(name);
    }
  }
}
