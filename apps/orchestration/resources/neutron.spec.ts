import { HotError, HotTemplate, Json, JsonMap } from '@novum/hot';
import { CloudError } from '../cloud';
import { fakeActionContext } from '../testing';
import { dependencyGraph, validateStack } from '../engine';
import { floatingIp, floatingIpAssociation, net, router, routerInterface, securityGroup } from './neutron';
import { ResourceState, ResourceType, validateProperties } from './types';

/** A Neutron that knows a few objects by id and name and answers writes with what it was sent. */
class FakeNeutron {
  calls: { method: string; path: string; body?: any }[] = [];
  objects: Record<string, JsonMap[]> = {
    networks: [
      { id: 'net-pub', name: 'public', 'router:external': true },
      { id: 'net-1', name: 'private' },
    ],
    subnets: [{ id: 'sub-1', name: 'private-subnet', network_id: 'net-1' }],
    routers: [{ id: 'r-1', name: 'edge' }],
    ports: [{ id: 'port-1', name: 'web-port' }],
  };
  missing = new Set<string>();

  async request<T>(type: string, method: string, path: string, body?: any): Promise<T> {
    this.calls.push({ method, path, body });
    if (this.missing.has(path)) throw new CloudError(404, 'gone', type);
    const [, collection, id, action] = /^\/v2\.0\/([^/?]+)(?:\/([^/?]+))?(?:\/([^?]+))?/.exec(path) ?? [];
    const singular =
      collection === 'floatingips' ? 'floatingip' : collection.replace(/-/g, '_').replace(/s$/, '');
    const known = this.objects[collection] ?? [];
    if (method === 'GET' && id) {
      const found = known.find((o) => o.id === decodeURIComponent(id));
      if (!found) throw new CloudError(404, `${id} not found`, type);
      return { [singular]: found } as T;
    }
    if (method === 'GET') {
      const name = decodeURIComponent(/name=([^&]*)/.exec(path)?.[1] ?? '');
      return { [collection.replace(/-/g, '_')]: known.filter((o) => o.name === name) } as T;
    }
    if (method === 'POST')
      return { [singular]: { id: `${singular}-new`, status: 'ACTIVE', ...body[singular] } } as T;
    if (method === 'PUT' && action) return { id, ...body } as T;
    if (method === 'PUT') return { [singular]: { id, ...body[singular] } } as T;
    return undefined as T;
  }
}

const state = (physicalId: string, properties: JsonMap, data: JsonMap = {}): ResourceState => ({
  name: 'res',
  physicalId,
  properties,
  data,
});

const props = (type: ResourceType, given: JsonMap) => validateProperties(type, given, ['resources', 'res']);

const validate = (resources: JsonMap) =>
  validateStack(
    HotTemplate.parse({ heat_template_version: '2021-04-16', resources }).bind({
      stack: { name: 's', id: 'sid', projectId: 'p' },
      params: {},
      parameterDefaults: {},
      files: {},
      resource: () => undefined,
      checkAttribute: () => undefined,
    }),
    { parameters: {}, parameter_defaults: {}, resource_registry: {} },
  );

const graphOf = (resources: JsonMap) => {
  const env = { parameters: {}, parameter_defaults: {}, resource_registry: {} };
  const bound = HotTemplate.parse({ heat_template_version: '2021-04-16', resources }).bind({
    stack: { name: 's', id: 'sid', projectId: 'p' },
    params: {},
    parameterDefaults: {},
    files: {},
    resource: () => undefined,
    checkAttribute: () => undefined,
  });
  return dependencyGraph(bound, env);
};

const refusal = (resources: JsonMap): string => {
  try {
    validate(resources);
  } catch (error) {
    if (error instanceof HotError) return error.message;
    throw error;
  }
  throw new Error('the template was accepted');
};

