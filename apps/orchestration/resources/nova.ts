import { isMap, Json, JsonMap } from '@novum/hot';
import { CloudError, CloudSession } from '../cloud';
import { findNeutron, subnetsForNetworks } from './neutron';
import { configContent, multipartMessage, partsOf } from './software-config';
import { ActionContext, ResourceActionError, ResourceState, ResourceType } from './types';

type NovaObject = Record<string, Json>;

export async function findFlavor(cloud: CloudSession, value: string): Promise<NovaObject> {
  const body = await cloud.request<{ flavors: NovaObject[] }>(
    'compute',
    'GET',
    '/flavors/detail?is_public=None',
  );
  const found = body.flavors.find((f) => f.id === value) ?? body.flavors.filter((f) => f.name === value);
  if (!Array.isArray(found)) return found;
  if (found.length === 1) return found[0];
  if (found.length > 1)
    throw new CloudError(409, `Multiple physical resources were found with name (${value}).`, 'compute');
  throw new CloudError(404, `The Flavor ID (${value}) could not be found.`, 'compute');
}

export async function findImage(cloud: CloudSession, value: string): Promise<NovaObject> {
  try {
    return await cloud.request<NovaObject>('image', 'GET', `/v2/images/${encodeURIComponent(value)}`);
  } catch (error) {
    if (!(error instanceof CloudError) || (error.status !== 404 && error.status !== 400)) throw error;
  }
  const body = await cloud.request<{ images: NovaObject[] }>(
    'image',
    'GET',
    `/v2/images?name=${encodeURIComponent(value)}`,
  );
  if (body.images.length === 1) return body.images[0];
  if (body.images.length > 1)
    throw new CloudError(409, `Multiple physical resources were found with name (${value}).`, 'image');
  throw new CloudError(404, `The Image (${value}) could not be found.`, 'image');
}

/** Nova's view of a server, kept fresh while waiting for it. */
async function getServer(cloud: CloudSession, id: string): Promise<NovaObject | null> {
  try {
    return (await cloud.request<{ server: NovaObject }>('compute', 'GET', `/servers/${id}`)).server;
  } catch (error) {
    if (error instanceof CloudError && error.status === 404) return null;
    throw error;
  }
}

const networkItem = {
  type: 'map' as const,
  description: 'A network to attach the server to.',
  schema: {
    network: { type: 'string' as const, description: 'Name or ID of network to create a port on.' },
    port: { type: 'string' as const, description: 'ID of an existing port to associate with this server.' },
    fixed_ip: {
      type: 'string' as const,
      description: 'Fixed IP address to specify for the port created on the requested network.',
    },
    subnet: {
      type: 'string' as const,
      description: 'Subnet in which to allocate the IP address for the port.',
    },
    uuid: { type: 'string' as const, description: 'ID of network (deprecated: use network).' },
    tag: { type: 'string' as const, description: 'Port tag.' },
  },
};

/** Addresses as Heat's `networks` attribute gives them: IPs by network name and by network id. */
function networksAttribute(
  addresses: Record<string, { addr: string }[]>,
  names: Record<string, string>,
): JsonMap {
  const out: JsonMap = {};
  for (const [name, list] of Object.entries(addresses)) {
    out[name] = list.map((a) => a.addr);
    const id = names[name];
    if (id) out[id] = list.map((a) => a.addr);
  }
  return out;
}

