import { isIP } from 'node:net';
import { BadRequestError, NotFoundError } from '@novum/common';
import { ApiVersion } from './microversion';
import { ComputeLinks } from './serializers';

/** Nova's proxy APIs to Glance and Neutron end at 2.36 (`MAX_PROXY_API_SUPPORT_VERSION` is 2.35). */
export function belowVersion(v: ApiVersion, removedIn: string): void {
  if (v.atLeast(removedIn))
    throw new NotFoundError(`API version ${v.toString()} is not supported on this method.`);
}

// ---- images ----

/** Glance v2's schema attributes: everything else on an image is a custom property, Nova's `metadata`. */
export const GLANCE_ATTRIBUTES: ReadonlySet<string> = new Set([
  'id',
  'name',
  'status',
  'visibility',
  'protected',
  'os_hidden',
  'owner',
  'disk_format',
  'container_format',
  'size',
  'virtual_size',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'min_disk',
  'min_ram',
  'tags',
  'created_at',
  'updated_at',
  'self',
  'file',
  'schema',
  'direct_url',
  'locations',
  'stores',
]);

const IMAGE_STATUS: Record<string, string> = {
  active: 'ACTIVE',
  queued: 'SAVING',
  saving: 'SAVING',
  deleted: 'DELETED',
  pending_delete: 'DELETED',
  killed: 'ERROR',
};
const IMAGE_PROGRESS: Record<string, number> = { queued: 25, saving: 50, active: 100 };

export type GlanceRecord = Record<string, unknown> & { id: string };

export function imageProperties(image: GlanceRecord): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(image)) if (!GLANCE_ATTRIBUTES.has(key)) properties[key] = value;
  return properties;
}

function imageLinks(links: ComputeLinks, imageUrl: string, id: string) {
  return [
    ...links.resource('images', id),
    { rel: 'alternate', type: 'application/vnd.openstack.image', href: `${imageUrl}/images/${id}` },
  ];
}

export function imageBrief(image: GlanceRecord, links: ComputeLinks, imageUrl: string) {
  return {
    id: image.id,
    name: (image.name as string | null) ?? null,
    links: imageLinks(links, imageUrl, image.id),
  };
}

/** Nova's image view of a Glance v2 image (`views/images.py`). */
export function imageDetail(image: GlanceRecord, links: ComputeLinks, imageUrl: string) {
  const status = String(image.status);
  const metadata = imageProperties(image);
  const view: Record<string, unknown> = {
    id: image.id,
    name: (image.name as string | null) ?? null,
    minRam: Number(image.min_ram ?? 0) || 0,
    minDisk: Number(image.min_disk ?? 0) || 0,
    metadata,
    created: novaDate(image.created_at),
    updated: novaDate(image.updated_at),
    status: IMAGE_STATUS[status] ?? 'UNKNOWN',
    progress: IMAGE_PROGRESS[status] ?? 0,
    'OS-EXT-IMG-SIZE:size': typeof image.size === 'number' ? image.size : null,
    links: imageLinks(links, imageUrl, image.id),
  };
  const instance = metadata.instance_uuid;
  if (typeof instance === 'string')
    view.server = { id: instance, links: links.resource('servers', instance) };
  const autoDiskConfig = metadata.auto_disk_config;
  if (autoDiskConfig !== undefined && autoDiskConfig !== null) {
    view['OS-DCF:diskConfig'] = /^(1|t|true|on|y|yes)$/i.test(String(autoDiskConfig)) ? 'AUTO' : 'MANUAL';
  }
  return view;
}

function novaDate(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const at = new Date(value);
  return Number.isNaN(at.getTime()) ? value : at.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** Nova's `SUPPORTED_FILTERS` on `/images` translated to Glance v2's query (`_extract_query_params_v2`). */
export function glanceImageQuery(query: Record<string, string | undefined>): {
  params: URLSearchParams;
  minRam?: number;
  minDisk?: number;
} {
  const params = new URLSearchParams();
  const number = (name: string) => {
    const value = query[name];
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value)) throw new BadRequestError(`Invalid ${name} filter [${value}]`);
    return Number(value);
  };
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (name === 'name') params.set('name', value);
    else if (name === 'status') params.set('status', value.toLowerCase());
    else if (name === 'changes-since') params.set('updated_at', `gte:${value}`);
    else if (name === 'server') params.set('instance_uuid', value.split('/').pop() ?? value);
    else if (name === 'type') params.set('image_type', value);
    else if (name.startsWith('property-') && name.length > 9) params.set(name.slice(9), value);
  }
  const limit = query.limit;
  if (limit !== undefined) {
    if (!/^-?\d+$/.test(limit)) throw new BadRequestError('limit param must be an integer');
    if (Number(limit) < 0) throw new BadRequestError('limit param must be positive');
    params.set('limit', limit);
  }
  if (query.marker !== undefined) params.set('marker', query.marker);
  // Glance v2 has no min_ram/min_disk filters: Nova's v1 semantics (at least this much) apply here.
  return { params, minRam: number('minRam'), minDisk: number('minDisk') };
}