describe('neutron resources: validation as Heat', () => {
  it('refuses a router interface with both or neither of subnet and port', () => {
    expect(
      refusal({
        ri: { type: 'OS::Neutron::RouterInterface', properties: { router: 'r', subnet: 's', port: 'p' } },
      }),
    ).toBe('resources.ri.properties: Cannot define the following properties at the same time: subnet, port.');
    expect(refusal({ ri: { type: 'OS::Neutron::RouterInterface', properties: { router: 'r' } } })).toBe(
      'resources.ri.properties: At least one of the following properties must be specified: subnet, port.',
    );
    // A subnet only known at create (a function) is given.
    expect(() =>
      validate({
        s: { type: 'OS::Heat::None' },
        ri: {
          type: 'OS::Neutron::RouterInterface',
          properties: { router: 'r', subnet: { get_resource: 's' } },
        },
      }),
    ).not.toThrow();
  });

  it('refuses a distributed HA router and a fixed IP without a port', () => {
    expect(
      refusal({ r: { type: 'OS::Neutron::Router', properties: { ha: true, distributed: 'true' } } }),
    ).toBe(
      'resources.r.properties: Cannot define the following properties at the same time: distributed, ha.',
    );
    expect(() => validate({ r: { type: 'OS::Neutron::Router', properties: { ha: true } } })).not.toThrow();
    expect(
      refusal({
        f: {
          type: 'OS::Neutron::FloatingIP',
          properties: { floating_network: 'public', fixed_ip_address: '10.0.0.5' },
        },
      }),
    ).toBe('resources.f.properties: fixed_ip_address cannot be specified without port_id.');
    expect(refusal({ f: { type: 'OS::Neutron::FloatingIP', properties: {} } })).toBe(
      'Property error: resources.f.properties: Property floating_network not assigned',
    );
  });

  it('checks the gateway map against its schema', () => {
    expect(
      refusal({ r: { type: 'OS::Neutron::Router', properties: { external_gateway_info: { net: 'x' } } } }),
    ).toBe('Property error: resources.r.properties.external_gateway_info: Unknown Property net');
  });
});

