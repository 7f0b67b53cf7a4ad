import { Json, JsonMap } from '@novum/hot';
import { CloudError, CloudSession } from '../cloud';
import { ActionContext, ResourceState, ResourceType } from './types';

type NeutronObject = Record<string, Json>;

/** A Neutron object by id, else by unique name (Heat's neutron finder). */
export async function findNeutron(
  cloud: CloudSession,
  kind: 'network' | 'subnet' | 'security_group' | 'port',
  value: string,
): Promise<NeutronObject> {
  const plural = kind === 'security_group' ? 'security-groups' : `${kind}s`;
  const key = kind === 'security_group' ? 'security_groups' : `${kind}s`;
  try {
    const body = await cloud.request<Record<string, NeutronObject>>(
      'network',
      'GET',
      `/v2.0/${plural}/${encodeURIComponent(value)}`,
    );
    return body[kind];
  } catch (error) {
    if (!(error instanceof CloudError) || error.status !== 404) throw error;
  }
  const list = await cloud.request<Record<string, NeutronObject[]>>(
    'network',
    'GET',
    `/v2.0/${plural}?name=${encodeURIComponent(value)}`,
  );
  const found = list[key] ?? [];
  const label = kind === 'security_group' ? 'security_group' : kind;
  if (found.length === 0)
    throw new CloudError(404, `Unable to find ${label} with name or id '${value}'`, 'network');
  if (found.length > 1)
    throw new CloudError(
      409,
      `Multiple ${label} matches found for name '${value}', use an ID to be more specific.`,
      'network',
    );
  return found[0];
}

async function deleteIgnoringMissing(cloud: CloudSession, path: string): Promise<void> {
  try {
    await cloud.request('network', 'DELETE', path);
  } catch (error) {
    if (error instanceof CloudError && error.status === 404) return;
    throw error;
  }
}

function neutronAttribute(state: ResourceState, name: string, kind: string): Json {
  const object = (state.data[kind] as JsonMap | undefined) ?? {};
  if (name === 'show') return object;
  return object[name] ?? null;
}

/** Fields of the properties that Neutron takes as they are (nulls left out: Neutron's defaults apply). */
function present(props: JsonMap, keys: string[]): JsonMap {
  const out: JsonMap = {};
  for (const key of keys) if (props[key] !== null && props[key] !== undefined) out[key] = props[key];
  return out;
}

export const net: ResourceType = {
  name: 'OS::Neutron::Net',
  description: 'A resource for managing Neutron net.',
  properties: {
    name: {
      type: 'string',
      description: 'A string specifying a symbolic name for the network.',
      updateAllowed: true,
    },
    admin_state_up: {
      type: 'boolean',
      description: 'A boolean value specifying the administrative status of the network.',
      default: true,
      updateAllowed: true,
    },
    shared: {
      type: 'boolean',
      description: 'Whether this network should be shared across all tenants.',
      updateAllowed: true,
    },
    port_security_enabled: {
      type: 'boolean',
      description: 'Flag to enable/disable port security on the network.',
      updateAllowed: true,
    },
    value_specs: {
      type: 'map',
      description: 'Extra parameters to include in the request.',
      default: {},
      updateAllowed: true,
    },
    tenant_id: { type: 'string', description: 'The ID of the tenant which will own the network.' },
    mtu: {
      type: 'integer',
      description: 'The maximum transmission unit size (in bytes) for the network.',
      updateAllowed: true,
    },
  },
  attributes: {
    name: { description: 'The name of the network.' },
    status: { description: 'The status of the network.' },
    subnets: { description: 'Subnets of this network.' },
    admin_state_up: { description: 'The administrative status of the network.' },
    tenant_id: { description: 'The tenant owning this network.' },
    mtu: { description: 'The maximum transmission unit size (in bytes) for the network.' },
  },
  async create(ctx, props) {
    const cloud = await ctx.cloud();
    const body = {
      ...present(props, ['admin_state_up', 'shared', 'port_security_enabled', 'tenant_id', 'mtu']),
      ...(props.value_specs as JsonMap),
      name: (props.name as string | null) ?? ctx.physicalName,
    };
    const created = await cloud.request<{ network: NeutronObject }>('network', 'POST', '/v2.0/networks', {
      network: body,
    });
    return { physicalId: created.network.id as string, data: { network: created.network } };
  },
  async update(ctx, state, props) {
    const cloud = await ctx.cloud();
    const body = {
      ...present(props, ['admin_state_up', 'shared', 'port_security_enabled', 'mtu']),
      ...(props.value_specs as JsonMap),
      name: (props.name as string | null) ?? ctx.physicalName,
    };
    const updated = await cloud.request<{ network: NeutronObject }>(
      'network',
      'PUT',
      `/v2.0/networks/${state.physicalId}`,
      { network: body },
    );
    return { physicalId: state.physicalId, data: { network: updated.network } };
  },
  async delete(ctx, state) {
    if (state.physicalId)
      await deleteIgnoringMissing(await ctx.cloud(), `/v2.0/networks/${state.physicalId}`);
  },
  attribute: (state, name) => {
    if (name === 'subnets') return ((state.data.network as JsonMap | undefined)?.subnets as Json) ?? [];
    return neutronAttribute(state, name, 'network');
  },
};

