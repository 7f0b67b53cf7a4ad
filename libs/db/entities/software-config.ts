import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { isoTimestamp } from '../columns';

/**
 * A Heat software config (`/software_configs`): immutable once made, as in Heat. `config` holds what Heat keeps
 * in its `config` column: the config text with its inputs, outputs and options.
 */
@Entity('heat_software_config')
@Index(['projectId'])
export class HeatSoftwareConfigEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ type: 'varchar', length: 255, nullable: true }) name: string | null;
  @Column({ name: 'config_group', type: 'varchar', length: 255, nullable: true }) group: string | null;
  @Column({ type: 'simple-json' }) config: Record<string, unknown>;
  @Column({ name: 'project_id', type: 'varchar', length: 64 }) projectId: string;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp, nullable: true }) updatedAt: string | null;
}

/** A Heat software deployment (`/software_deployments`): a config applied to a server, with its state. */
@Entity('heat_software_deployment')
@Index(['projectId'])
@Index(['serverId'])
@Index(['configId'])
export class HeatSoftwareDeploymentEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ name: 'config_id', type: 'varchar', length: 36 }) configId: string;
  @Column({ name: 'server_id', type: 'varchar', length: 255 }) serverId: string;
  @Column({ name: 'input_values', type: 'simple-json' }) inputValues: Record<string, unknown>;
  @Column({ name: 'output_values', type: 'simple-json' }) outputValues: Record<string, unknown>;
  @Column({ type: 'varchar', length: 255, nullable: true }) action: string | null;
  @Column({ type: 'varchar', length: 255, nullable: true }) status: string | null;
  @Column({ name: 'status_reason', type: 'text', nullable: true }) statusReason: string | null;
  @Column({ name: 'project_id', type: 'varchar', length: 64 }) projectId: string;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp, nullable: true }) updatedAt: string | null;
}

export const SOFTWARE_CONFIG_ENTITIES = [HeatSoftwareConfigEntity, HeatSoftwareDeploymentEntity];
