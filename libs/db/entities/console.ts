import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import { isoTimestamp } from '../columns';

/**
 * A console URL's token (Nova's `console_auth_tokens`): only its SHA-256 is kept. It admits whoever holds it
 * to the guest's console on `host`:`port` (the compute agent's console relay) with `internal_access_path`
 * (the relay's ticket) until `expires` (epoch seconds).
 */
@Entity('console_auth_token')
@Index(['instanceUuid'])
@Index(['expires'])
export class ConsoleAuthTokenEntity {
  @PrimaryGeneratedColumn() id: number;
  @Column({ name: 'token_hash', type: 'varchar', length: 64, unique: true }) tokenHash: string;
  @Column({ name: 'console_type', type: 'varchar', length: 255 }) consoleType: string;
  @Column({ type: 'varchar', length: 255 }) host: string;
  @Column({ type: 'integer' }) port: number;
  @Column({ name: 'internal_access_path', type: 'varchar', length: 255, nullable: true })
  internalAccessPath: string | null;
  @Column({ name: 'instance_uuid', type: 'varchar', length: 36 }) instanceUuid: string;
  @Column({ name: 'access_url_base', type: 'varchar', length: 255 }) accessUrlBase: string;
  @Column({ type: 'integer' }) expires: number;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
}

export const CONSOLE_ENTITIES = [ConsoleAuthTokenEntity];
