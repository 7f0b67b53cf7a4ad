import { MigrationInterface, QueryRunner } from 'typeorm';
import { col, table } from './schema';

/** The serial console proxy's tokens (Nova's console_auth_tokens). */
export class ConsoleAuthTokens1764720000000 implements MigrationInterface {
  name = 'ConsoleAuthTokens1764720000000';

  async up(db: QueryRunner): Promise<void> {
    await db.createTable(
      table(
        'console_auth_token',
        [
          {
            name: 'id',
            type: 'integer',
            isPrimary: true,
            isGenerated: true,
            generationStrategy: 'increment',
          },
          col.str('token_hash', 64),
          col.str('console_type'),
          col.str('host'),
          col.int('port'),
          col.str('internal_access_path', 255, true),
          col.str('instance_uuid', 36),
          col.str('access_url_base'),
          col.int('expires'),
          col.time('created_at'),
        ],
        [{ columns: ['token_hash'], unique: true }, { columns: ['instance_uuid'] }, { columns: ['expires'] }],
      ),
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.dropTable('console_auth_token');
  }
}
