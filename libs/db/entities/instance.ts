import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { booleanTransformer, isoTimestamp } from '../columns';

/** The flavor as it was when the instance was built or resized (Nova keeps it with the instance too). */
export interface InstanceFlavor {
  id: string;
  name: string;
  vcpus: number;
  memory_mb: number;
  root_gb: number;
  ephemeral_gb: number;
  /** MB, as Nova's flavor `swap`. */
  swap: number;
  extra_specs: Record<string, string>;
}

/** Nova's scheduler hints that this scheduler honours. */
export interface SchedulerHints {
  same_host?: string[];
  different_host?: string[];
  group?: string;
  /** An admin's `zone:host` or 2.74 `host`: only this host is considered. */
  requested_host?: string;
}

/**
 * A server (Nova's `instances` table). `vm_state`, `task_state` and `power_state` hold Nova's values
 * (libs/virt states.ts). `version` grows with every write, so that a writer can update on condition of
 * what it read (optimistic concurrency) instead of overwriting another's change.
 */
@Entity('instance')
export class InstanceEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) uuid: string;
  @Column({ name: 'display_name', type: 'varchar', length: 255 }) displayName: string;
  @Column({ type: 'varchar', length: 255 }) hostname: string;
  @Index() @Column({ name: 'project_id', type: 'varchar', length: 64 }) projectId: string;
  @Column({ name: 'user_id', type: 'varchar', length: 64 }) userId: string;
  @Index() @Column({ type: 'varchar', length: 255, nullable: true }) host: string | null;
  @Column({ type: 'varchar', length: 255, nullable: true }) node: string | null;
  @Column({ name: 'availability_zone', type: 'varchar', length: 255, nullable: true }) availabilityZone:
    string | null;
  @Column({ name: 'vm_state', type: 'varchar', length: 32 }) vmState: string;
  @Column({ name: 'task_state', type: 'varchar', length: 64, nullable: true }) taskState: string | null;
  @Column({ name: 'power_state', type: 'integer' }) powerState: number;
  @Column({ type: 'simple-json' }) flavor: InstanceFlavor;
  @Column({ name: 'image_ref', type: 'varchar', length: 255 }) imageRef: string;
  @Column({ name: 'key_name', type: 'varchar', length: 255, nullable: true }) keyName: string | null;
  @Column({ name: 'key_data', type: 'text', nullable: true }) keyData: string | null;
  @Column({ name: 'user_data', type: 'text', nullable: true }) userData: string | null;
  @Column({ type: 'simple-json' }) metadata: Record<string, string>;
  /** Nova's system metadata: the image properties the instance was booted with (`image_*`). */
  @Column({ name: 'system_metadata', type: 'simple-json' }) systemMetadata: Record<string, string>;
  @Column({ name: 'scheduler_hints', type: 'simple-json' }) schedulerHints: SchedulerHints;
  @Column({ name: 'config_drive', type: 'boolean', transformer: booleanTransformer }) configDrive: boolean;
  @Column({ type: 'boolean', transformer: booleanTransformer }) locked: boolean;
  @Column({ name: 'locked_reason', type: 'varchar', length: 255, nullable: true }) lockedReason:
    string | null;
  @Column({ name: 'access_ip_v4', type: 'varchar', length: 64, nullable: true }) accessIpV4: string | null;
  @Column({ name: 'access_ip_v6', type: 'varchar', length: 64, nullable: true }) accessIpV6: string | null;
  @Column({ type: 'varchar', length: 255, nullable: true }) description: string | null;
  @Index() @Column({ name: 'reservation_id', type: 'varchar', length: 32 }) reservationId: string;
  @Column({ name: 'launch_index', type: 'integer' }) launchIndex: number;
  @Column({ name: 'launched_at', ...isoTimestamp, nullable: true }) launchedAt: string | null;
  @Column({ name: 'terminated_at', ...isoTimestamp, nullable: true }) terminatedAt: string | null;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp }) updatedAt: string;
  @Column({ name: 'deleted_at', ...isoTimestamp, nullable: true }) deletedAt: string | null;
  @Column({ type: 'integer' }) version: number;
  /** The server's ports as Nova's network info cache (addresses, MACs, networks), set by the compute API. */
  @Column({ name: 'network_info', type: 'simple-json' }) networkInfo: InstanceVif[];
  /** Names of the security groups requested for the server's ports. */
  @Column({ name: 'security_groups', type: 'simple-json' }) securityGroups: string[];
  /** `OS-DCF:diskConfig` AUTO (true) or MANUAL. */
  @Column({ name: 'auto_disk_config', type: 'boolean', transformer: booleanTransformer })
  autoDiskConfig: boolean;
}

/** A port of a server as its `addresses` show it (Nova's VIF in the info cache). */
export interface InstanceVif {
  portId: string;
  networkId: string;
  /** The network's name: the key of `addresses`. */
  networkName: string;
  macAddress: string;
  ips: { address: string; version: 4 | 6 }[];
  /** A port the user passed in: unbound, not deleted, when the server goes. */
  preexisting: boolean;
  tag?: string | null;
}

/** A server's tags (2.26). */
@Entity('instance_tag')
export class InstanceTagEntity {
  @PrimaryColumn({ name: 'instance_uuid', type: 'varchar', length: 36 }) instanceUuid: string;
  @PrimaryColumn({ type: 'varchar', length: 60 }) tag: string;
}

