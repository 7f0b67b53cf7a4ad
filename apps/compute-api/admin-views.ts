import { instanceName } from '@novum/compute';
import {
  AggregateEntity,
  ComputeNodeEntity,
  ComputeServiceEntity,
  InstanceEntity,
  MigrationEntity,
} from '@novum/db';
import { ApiVersion } from './microversion';
import { novaTime } from './serializers';

/** A compute node with what its views need: the integer id (below 2.53), its service and state. */
export interface HypervisorRow {
  node: ComputeNodeEntity;
  id: number;
  service: ComputeServiceEntity;
  up: boolean;
  /** Instances on the node's host with a task under way (Nova's `current_workload`). */
  workload: number;
}

/** Nova's hypervisor view (`_view_hypervisor`) per microversion. */
export function hypervisorView(
  row: HypervisorRow,
  detail: boolean,
  v: ApiVersion,
  extra: { servers?: InstanceEntity[]; withServers?: boolean; uptime?: string | null } = {},
): Record<string, unknown> {
  const uuids = v.atLeast('2.53');
  const { node, service } = row;
  const view: Record<string, unknown> = {
    id: uuids ? node.uuid : row.id,
    hypervisor_hostname: node.hypervisorHostname,
    state: row.up ? 'up' : 'down',
    status: service.disabled ? 'disabled' : 'enabled',
  };
  if (detail) {
    view.hypervisor_type = node.hypervisorType;
    view.hypervisor_version = node.hypervisorVersion;
    view.host_ip = node.hostIp;
    view.service = {
      id: uuids ? service.uuid : service.id,
      host: node.host,
      disabled_reason: service.disabledReason,
    };
  }
  if (detail && !v.atLeast('2.88')) {
    const freeDisk = node.localGb - node.localGbUsed;
    Object.assign(view, {
      vcpus: node.vcpus,
      memory_mb: node.memoryMb,
      local_gb: node.localGb,
      vcpus_used: node.vcpusUsed,
      memory_mb_used: node.memoryMbUsed,
      local_gb_used: node.localGbUsed,
      free_ram_mb: node.memoryMb - node.memoryMbUsed,
      free_disk_gb: freeDisk,
      current_workload: row.workload,
      running_vms: node.runningVms,
      disk_available_least: freeDisk,
      // A JSON object from 2.28, its text before.
      cpu_info: v.atLeast('2.28') ? (node.cpuInfo ?? {}) : JSON.stringify(node.cpuInfo ?? {}),
    });
  }
  if (detail && v.atLeast('2.88')) view.uptime = extra.uptime ?? null;
  if (extra.servers?.length) {
    view.servers = extra.servers.map((s) => ({ name: instanceName(s.uuid), uuid: s.uuid }));
  } else if (extra.withServers && v.atLeast('2.75')) {
    view.servers = [];
  }
  return view;
}

/** `GET /os-hypervisors/statistics`: sums over the nodes of enabled compute services, as Nova's. */
export function hypervisorStatistics(rows: HypervisorRow[]) {
  const stats = {
    count: 0,
    vcpus: 0,
    memory_mb: 0,
    local_gb: 0,
    vcpus_used: 0,
    memory_mb_used: 0,
    local_gb_used: 0,
    free_ram_mb: 0,
    free_disk_gb: 0,
    current_workload: 0,
    running_vms: 0,
    disk_available_least: 0,
  };
  for (const { node, service, workload } of rows) {
    if (service.disabled) continue;
    stats.count += 1;
    stats.vcpus += node.vcpus;
    stats.memory_mb += node.memoryMb;
    stats.local_gb += node.localGb;
    stats.vcpus_used += node.vcpusUsed;
    stats.memory_mb_used += node.memoryMbUsed;
    stats.local_gb_used += node.localGbUsed;
    stats.free_ram_mb += node.memoryMb - node.memoryMbUsed;
    stats.free_disk_gb += node.localGb - node.localGbUsed;
    stats.current_workload += workload;
    stats.running_vms += node.runningVms;
    stats.disk_available_least += node.localGb - node.localGbUsed;
  }
  return stats;
}