/** Heat's flavor_update_policy RESIZE: resize, wait for VERIFY_RESIZE, confirm, wait for ACTIVE (SHUTOFF if stopped). */
export async function resize(
  ctx: ActionContext,
  cloud: CloudSession,
  id: string,
  flavorRef: string,
): Promise<void> {
  const flavor = await findFlavor(cloud, flavorRef);
  await cloud.request('compute', 'POST', `/servers/${id}/action`, { resize: { flavorRef: flavor.id } });
  let confirmed = false;
  for (;;) {
    const current = await getServer(cloud, id);
    if (!current) throw new Error(`The server (${id}) disappeared while it was being resized.`);
    if (current.status === 'ERROR') throw new Error(`Resizing to '${flavorRef}' failed, status 'ERROR'`);
    if (current.status === 'VERIFY_RESIZE' && !confirmed) {
      await cloud.request('compute', 'POST', `/servers/${id}/action`, { confirmResize: null });
      confirmed = true;
    } else if (confirmed && !current['OS-EXT-STS:task_state'] && current.status !== 'VERIFY_RESIZE') {
      // ACTIVE, or SHUTOFF for a server that was stopped when it was resized.
      if (current.status === 'ACTIVE' || current.status === 'SHUTOFF') return;
      throw new Error(`Confirming the resize to '${flavorRef}' failed, status '${String(current.status)}'`);
    } else if (!confirmed && !current['OS-EXT-STS:task_state'] && current.status !== 'VERIFY_RESIZE') {
      // Nova sets task_state resize_prep before it answers the resize: no task and no VERIFY_RESIZE is a resize
      // that ended, done (confirmed by Nova itself: the new flavour) or not (the old one, its fault in the
      // server's actions); waiting would wait for ever.
      const now = current.flavor as { id?: string; original_name?: string } | undefined;
      if (now?.id === flavor.id || (now?.original_name !== undefined && now.original_name === flavor.name))
        return;
      throw new Error(`Resizing to '${flavorRef}' failed, status '${String(current.status)}'`);
    }
    await ctx.sleep(500);
  }
}

/** Waits for ACTIVE as Heat's check_create_complete does; ERROR fails with Nova's fault. */
export async function waitActive(
  ctx: ActionContext,
  cloud: CloudSession,
  id: string,
  networkNames: Record<string, string>,
): Promise<{ physicalId: string; data: JsonMap }> {
  for (;;) {
    const current = await getServer(cloud, id);
    if (!current) throw new Error(`The server (${id}) disappeared while it was being created.`);
    if (current.status === 'ACTIVE') {
      return { physicalId: id, data: { server: current, network_names: networkNames } };
    }
    if (current.status === 'ERROR') {
      const fault = (current.fault as JsonMap | undefined) ?? {};
      throw Object.assign(
        new Error(
          `Went to status ERROR due to "Message: ${String(fault.message ?? 'Unknown')}, Code: ${String(fault.code ?? 'Unknown')}"`,
        ),
        { physicalId: id },
      );
    }
    await ctx.sleep(500);
  }
}

/** Heat's NovaClientPlugin.deferred_server_statuses: states a server passes through on its way somewhere. */
const DEFERRED_STATUSES = new Set([
  'BUILD',
  'HARD_REBOOT',
  'PASSWORD',
  'REBOOT',
  'RESCUE',
  'RESIZE',
  'REVERT_RESIZE',
  'SHUTOFF',
  'SUSPENDED',
  'VERIFY_RESIZE',
]);

/** Heat's get_status: Nova's status less any `(...)` a cloud appends. */
function statusOf(view: NovaObject): string {
  return String(view.status ?? '').split('(')[0];
}

/**
 * Heat's Server.handle_suspend / handle_resume and their check_*_complete: the server's `suspend` (or
 * `resume`) action unless it is already SUSPENDED (or ACTIVE), then a wait for that status; the server's
 * view afterwards is kept in the resource's data.
 */