/** One user request on an instance (Nova's `instance_actions`): `create`, `reboot`, `stop`, ... */
@Entity('instance_action')
@Index(['instanceUuid', 'requestId'], { unique: true })
export class InstanceActionEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ name: 'instance_uuid', type: 'varchar', length: 36 }) instanceUuid: string;
  @Column({ type: 'varchar', length: 255 }) action: string;
  @Column({ name: 'request_id', type: 'varchar', length: 255 }) requestId: string;
  @Column({ name: 'user_id', type: 'varchar', length: 64, nullable: true }) userId: string | null;
  @Column({ name: 'project_id', type: 'varchar', length: 64, nullable: true }) projectId: string | null;
  @Column({ name: 'start_time', ...isoTimestamp }) startTime: string;
  @Column({ name: 'finish_time', ...isoTimestamp, nullable: true }) finishTime: string | null;
  /** Nova's `message`: `Error` once one of the action's events failed. */
  @Column({ type: 'varchar', length: 255, nullable: true }) message: string | null;
  @Column({ name: 'updated_at', ...isoTimestamp }) updatedAt: string;
}

/** One step of an action on one service (`compute_reboot_instance`, `conductor_schedule_and_build_instances`). */
@Entity('instance_action_event')
export class InstanceActionEventEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Index() @Column({ name: 'action_id', type: 'varchar', length: 36 }) actionId: string;
  @Column({ type: 'varchar', length: 255 }) event: string;
  @Column({ name: 'start_time', ...isoTimestamp }) startTime: string;
  @Column({ name: 'finish_time', ...isoTimestamp, nullable: true }) finishTime: string | null;
  /** `Success` or `Error`, null while running. */
  @Column({ type: 'varchar', length: 255, nullable: true }) result: string | null;
  /** Always null: tracebacks stay in the logs, never in the API. */
  @Column({ type: 'text', nullable: true }) traceback: string | null;
  @Column({ type: 'varchar', length: 255, nullable: true }) host: string | null;
  /** The error message of a failed event (Nova's `details`, 2.84). */
  @Column({ type: 'text', nullable: true }) details: string | null;
}

/** What the server's `fault` shows: the newest fault of the instance. */
@Entity('instance_fault')
export class InstanceFaultEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Index() @Column({ name: 'instance_uuid', type: 'varchar', length: 36 }) instanceUuid: string;
  @Column({ type: 'integer' }) code: number;
  @Column({ type: 'varchar', length: 255 }) message: string;
  @Column({ type: 'text' }) details: string;
  @Column({ type: 'varchar', length: 255, nullable: true }) host: string | null;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
}

/**
 * A hypervisor (Nova's `compute_nodes`). The `*_used` counters are the sum of the node's allocations and
 * only ever change together with them, in one transaction, on condition that the node does not overflow.
 */
@Entity('compute_node')
@Index(['hypervisorHostname'], { unique: true })
export class ComputeNodeEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) uuid: string;
  @Index() @Column({ type: 'varchar', length: 255 }) host: string;
  @Column({ name: 'hypervisor_hostname', type: 'varchar', length: 255 }) hypervisorHostname: string;
  @Column({ name: 'hypervisor_type', type: 'varchar', length: 255 }) hypervisorType: string;
  @Column({ name: 'hypervisor_version', type: 'integer' }) hypervisorVersion: number;
  @Column({ name: 'host_ip', type: 'varchar', length: 64 }) hostIp: string;
  @Column({ type: 'integer' }) vcpus: number;
  @Column({ name: 'memory_mb', type: 'integer' }) memoryMb: number;
  @Column({ name: 'local_gb', type: 'integer' }) localGb: number;
  @Column({ name: 'vcpus_used', type: 'integer' }) vcpusUsed: number;
  @Column({ name: 'memory_mb_used', type: 'integer' }) memoryMbUsed: number;
  @Column({ name: 'local_gb_used', type: 'integer' }) localGbUsed: number;
  @Column({ name: 'running_vms', type: 'integer' }) runningVms: number;
  @Column({ name: 'cpu_allocation_ratio', type: 'real' }) cpuAllocationRatio: number;
  @Column({ name: 'ram_allocation_ratio', type: 'real' }) ramAllocationRatio: number;
  @Column({ name: 'disk_allocation_ratio', type: 'real' }) diskAllocationRatio: number;
  /** The virt drivers the host's agent offers (`['fake']`, `['kvm', 'container']`). */
  @Column({ type: 'simple-json' }) drivers: string[];
  @Column({ name: 'cpu_info', type: 'simple-json' }) cpuInfo: Record<string, unknown>;
  /** Builds that failed on this node since its last success (Nova's `failed_builds` stat, for the weigher). */
  @Column({ name: 'failed_builds', type: 'integer' }) failedBuilds: number;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp }) updatedAt: string;
}

/** The resources an instance holds on a node; at most one claim per instance (the primary key). */
@Entity('allocation')
export class AllocationEntity {
  @PrimaryColumn({ name: 'instance_uuid', type: 'varchar', length: 36 }) instanceUuid: string;
  @Index() @Column({ name: 'node_uuid', type: 'varchar', length: 36 }) nodeUuid: string;
  @Column({ type: 'integer' }) vcpus: number;
  @Column({ name: 'memory_mb', type: 'integer' }) memoryMb: number;
  @Column({ name: 'disk_gb', type: 'integer' }) diskGb: number;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
}

export const INSTANCE_ENTITIES = [
  InstanceEntity,
  InstanceTagEntity,
  InstanceActionEntity,
  InstanceActionEventEntity,
  InstanceFaultEntity,
  ComputeNodeEntity,
  AllocationEntity,
];
