import { createHash } from 'node:crypto';
import { statusFromState } from '@novum/virt';
import { ApiVersion } from './microversion';
import { ComputeLinks } from './serializers';
import { ServerRecord } from './server.service';

/** Statuses that show `progress`, and those that show `fault` (Nova's view builder). */
const PROGRESS_STATUSES = ['ACTIVE', 'BUILD', 'REBUILD', 'RESIZE', 'VERIFY_RESIZE', 'MIGRATING'];
const FAULT_STATUSES = ['ERROR', 'DELETED'];

/** What the caller may see beyond the basics, decided once per request (Nova's policy checks). */
export interface ViewContext {
  links: ComputeLinks;
  version: ApiVersion;
  /** os_compute_api:os-extended-server-attributes (admin). */
  extendedAttributes: boolean;
  /** os_compute_api:servers:show:host_status (admin). */
  hostStatus: boolean;
  /** Whether each host's compute service is UP, for host_status. */
  hostState?: (host: string) => 'UP' | 'DOWN' | 'MAINTENANCE' | 'UNKNOWN' | '';
  /** os_compute_api:os-flavor-extra-specs:index (reader): extra specs in the 2.47 flavor. */
  flavorExtraSpecs: boolean;
  isAdmin: boolean;
  /** The server groups of the server (2.71, show/update/rebuild only). */
  serverGroups?: string[];
}

/** Which parts a response has: `show` and `detail` everything; update and rebuild the basics before 2.75. */
export type ViewKind = 'show' | 'detail' | 'update' | 'rebuild';

/** Nova's isotime: seconds and a Z. */
export function isoSeconds(iso: string): string {
  return `${iso.slice(0, 19)}Z`;
}

/** Nova's OS-SRV-USG timestamps: a naive datetime with microseconds. */
function naiveMicros(iso: string | null): string | null {
  if (!iso) return null;
  const millis = /\.(\d{3})/.exec(iso)?.[1] ?? '000';
  return `${iso.slice(0, 19)}.${millis}000`;
}

/** Recent host ids: a list of 1,000 servers on a few hosts needs a few hashes, not 1,000. */
const hostIds = new Map<string, string>();

/** Nova's generate_hostid: sha224 of project id and host, so users can tell co-located servers apart. */
export function hostId(projectId: string, host: string | null): string {
  if (!host) return '';
  const key = `${projectId}\n${host}`;
  let id = hostIds.get(key);
  if (id === undefined) {
    id = createHash('sha224')
      .update(projectId + host)
      .digest('hex');
    if (hostIds.size >= 1024) hostIds.clear();
    hostIds.set(key, id);
  }
  return id;
}

/** The guest's name on its hypervisor, as the agent names it. */
export function instanceName(uuid: string): string {
  return `instance-${uuid.slice(0, 8)}`;
}

function addresses(record: ServerRecord, extended: boolean): Record<string, unknown[]> {
  const { instance } = record;
  // Nova hides addresses while a server builds.
  if (instance.vmState === 'building') return {};
  const result: Record<string, unknown[]> = {};
  for (const vif of instance.networkInfo ?? []) {
    const list = (result[vif.networkName] ??= []);
    for (const ip of vif.ips) {
      list.push(
        extended
          ? {
              version: ip.version,
              addr: ip.address,
              'OS-EXT-IPS:type': 'fixed',
              'OS-EXT-IPS-MAC:mac_addr': vif.macAddress,
            }
          : { version: ip.version, addr: ip.address },
      );
    }
  }
  return result;
}

/** The `addresses` of `GET /servers/{id}/ips`: without the extended keys. */
export function serverAddresses(record: ServerRecord): Record<string, unknown[]> {
  return addresses(record, false);
}

export function serverStatus(record: ServerRecord): string {
  return record.instance.deletedAt
    ? 'DELETED'
    : statusFromState(record.instance.vmState, record.instance.taskState);
}

