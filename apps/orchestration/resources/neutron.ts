import { isMap, Json, JsonMap } from '@novum/hot';
import { CloudError, CloudSession } from '../cloud';
import { ActionContext, ResourceState, ResourceType, TemplateResource } from './types';

type NeutronObject = Record<string, Json>;

/** The Neutron objects Heat's neutron resources make, each with its URL collection and list key. */
export type NeutronKind =
  'network' | 'subnet' | 'port' | 'security_group' | 'security_group_rule' | 'router' | 'floatingip';

/** The kinds Heat finds by name or id. */
type NamedKind = Exclude<NeutronKind, 'floatingip' | 'security_group_rule'>;

const COLLECTIONS: Record<NeutronKind, { path: string; list: string }> = {
  network: { path: 'networks', list: 'networks' },
  subnet: { path: 'subnets', list: 'subnets' },
  port: { path: 'ports', list: 'ports' },
  security_group: { path: 'security-groups', list: 'security_groups' },
  security_group_rule: { path: 'security-group-rules', list: 'security_group_rules' },
  router: { path: 'routers', list: 'routers' },
  floatingip: { path: 'floatingips', list: 'floatingips' },
};

/** A Neutron object by id, else by unique name (Heat's neutron finder). */
export async function findNeutron(
  cloud: CloudSession,
  kind: NamedKind,
  value: string,
): Promise<NeutronObject> {
  const { path, list } = COLLECTIONS[kind];
  try {
    const body = await cloud.request<Record<string, NeutronObject>>(
      'network',
      'GET',
      `/v2.0/${path}/${encodeURIComponent(value)}`,
    );
    return body[kind];
  } catch (error) {
    if (!(error instanceof CloudError) || error.status !== 404) throw error;
  }
  const body = await cloud.request<Record<string, NeutronObject[]>>(
    'network',
    'GET',
    `/v2.0/${path}?name=${encodeURIComponent(value)}`,
  );
  const found = body[list] ?? [];
  if (found.length === 0)
    throw new CloudError(404, `Unable to find ${kind} with name or id '${value}'`, 'network');
  if (found.length > 1)
    throw new CloudError(
      409,
      `Multiple ${kind} matches found for name '${value}', use an ID to be more specific.`,
      'network',
    );
  return found[0];
}

const idOf = async (cloud: CloudSession, kind: NamedKind, ref: Json) =>
  (await findNeutron(cloud, kind, String(ref))).id as string;

async function createObject(cloud: CloudSession, kind: NeutronKind, body: JsonMap): Promise<NeutronObject> {
  const created = await cloud.request<Record<string, NeutronObject>>(
    'network',
    'POST',
    `/v2.0/${COLLECTIONS[kind].path}`,
    { [kind]: body },
  );
  return created[kind];
}

async function updateObject(
  cloud: CloudSession,
  kind: NeutronKind,
  id: string,
  body: JsonMap,
): Promise<NeutronObject> {
  const updated = await cloud.request<Record<string, NeutronObject>>(
    'network',
    'PUT',
    `/v2.0/${COLLECTIONS[kind].path}/${id}`,
    { [kind]: body },
  );
  return updated[kind];
}

/** A request that may find its object already gone (Heat's ignore_not_found). */
async function ignoringMissing(request: Promise<unknown>): Promise<void> {
  try {
    await request;
  } catch (error) {
    if (error instanceof CloudError && error.status === 404) return;
    throw error;
  }
}

/** Fields of the properties that Neutron takes as they are (nulls left out: Neutron's defaults apply). */
function present(props: JsonMap, keys: string[]): JsonMap {
  const out: JsonMap = {};
  for (const key of keys) if (props[key] !== null && props[key] !== undefined) out[key] = props[key];
  return out;
}

/** The name Neutron gets: the `name` property, else Heat's physical resource name. */
const nameOf = (ctx: ActionContext, props: JsonMap) => (props.name as string | null) ?? ctx.physicalName;

/** Heat's messages of Resource.validate for properties that go together or exclude each other. */
const given = (props: JsonMap, key: string) => props[key] !== undefined && props[key] !== null;
export const conflict = (...keys: string[]) =>
  `Cannot define the following properties at the same time: ${keys.join(', ')}.`;
