import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InstanceEntity } from '@novum/db';
import { HostNetwork } from '@novum/virt';
import { NeutronGuestNetworking } from './guest-network';
import { ServiceCallError, ServiceClient } from './service-client';

const HOST = 'compute-1';
const NET = '5e1d2c3b-aaaa-bbbb-cccc-000000000001';
const GROUP = 'aaaaaaaa-1111-2222-3333-444444444444';
const PEER_GROUP = 'bbbbbbbb-1111-2222-3333-444444444444';
const UUID = '0b7a3c1e-6f1d-4a8e-9d6c-1f2e3d4c5b6a';

/** The network API as far as the agent reads it, recording every call. */
function fakeNeutron() {
  const calls: string[] = [];
  const ports: Record<string, any> = {
    'port-1': {
      id: 'port-1',
      network_id: NET,
      mac_address: 'fa:16:3e:00:00:01',
      fixed_ips: [
        { subnet_id: 'sub-4', ip_address: '10.0.0.5' },
        { subnet_id: 'sub-6', ip_address: 'fd00::5' },
      ],
      security_groups: [GROUP],
      port_security_enabled: true,
      allowed_address_pairs: [{ ip_address: '10.0.0.100', mac_address: 'fa:16:3e:00:00:01' }],
      'binding:host_id': '',
    },
    'peer-port': {
      id: 'peer-port',
      network_id: NET,
      mac_address: 'fa:16:3e:00:00:02',
      fixed_ips: [{ subnet_id: 'sub-4', ip_address: '10.0.0.6' }],
      security_groups: [PEER_GROUP],
      allowed_address_pairs: [],
    },
  };
  const rules = [
    {
      security_group_id: GROUP,
      direction: 'egress',
      ethertype: 'IPv4',
      protocol: null,
      port_range_min: null,
      port_range_max: null,
      remote_ip_prefix: null,
      remote_group_id: null,
    },
    {
      security_group_id: GROUP,
      direction: 'ingress',
      ethertype: 'IPv4',
      protocol: 'icmp',
      port_range_min: null,
      port_range_max: null,
      remote_ip_prefix: null,
      remote_group_id: PEER_GROUP,
    },
  ];
  const client: ServiceClient = {
    async request<T>(method: string, path: string, body?: any): Promise<T> {
      calls.push(`${method} ${path}`);
      const [route, query = ''] = path.split('?');
      const params = new URLSearchParams(query);
      const portMatch = /^\/v2\.0\/ports\/(.+)$/.exec(route);
      if (portMatch) {
        const port = ports[portMatch[1]];
        if (!port) throw new ServiceCallError('gone', 404);
        if (method === 'PUT') Object.assign(port, body.port);
        return {
          port: {
            ...port,
            'binding:vif_details': port['binding:host_id'] ? { bridge_name: 'novumbrfrombind' } : {},
          },
        } as T;
      }
      if (route === '/v2.0/ports') {
        const ids = params.getAll('id');
        const group = params.get('security_groups');
        return {
          ports: Object.values(ports).filter(
            (p) =>
              (ids.length ? ids.includes(p.id) : true) && (group ? p.security_groups.includes(group) : true),
          ),
        } as T;
      }
      if (route === `/v2.0/networks/${NET}`)
        return {
          network: { id: NET, mtu: 1450, 'provider:network_type': 'vxlan', 'provider:segmentation_id': 1234 },
        } as T;
      if (route === '/v2.0/subnets') {
        expect(params.get('network_id')).toBe(NET);
        return {
          subnets: [
            {
              id: 'sub-4',
              cidr: '10.0.0.0/24',
              ip_version: 4,
              gateway_ip: '10.0.0.1',
              dns_nameservers: ['10.0.0.53'],
            },
            { id: 'sub-6', cidr: 'fd00::/64', ip_version: 6, gateway_ip: null },
          ],
        } as T;
      }
      if (route === '/v2.0/security-group-rules') {
        const groups = params.getAll('security_group_id');
        return { security_group_rules: rules.filter((r) => groups.includes(r.security_group_id)) } as T;
      }
      throw new Error(`unexpected ${method} ${path}`);
    },
  };
  return { client, calls, ports, rules };
}

const instance = (portIds: string[]) =>
  ({ uuid: UUID, networkInfo: portIds.map((portId) => ({ portId })) }) as unknown as InstanceEntity;