/** Glance's JSON patch that turns `before` properties into `after` (Nova's update with `purge_props`). */
export function propertiesPatch(before: Record<string, unknown>, after: Record<string, unknown>) {
  const ops: { op: string; path: string; value?: unknown }[] = [];
  const pointer = (key: string) => `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
  for (const key of Object.keys(before)) if (!(key in after)) ops.push({ op: 'remove', path: pointer(key) });
  for (const [key, value] of Object.entries(after)) {
    if (!(key in before)) ops.push({ op: 'add', path: pointer(key), value });
    else if (before[key] !== value) ops.push({ op: 'replace', path: pointer(key), value });
  }
  return ops;
}

/** Nova's image metadata bodies: `{"metadata": {...}}` / `{"meta": {key: value}}` with string keys and values. */
export function checkImageMetadata(body: unknown, field: 'metadata' | 'meta'): Record<string, string> {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !(field in body)) {
    throw new BadRequestError(`'${field}' is a required property`);
  }
  const value = (body as Record<string, unknown>)[field];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadRequestError(
      `Invalid input for field/attribute ${field}. Value: ${JSON.stringify(value)}. ${JSON.stringify(value)} is not of type 'object'`,
    );
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (field === 'meta' && entries.length !== 1) {
    throw new BadRequestError(
      `Invalid input for field/attribute meta. Value: ${JSON.stringify(value)}. ${entries.length ? 'Too many' : 'Too few'} properties`,
    );
  }
  const result: Record<string, string> = {};
  for (const [key, item] of entries) {
    if (key.length < 1 || key.length > 255) {
      throw new BadRequestError(
        `Invalid input for field/attribute ${field}. Value: ${key}. Key must be 1 to 255 characters`,
      );
    }
    if (typeof item !== 'string' || item.length > 255) {
      throw new BadRequestError(
        `Invalid input for field/attribute ${key}. Value: ${JSON.stringify(item)}. Must be a string of at most 255 characters`,
      );
    }
    result[key] = item;
  }
  return result;
}

// ---- security groups ----

export interface NeutronRule {
  id: string;
  security_group_id: string;
  direction: string;
  protocol: string | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  remote_group_id: string | null;
}

export interface NeutronGroup {
  id: string;
  name: string;
  description: string | null;
  project_id?: string;
  tenant_id?: string;
  security_group_rules?: NeutronRule[];
}

/** The name and project of a rule's remote group; a remote group that is gone leaves the rule out. */
export type GroupRef = { name: string; tenant_id: string };

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export function isUuidLike(value: string): boolean {
  return UUID.test(value);
}

/** Nova's `validate_id`: security group and rule ids are uuids. */
export function checkSecurityGroupId(id: string): void {
  if (!isUuidLike(id)) throw new BadRequestError('Security group id should be uuid');
}

/** A Neutron rule in Nova's terms (`_convert_to_nova_security_group_rule_format`). */
export function novaRule(rule: NeutronRule) {
  let fromPort = rule.port_range_min;
  let toPort = rule.port_range_max;
  if (rule.protocol && fromPort === null && toPort === null) {
    const tcpUdp = ['TCP', 'UDP'].includes(rule.protocol.toUpperCase());
    fromPort = tcpUdp ? 1 : -1;
    toPort = tcpUdp ? 65535 : -1;
  }
  return {
    id: rule.id,
    parentGroupId: rule.security_group_id,
    protocol: rule.protocol,
    fromPort,
    toPort,
    groupId: rule.remote_group_id,
    cidr: rule.remote_ip_prefix || '0.0.0.0/0',
  };
}

export function securityGroupRuleView(rule: NeutronRule, groups: Map<string, GroupRef>) {
  const r = novaRule(rule);
  const view = {
    id: r.id,
    parent_group_id: r.parentGroupId,
    ip_protocol: r.protocol,
    from_port: r.fromPort,
    to_port: r.toPort,
    group: {} as GroupRef | Record<string, never>,
    ip_range: {} as { cidr: string } | Record<string, never>,
  };
  if (r.groupId) {
    const group = groups.get(r.groupId);
    if (!group) return undefined;
    view.group = group;
  } else {
    view.ip_range = { cidr: r.cidr };
  }
  return view;
}

export function groupRef(group: NeutronGroup): GroupRef {
  return { name: group.name, tenant_id: group.project_id ?? group.tenant_id ?? '' };
}

/** A Neutron group in Nova's view: its ingress rules only. */
export function securityGroupView(group: NeutronGroup, groups: Map<string, GroupRef>) {
  return {
    id: group.id,
    description: group.description ?? '',
    name: group.name,
    tenant_id: group.project_id ?? group.tenant_id ?? '',
    rules: (group.security_group_rules ?? [])
      .filter((rule) => rule.direction === 'ingress')
      .map((rule) => securityGroupRuleView(rule, groups))
      .filter((rule) => rule !== undefined),
  };
}

export interface IngressRule {
  group_id?: string;
  cidr?: string;
  protocol?: string;
  from_port?: number;
  to_port?: number;
}

/** oslo's `is_valid_cidr`: an address, a slash and a prefix length that fits it. */
export function isValidCidr(cidr: string): boolean {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  if (!match) return false;
  const version = isIP(match[1]);
  return version !== 0 && Number(match[2]) <= (version === 4 ? 32 : 128);
}

function portNumber(value: unknown, icmp: boolean): number {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  if (typeof value === 'string' && /^\s*[-+]?\d+\s*$/.test(value)) return Number(value);
  throw new BadRequestError(
    icmp
      ? 'Invalid input received: Type and Code must be integers for ICMP protocol type'
      : 'Invalid input received: To and From ports must be integers',
  );
}

/**
 * Nova's `_rule_args_to_dict` for `POST /os-security-group-rules`: a cidr (default 0.0.0.0/0) or a source
 * group, with protocol and port validation; undefined when a cidr rule lacks what makes a rule.
 */
export function newIngressRule(input: {
  ip_protocol?: unknown;
  from_port?: unknown;
  to_port?: unknown;
  cidr?: unknown;
  group_id?: string | null;
}): IngressRule | undefined {
  const values: IngressRule = {};
  let fromPort = input.from_port ?? undefined;
  let toPort = input.to_port ?? undefined;
  const protocol =
    input.ip_protocol === null || input.ip_protocol === undefined ? '' : String(input.ip_protocol);
  if (input.group_id) {
    values.group_id = input.group_id;
    const upper = protocol.toUpperCase();
    if (upper === 'ICMP' && fromPort === undefined && toPort === undefined) {
      fromPort = -1;
      toPort = -1;
    } else if ((upper === 'TCP' || upper === 'UDP') && fromPort === undefined && toPort === undefined) {
      fromPort = 1;
      toPort = 65535;
    }
  } else {
    const raw =
      input.cidr === null || input.cidr === undefined || input.cidr === '' ? '' : String(input.cidr);
    let cidr = '0.0.0.0/0';
    if (raw) {
      try {
        cidr = decodeURIComponent(raw);
      } catch {
        cidr = raw;
      }
      if (!isValidCidr(cidr)) throw new BadRequestError(`${cidr} is not a valid IP network.`);
    }
    values.cidr = cidr;
  }
  if (protocol && fromPort !== undefined && toPort !== undefined) {
    const upper = protocol.toUpperCase();
    const from = portNumber(fromPort, upper === 'ICMP');
    const to = portNumber(toPort, upper === 'ICMP');
    if (!['TCP', 'UDP', 'ICMP'].includes(upper))
      throw new BadRequestError(`Invalid IP protocol ${protocol}.`);
    const range = (why: string) => new BadRequestError(`Invalid port range ${from}:${to}. ${why}`);
    if ((upper === 'TCP' || upper === 'UDP') && from > to) {
      throw range('Former value cannot be greater than the later');
    }
    if ((upper === 'TCP' || upper === 'UDP') && (from < 1 || to > 65535)) {
      throw range(`Valid ${upper} ports should be between 1-65535`);
    }
    if (upper === 'ICMP' && (from < -1 || from > 255 || to < -1 || to > 255)) {
      throw range('For ICMP, the type:code must be valid');
    }
    values.protocol = protocol;
    values.from_port = from;
    values.to_port = to;
  } else if (values.cidr) {
    return undefined;
  }
  if (values.cidr) {
    const [net, prefix] = values.cidr.split('/');
    if (net !== '0.0.0.0' && net !== '::' && prefix === '0') {
      throw new BadRequestError(`Bad prefix for network in cidr ${values.cidr}`);
    }
  }
  return values;
}

/** Nova's `_rule_exists`: the same source, ports and protocol (a group rule never matches, as in Nova). */
export function ruleExists(existing: NeutronRule[], rule: IngressRule): boolean {
  return existing
    .filter((r) => r.direction === 'ingress')
    .map(novaRule)
    .some(
      (r) =>
        (r.groupId ?? undefined) === rule.group_id &&
        r.cidr === rule.cidr &&
        (r.fromPort ?? undefined) === rule.from_port &&
        (r.toPort ?? undefined) === rule.to_port &&
        (r.protocol ?? undefined) === rule.protocol,
    );
}

/** The Neutron rule Nova creates (`_make_neutron_security_group_rules_list`): ingress, -1 ports left open. */
export function neutronRuleBody(parentGroupId: string, rule: IngressRule): Record<string, unknown> {
  const body: Record<string, unknown> = {
    direction: 'ingress',
    security_group_id: parentGroupId,
    ethertype: rule.cidr && isIP(rule.cidr.split('/')[0]) === 6 ? 'IPv6' : 'IPv4',
  };
  if (rule.protocol) body.protocol = rule.protocol;
  if (rule.cidr) body.remote_ip_prefix = rule.cidr;
  if (rule.group_id) body.remote_group_id = rule.group_id;
  if (rule.from_port !== undefined && rule.from_port !== -1) body.port_range_min = rule.from_port;
  if (rule.to_port !== undefined && rule.to_port !== -1) body.port_range_max = rule.to_port;
  return body;
}

// ---- networks ----

const NETWORK_FIELDS = [
  'id',
  'cidr',
  'netmask',
  'gateway',
  'broadcast',
  'dns1',
  'dns2',
  'cidr_v6',
  'gateway_v6',
  'label',
  'netmask_v6',
];
const NETWORK_ADMIN_FIELDS = [
  'created_at',
  'updated_at',
  'deleted_at',
  'deleted',
  'injected',
  'bridge',
  'vlan',
  'vpn_public_address',
  'vpn_public_port',
  'vpn_private_address',
  'dhcp_start',
  'project_id',
  'host',
  'bridge_interface',
  'multi_host',
  'priority',
  'rxtx_base',
  'mtu',
  'dhcp_server',
  'enable_dhcp',
  'share_address',
];

/** `/os-networks` with Neutron: id and label, every nova-network field null (admins see more of them). */
export function networkView(network: { id: string; name: string }, admin: boolean) {
  const view: Record<string, unknown> = {};
  for (const field of admin ? [...NETWORK_FIELDS, ...NETWORK_ADMIN_FIELDS] : NETWORK_FIELDS) {
    view[field] = field === 'id' ? network.id : field === 'label' ? network.name : null;
  }
  return view;
}

/** `/os-tenant-networks` with Neutron: the string `"None"` as cidr, as Nova has always answered. */
export function tenantNetworkView(network: { id: string; name: string }) {
  return { id: network.id, cidr: 'None', label: network.name };
}

// ---- hosts ----

export interface HostResource {
  host: string;
  project: string;
  cpu: number;
  memory_mb: number;
  disk_gb: number;
}

/** `GET /os-hosts/{host}`: the node's totals, what it uses now, the instances' sum and each project's. */
export function hostResources(
  host: string,
  node: {
    vcpus: number;
    memoryMb: number;
    localGb: number;
    vcpusUsed: number;
    memoryMbUsed: number;
    localGbUsed: number;
  },
  instances: {
    projectId: string;
    flavor: { vcpus: number; memory_mb: number; root_gb: number; ephemeral_gb: number };
  }[],
): { resource: HostResource }[] {
  const sum = (project: string, list: typeof instances): HostResource => ({
    host,
    project,
    cpu: list.reduce((n, i) => n + i.flavor.vcpus, 0),
    memory_mb: list.reduce((n, i) => n + i.flavor.memory_mb, 0),
    disk_gb: list.reduce((n, i) => n + i.flavor.root_gb + i.flavor.ephemeral_gb, 0),
  });
  const resources: HostResource[] = [
    { host, project: '(total)', cpu: node.vcpus, memory_mb: node.memoryMb, disk_gb: node.localGb },
    {
      host,
      project: '(used_now)',
      cpu: node.vcpusUsed,
      memory_mb: node.memoryMbUsed,
      disk_gb: node.localGbUsed,
    },
    sum('(used_max)', instances),
  ];
  const projects = [...new Set(instances.map((i) => i.projectId))];
  for (const project of projects)
    resources.push(
      sum(
        project,
        instances.filter((i) => i.projectId === project),
      ),
    );
  return resources.map((resource) => ({ resource }));
}

const HOST_SWITCH = ['enable', 'disable', 'Enable', 'Disable', 'ENABLE', 'DISABLE'];

/** Nova's `hosts.update` schema: `status` and/or `maintenance_mode`, each enable or disable. */
export function checkHostUpdate(body: unknown): { status?: boolean; maintenance?: boolean } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequestError(
      `Invalid input for field/attribute . Value: ${JSON.stringify(body)}. ${JSON.stringify(body)} is not of type 'object'`,
    );
  }
  const b = body as Record<string, unknown>;
  const extra = Object.keys(b).filter((k) => k !== 'status' && k !== 'maintenance_mode');
  if (extra.length) {
    throw new BadRequestError(
      `Additional properties are not allowed (${extra.map((k) => `'${k}'`).join(', ')} ${extra.length > 1 ? 'were' : 'was'} unexpected)`,
    );
  }
  for (const key of ['status', 'maintenance_mode']) {
    if (b[key] !== undefined && !HOST_SWITCH.includes(b[key] as string)) {
      throw new BadRequestError(
        `Invalid input for field/attribute ${key}. Value: ${String(b[key])}. ${JSON.stringify(b[key])} is not one of ${JSON.stringify(HOST_SWITCH)}`,
      );
    }
  }
  if (b.status === undefined && b.maintenance_mode === undefined) {
    throw new BadRequestError(
      `Invalid input for field/attribute . Value: ${JSON.stringify(b)}. ${JSON.stringify(b)} is not valid under any of the given schemas`,
    );
  }
  const on = (value: unknown) => (value === undefined ? undefined : String(value).toLowerCase() === 'enable');
  return { status: on(b.status), maintenance: on(b.maintenance_mode) };
}

// ---- instance usage audit log ----

/** Nova's `strptime` of `/os-instance_usage_audit_log/{before}`: `%Y-%m-%d %H:%M:%S[.%f]`, in UTC. */
export function parseAuditTimestamp(text: string): Date {
  const invalid = () => new BadRequestError(`Invalid timestamp for date ${text}`);
  const pattern = text.includes('.')
    ? /^(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{1,2}):(\d{1,2})\.(\d{1,6})$/
    : /^(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{1,2}):(\d{1,2})$/;
  const match = pattern.exec(text);
  if (!match) throw invalid();
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
  const micros = match[7] ? Number(match[7].padEnd(6, '0')) : 0;
  const at = new Date(Date.UTC(year, month - 1, day, hour, minute, second, Math.floor(micros / 1000)));
  if (
    at.getUTCFullYear() !== year ||
    at.getUTCMonth() !== month - 1 ||
    at.getUTCDate() !== day ||
    at.getUTCHours() !== hour ||
    at.getUTCMinutes() !== minute ||
    at.getUTCSeconds() !== second
  ) {
    throw invalid();
  }
  return at;
}

/** Nova's `last_completed_audit_period` with the default unit, `month`: the last whole month before `before`. */
export function lastCompletedAuditPeriod(before: Date): { begin: Date; end: Date } {
  let end = new Date(Date.UTC(before.getUTCFullYear(), before.getUTCMonth(), 1));
  if (end.getTime() >= before.getTime())
    end = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 1, 1));
  const begin = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 1, 1));
  return { begin, end };
}

/** Python's `str(datetime)`: `2026-07-01 00:00:00`. */
export function pythonTime(at: Date): string {
  return at
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, '')
    .replace(/Z$/, '');
}

export interface AuditHostLog {
  host: string;
  instances: number;
}

/** Nova's audit log summary over the compute hosts, each with the task's DONE entry for the period. */
export function auditLogView(period: { begin: Date; end: Date }, hosts: string[], logs: AuditHostLog[]) {
  const seen = new Set(logs.map((l) => l.host));
  const notRun = hosts.filter((h) => !seen.has(h));
  const done = logs.length;
  const log: Record<string, { state: string; instances: number; errors: number; message: string }> = {};
  for (const entry of logs) {
    log[entry.host] = {
      state: 'DONE',
      instances: entry.instances,
      errors: 0,
      message: `Instance usage audit ran for host ${entry.host}, ${entry.instances} instances in 0 seconds.`,
    };
  }
  return {
    period_beginning: pythonTime(period.begin),
    period_ending: pythonTime(period.end),
    num_hosts: hosts.length,
    num_hosts_done: done,
    num_hosts_running: 0,
    num_hosts_not_run: notRun.length,
    hosts_not_run: notRun,
    total_instances: logs.reduce((n, l) => n + l.instances, 0),
    total_errors: 0,
    overall_status: `${done === hosts.length ? 'ALL' : `${done} of ${hosts.length}`} hosts done. 0 errors.`,
    log,
  };
}