export const unspecified = (...keys: string[]) =>
  `At least one of the following properties must be specified: ${keys.join(', ')}.`;

/** Two template values that name the same thing (the same literal, or the same function call). */
function sameValue(a: Json | undefined, b: Json | undefined): boolean {
  return (
    a !== undefined && a !== null && b !== undefined && b !== null && JSON.stringify(a) === JSON.stringify(b)
  );
}

const isLiteral = (value: Json | undefined) => typeof value === 'string';
const ofType = (others: TemplateResource[], type: string) => others.filter((other) => other.type === type);
const subnetNetwork = (subnet: TemplateResource) => subnet.properties.network ?? subnet.properties.network_id;

/**
 * The subnets a server on these networks needs (Heat's Server.add_dependencies): those of the same network,
 * and those whose network is not known before create (a function), to be safe.
 */
export function subnetsForNetworks(networks: Json[], others: TemplateResource[]): string[] {
  return ofType(others, 'OS::Neutron::Subnet')
    .filter((subnet) => {
      const network = subnetNetwork(subnet);
      return !isLiteral(network) || networks.some((net) => sameValue(net, network));
    })
    .map((subnet) => subnet.name);
}

/** Whether a port resource of the template has an address on `subnetRef` (by its fixed IPs, else its network). */
function portOnSubnet(port: TemplateResource, subnetRef: Json, others: TemplateResource[]): boolean {
  if (port.type !== 'OS::Neutron::Port') return false;
  const fixedIps = port.properties.fixed_ips;
  if (Array.isArray(fixedIps) && fixedIps.length)
    return fixedIps.some((item) =>
      sameValue((item as JsonMap).subnet ?? (item as JsonMap).subnet_id, subnetRef),
    );
  const subnetName =
    isMap(subnetRef) && typeof subnetRef.get_resource === 'string' ? subnetRef.get_resource : null;
  const subnet = others.find((other) => other.name === subnetName && other.type === 'OS::Neutron::Subnet');
  return !!subnet && sameValue(subnetNetwork(subnet), port.properties.network);
}

/** The router interfaces that make the ports this resource requires reachable (floating IPs need them). */
function interfacesForPorts(self: TemplateResource, others: TemplateResource[]): string[] {
  const ports = others.filter((other) => self.requires.includes(other.name));
  return ofType(others, 'OS::Neutron::RouterInterface')
    .filter((ri) => {
      const subnetRef = ri.properties.subnet ?? ri.properties.subnet_id;
      return subnetRef !== undefined && ports.some((port) => portOnSubnet(port, subnetRef, others));
    })
    .map((ri) => ri.name);
}

/**
 * What sets one Neutron resource type apart: its object kind and the request bodies it makes from its
 * properties (names resolved to ids). The create / update / delete / attribute handlers are shared.
 */
interface NeutronResourceSpec extends Omit<ResourceType, 'create' | 'update' | 'delete' | 'attribute'> {
  kind: NeutronKind;
  createBody(ctx: ActionContext, cloud: CloudSession, props: JsonMap): Promise<JsonMap>;
  /** The body of an in-place update; absent: every change replaces the resource. */
  updateBody?(
    ctx: ActionContext,
    cloud: CloudSession,
    props: JsonMap,
    state: ResourceState,
  ): Promise<JsonMap>;
  attribute?: ResourceType['attribute'];
}

/** A Neutron object's attribute from the view kept at the last action; `show` is the whole view. */
function neutronAttribute(state: ResourceState, name: string, kind: NeutronKind): Json {
  const object = (state.data[kind] as JsonMap | undefined) ?? {};
  if (name === 'show') return object;
  return object[name] ?? null;
}

