import { MigrationInterface, QueryRunner } from 'typeorm';
import { col, table } from './schema';

export class Identity1764316800000 implements MigrationInterface {
  name = 'Identity1764316800000';

  async up(db: QueryRunner): Promise<void> {
    await db.createTable(
      table(
        'domain',
        [col.id(), col.str('name'), col.text('description'), col.bool('enabled'), col.json('extra')],
        [{ columns: ['name'], unique: true }],
      ),
    );
    await db.createTable(
      table(
        'project',
        [
          col.id(),
          col.str('name', 64),
          col.str('domain_id', 64),
          col.str('parent_id', 64, true),
          col.text('description'),
          col.bool('enabled'),
          col.json('tags'),
          col.json('extra'),
        ],
        [{ columns: ['domain_id', 'name'], unique: true }],
      ),
    );
    await db.createTable(
      table(
        'identity_user',
        [
          col.id(),
          col.str('name'),
          col.str('domain_id', 64),
          col.str('default_project_id', 64, true),
          col.text('description'),
          col.bool('enabled'),
          col.str('password_hash', 255, true),
          col.time('password_expires_at', true),
          col.json('extra'),
          col.time('created_at'),
        ],
        [{ columns: ['domain_id', 'name'], unique: true }],
      ),
    );
    await db.createTable(
      table(
        'role',
        [col.id(), col.str('name'), col.str('domain_id', 64), col.text('description'), col.json('extra')],
        [{ columns: ['name', 'domain_id'], unique: true }],
      ),
    );
    await db.createTable(table('implied_role', [col.id('prior_role_id'), col.id('implied_role_id')]));
    await db.createTable(
      table(
        'role_assignment',
        [col.id('type', 16), col.id('actor_id'), col.id('target_id'), col.id('role_id')],
        [{ columns: ['actor_id'] }, { columns: ['target_id'] }],
      ),
    );
    await db.createTable(
      table('region', [
        col.id('id', 255),
        col.text('description'),
        col.str('parent_region_id', 255, true),
        col.json('extra'),
      ]),
    );
    await db.createTable(
      table('service', [
        col.id(),
        col.str('type'),
        col.str('name'),
        col.text('description'),
        col.bool('enabled'),
        col.json('extra'),
      ]),
    );
    await db.createTable(
      table('endpoint', [
        col.id(),
        col.str('service_id', 64),
        col.str('interface', 8),
        col.str('region_id', 255, true),
        col.text('url'),
        col.bool('enabled'),
        col.json('extra'),
      ]),
    );
    await db.createTable(
      table(
        'application_credential',
        [
          col.id(),
          col.str('name'),
          col.str('user_id', 64),
          col.str('project_id', 64),
          col.str('secret_hash'),
          col.text('description'),
          col.time('expires_at', true),
          col.bool('unrestricted'),
          col.json('roles'),
        ],
        [{ columns: ['user_id', 'name'], unique: true }],
      ),
    );
    await db.createTable(
      table(
        'revocation_event',
        [
          col.id(),
          col.str('audit_id', 64, true),
          col.str('user_id', 64, true),
          col.str('project_id', 64, true),
          col.time('issued_before'),
          col.time('expires_at'),
        ],
        [{ columns: ['audit_id'] }],
      ),
    );
    await db.createTable(
      table('token_key', [
        { name: 'id', type: 'integer', isPrimary: true },
        col.str('secret', 64),
        col.time('created_at'),
      ]),
    );
  }

  async down(db: QueryRunner): Promise<void> {
    for (const name of [
      'token_key',
      'revocation_event',
      'application_credential',
      'endpoint',
      'service',
      'region',
      'role_assignment',
      'implied_role',
      'role',
      'identity_user',
      'project',
      'domain',
    ]) {
      await db.dropTable(name);
    }
  }
}
