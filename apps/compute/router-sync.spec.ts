import type { HostNetwork, RouterSpec } from '@novum/virt';
import { NeutronRouterSync } from './router-sync';
import type { ServiceClient } from './service-client';

const R = 'router-1';
/** The network API as the L3 agent reads it: one router with an interface, a gateway and a floating IP. */
function fakeNeutron(): ServiceClient & { paths: string[] } {
  const paths: string[] = [];
  const answers: Record<string, unknown> = {
    '/v2.0/routers': {
      routers: [
        {
          id: R,
          admin_state_up: true,
          external_gateway_info: { network_id: 'ext', enable_snat: true },
          routes: [],
        },
        { id: 'down-router', admin_state_up: false, external_gateway_info: null, routes: [] },
      ],
    },
    '/v2.0/ports?device_owner=network%3Arouter_interface': {
      ports: [
        {
          id: 'if-1',
          network_id: 'net-1',
          mac_address: 'fa:16:3e:00:00:01',
          device_id: R,
          fixed_ips: [{ subnet_id: 'sub-1', ip_address: '10.0.0.1' }],
        },
      ],
    },
    '/v2.0/ports?device_owner=network%3Arouter_gateway': {
      ports: [
        {
          id: 'gw-1',
          network_id: 'ext',
          mac_address: 'fa:16:3e:00:00:02',
          device_id: R,
          fixed_ips: [{ subnet_id: 'ext-sub', ip_address: '172.24.4.3' }],
        },
      ],
    },
    '/v2.0/floatingips': {
      floatingips: [
        { floating_ip_address: '172.24.4.10', fixed_ip_address: '10.0.0.5', router_id: R },
        { floating_ip_address: '172.24.4.11', fixed_ip_address: null, router_id: null },
      ],
    },
    '/v2.0/subnets?id=sub-1&id=ext-sub': {
      subnets: [
        { id: 'sub-1', cidr: '10.0.0.0/24', gateway_ip: '10.0.0.1' },
        { id: 'ext-sub', cidr: '172.24.4.0/24', gateway_ip: '172.24.4.1' },
      ],
    },
    '/v2.0/networks?id=net-1&id=ext': {
      networks: [
        { id: 'net-1', mtu: 1450, 'provider:network_type': 'vxlan', 'provider:segmentation_id': 77 },
        {
          id: 'ext',
          mtu: 1500,
          'provider:network_type': 'flat',
          'provider:segmentation_id': null,
          'provider:physical_network': 'physnet1',
        },
      ],
    },
  };
  return {
    paths,
    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      paths.push(`${method} ${path}${body ? ` ${JSON.stringify(body)}` : ''}`);
      if (method === 'PUT') return {} as T;
      if (!(path in answers)) throw new Error(`unexpected ${path}`);
      return answers[path] as T;
    },
  } as ServiceClient & { paths: string[] };
}

describe('NeutronRouterSync', () => {
  it('gives the host every router that is up, with its ports, gateway route, floating IPs and segments', async () => {
    const synced: RouterSpec[][] = [];
    const hostNetwork = { syncRouters: async (specs: RouterSpec[]) => void synced.push(specs) };
    const sync = new NeutronRouterSync(hostNetwork as unknown as HostNetwork, fakeNeutron());
    await sync.sync();
    expect(synced).toEqual([
      [
        {
          id: R,
          interfaces: [
            {
              portId: 'if-1',
              networkId: 'net-1',
              macAddress: 'fa:16:3e:00:00:01',
              addresses: ['10.0.0.1/24'],
              mtu: 1450,
              segment: { networkType: 'vxlan', segmentationId: 77, physicalNetwork: null },
            },
          ],
          gateway: {
            portId: 'gw-1',
            networkId: 'ext',
            macAddress: 'fa:16:3e:00:00:02',
            addresses: ['172.24.4.3/24'],
            mtu: 1500,
            segment: { networkType: 'flat', segmentationId: null, physicalNetwork: 'physnet1' },
            nexthop: '172.24.4.1',
          },
          snat: true,
          floatingIps: [{ floating: '172.24.4.10', fixed: '10.0.0.5' }],
          routes: [],
        },
      ],
    ]);
  });

  it("binds the ports of the routers it plugged to its host and reports those not ACTIVE up, as Neutron's L3 agent", async () => {
    const neutron = fakeNeutron();
    const reported: string[][] = [];
    const hostNetwork = { syncRouters: async () => undefined };
    const sync = new NeutronRouterSync(hostNetwork as unknown as HostNetwork, neutron);
    await sync.sync();
    // No owner yet (the agent's bus is not up): nothing bound, nothing reported.
    expect(neutron.paths.filter((path) => path.startsWith('PUT'))).toEqual([]);
    sync.setOwner({ host: 'l3-host', reportUp: async (ids) => void reported.push(ids) });
    await sync.sync();
    expect(neutron.paths.filter((path) => path.startsWith('PUT'))).toEqual([
      'PUT /v2.0/ports/if-1 {"port":{"binding:host_id":"l3-host"}}',
      'PUT /v2.0/ports/gw-1 {"port":{"binding:host_id":"l3-host"}}',
    ]);
    expect(reported).toEqual([['if-1', 'gw-1']]);
  });

  it('asks no more than the routers when there are none, and removes every router then', async () => {
    const synced: RouterSpec[][] = [];
    const client = {
      paths: [] as string[],
      async request<T>(method: string, path: string): Promise<T> {
        this.paths.push(path);
        return { routers: [] } as T;
      },
    };
    const hostNetwork = { syncRouters: async (specs: RouterSpec[]) => void synced.push(specs) };
    await new NeutronRouterSync(hostNetwork as unknown as HostNetwork, client as ServiceClient).sync();
    expect(client.paths).toEqual(['/v2.0/routers']);
    expect(synced).toEqual([[]]);
  });

  it('syncs soon after being asked, once for many asks, and not after it stopped', async () => {
    let syncs = 0;
    const hostNetwork = { syncRouters: async () => void syncs++ };
    const sync = new NeutronRouterSync(hostNetwork as unknown as HostNetwork, fakeNeutron(), 60_000);
    sync.start();
    sync.schedule();
    sync.schedule();
    await new Promise((r) => setTimeout(r, 200));
    expect(syncs).toBe(1);
    await sync.stop();
    sync.schedule();
    await new Promise((r) => setTimeout(r, 120));
    expect(syncs).toBe(1);
  });
});