function neutronResource(spec: NeutronResourceSpec): ResourceType {
  const { kind, createBody, updateBody, ...type } = spec;
  return {
    ...type,
    async create(ctx, props) {
      const cloud = await ctx.cloud();
      const created = await createObject(cloud, kind, await createBody(ctx, cloud, props));
      return { physicalId: created.id as string, data: { [kind]: created } };
    },
    ...(updateBody
      ? {
          async update(ctx: ActionContext, state: ResourceState, props: JsonMap) {
            const cloud = await ctx.cloud();
            const body = await updateBody(ctx, cloud, props, state);
            const updated = await updateObject(cloud, kind, state.physicalId as string, body);
            return { physicalId: state.physicalId, data: { ...state.data, [kind]: updated } };
          },
        }
      : {}),
    async delete(ctx, state) {
      if (!state.physicalId) return;
      const cloud = await ctx.cloud();
      await ignoringMissing(
        cloud.request('network', 'DELETE', `/v2.0/${COLLECTIONS[kind].path}/${state.physicalId}`),
      );
    },
    attribute: spec.attribute ?? ((state, name) => neutronAttribute(state, name, kind)),
  };
}

/** The value_specs a Neutron resource passes through into its request (Heat's prepare_properties). */
const valueSpecs = (updatable: boolean) => ({
  type: 'map' as const,
  description: 'Extra parameters to include in the request.',
  default: {},
  updateAllowed: updatable,
});

const NET_FIELDS = ['admin_state_up', 'shared', 'port_security_enabled', 'mtu'];

export const net = neutronResource({
  kind: 'network',
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
    value_specs: valueSpecs(true),
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
  createBody: async (ctx, _cloud, props) => ({
    ...present(props, [...NET_FIELDS, 'tenant_id']),
    ...(props.value_specs as JsonMap),
    name: nameOf(ctx, props),
  }),
  updateBody: async (ctx, _cloud, props) => ({
    ...present(props, NET_FIELDS),
    ...(props.value_specs as JsonMap),
    name: nameOf(ctx, props),
  }),
  attribute: (state, name) => {
    if (name === 'subnets') return ((state.data.network as JsonMap | undefined)?.subnets as Json) ?? [];
    return neutronAttribute(state, name, 'network');
  },
});

const allocationPool = {
  type: 'map' as const,
  description: 'An allocation pool.',
  schema: {
    start: { type: 'string' as const, description: 'Start address for the allocation pool.', required: true },
    end: { type: 'string' as const, description: 'End address for the allocation pool.', required: true },
  },
};

const SUBNET_UPDATE_FIELDS = ['enable_dhcp', 'dns_nameservers', 'allocation_pools', 'host_routes'];

/** gateway_ip as Neutron takes it: an empty string means no gateway. */
function withGateway(body: JsonMap, props: JsonMap): JsonMap {
  if (props.gateway_ip !== null) body.gateway_ip = props.gateway_ip === '' ? null : props.gateway_ip;
  return body;
}

export const subnet = neutronResource({
  kind: 'subnet',
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
    value_specs: valueSpecs(true),
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
  validate: (props) =>
    given(props, 'network') && given(props, 'network_id') ? conflict('network', 'network_id') : null,
  async createBody(ctx, cloud, props) {
    const networkRef = (props.network ?? props.network_id) as string | null;
    if (!networkRef)
      throw new Error(
        'Property error: one of the properties "network" or "network_id" should be set for the specified resource.',
      );
    if (!props.cidr) throw new Error('Property error: cidr is required for a subnet without a subnetpool.');
    return withGateway(
      {
        ...present(props, ['cidr', 'ip_version', 'tenant_id', ...SUBNET_UPDATE_FIELDS]),
        ...(props.value_specs as JsonMap),
        network_id: await idOf(cloud, 'network', networkRef),
        name: nameOf(ctx, props),
      },
      props,
    );
  },
  updateBody: async (ctx, _cloud, props) =>
    withGateway(
      {
        ...present(props, SUBNET_UPDATE_FIELDS),
        ...(props.value_specs as JsonMap),
        name: nameOf(ctx, props),
      },
      props,
    ),
});

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

const PORT_UPDATE_FIELDS = [
  'admin_state_up',
  'device_id',
  'device_owner',
  'port_security_enabled',
  'allowed_address_pairs',
];

/** The parts of a port's request that name other objects: fixed IPs' subnets and security groups. */
async function portReferences(cloud: CloudSession, props: JsonMap): Promise<JsonMap> {
  const body: JsonMap = {};
  const fixedIps = await portFixedIps(cloud, props);
  if (fixedIps) body.fixed_ips = fixedIps;
  const groups = await securityGroupIds(cloud, props.security_groups);
  if (groups) body.security_groups = groups;
  return body;
}

