import { Json, JsonMap } from '@novum/hot';
import { CloudError, CloudSession } from '../cloud';
import { ActionContext, ResourceType } from './types';

/** OS::Nova::Flavor and OS::Nova::ServerGroup: what sizes servers and where they are placed. */

type NovaObject = Record<string, Json>;

const atLeast = (min: number) => (value: Json) =>
  (value as number) < min ? `${String(value)} is out of range (min: ${min}, max: None)` : null;

const stringSpecs = (specs: JsonMap | null): Record<string, string> =>
  Object.fromEntries(
    Object.entries(specs ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
  );

/** Ignores a 404 (what is to be removed is gone already). */
async function gone(call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (error) {
    if (!(error instanceof CloudError && error.status === 404)) throw error;
  }
}

async function setTenants(cloud: CloudSession, id: string, before: string[], after: string[]): Promise<void> {
  for (const tenant of after.filter((t) => !before.includes(t)))
    await cloud.request('compute', 'POST', `/flavors/${id}/action`, { addTenantAccess: { tenant } });
  for (const tenant of before.filter((t) => !after.includes(t)))
    await gone(cloud.request('compute', 'POST', `/flavors/${id}/action`, { removeTenantAccess: { tenant } }));
}

async function setExtraSpecs(
  cloud: CloudSession,
  id: string,
  before: Record<string, string>,
  after: Record<string, string>,
): Promise<void> {
  for (const key of Object.keys(before).filter((k) => !(k in after)))
    await gone(
      cloud.request('compute', 'DELETE', `/flavors/${id}/os-extra_specs/${encodeURIComponent(key)}`),
    );
  if (Object.keys(after).length)
    await cloud.request('compute', 'POST', `/flavors/${id}/os-extra_specs`, { extra_specs: after });
}

export const flavor: ResourceType = {
  name: 'OS::Nova::Flavor',
  description: 'A resource for creating OpenStack virtual hardware templates (admin only by default policy).',
  properties: {
    name: { type: 'string', description: 'Name of the flavor.' },
    ram: { type: 'integer', description: 'Memory in MB for the flavor.', required: true, check: atLeast(1) },
    vcpus: {
      type: 'integer',
      description: 'Number of VCPUs for the flavor.',
      required: true,
      check: atLeast(1),
    },
    disk: {
      type: 'integer',
      description:
        'Size of local disk in GB. The "0" size is a special case that uses the native base image size.',
      default: 0,
      check: atLeast(0),
    },
    swap: { type: 'integer', description: 'Swap space in MB.', default: 0, check: atLeast(0) },
    ephemeral: {
      type: 'integer',
      description: 'Size of a secondary ephemeral data disk in GB.',
      default: 0,
      check: atLeast(0),
    },
    rxtx_factor: { type: 'number', description: 'RX/TX factor.', default: 1.0 },
    extra_specs: {
      type: 'map',
      description:
        'Key/Value pairs to extend the capabilities of the flavor (novum:driver picks kvm or container).',
      updateAllowed: true,
    },
    tenants: {
      type: 'list',
      description: 'List of tenants (project ids) that get access to a private flavor.',
      default: [],
      updateAllowed: true,
    },
    is_public: {
      type: 'boolean',
      description: 'Scope of flavor accessibility. Public or private. Default value is True, means public.',
      default: true,
    },
    description: { type: 'string', description: 'Description of the flavor.', updateAllowed: true },
  },
  attributes: {
    is_public: { description: 'Whether the flavor is shared across all projects.' },
    extra_specs: { description: 'Extra specs of the flavor in key-value pairs.' },
  },
  async create(ctx, props) {
    const cloud = await ctx.cloud();
    const request: JsonMap = {
      name: (props.name as string | null) ?? ctx.physicalName,
      ram: props.ram,
      vcpus: props.vcpus,
      disk: props.disk,
      swap: props.swap,
      'OS-FLV-EXT-DATA:ephemeral': props.ephemeral,
      rxtx_factor: props.rxtx_factor,
      'os-flavor-access:is_public': props.is_public,
    };
    if (props.description) request.description = props.description;
    const created = await cloud.request<{ flavor: NovaObject }>(
      'compute',
      'POST',
      '/flavors',
      { flavor: request },
      props.description ? { 'OpenStack-API-Version': 'compute 2.55' } : {},
    );
    const id = created.flavor.id as string;
    await ctx.created?.(id);
    try {
      const specs = stringSpecs(props.extra_specs as JsonMap | null);
      await setExtraSpecs(cloud, id, {}, specs);
      if (!props.is_public) await setTenants(cloud, id, [], props.tenants as string[]);
      return { physicalId: id, data: { is_public: props.is_public, extra_specs: specs } };
    } catch (error) {
      throw Object.assign(error as Error, { physicalId: id });
    }
  },
  async update(ctx, state, props) {
    const cloud = await ctx.cloud();
    const id = state.physicalId as string;
    const specs = stringSpecs(props.extra_specs as JsonMap | null);
    await setExtraSpecs(cloud, id, (state.data.extra_specs as Record<string, string>) ?? {}, specs);
    if (!props.is_public)
      await setTenants(cloud, id, (state.properties.tenants as string[]) ?? [], props.tenants as string[]);
    if ((props.description ?? null) !== (state.properties.description ?? null))
      await cloud.request(
        'compute',
        'PUT',
        `/flavors/${id}`,
        { flavor: { description: props.description ?? null } },
        { 'OpenStack-API-Version': 'compute 2.55' },
      );
    return { physicalId: id, data: { ...state.data, extra_specs: specs } };
  },
  async delete(ctx, state) {
    if (!state.physicalId) return;
    await gone((await ctx.cloud()).request('compute', 'DELETE', `/flavors/${state.physicalId}`));
  },
  attribute(state, name) {
    if (name === 'is_public') return (state.data.is_public as Json) ?? null;
    if (name === 'extra_specs') return (state.data.extra_specs as Json) ?? {};
    if (name === 'show') return { id: state.physicalId, ...state.data };
    return null;
  },
};

const POLICIES = ['anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity'];

export const serverGroup: ResourceType = {
  name: 'OS::Nova::ServerGroup',
  description: 'A resource for managing a Nova server group.',
  properties: {
    name: { type: 'string', description: 'Server Group name.' },
    policies: {
      type: 'list',
      description: 'A list of exactly one policy to apply. Defaults to anti-affinity.',
      default: ['anti-affinity'],
      item: { type: 'string', description: 'A policy.', allowedValues: POLICIES },
      check: (value) => ((value as Json[]).length === 1 ? null : 'Exactly one policy is required.'),
    },
    rules: {
      type: 'map',
      description: 'A dict of rules (max_server_per_host, with anti-affinity only).',
      schema: {
        max_server_per_host: {
          type: 'integer',
          description: 'The maximum number of servers of the group on one host.',
          check: (value) => ((value as number) < 1 ? 'max_server_per_host must be at least 1.' : null),
        },
      },
    },
  },
  attributes: {},
  async create(ctx: ActionContext, props) {
    const cloud = await ctx.cloud();
    const name = (props.name as string | null) ?? ctx.physicalName;
    const policy = (props.policies as string[])[0];
    const rules = Object.fromEntries(
      Object.entries((props.rules as JsonMap | null) ?? {}).filter(([, v]) => v !== null),
    );
    // Rules need Nova 2.64, where the group has one `policy`; before it, `policies`.
    const created = Object.keys(rules).length
      ? await cloud.request<{ server_group: NovaObject }>(
          'compute',
          'POST',
          '/os-server-groups',
          { server_group: { name, policy, rules } },
          { 'OpenStack-API-Version': 'compute 2.64' },
        )
      : await cloud.request<{ server_group: NovaObject }>('compute', 'POST', '/os-server-groups', {
          server_group: { name, policies: [policy] },
        });
    return { physicalId: created.server_group.id as string, data: { server_group: created.server_group } };
  },
  async delete(ctx, state) {
    if (!state.physicalId) return;
    await gone((await ctx.cloud()).request('compute', 'DELETE', `/os-server-groups/${state.physicalId}`));
  },
  attribute(state, name) {
    return name === 'show' ? ((state.data.server_group as Json) ?? null) : null;
  },
};