/** `uptime(1)`'s line, which Nova's libvirt driver returns: ` 08:32:11 up 3 days,  2:05,  0 users,  load average: ...`. */
export function uptimeText(now: Date, uptimeSeconds: number, load: number[]): string {
  const clock = now.toISOString().slice(11, 19);
  const days = Math.floor(uptimeSeconds / 86400);
  const hours = Math.floor((uptimeSeconds % 86400) / 3600);
  const minutes = Math.floor((uptimeSeconds % 3600) / 60);
  const time = hours ? `${String(hours).padStart(2)}:${String(minutes).padStart(2, '0')}` : `${minutes} min`;
  const up = days ? `${days} day${days === 1 ? '' : 's'}, ${time}` : time;
  const averages = [0, 1, 2].map((i) => (load[i] ?? 0).toFixed(2)).join(', ');
  return ` ${clock} up ${up},  0 users,  load average: ${averages}`;
}

/** An aggregate with its hosts and metadata, as Nova's Aggregate object. */
export interface AggregateView {
  aggregate: AggregateEntity;
  hosts: string[];
  metadata: Record<string, string>;
}

/** Nova's aggregate view; create answers without `hosts` and `metadata`; `uuid` from 2.41. */
export function aggregateView(a: AggregateView, v: ApiVersion, created = false): Record<string, unknown> {
  const view: Record<string, unknown> = {
    availability_zone: a.metadata.availability_zone ?? null,
    created_at: novaTime(a.aggregate.createdAt),
    deleted: false,
    deleted_at: null,
    id: a.aggregate.id,
    name: a.aggregate.name,
    updated_at: a.aggregate.updatedAt ? novaTime(a.aggregate.updatedAt) : null,
  };
  if (!created) {
    view.hosts = a.hosts;
    view.metadata = a.metadata;
  }
  if (v.atLeast('2.41')) view.uuid = a.aggregate.uuid;
  return view;
}

export const LIVE_MIGRATION_IN_PROGRESS = ['queued', 'preparing', 'running', 'post-migrating'];

/**
 * Nova's server-migrations item (2.23; `uuid` 2.59, `user_id`/`project_id` 2.80). The byte counters are
 * null: the agent does not report a copy's progress.
 */
export function serverMigrationView(m: MigrationEntity, v: ApiVersion): Record<string, unknown> {
  const view: Record<string, unknown> = {
    created_at: novaTime(m.createdAt),
    dest_compute: m.destCompute,
    dest_host: m.destHost,
    dest_node: m.destNode,
    disk_processed_bytes: null,
    disk_remaining_bytes: null,
    disk_total_bytes: null,
    id: m.id,
    memory_processed_bytes: null,
    memory_remaining_bytes: null,
    memory_total_bytes: null,
    server_uuid: m.instanceUuid,
    source_compute: m.sourceCompute,
    source_node: m.sourceNode,
    status: m.status,
    updated_at: m.updatedAt ? novaTime(m.updatedAt) : null,
  };
  if (v.atLeast('2.59')) view.uuid = m.uuid;
  if (v.atLeast('2.80')) {
    view.user_id = m.userId;
    view.project_id = m.projectId;
  }
  return view;
}

/** Nova's `GET /os-migrations` item: `migration_type` and `links` 2.23, `uuid` 2.59, `user_id`/`project_id` 2.80. */
export function migrationView(m: MigrationEntity, v: ApiVersion, root: string): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: m.id,
    status: m.status,
    instance_uuid: m.instanceUuid,
    source_node: m.sourceNode,
    source_compute: m.sourceCompute,
    dest_node: m.destNode,
    dest_compute: m.destCompute,
    dest_host: m.destHost,
    old_instance_type_id: m.oldInstanceTypeId,
    new_instance_type_id: m.newInstanceTypeId,
    created_at: novaTime(m.createdAt),
    updated_at: m.updatedAt ? novaTime(m.updatedAt) : null,
  };
  if (v.atLeast('2.23')) {
    view.migration_type = m.migrationType;
    if (m.migrationType === 'live-migration' && LIVE_MIGRATION_IN_PROGRESS.includes(m.status)) {
      const path = `servers/${m.instanceUuid}/migrations/${m.id}`;
      view.links = [
        { rel: 'self', href: `${root}/v2.1/${path}` },
        { rel: 'bookmark', href: `${root}/${path}` },
      ];
    }
  }
  if (v.atLeast('2.59')) view.uuid = m.uuid;
  if (v.atLeast('2.80')) {
    view.user_id = m.userId;
    view.project_id = m.projectId;
  }
  return view;
}