export const port = neutronResource({
  kind: 'port',
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
    value_specs: valueSpecs(true),
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
  createBody: async (ctx, cloud, props) => ({
    ...present(props, ['mac_address', ...PORT_UPDATE_FIELDS]),
    ...(props.value_specs as JsonMap),
    network_id: await idOf(cloud, 'network', props.network),
    name: nameOf(ctx, props),
    ...(await portReferences(cloud, props)),
  }),
  updateBody: async (ctx, cloud, props) => ({
    ...present(props, PORT_UPDATE_FIELDS),
    ...(props.value_specs as JsonMap),
    name: nameOf(ctx, props),
    ...(await portReferences(cloud, props)),
  }),
});

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
    ids.push((await createObject(cloud, 'security_group_rule', body)).id as string);
  }
  return ids;
}

const groupBody = async (ctx: ActionContext, _cloud: CloudSession, props: JsonMap): Promise<JsonMap> => ({
  name: nameOf(ctx, props),
  description: (props.description as string | null) ?? '',
});

const securityGroupObject = neutronResource({
  kind: 'security_group',
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
  createBody: groupBody,
  updateBody: groupBody,
});

/** A security group and its rules: the rules are made after the group, and replaced on update. */
export const securityGroup: ResourceType = {
  ...securityGroupObject,
  async create(ctx, props) {
    const result = await securityGroupObject.create(ctx, props);
    const rules = await createRules(await ctx.cloud(), result.physicalId as string, props.rules as JsonMap[]);
    return { physicalId: result.physicalId, data: { ...result.data, rules } };
  },
  async update(ctx, state, props) {
    const result = await (securityGroupObject.update as NonNullable<ResourceType['update']>)(
      ctx,
      state,
      props,
    );
    const cloud = await ctx.cloud();
    for (const rule of (state.data.rules as string[] | undefined) ?? [])
      await ignoringMissing(cloud.request('network', 'DELETE', `/v2.0/security-group-rules/${rule}`));
    const rules = await createRules(cloud, state.physicalId as string, props.rules as JsonMap[]);
    return { physicalId: state.physicalId, data: { ...result.data, rules } };
  },
};

/** A literal `true` in the template (a function is only known at create). */
const literallyTrue = (value: Json | undefined) => value === true || String(value).toLowerCase() === 'true';

/** external_gateway_info as Neutron takes it: the network resolved to its id; null removes the gateway. */
async function gatewayInfo(cloud: CloudSession, props: JsonMap): Promise<JsonMap | null> {
  const gateway = props.external_gateway_info as JsonMap | null;
  if (!gateway) return null;
  return { network_id: await idOf(cloud, 'network', gateway.network), ...present(gateway, ['enable_snat']) };
}