describe('neutron resources: actions', () => {
  it('creates a router with its gateway network resolved by name, and updates it in place', async () => {
    const cloud = new FakeNeutron();
    const ctx = fakeActionContext(cloud);
    const given = props(router, { external_gateway_info: { network: 'public' } });
    const created = await router.create(ctx, given);
    expect(cloud.calls.at(-1)).toEqual({
      method: 'POST',
      path: '/v2.0/routers',
      body: {
        router: {
          admin_state_up: true,
          name: 'app-res-abcdef123456',
          external_gateway_info: { network_id: 'net-pub' },
        },
      },
    });
    expect(created.physicalId).toBe('router-new');
    expect(router.attribute(state('router-new', given, created.data), 'external_gateway_info')).toEqual({
      network_id: 'net-pub',
    });

    const renamed = props(router, { name: 'edge2' });
    await router.update!(ctx, state('router-new', given, created.data), renamed);
    // A gateway left out of the template is removed (null), as Heat's update sends it.
    expect(cloud.calls.at(-1)).toEqual({
      method: 'PUT',
      path: '/v2.0/routers/router-new',
      body: { router: { admin_state_up: true, name: 'edge2', external_gateway_info: null } },
    });
  });

  it("adds a router interface by subnet name, keeps Heat's id form, and removes it on delete", async () => {
    const cloud = new FakeNeutron();
    const ctx = fakeActionContext(cloud);
    const created = await routerInterface.create(
      ctx,
      props(routerInterface, { router: 'edge', subnet: 'private-subnet' }),
    );
    expect(created.physicalId).toBe('r-1:subnet_id=sub-1');
    expect(cloud.calls.at(-1)).toEqual({
      method: 'PUT',
      path: '/v2.0/routers/r-1/add_router_interface',
      body: { subnet_id: 'sub-1' },
    });
    await routerInterface.delete(ctx, state('r-1:subnet_id=sub-1', {}));
    expect(cloud.calls.at(-1)).toEqual({
      method: 'PUT',
      path: '/v2.0/routers/r-1/remove_router_interface',
      body: { subnet_id: 'sub-1' },
    });
    // Heat's older `<router>:<subnet>` id, and an interface already gone.
    cloud.missing.add('/v2.0/routers/r-2/remove_router_interface');
    await expect(routerInterface.delete(ctx, state('r-2:sub-9', {}))).resolves.toBeUndefined();
    expect(cloud.calls.at(-1)?.body).toEqual({ subnet_id: 'sub-9' });

    const byPort = await routerInterface.create(
      ctx,
      props(routerInterface, { router: 'r-1', port: 'web-port' }),
    );
    expect(byPort.physicalId).toBe('r-1:port_id=port-1');
  });

  it('allocates a floating IP on a network by name, re-associates it in place and releases it', async () => {
    const cloud = new FakeNeutron();
    const ctx = fakeActionContext(cloud);
    const given = props(floatingIp, { floating_network: 'public', port_id: 'port-1' });
    const created = await floatingIp.create(ctx, given);
    expect(cloud.calls.at(-1)).toEqual({
      method: 'POST',
      path: '/v2.0/floatingips',
      body: { floatingip: { port_id: 'port-1', floating_network_id: 'net-pub' } },
    });
    expect(floatingIp.attribute(state('floatingip-new', given, created.data), 'port_id')).toBe('port-1');
    expect(floatingIp.properties.port_id.updateAllowed).toBe(true);
    expect(floatingIp.properties.floating_network.updateAllowed).toBeFalsy();

    await floatingIp.update!(
      ctx,
      state('floatingip-new', given, created.data),
      props(floatingIp, { floating_network: 'public' }),
    );
    expect(cloud.calls.at(-1)).toEqual({
      method: 'PUT',
      path: '/v2.0/floatingips/floatingip-new',
      body: { floatingip: { port_id: null, fixed_ip_address: null } },
    });
    await floatingIp.delete(ctx, state('floatingip-new', given));
    expect(cloud.calls.at(-1)).toMatchObject({ method: 'DELETE', path: '/v2.0/floatingips/floatingip-new' });
  });

  it('associates a floating IP with a port, moves it to another floating IP, and disassociates on delete', async () => {
    const cloud = new FakeNeutron();
    const ctx = fakeActionContext(cloud);
    const given = props(floatingIpAssociation, { floatingip_id: 'fip-1', port_id: 'port-1' });
    const created = await floatingIpAssociation.create(ctx, given);
    expect(created.physicalId).toBe('app-res-abcdef123456');
    expect(cloud.calls.at(-1)).toEqual({
      method: 'PUT',
      path: '/v2.0/floatingips/fip-1',
      body: { floatingip: { port_id: 'port-1' } },
    });
    const moved = props(floatingIpAssociation, { floatingip_id: 'fip-2', port_id: 'port-1' });
    await floatingIpAssociation.update!(ctx, state(created.physicalId!, given), moved);
    expect(cloud.calls.slice(-2)).toEqual([
      { method: 'PUT', path: '/v2.0/floatingips/fip-1', body: { floatingip: { port_id: null } } },
      {
        method: 'PUT',
        path: '/v2.0/floatingips/fip-2',
        body: { floatingip: { port_id: 'port-1', fixed_ip_address: null } },
      },
    ]);
    cloud.missing.add('/v2.0/floatingips/fip-2');
    await expect(
      floatingIpAssociation.delete(ctx, state(created.physicalId!, moved)),
    ).resolves.toBeUndefined();
  });

  it('keeps the shared shape for the older types: a net updated in place, a group with its rules', async () => {
    const cloud = new FakeNeutron();
    const ctx = fakeActionContext(cloud);
    const created = await net.create(ctx, props(net, { name: 'n', value_specs: { description: 'd' } }));
    expect(cloud.calls.at(-1)?.body).toEqual({
      network: { admin_state_up: true, description: 'd', name: 'n' },
    });
    const updated = await net.update!(
      ctx,
      state('network-new', {}, created.data),
      props(net, { name: 'n2' }),
    );
    expect((updated.data.network as JsonMap).name).toBe('n2');
    cloud.missing.add('/v2.0/networks/network-new');
    await expect(net.delete(ctx, state('network-new', {}))).resolves.toBeUndefined();

    const group = await securityGroup.create(
      ctx,
      props(securityGroup, { rules: [{ protocol: 'tcp', port_range_min: 22, port_range_max: 22 }] }),
    );
    expect(group.data.rules).toEqual(['security_group_rule-new']);
    expect(cloud.calls.at(-1)).toMatchObject({
      method: 'POST',
      path: '/v2.0/security-group-rules',
      body: { security_group_rule: { security_group_id: 'security_group-new', protocol: 'tcp' } },
    });
    const attribute: Json = securityGroup.attribute(state('security_group-new', {}, group.data), 'show');
    expect(attribute).toMatchObject({ id: 'security_group-new', name: 'app-res-abcdef123456' });
  });
});

