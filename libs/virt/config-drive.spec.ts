import { describe, expect, it } from '@jest/globals';
import { configDriveFiles, netmask, networkData } from './config-drive';
import type { InstanceSpec, Vif } from './driver';

const instance: InstanceSpec = {
  uuid: '6f1c3d2e-8a4b-4c5d-9e6f-0a1b2c3d4e5f',
  name: 'instance-6f1c3d2e',
  hostname: 'vm1',
  projectId: 'project-a',
  userId: 'user-a',
  flavor: { vcpus: 1, memoryMb: 128, rootGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {} },
  imageRef: 'image-a',
  imageProperties: {},
  metadata: { role: 'web' },
  userData: Buffer.from('#!/bin/sh\necho hello\n').toString('base64'),
  keyName: 'mykey',
  keyData: 'ssh-ed25519 AAAA test@host',
  availabilityZone: 'nova',
  configDrive: true,
};

const vif: Vif = {
  id: 'b7e1c2d3-0000-4000-8000-000000000001',
  macAddress: 'fa:16:3e:00:00:01',
  networkId: 'net-1',
  bridge: 'novumbr0',
  mtu: 1450,
  devname: 'tapb7e1c2d3-00',
  fixedIps: [
    {
      address: '10.0.0.5',
      version: 4,
      subnetId: 'sub-4',
      cidr: '10.0.0.0/24',
      gateway: '10.0.0.1',
      dnsNameservers: ['10.0.0.2', '9.9.9.9'],
    },
    {
      address: 'fd00::5',
      version: 6,
      subnetId: 'sub-6',
      cidr: 'fd00::/64',
      dnsNameservers: ['10.0.0.2'],
    },
  ],
};

const parse = (files: Map<string, Buffer>, path: string) =>
  JSON.parse(files.get(path)!.toString()) as Record<string, unknown>;

describe('configDriveFiles', () => {
  const seed = Buffer.alloc(512, 7);
  const files = configDriveFiles({ ...instance, displayName: 'My VM', launchIndex: 2 }, [vif], {
    randomSeed: seed,
  });

  it('writes the latest meta_data.json with Nova field names', () => {
    expect(parse(files, 'openstack/latest/meta_data.json')).toEqual({
      uuid: instance.uuid,
      meta: { role: 'web' },
      hostname: 'vm1',
      name: 'My VM',
      launch_index: 2,
      availability_zone: 'nova',
      random_seed: seed.toString('base64'),
      project_id: 'project-a',
      devices: [],
      public_keys: { mykey: 'ssh-ed25519 AAAA test@host' },
      keys: [{ name: 'mykey', type: 'ssh', data: 'ssh-ed25519 AAAA test@host' }],
    });
  });

  it('writes the 2012-08-10 meta_data.json with only the fields that version had', () => {
    const old = parse(files, 'openstack/2012-08-10/meta_data.json');
    expect(Object.keys(old).sort()).toEqual(
      ['availability_zone', 'hostname', 'keys', 'launch_index', 'meta', 'name', 'public_keys', 'uuid'].sort(),
    );
    expect(files.has('openstack/2012-08-10/network_data.json')).toBe(false);
    expect(files.has('openstack/2012-08-10/vendor_data.json')).toBe(false);
  });

  it('writes user_data as the raw bytes the API received in base64', () => {
    expect(files.get('openstack/latest/user_data')!.toString()).toBe('#!/bin/sh\necho hello\n');
    expect(files.get('openstack/2012-08-10/user_data')!.toString()).toBe('#!/bin/sh\necho hello\n');
    expect(files.get('ec2/latest/user-data')!.toString()).toBe('#!/bin/sh\necho hello\n');
  });

  it('writes vendor data and the network data of the ports', () => {
    expect(parse(files, 'openstack/latest/vendor_data.json')).toEqual({});
    expect(parse(files, 'openstack/latest/vendor_data2.json')).toEqual({});
    expect(parse(files, 'openstack/latest/network_data.json')).toEqual(networkData([vif]));
  });

  it('writes the EC2 meta-data with the fixed address and the key', () => {
    expect(parse(files, 'ec2/latest/meta-data.json')).toMatchObject({
      hostname: 'vm1',
      'local-ipv4': '10.0.0.5',
      'ami-launch-index': 2,
      placement: { 'availability-zone': 'nova' },
      'public-keys': { '0': { 'openssh-key': 'ssh-ed25519 AAAA test@host' } },
      'instance-id': 'i-6f1c3d2e',
    });
  });

  it('leaves out user_data, keys and network entries the server does not have', () => {
    const bare = configDriveFiles(
      { ...instance, userData: undefined, keyName: undefined, keyData: undefined },
      [],
    );
    expect(bare.has('openstack/latest/user_data')).toBe(false);
    expect(bare.has('ec2/latest/user-data')).toBe(false);
    const meta = parse(bare, 'openstack/latest/meta_data.json');
    expect(meta).not.toHaveProperty('public_keys');
    expect(meta).not.toHaveProperty('keys');
    expect(meta.name).toBe('vm1');
    expect((meta.random_seed as string).length).toBe(684);
    expect(parse(bare, 'openstack/latest/network_data.json')).toEqual({
      links: [],
      networks: [],
      services: [],
    });
  });

  it('writes personality files under content/ and an admin password when given', () => {
    const withFiles = configDriveFiles(instance, [], {
      adminPassword: 's3cret',
      injectedFiles: [
        { path: '/etc/motd', contents: Buffer.from('hi').toString('base64') },
        { path: '/root/x', contents: Buffer.from('x').toString('base64') },
      ],
    });
    expect(withFiles.get('openstack/content/0000')!.toString()).toBe('hi');
    expect(withFiles.get('openstack/content/0001')!.toString()).toBe('x');
    const meta = parse(withFiles, 'openstack/latest/meta_data.json');
    expect(meta.files).toEqual([
      { path: '/etc/motd', content_path: '/content/0000' },
      { path: '/root/x', content_path: '/content/0001' },
    ]);
    expect(meta.admin_pass).toBe('s3cret');
    expect(parse(withFiles, 'openstack/2012-08-10/meta_data.json')).not.toHaveProperty('admin_pass');
  });

  it('appends the DHCP domain to the host name when configured', () => {
    const withDomain = configDriveFiles(instance, [], { dhcpDomain: 'novalocal' });
    expect(parse(withDomain, 'openstack/latest/meta_data.json').hostname).toBe('vm1.novalocal');
  });
});