async function suspendOrResume(
  ctx: ActionContext,
  state: ResourceState,
  action: 'suspend' | 'resume',
): Promise<JsonMap> {
  if (state.physicalId === null)
    throw new ResourceActionError('Error', `Cannot ${action} ${state.name}, resource_id not set`);
  const id = state.physicalId;
  const cloud = await ctx.cloud();
  const found = await getServer(cloud, id);
  if (!found) throw new ResourceActionError('NotFound', `Failed to find server ${id}`);
  const target = action === 'suspend' ? 'SUSPENDED' : 'ACTIVE';
  if (statusOf(found) !== target)
    await cloud.request('compute', 'POST', `/servers/${id}/action`, { [action]: null });
  for (;;) {
    const current = await getServer(cloud, id);
    const status = current ? statusOf(current) : null;
    if (current && status === target) return { ...state.data, server: current };
    if (current && status === 'ERROR' && action === 'resume') {
      const fault = (current.fault as JsonMap | undefined) ?? {};
      throw new ResourceActionError(
        'ResourceInError',
        `Went to status ERROR due to "Message: ${String(fault.message ?? 'Unknown')}, Code: ${String(fault.code ?? 'Unknown')}"`,
      );
    }
    if (current && status !== 'ACTIVE' && !DEFERRED_STATUSES.has(status as string)) {
      const result =
        action === 'suspend' ? `Suspend of server ${String(current.name)} failed` : 'Server is not active';
      throw new ResourceActionError(
        'ResourceUnknownStatus',
        `${result} - Unknown status ${String(current.status)} due to "Unknown"`,
      );
    }
    await ctx.sleep(500);
  }
}

/** Heat's Server.handle_check: the server exists and is ACTIVE. */
async function checkServer(ctx: ActionContext, state: ResourceState): Promise<void> {
  const cloud = await ctx.cloud();
  const view = (
    await cloud.request<{ server: NovaObject }>('compute', 'GET', `/servers/${state.physicalId ?? ''}`)
  ).server;
  const status = statusOf(view);
  if (status !== 'ACTIVE')
    throw new ResourceActionError('Error', `'status': expected 'ACTIVE', got '${status}'`);
}

/** Nova's task states of a server whose image is still being taken (Heat's check_snapshot_complete). */
const IMAGE_TASK_STATES = new Set([
  'image_uploading',
  'image_snapshot_pending',
  'image_snapshot',
  'image_pending_upload',
]);

/**
 * Heat's Server.handle_snapshot and check_snapshot_complete: Nova's createImage of the server (named as the
 * resource's physical name), then a wait until Glance has the image `active` and the server no longer has
 * an image task; the image's id is what the stack snapshot keeps (`snapshot_image_id`).
 */
async function snapshotServer(ctx: ActionContext, state: ResourceState): Promise<JsonMap> {
  if (state.physicalId === null)
    throw new ResourceActionError('Error', `Cannot snapshot ${state.name}, resource_id not set`);
  const id = state.physicalId;
  const cloud = await ctx.cloud();
  const { image_id: imageId } = await cloud.request<{ image_id: string }>(
    'compute',
    'POST',
    `/servers/${id}/action`,
    { createImage: { name: ctx.physicalName } },
    { 'OpenStack-API-Version': 'compute 2.45', 'X-OpenStack-Nova-API-Version': '2.45' },
  );
  for (;;) {
    const image = await cloud.request<NovaObject>('image', 'GET', `/v2/images/${imageId}`);
    const status = String(image.status ?? '').toLowerCase();
    if (status === 'active') {
      const server = await getServer(cloud, id);
      if (!IMAGE_TASK_STATES.has(String(server?.['OS-EXT-STS:task_state'] ?? '')))
        return { snapshot_image_id: imageId };
    } else if (['killed', 'deleted', 'error'].includes(status)) {
      throw new ResourceActionError('Error', status);
    }
    await ctx.sleep(500);
  }
}

/** Heat's Server.handle_delete_snapshot: the snapshot's image goes (already gone is fine). */
async function deleteServerSnapshot(ctx: ActionContext, entry: JsonMap): Promise<void> {
  const data = isMap(entry.resource_data ?? null) ? (entry.resource_data as JsonMap) : {};
  const imageId = data.snapshot_image_id;
  if (typeof imageId !== 'string' || !imageId) return;
  try {
    await (await ctx.cloud()).request('image', 'DELETE', `/v2/images/${encodeURIComponent(imageId)}`);
  } catch (error) {
    if (!(error instanceof CloudError && error.status === 404)) throw error;
  }
}