const allocationPool = {
  type: 'map' as const,
  description: 'An allocation pool.',
  schema: {
    start: { type: 'string' as const, description: 'Start address for the allocation pool.', required: true },
    end: { type: 'string' as const, description: 'End address for the allocation pool.', required: true },
  },
};

export const subnet: ResourceType = {
  name: 'OS::Neutron::Subnet',
  description: 'A resource for managing Neutron subnets.',
  properties: {
    network: { type: 'string', description: 'The ID or name of the attached network.' },
    network_id: { type: 'string', description: 'The ID of the attached network (deprecated: use network).' },
    cidr: { type: 'string', description: 'The CIDR.' },
    ip_version: {
      type: 'integer',
      description: 'The IP version, which is 4 or 6.',
      default: 4,
      allowedValues: [4, 6],
    },
    name: { type: 'string', description: 'The name of the subnet.', updateAllowed: true },
    gateway_ip: {
      type: 'string',
      description: 'The gateway IP address (an empty string: no gateway).',
      updateAllowed: true,
    },
    enable_dhcp: {
      type: 'boolean',
      description: 'Set to true if DHCP is enabled and false if DHCP is disabled.',
      default: true,
      updateAllowed: true,
    },
    dns_nameservers: {
      type: 'list',
      description: 'A specified set of DNS name servers to be used.',
      default: [],
      updateAllowed: true,
    },
    allocation_pools: {
      type: 'list',
      description: 'The start and end addresses for the allocation pools.',
      item: allocationPool,
      updateAllowed: true,
    },
    host_routes: {
      type: 'list',
      description: 'A list of host route dictionaries for the subnet.',
      updateAllowed: true,
    },
    tenant_id: { type: 'string', description: 'The ID of the tenant who owns the network.' },
    value_specs: {
      type: 'map',
      description: 'Extra parameters to include in the request.',
      default: {},
      updateAllowed: true,
    },
  },
  attributes: {
    name: { description: 'Friendly name of the subnet.' },
    network_id: { description: 'Parent network of the subnet.' },
    tenant_id: { description: 'Tenant owning the subnet.' },
    allocation_pools: { description: 'Ip allocation pools and their ranges.' },
    gateway_ip: { description: "Ip of the subnet's gateway." },
    host_routes: { description: 'Additional routes for this subnet.' },
    ip_version: { description: 'Ip version for the subnet.' },
    cidr: { description: 'CIDR block notation for this subnet.' },
    dns_nameservers: { description: 'List of dns nameservers.' },
    enable_dhcp: { description: "'true' if DHCP is enabled for this subnet; 'false' otherwise." },
  },
  async create(ctx, props) {
    const cloud = await ctx.cloud();
    const networkRef = (props.network ?? props.network_id) as string | null;
    if (!networkRef)
      throw new Error(
        'Property error: one of the properties "network" or "network_id" should be set for the specified resource.',
      );
    if (!props.cidr) throw new Error('Property error: cidr is required for a subnet without a subnetpool.');
    const network = await findNeutron(cloud, 'network', networkRef);
    const body: JsonMap = {
      ...present(props, [
        'cidr',
        'ip_version',
        'enable_dhcp',
        'dns_nameservers',
        'allocation_pools',
        'host_routes',
        'tenant_id',
      ]),
      ...(props.value_specs as JsonMap),
      network_id: network.id,
      name: (props.name as string | null) ?? ctx.physicalName,
    };
    if (props.gateway_ip !== null) body.gateway_ip = props.gateway_ip === '' ? null : props.gateway_ip;
    const created = await cloud.request<{ subnet: NeutronObject }>('network', 'POST', '/v2.0/subnets', {
      subnet: body,
    });
    return { physicalId: created.subnet.id as string, data: { subnet: created.subnet } };
  },
  async update(ctx, state, props) {
    const cloud = await ctx.cloud();
    const body: JsonMap = {
      ...present(props, ['enable_dhcp', 'dns_nameservers', 'allocation_pools', 'host_routes']),
      ...(props.value_specs as JsonMap),
      name: (props.name as string | null) ?? ctx.physicalName,
    };
    if (props.gateway_ip !== null) body.gateway_ip = props.gateway_ip === '' ? null : props.gateway_ip;
    const updated = await cloud.request<{ subnet: NeutronObject }>(
      'network',
      'PUT',
      `/v2.0/subnets/${state.physicalId}`,
      { subnet: body },
    );
    return { physicalId: state.physicalId, data: { subnet: updated.subnet } };
  },
  async delete(ctx, state) {
    if (state.physicalId) await deleteIgnoringMissing(await ctx.cloud(), `/v2.0/subnets/${state.physicalId}`);
  },
  attribute: (state, name) => neutronAttribute(state, name, 'subnet'),
};