describe('networkData', () => {
  it('describes each port as a link with one network per IP version, and DNS once', () => {
    expect(networkData([vif])).toEqual({
      links: [
        {
          id: 'tapb7e1c2d3-00',
          vif_id: vif.id,
          type: 'bridge',
          mtu: 1450,
          ethernet_mac_address: 'fa:16:3e:00:00:01',
        },
      ],
      networks: [
        {
          id: 'network0',
          type: 'ipv4',
          link: 'tapb7e1c2d3-00',
          ip_address: '10.0.0.5',
          netmask: '255.255.255.0',
          routes: [{ network: '0.0.0.0', netmask: '0.0.0.0', gateway: '10.0.0.1' }],
          network_id: 'net-1',
        },
        {
          id: 'network1',
          type: 'ipv6',
          link: 'tapb7e1c2d3-00',
          ip_address: 'fd00::5',
          netmask: 'ffff:ffff:ffff:ffff::',
          routes: [],
          network_id: 'net-1',
        },
      ],
      services: [
        { type: 'dns', address: '10.0.0.2' },
        { type: 'dns', address: '9.9.9.9' },
      ],
    });
  });

  it('adds the subnet host routes after the default route (nexthop 0.0.0.0: on the link)', () => {
    const routed: Vif = {
      ...vif,
      fixedIps: [
        {
          ...vif.fixedIps[0],
          hostRoutes: [
            { destination: '169.254.169.254/32', nexthop: '0.0.0.0' },
            { destination: '192.168.0.0/16', nexthop: '10.0.0.254' },
          ],
        },
      ],
    };
    expect(networkData([routed]).networks[0].routes).toEqual([
      { network: '0.0.0.0', netmask: '0.0.0.0', gateway: '10.0.0.1' },
      { network: '169.254.169.254', netmask: '255.255.255.255', gateway: '0.0.0.0' },
      { network: '192.168.0.0', netmask: '255.255.0.0', gateway: '10.0.0.254' },
    ]);
  });

  it('numbers links without a device over the ports with addresses only', () => {
    const bare: Vif = { ...vif, devname: undefined, bridge: undefined, mtu: undefined };
    const data = networkData([{ ...vif, fixedIps: [] }, bare]);
    expect(data.links).toEqual([
      { id: 'interface0', vif_id: vif.id, type: 'phy', mtu: null, ethernet_mac_address: vif.macAddress },
    ]);
    expect(data.networks.map((network) => network.link)).toEqual(['interface0', 'interface0']);
  });
});

describe('netmask', () => {
  it.each<[string, 4 | 6, string]>([
    ['10.0.0.0/8', 4, '255.0.0.0'],
    ['192.168.1.0/26', 4, '255.255.255.192'],
    ['0.0.0.0/0', 4, '0.0.0.0'],
    ['10.1.2.3/32', 4, '255.255.255.255'],
    ['fd00::/64', 6, 'ffff:ffff:ffff:ffff::'],
    ['fd00::/56', 6, 'ffff:ffff:ffff:ff00::'],
    ['::/0', 6, '::'],
  ])('%s (IPv%s) → %s', (cidr, version, mask) => {
    expect(netmask(cidr, version)).toBe(mask);
  });
});