/** A server as Nova's ViewBuilder.show renders it at the request's microversion. */
export function serverView(record: ServerRecord, ctx: ViewContext, kind: ViewKind): Record<string, unknown> {
  const { instance } = record;
  const v = ctx.version;
  const full = kind === 'show' || kind === 'detail' || v.atLeast('2.75');
  const status = serverStatus(record);
  const flavor = instance.flavor;
  const view: Record<string, unknown> = {
    id: instance.uuid,
    name: instance.displayName,
    status,
    tenant_id: instance.projectId,
    user_id: instance.userId,
    metadata: instance.metadata ?? {},
    hostId: hostId(instance.projectId, instance.host),
    image: instance.imageRef
      ? {
          id: instance.imageRef,
          links: [{ rel: 'bookmark', href: ctx.links.bookmark('images', instance.imageRef) }],
        }
      : '',
    flavor: v.atLeast('2.47')
      ? {
          vcpus: flavor.vcpus,
          ram: flavor.memory_mb,
          disk: flavor.root_gb,
          ephemeral: flavor.ephemeral_gb,
          swap: flavor.swap,
          original_name: flavor.name,
          ...(ctx.flavorExtraSpecs ? { extra_specs: flavor.extra_specs ?? {} } : {}),
        }
      : { id: flavor.id, links: [{ rel: 'bookmark', href: ctx.links.bookmark('flavors', flavor.id) }] },
    created: isoSeconds(instance.createdAt),
    updated: isoSeconds(instance.updatedAt),
    addresses: addresses(record, full),
    accessIPv4: instance.accessIpV4 ?? '',
    accessIPv6: instance.accessIpV6 ?? '',
    links: ctx.links.resource('servers', instance.uuid),
    'OS-DCF:diskConfig': instance.autoDiskConfig ? 'AUTO' : 'MANUAL',
  };
  if (FAULT_STATUSES.includes(status) && record.fault) {
    const fault: Record<string, unknown> = {
      code: record.fault.code,
      created: isoSeconds(record.fault.createdAt),
      message: record.fault.message,
    };
    if (record.fault.details && (ctx.isAdmin || record.fault.code !== 500))
      fault.details = record.fault.details;
    view.fault = fault;
  }
  if (PROGRESS_STATUSES.includes(status)) view.progress = status === 'ACTIVE' ? 100 : 0;

  if (full) {
    view['OS-EXT-AZ:availability_zone'] = instance.availabilityZone ?? (instance.host ? 'nova' : '');
    view.config_drive = instance.configDrive ? 'True' : '';
    view.key_name = instance.keyName;
    view['OS-SRV-USG:launched_at'] = naiveMicros(instance.launchedAt);
    view['OS-SRV-USG:terminated_at'] = naiveMicros(instance.terminatedAt);
    if (instance.securityGroups?.length)
      view.security_groups = instance.securityGroups.map((name) => ({ name }));
    if (ctx.extendedAttributes) {
      view['OS-EXT-SRV-ATTR:host'] = instance.host;
      view['OS-EXT-SRV-ATTR:instance_name'] = instanceName(instance.uuid);
      view['OS-EXT-SRV-ATTR:hypervisor_hostname'] = instance.node;
      if (v.atLeast('2.3')) {
        view['OS-EXT-SRV-ATTR:reservation_id'] = instance.reservationId;
        view['OS-EXT-SRV-ATTR:launch_index'] = instance.launchIndex;
        view['OS-EXT-SRV-ATTR:hostname'] = instance.hostname;
        view['OS-EXT-SRV-ATTR:kernel_id'] = '';
        view['OS-EXT-SRV-ATTR:ramdisk_id'] = '';
        view['OS-EXT-SRV-ATTR:root_device_name'] = instance.launchedAt ? '/dev/vda' : null;
        if (!(kind === 'rebuild' && v.atLeast('2.75'))) view['OS-EXT-SRV-ATTR:user_data'] = instance.userData;
      }
    } else if (v.atLeast('2.90')) {
      view['OS-EXT-SRV-ATTR:hostname'] = instance.hostname;
    }
    view['OS-EXT-STS:task_state'] = instance.taskState;
    view['OS-EXT-STS:vm_state'] = instance.vmState;
    view['OS-EXT-STS:power_state'] = instance.powerState;
    view['os-extended-volumes:volumes_attached'] = [];
    if (v.atLeast('2.16') && ctx.hostStatus) {
      view.host_status = instance.host && ctx.hostState ? ctx.hostState(instance.host) : '';
    }
  }
  if (v.atLeast('2.9')) view.locked = instance.locked;
  if (v.atLeast('2.19')) view.description = instance.description;
  if (v.atLeast('2.26')) view.tags = record.tags;
  if (v.atLeast('2.63')) view.trusted_image_certificates = null;
  if (v.atLeast('2.71') && kind !== 'detail' && ctx.serverGroups) view.server_groups = ctx.serverGroups;
  if (v.atLeast('2.73')) view.locked_reason = instance.lockedReason;
  if (v.atLeast('2.96') && full) view.pinned_availability_zone = instance.availabilityZone;
  if (kind === 'rebuild') {
    if (v.atLeast('2.54') && !full) view.key_name = instance.keyName;
    if (v.atLeast('2.57')) view.user_data = instance.userData;
  }
  return view;
}

/** The brief entry of `GET /servers`. */
export function serverBrief(record: ServerRecord, links: ComputeLinks): Record<string, unknown> {
  return {
    id: record.instance.uuid,
    name: record.instance.displayName,
    links: links.resource('servers', record.instance.uuid),
  };
}