describe("neutron resources: Heat's implicit dependencies", () => {
  const network = {
    net: { type: 'OS::Neutron::Net' },
    subnet: {
      type: 'OS::Neutron::Subnet',
      properties: { network: { get_resource: 'net' }, cidr: '10.1.0.0/24' },
    },
    router: { type: 'OS::Neutron::Router', properties: { external_gateway_info: { network: 'public' } } },
    ri: {
      type: 'OS::Neutron::RouterInterface',
      properties: { router: { get_resource: 'router' }, subnet: { get_resource: 'subnet' } },
    },
  };

  it('makes a floating IP wait for the interface that reaches its port, and for the gateway router', () => {
    const graph = graphOf({
      ...network,
      port: {
        type: 'OS::Neutron::Port',
        properties: { network: { get_resource: 'net' }, fixed_ips: [{ subnet: { get_resource: 'subnet' } }] },
      },
      fip: {
        type: 'OS::Neutron::FloatingIP',
        properties: { floating_network: 'public', port_id: { get_resource: 'port' } },
      },
      other: { type: 'OS::Neutron::FloatingIP', properties: { floating_network: 'elsewhere' } },
    });
    expect(graph.requirements('fip').sort()).toEqual(['port', 'ri', 'router']);
    expect(graph.requirements('other')).toEqual([]);
    // Deletion follows: the floating IP goes before the interface.
    expect(graph.dependents('ri')).toContain('fip');
  });

  it("finds the interface through a port without fixed IPs on the subnet's network, for an association too", () => {
    const graph = graphOf({
      ...network,
      port: { type: 'OS::Neutron::Port', properties: { network: { get_resource: 'net' } } },
      fip: { type: 'OS::Neutron::FloatingIP', properties: { floating_network: 'public' } },
      assoc: {
        type: 'OS::Neutron::FloatingIPAssociation',
        properties: { floatingip_id: { get_resource: 'fip' }, port_id: { get_resource: 'port' } },
      },
    });
    expect(graph.requirements('assoc').sort()).toEqual(['fip', 'port', 'ri']);
  });

  it("makes a server wait for the subnets of its networks, and a router for its gateway network's subnet", () => {
    const graph = graphOf({
      ...network,
      literal: { type: 'OS::Neutron::Subnet', properties: { network: 'private', cidr: '10.2.0.0/24' } },
      unrelated: { type: 'OS::Neutron::Subnet', properties: { network: 'other', cidr: '10.3.0.0/24' } },
      server: {
        type: 'OS::Nova::Server',
        properties: { flavor: 'f', image: 'i', networks: [{ network: 'private' }] },
      },
      ext: { type: 'OS::Neutron::Subnet', properties: { network: 'public', cidr: '172.24.5.0/24' } },
    });
    expect(graph.requirements('server').sort()).toEqual(['literal', 'subnet']);
    expect(graph.requirements('router')).toEqual(['ext']);
  });
});