export const router = neutronResource({
  kind: 'router',
  name: 'OS::Neutron::Router',
  description: 'A resource that implements Neutron router.',
  properties: {
    name: { type: 'string', description: 'The name of the router.', updateAllowed: true },
    external_gateway_info: {
      type: 'map',
      description: 'External network gateway configuration for a router.',
      updateAllowed: true,
      schema: {
        network: {
          type: 'string',
          description: 'ID or name of the external network for the gateway.',
          required: true,
          updateAllowed: true,
        },
        enable_snat: {
          type: 'boolean',
          description:
            'Enables Source NAT on the router gateway. NOTE: The default policy setting in Neutron restricts usage of this property to administrative users only.',
          updateAllowed: true,
        },
      },
    },
    value_specs: valueSpecs(true),
    admin_state_up: {
      type: 'boolean',
      description: 'The administrative state of the router.',
      default: true,
      updateAllowed: true,
    },
    distributed: {
      type: 'boolean',
      description:
        'Indicates whether or not to create a distributed router. NOTE: The default policy setting in Neutron restricts usage of this property to administrative users only.',
    },
    ha: {
      type: 'boolean',
      description:
        'Indicates whether or not to create a highly available router. NOTE: The default policy setting in Neutron restricts usage of this property to administrative users only. And now neutron do not support distributed and ha at the same time.',
    },
  },
  attributes: {
    status: { description: 'The status of the router.' },
    external_gateway_info: { description: 'Gateway network for the router.' },
    name: { description: 'Friendly name of the router.' },
    admin_state_up: { description: 'Administrative state of the router.' },
    tenant_id: { description: 'Tenant owning the router.' },
  },
  validate: (props) =>
    literallyTrue(props.distributed) && literallyTrue(props.ha) ? conflict('distributed', 'ha') : null,
  // A gateway on a network of the template needs its subnet first.
  implicitRequirements: (self, others) => {
    const gateway = self.properties.external_gateway_info;
    const network = isMap(gateway) ? gateway.network : undefined;
    return ofType(others, 'OS::Neutron::Subnet')
      .filter((subnet) => sameValue(subnetNetwork(subnet), network))
      .map((subnet) => subnet.name);
  },
  async createBody(ctx, cloud, props) {
    const body: JsonMap = {
      ...present(props, ['admin_state_up', 'distributed', 'ha']),
      ...(props.value_specs as JsonMap),
      name: nameOf(ctx, props),
    };
    const gateway = await gatewayInfo(cloud, props);
    if (gateway) body.external_gateway_info = gateway;
    return body;
  },
  updateBody: async (ctx, cloud, props) => ({
    ...present(props, ['admin_state_up']),
    ...(props.value_specs as JsonMap),
    name: nameOf(ctx, props),
    external_gateway_info: await gatewayInfo(cloud, props),
  }),
});

/** A router interface's physical id, Heat's `<router>:<subnet_id|port_id>=<id>`, split up. */
function interfaceOf(physicalId: string): { router: string; key: string; value: string } {
  const tokens = physicalId.replace('=', ':').split(':');
  // Heat's older `<router>:<subnet>` form.
  if (tokens.length === 2) tokens.splice(1, 0, 'subnet_id');
  const [routerId, key, value] = tokens;
  return { router: routerId, key, value };
}

export const routerInterface: ResourceType = {
  name: 'OS::Neutron::RouterInterface',
  description: 'A resource for managing Neutron router interfaces.',
  properties: {
    router: { type: 'string', description: 'The router.', required: true },
    subnet: { type: 'string', description: 'The subnet, either subnet or port should be specified.' },
    port: { type: 'string', description: 'The port, either subnet or port should be specified.' },
    subnet_id: { type: 'string', description: 'The subnet (deprecated: use subnet).' },
    port_id: { type: 'string', description: 'The port id (deprecated: use port).' },
  },
  attributes: {},
  validate(props) {
    const bySubnet = given(props, 'subnet') || given(props, 'subnet_id');
    const byPort = given(props, 'port') || given(props, 'port_id');
    if (bySubnet && byPort) return conflict('subnet', 'port');
    if (!bySubnet && !byPort) return unspecified('subnet', 'port');
    return null;
  },
  async create(ctx, props) {
    const cloud = await ctx.cloud();
    const routerId = await idOf(cloud, 'router', props.router);
    const subnetRef = props.subnet ?? props.subnet_id;
    const [key, value] =
      subnetRef !== null
        ? ['subnet_id', await idOf(cloud, 'subnet', subnetRef)]
        : ['port_id', await idOf(cloud, 'port', props.port ?? props.port_id)];
    const info = await cloud.request<JsonMap>(
      'network',
      'PUT',
      `/v2.0/routers/${routerId}/add_router_interface`,
      {
        [key]: value,
      },
    );
    return { physicalId: `${routerId}:${key}=${value}`, data: { interface: info } };
  },
  async delete(ctx, state) {
    if (!state.physicalId) return;
    const { router: routerId, key, value } = interfaceOf(state.physicalId);
    const cloud = await ctx.cloud();
    await ignoringMissing(
      cloud.request('network', 'PUT', `/v2.0/routers/${routerId}/remove_router_interface`, { [key]: value }),
    );
  },
  attribute: (state, name) => (name === 'show' ? ((state.data.interface as Json) ?? {}) : null),
};