const fixedIp = {
  type: 'map' as const,
  description: 'A fixed IP: a subnet and/or an address.',
  schema: {
    subnet: {
      type: 'string' as const,
      description: 'Subnet in which to allocate the IP address for this port.',
    },
    subnet_id: { type: 'string' as const, description: 'Subnet id (deprecated: use subnet).' },
    ip_address: { type: 'string' as const, description: 'IP address desired in the subnet for this port.' },
  },
};

async function portFixedIps(cloud: CloudSession, props: JsonMap): Promise<JsonMap[] | undefined> {
  const items = props.fixed_ips as JsonMap[] | null;
  if (!items) return undefined;
  const out: JsonMap[] = [];
  for (const item of items) {
    const entry: JsonMap = {};
    const subnetRef = (item.subnet ?? item.subnet_id) as string | null;
    if (subnetRef) entry.subnet_id = (await findNeutron(cloud, 'subnet', subnetRef)).id;
    if (item.ip_address) entry.ip_address = item.ip_address;
    out.push(entry);
  }
  return out;
}

async function securityGroupIds(cloud: CloudSession, refs: Json): Promise<string[] | undefined> {
  if (!Array.isArray(refs)) return undefined;
  const ids: string[] = [];
  for (const ref of refs) ids.push((await findNeutron(cloud, 'security_group', String(ref))).id as string);
  return ids;
}