/** Heat's Server.handle_restore: the server is restored from its snapshot's image. */
function restoreServer(properties: JsonMap, entry: JsonMap): JsonMap {
  const data = isMap(entry.resource_data ?? null) ? (entry.resource_data as JsonMap) : {};
  const imageId = data.snapshot_image_id;
  return typeof imageId === 'string' && imageId ? { ...properties, image: imageId } : properties;
}

/** What servers and the container resources (servers too) do on a stack's suspend, resume and check. */
export const serverActions: Pick<ResourceType, 'suspend' | 'resume' | 'check'> = {
  suspend: (ctx, state) => suspendOrResume(ctx, state, 'suspend'),
  resume: (ctx, state) => suspendOrResume(ctx, state, 'resume'),
  check: checkServer,
};

/**
 * The user data a server boots with: a software config's id is its content (RAW and SOFTWARE_CONFIG);
 * SOFTWARE_CONFIG makes it a multi-part message of its parts, or of itself as a shell script (Heat's
 * build_userdata, without the parts that set up os-collect-config).
 */
async function serverUserData(ctx: ActionContext, props: JsonMap): Promise<string> {
  const format = props.user_data_format as string;
  const given = props.user_data as string;
  if (format !== 'RAW' && format !== 'SOFTWARE_CONFIG') return given;
  const content = await configContent(ctx, given);
  if (format === 'RAW') return content;
  const parts = partsOf(content);
  return multipartMessage(parts.length ? parts : [{ subtype: 'x-shellscript', content }]);
}