export const floatingIp = neutronResource({
  kind: 'floatingip',
  name: 'OS::Neutron::FloatingIP',
  description: 'A resource for managing Neutron floating ips.',
  properties: {
    floating_network: {
      type: 'string',
      description: 'Network to allocate floating IP from.',
      required: true,
    },
    value_specs: valueSpecs(false),
    port_id: {
      type: 'string',
      description: 'ID of an existing port with at least one IP address to associate with this floating IP.',
      updateAllowed: true,
    },
    fixed_ip_address: {
      type: 'string',
      description: 'IP address to use if the port has multiple addresses.',
      updateAllowed: true,
    },
    floating_ip_address: {
      type: 'string',
      description:
        'IP address of the floating IP. NOTE: The default policy setting in Neutron restricts usage of this property to administrative users only.',
    },
  },
  attributes: {
    router_id: { description: 'ID of the router used as gateway, set when associated with a port.' },
    tenant_id: { description: 'The tenant owning this floating IP.' },
    floating_network_id: { description: 'ID of the network in which this IP is allocated.' },
    fixed_ip_address: { description: 'IP address of the associated port, if specified.' },
    floating_ip_address: { description: 'The allocated address of this IP.' },
    port_id: { description: 'ID of the port associated with this IP.' },
  },
  validate: (props) =>
    given(props, 'fixed_ip_address') && !given(props, 'port_id')
      ? 'fixed_ip_address cannot be specified without port_id.'
      : null,
  // The router with its gateway on the floating network, and the interface that reaches the port.
  implicitRequirements: (self, others) => [
    ...ofType(others, 'OS::Neutron::Router')
      .filter((r) => {
        const gateway = r.properties.external_gateway_info;
        return isMap(gateway) && sameValue(gateway.network, self.properties.floating_network);
      })
      .map((r) => r.name),
    ...interfacesForPorts(self, others),
  ],
  createBody: async (_ctx, cloud, props) => ({
    ...(props.value_specs as JsonMap),
    ...present(props, ['port_id', 'fixed_ip_address', 'floating_ip_address']),
    floating_network_id: await idOf(cloud, 'network', props.floating_network),
  }),
  updateBody: async (_ctx, _cloud, props) => ({
    port_id: props.port_id,
    fixed_ip_address: props.fixed_ip_address,
  }),
});

/** Associates a floating IP (of this stack or not) with a port; the delete disassociates it. */
export const floatingIpAssociation: ResourceType = {
  name: 'OS::Neutron::FloatingIPAssociation',
  description: 'A resource for associating floating ips and ports.',
  properties: {
    floatingip_id: {
      type: 'string',
      description: 'ID of the floating IP to associate.',
      required: true,
      updateAllowed: true,
    },
    port_id: {
      type: 'string',
      description: 'ID of an existing port with at least one IP address to associate with this floating IP.',
      required: true,
      updateAllowed: true,
    },
    fixed_ip_address: {
      type: 'string',
      description: 'IP address to use if the port has multiple addresses.',
      updateAllowed: true,
    },
  },
  attributes: {},
  implicitRequirements: interfacesForPorts,
  async create(ctx, props) {
    const cloud = await ctx.cloud();
    const associated = await updateObject(cloud, 'floatingip', props.floatingip_id as string, {
      port_id: props.port_id,
      ...present(props, ['fixed_ip_address']),
    });
    return { physicalId: ctx.physicalName, data: { floatingip: associated } };
  },
  async update(ctx, state, props) {
    const cloud = await ctx.cloud();
    const before = state.properties.floatingip_id as string;
    if (before !== props.floatingip_id)
      await ignoringMissing(updateObject(cloud, 'floatingip', before, { port_id: null }));
    const associated = await updateObject(cloud, 'floatingip', props.floatingip_id as string, {
      port_id: props.port_id,
      fixed_ip_address: props.fixed_ip_address,
    });
    return { physicalId: state.physicalId, data: { floatingip: associated } };
  },
  async delete(ctx, state) {
    if (!state.physicalId || !state.properties.floatingip_id) return;
    const cloud = await ctx.cloud();
    await ignoringMissing(
      updateObject(cloud, 'floatingip', state.properties.floatingip_id as string, { port_id: null }),
    );
  },
  attribute: (state, name) => (name === 'show' ? ((state.data.floatingip as Json) ?? {}) : null),
};