describe('NeutronGuestNetworking', () => {
  let dir: string;
  let hostNetwork: HostNetwork;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'novum-guestnet-'));
    hostNetwork = new HostNetwork({
      stateDir: dir,
      tableName: 'novum_t',
      run: async (command, args) =>
        command === 'ip' && args[1] === 'show'
          ? { code: 1, stdout: '', stderr: 'Device does not exist' }
          : command === 'iptables'
            ? { code: 127, stdout: '', stderr: '' }
            : { code: 0, stdout: '1', stderr: '' },
      linkExists: async () => false,
      netnsExists: async () => false,
      sysctl: async () => undefined,
    });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('binds the ports to this host and gives the driver what a guest needs, gone ports left out', async () => {
    const neutron = fakeNeutron();
    const networking = new NeutronGuestNetworking(HOST, hostNetwork, neutron.client);
    const vifs = await networking.vifsFor(instance(['port-1', 'deleted-port']));
    expect(neutron.calls).toContain('PUT /v2.0/ports/port-1');
    expect(neutron.ports['port-1']['binding:host_id']).toBe(HOST);
    expect(vifs).toEqual([
      {
        id: 'port-1',
        macAddress: 'fa:16:3e:00:00:01',
        networkId: NET,
        bridge: 'novumbrfrombind',
        mtu: 1450,
        segment: { networkType: 'vxlan', segmentationId: 1234, physicalNetwork: null },
        fixedIps: [
          {
            address: '10.0.0.5',
            version: 4,
            subnetId: 'sub-4',
            cidr: '10.0.0.0/24',
            gateway: '10.0.0.1',
            dnsNameservers: ['10.0.0.53'],
            hostRoutes: [],
          },
          {
            address: 'fd00::5',
            version: 6,
            subnetId: 'sub-6',
            cidr: 'fd00::/64',
            gateway: undefined,
            dnsNameservers: [],
            hostRoutes: [],
          },
        ],
        filter: {
          portSecurityEnabled: true,
          allowedAddressPairs: [{ ipAddress: '10.0.0.100', macAddress: 'fa:16:3e:00:00:01' }],
          rules: [
            expect.objectContaining({ direction: 'egress', remoteGroupId: null }),
            expect.objectContaining({ direction: 'ingress', protocol: 'icmp', remoteGroupId: PEER_GROUP }),
          ],
          remoteGroupMembers: { [PEER_GROUP]: ['10.0.0.6'] },
        },
      },
    ]);

    // Bound already: a second call (a start) reads, and does not write the port again.
    neutron.calls.length = 0;
    await networking.vifsFor(instance(['port-1']));
    expect(neutron.calls.filter((call) => call.startsWith('PUT'))).toEqual([]);
  });

  it('routes the first IPv4 address to the metadata service on the link when the host serves it', async () => {
    const serving = new HostNetwork({
      stateDir: dir,
      tableName: 'novum_t',
      metadata: { open: async () => undefined, close: async () => undefined },
    });
    const networking = new NeutronGuestNetworking(HOST, serving, fakeNeutron().client);
    const [vif] = await networking.vifsFor(instance(['port-1']));
    expect(vif.fixedIps.map((ip) => ip.hostRoutes)).toEqual([
      [{ destination: '169.254.169.254/32', nexthop: '0.0.0.0' }],
      [],
    ]);
  });

  it('re-reads the filters of the plugged ports, and releases (unplugs and unbinds) an instance', async () => {
    const neutron = fakeNeutron();
    const networking = new NeutronGuestNetworking(HOST, hostNetwork, neutron.client);
    await hostNetwork.plugContainer(UUID, await networking.vifsFor(instance(['port-1'])));
    expect(readFileSync(join(dir, 'ruleset.nft'), 'utf8')).toContain('elements = { 10.0.0.6 }');

    neutron.ports['peer-port'].fixed_ips.push({ subnet_id: 'sub-4', ip_address: '10.0.0.7' });
    neutron.rules.push({
      ...neutron.rules[1],
      protocol: 'tcp',
      port_range_min: 22,
      port_range_max: 22,
    } as never);
    await networking.refresh();
    const rules = readFileSync(join(dir, 'ruleset.nft'), 'utf8');
    expect(rules).toContain('elements = { 10.0.0.6, 10.0.0.7 }');
    expect(rules).toContain('th dport 22 accept');

    expect(await networking.release(UUID)).toEqual(['port-1']);
    expect(neutron.ports['port-1']['binding:host_id']).toBe('');
    expect(await hostNetwork.plugged()).toEqual([]);
  });
});