export const server: ResourceType = {
  name: 'OS::Nova::Server',
  description: 'A resource for managing Nova instances.',
  properties: {
    name: { type: 'string', description: 'Server name.', updateAllowed: true },
    image: { type: 'string', description: 'The ID or name of the image to boot with.' },
    flavor: {
      type: 'string',
      description: 'The ID or name of the flavor to boot onto (a change resizes the server).',
      required: true,
      updateAllowed: true,
    },
    key_name: { type: 'string', description: 'Name of keypair to inject into the server.' },
    availability_zone: { type: 'string', description: 'Name of the availability zone for server placement.' },
    networks: {
      type: 'list',
      description: 'An ordered list of nics to be added to this server.',
      item: networkItem,
    },
    security_groups: { type: 'list', description: 'List of security group names or IDs.', default: [] },
    user_data: { type: 'string', description: 'User data script to be executed by cloud-init.', default: '' },
    user_data_format: {
      type: 'string',
      description: 'How the user_data should be formatted for the server.',
      default: 'RAW',
      allowedValues: ['HEAT_CFNTOOLS', 'RAW', 'SOFTWARE_CONFIG'],
    },
    metadata: {
      type: 'map',
      description: 'Arbitrary key/value metadata to store for this server.',
      updateAllowed: true,
    },
    config_drive: { type: 'boolean', description: 'If True, enable config drive on the server.' },
    scheduler_hints: {
      type: 'map',
      description: 'Arbitrary key-value pairs specified by the client to help boot a server.',
    },
    admin_pass: { type: 'string', description: 'The administrator password for the server.' },
  },
  attributes: {
    name: { description: 'Name of the server.' },
    first_address: { description: 'Convenience attribute to fetch the first assigned network address.' },
    addresses: { description: 'A dict of all network addresses with corresponding port_id and subnets.' },
    networks: {
      description:
        'A dict of assigned network addresses of the form: {"public": [ip1, ip2...], "private": [ip3, ip4], "public_uuid": [ip1, ip2...], "private_uuid": [ip3, ip4]}.',
    },
    accessIPv4: { description: 'The manually assigned alternative public IPv4 address of the server.' },
    accessIPv6: { description: 'The manually assigned alternative public IPv6 address of the server.' },
    instance_name: { description: 'AWS compatible instance name.' },
    console_urls: { description: "URLs of server's consoles." },
  },
  async create(ctx, props) {
    const cloud = await ctx.cloud();
    const flavor = await findFlavor(cloud, props.flavor as string);
    const request: JsonMap = {
      name: (props.name as string | null) ?? ctx.physicalName,
      flavorRef: flavor.id,
    };
    if (props.image) request.imageRef = (await findImage(cloud, props.image as string)).id;
    if (props.key_name) request.key_name = props.key_name;
    if (props.availability_zone) request.availability_zone = props.availability_zone;
    if (props.metadata)
      request.metadata = Object.fromEntries(
        Object.entries(props.metadata as JsonMap).map(([k, v]) => [
          k,
          typeof v === 'string' ? v : JSON.stringify(v),
        ]),
      );
    if (props.config_drive !== null) request.config_drive = props.config_drive;
    if (props.admin_pass) request.adminPass = props.admin_pass;
    if (props.user_data) request.user_data = Buffer.from(await serverUserData(ctx, props)).toString('base64');
    const groups = props.security_groups as string[];
    if (groups.length) request.security_groups = groups.map((name) => ({ name }));
    const networkNames: Record<string, string> = {};
    if (props.networks) {
      const nics: JsonMap[] = [];
      for (const item of props.networks as JsonMap[]) {
        const nic: JsonMap = {};
        if (item.port) nic.port = item.port;
        const networkRef = (item.network ?? item.uuid) as string | null;
        if (networkRef) {
          const network = await findNeutron(cloud, 'network', networkRef);
          nic.uuid = network.id;
          networkNames[network.name as string] = network.id as string;
        } else if (item.subnet) {
          const found = await findNeutron(cloud, 'subnet', item.subnet as string);
          nic.uuid = found.network_id;
        }
        if (item.fixed_ip) nic.fixed_ip = item.fixed_ip;
        if (!nic.port && !nic.uuid)
          throw new Error(
            'One of the properties "network", "port" or "subnet" should be set for the specified network of server.',
          );
        nics.push(nic);
      }
      request.networks = nics;
    }
    const body: JsonMap = { server: request };
    if (props.scheduler_hints) body['os:scheduler_hints'] = props.scheduler_hints;
    const created = await cloud.request<{ server: NovaObject }>('compute', 'POST', '/servers', body);
    const id = created.server.id as string;
    await ctx.created?.(id);
    try {
      return await waitActive(ctx, cloud, id, networkNames);
    } catch (error) {
      // The failed resource keeps the server's id, so that a rollback or a delete removes it.
      throw Object.assign(error as Error, { physicalId: id });
    }
  },
  async update(ctx, state, props) {
    const cloud = await ctx.cloud();
    const id = state.physicalId as string;
    if (props.flavor !== state.properties.flavor) await resize(ctx, cloud, id, props.flavor as string);
    const name = (props.name as string | null) ?? ctx.physicalName;
    await cloud.request('compute', 'PUT', `/servers/${id}`, { server: { name } });
    const metadata = Object.fromEntries(
      Object.entries((props.metadata as JsonMap | null) ?? {}).map(([k, v]) => [
        k,
        typeof v === 'string' ? v : JSON.stringify(v),
      ]),
    );
    await cloud.request('compute', 'PUT', `/servers/${id}/metadata`, { metadata });
    const current = await getServer(cloud, id);
    return { physicalId: id, data: { ...state.data, server: current } };
  },
  async delete(ctx, state) {
    if (!state.physicalId) return;
    const cloud = await ctx.cloud();
    try {
      await cloud.request('compute', 'DELETE', `/servers/${state.physicalId}`);
    } catch (error) {
      if (error instanceof CloudError && error.status === 404) return;
      throw error;
    }
    for (;;) {
      const current = await getServer(cloud, state.physicalId);
      if (!current || current.status === 'DELETED' || current.status === 'SOFT_DELETED') return;
      await ctx.sleep(500);
    }
  },
  ...serverActions,
  snapshot: snapshotServer,
  deleteSnapshot: deleteServerSnapshot,
  restore: restoreServer,
  attribute: (state, name) => serverAttribute(state, name),
  implicitRequirements: (self, others) => {
    const networks = Array.isArray(self.properties.networks) ? self.properties.networks : [];
    return subnetsForNetworks(
      networks.map((item) => (isMap(item) ? (item.network ?? item.uuid ?? null) : null)),
      others,
    );
  },
};