export const port: ResourceType = {
  name: 'OS::Neutron::Port',
  description: 'A resource for managing Neutron ports.',
  properties: {
    network: { type: 'string', description: 'Network this port belongs to.', required: true },
    name: { type: 'string', description: 'A symbolic name for this port.', updateAllowed: true },
    fixed_ips: {
      type: 'list',
      description: 'Desired IPs for this port.',
      item: fixedIp,
      updateAllowed: true,
    },
    security_groups: {
      type: 'list',
      description: 'Security group IDs or names to associate with this port.',
      updateAllowed: true,
    },
    mac_address: { type: 'string', description: 'MAC address to give to this port.' },
    admin_state_up: {
      type: 'boolean',
      description: 'The administrative state of this port.',
      default: true,
      updateAllowed: true,
    },
    device_id: { type: 'string', description: 'Device ID of this port.', updateAllowed: true },
    device_owner: {
      type: 'string',
      description: 'Name of the network owning the port.',
      updateAllowed: true,
    },
    port_security_enabled: {
      type: 'boolean',
      description: 'Flag to enable/disable port security on the port.',
      updateAllowed: true,
    },
    allowed_address_pairs: {
      type: 'list',
      description: 'Additional MAC/IP address pairs allowed to pass through the port.',
      updateAllowed: true,
    },
    value_specs: {
      type: 'map',
      description: 'Extra parameters to include in the request.',
      default: {},
      updateAllowed: true,
    },
  },
  attributes: {
    name: { description: 'Friendly name of the port.' },
    network_id: { description: 'Unique identifier for the network owning the port.' },
    mac_address: { description: 'MAC address of the port.' },
    fixed_ips: { description: 'Fixed IP addresses.' },
    status: { description: 'The status of the port.' },
    admin_state_up: { description: 'The administrative state of this port.' },
    device_id: { description: 'Unique identifier for the device.' },
    device_owner: { description: 'Name of the network owning the port.' },
    security_groups: { description: 'A list of security groups for the port.' },
    tenant_id: { description: 'Tenant owning the port.' },
  },
  async create(ctx, props) {
    const cloud = await ctx.cloud();
    const network = await findNeutron(cloud, 'network', props.network as string);
    const body: JsonMap = {
      ...present(props, [
        'mac_address',
        'admin_state_up',
        'device_id',
        'device_owner',
        'port_security_enabled',
        'allowed_address_pairs',
      ]),
      ...(props.value_specs as JsonMap),
      network_id: network.id,
      name: (props.name as string | null) ?? ctx.physicalName,
    };
    const fixedIps = await portFixedIps(cloud, props);
    if (fixedIps) body.fixed_ips = fixedIps;
    const groups = await securityGroupIds(cloud, props.security_groups);
    if (groups) body.security_groups = groups;
    const created = await cloud.request<{ port: NeutronObject }>('network', 'POST', '/v2.0/ports', {
      port: body,
    });
    return { physicalId: created.port.id as string, data: { port: created.port } };
  },
  async update(ctx, state, props) {
    const cloud = await ctx.cloud();
    const body: JsonMap = {
      ...present(props, [
        'admin_state_up',
        'device_id',
        'device_owner',
        'port_security_enabled',
        'allowed_address_pairs',
      ]),
      ...(props.value_specs as JsonMap),
      name: (props.name as string | null) ?? ctx.physicalName,
    };
    const fixedIps = await portFixedIps(cloud, props);
    if (fixedIps) body.fixed_ips = fixedIps;
    const groups = await securityGroupIds(cloud, props.security_groups);
    if (groups) body.security_groups = groups;
    const updated = await cloud.request<{ port: NeutronObject }>(
      'network',
      'PUT',
      `/v2.0/ports/${state.physicalId}`,
      { port: body },
    );
    return { physicalId: state.physicalId, data: { port: updated.port } };
  },
  async delete(ctx, state) {
    if (state.physicalId) await deleteIgnoringMissing(await ctx.cloud(), `/v2.0/ports/${state.physicalId}`);
  },
  attribute: (state, name) => neutronAttribute(state, name, 'port'),
};

const ruleSchema = {
  type: 'map' as const,
  description: 'A security group rule.',
  schema: {
    direction: {
      type: 'string' as const,
      description: 'The direction in which the security group rule is applied.',
      default: 'ingress',
      allowedValues: ['ingress', 'egress'],
    },
    ethertype: {
      type: 'string' as const,
      description: 'Ethertype of the traffic.',
      default: 'IPv4',
      allowedValues: ['IPv4', 'IPv6'],
    },
    port_range_min: { type: 'integer' as const, description: 'The minimum port number in the range.' },
    port_range_max: { type: 'integer' as const, description: 'The maximum port number in the range.' },
    protocol: {
      type: 'string' as const,
      description: 'The protocol that is matched by the security group rule.',
    },
    remote_mode: {
      type: 'string' as const,
      description: 'Whether to specify a remote group or a remote IP prefix.',
      default: 'remote_ip_prefix',
      allowedValues: ['remote_ip_prefix', 'remote_group_id'],
    },
    remote_group_id: {
      type: 'string' as const,
      description: 'The remote group ID to be associated with this security group rule.',
    },
    remote_ip_prefix: {
      type: 'string' as const,
      description: 'The remote IP prefix (CIDR) to be associated with this security group rule.',
    },
    description: { type: 'string' as const, description: 'Description of the rule.' },
  },
};

async function createRules(cloud: CloudSession, groupId: string, rules: JsonMap[]): Promise<string[]> {
  const ids: string[] = [];
  for (const rule of rules) {
    const body: JsonMap = {
      security_group_id: groupId,
      ...present(rule, [
        'direction',
        'ethertype',
        'port_range_min',
        'port_range_max',
        'protocol',
        'remote_ip_prefix',
        'description',
      ]),
    };
    if (rule.remote_mode === 'remote_group_id') {
      body.remote_group_id = (rule.remote_group_id as string | null) ?? groupId;
      delete body.remote_ip_prefix;
    }
    const created = await cloud.request<{ security_group_rule: NeutronObject }>(
      'network',
      'POST',
      '/v2.0/security-group-rules',
      { security_group_rule: body },
    );
    ids.push(created.security_group_rule.id as string);
  }
  return ids;
}

export const securityGroup: ResourceType = {
  name: 'OS::Neutron::SecurityGroup',
  description: 'A resource for managing Neutron security groups.',
  properties: {
    name: {
      type: 'string',
      description: 'A string specifying a symbolic name for the security group.',
      updateAllowed: true,
    },
    description: { type: 'string', description: 'Description of the security group.', updateAllowed: true },
    rules: {
      type: 'list',
      description: 'List of security group rules.',
      default: [],
      item: ruleSchema,
      updateAllowed: true,
    },
  },
  attributes: {},
  async create(ctx, props) {
    const cloud = await ctx.cloud();
    const created = await cloud.request<{ security_group: NeutronObject }>(
      'network',
      'POST',
      '/v2.0/security-groups',
      {
        security_group: {
          name: (props.name as string | null) ?? ctx.physicalName,
          description: (props.description as string | null) ?? '',
        },
      },
    );
    const id = created.security_group.id as string;
    const rules = await createRules(cloud, id, props.rules as JsonMap[]);
    return { physicalId: id, data: { security_group: created.security_group, rules } };
  },
  async update(ctx, state, props) {
    const cloud = await ctx.cloud();
    const updated = await cloud.request<{ security_group: NeutronObject }>(
      'network',
      'PUT',
      `/v2.0/security-groups/${state.physicalId}`,
      {
        security_group: {
          name: (props.name as string | null) ?? ctx.physicalName,
          description: (props.description as string | null) ?? '',
        },
      },
    );
    for (const rule of (state.data.rules as string[] | undefined) ?? [])
      await deleteIgnoringMissing(cloud, `/v2.0/security-group-rules/${rule}`);
    const rules = await createRules(cloud, state.physicalId as string, props.rules as JsonMap[]);
    return { physicalId: state.physicalId, data: { security_group: updated.security_group, rules } };
  },
  async delete(ctx, state) {
    if (state.physicalId)
      await deleteIgnoringMissing(await ctx.cloud(), `/v2.0/security-groups/${state.physicalId}`);
  },
  attribute: (state, name) => neutronAttribute(state, name, 'security_group'),
};

export type { ActionContext };