function serverAttribute(state: ResourceState, name: string): Json {
  const view = (state.data.server as JsonMap | undefined) ?? {};
  const addresses = (view.addresses as Record<string, { addr: string; version: number }[]> | undefined) ?? {};
  switch (name) {
    case 'show':
      return view;
    case 'name':
      return view.name ?? null;
    case 'addresses':
      return addresses;
    case 'networks':
      return networksAttribute(
        addresses,
        (state.data.network_names as Record<string, string> | undefined) ?? {},
      );
    case 'first_address': {
      const first =
        Object.values(addresses)
          .flat()
          .find((a) => a.version === 4) ?? Object.values(addresses).flat()[0];
      return first?.addr ?? '';
    }
    case 'accessIPv4':
    case 'accessIPv6':
      return view[name] ?? '';
    case 'instance_name':
      return view['OS-EXT-SRV-ATTR:instance_name'] ?? null;
    case 'console_urls':
      return {};
    default:
      return null;
  }
}

export const keyPair: ResourceType = {
  name: 'OS::Nova::KeyPair',
  description: 'A resource for creating Nova key pairs.',
  properties: {
    name: { type: 'string', description: 'The name of the key pair.', required: true },
    save_private_key: {
      type: 'boolean',
      description: 'True if the system should remember a generated private key; False otherwise.',
      default: false,
    },
    public_key: {
      type: 'string',
      description:
        'The optional public key. This allows users to supply the public key from a pre-existing key pair.',
    },
    type: { type: 'string', description: 'Keypair type.', allowedValues: ['ssh', 'x509'] },
    user: { type: 'string', description: 'ID or name of user to whom to add key-pair.' },
  },
  attributes: {
    public_key: { description: 'The public key.' },
    private_key: { description: 'The private key if it has been saved.' },
  },
  async create(ctx, props) {
    const cloud = await ctx.cloud();
    const keypair: JsonMap = { name: props.name };
    if (props.public_key) keypair.public_key = props.public_key;
    if (props.type) keypair.type = props.type;
    const created = await cloud.request<{ keypair: NovaObject }>('compute', 'POST', '/os-keypairs', {
      keypair,
    });
    const data: JsonMap = {
      public_key: created.keypair.public_key ?? null,
      fingerprint: created.keypair.fingerprint ?? null,
    };
    if (props.save_private_key && created.keypair.private_key) data.private_key = created.keypair.private_key;
    return { physicalId: props.name as string, data };
  },
  async delete(ctx, state) {
    if (!state.physicalId) return;
    try {
      await (
        await ctx.cloud()
      ).request('compute', 'DELETE', `/os-keypairs/${encodeURIComponent(state.physicalId)}`);
    } catch (error) {
      if (error instanceof CloudError && error.status === 404) return;
      throw error;
    }
  },
  /** Heat's KeyPair.handle_check: the key pair still exists. */
  async check(ctx, state) {
    await (
      await ctx.cloud()
    ).request('compute', 'GET', `/os-keypairs/${encodeURIComponent(state.physicalId ?? '')}`);
  },
  attribute: (state, name) => {
    if (name === 'public_key') return (state.data.public_key as Json) ?? null;
    if (name === 'private_key') return (state.data.private_key as Json) ?? '';
    if (name === 'show')
      return {
        name: state.physicalId,
        public_key: state.data.public_key ?? null,
        fingerprint: state.data.fingerprint ?? null,
      };
    return null;
  },
};
