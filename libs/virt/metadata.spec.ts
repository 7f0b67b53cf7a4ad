import { describe, expect, it } from '@jest/globals';
import { configDriveFiles } from './config-drive';
import type { InstanceSpec, Vif } from './driver';
import { EC2_VERSIONS, InstanceMetadata } from './metadata';

const instance: InstanceSpec = {
  uuid: '6f1c3d2e-8a4b-4c5d-9e6f-0a1b2c3d4e5f',
  name: 'instance-6f1c3d2e',
  hostname: 'vm1',
  displayName: 'VM 1',
  reservationId: 'r-abc123',
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
  configDrive: false,
};

const vif: Vif = {
  id: 'port-1',
  macAddress: 'fa:16:3e:00:00:01',
  networkId: 'net-1',
  fixedIps: [
    {
      address: '10.0.0.5',
      version: 4,
      subnetId: 'sub-4',
      cidr: '10.0.0.0/24',
      gateway: '10.0.0.1',
      dnsNameservers: [],
    },
  ],
};

const metadata = new InstanceMetadata(instance, [vif], { randomSeed: Buffer.alloc(512, 1) });
const body = (path: string) => {
  const answer = metadata.lookup(path);
  expect(answer.status).toBe(200);
  return answer.body.toString();
};

describe('InstanceMetadata', () => {
  it('lists the EC2 versions at / and the OpenStack versions at /openstack', () => {
    expect(body('/')).toBe([...EC2_VERSIONS, 'latest'].join('\n'));
    expect(body('/openstack')).toBe(
      ['2012-08-10', '2013-04-04', '2013-10-17', '2015-10-15', '2016-06-30', 'latest'].join('\n'),
    );
    expect(body('/openstack/')).toBe(body('/openstack'));
  });

  it('serves the config drive’s OpenStack files, JSON as application/json', () => {
    const drive = configDriveFiles(instance, [vif], { randomSeed: Buffer.alloc(512, 1) });
    for (const name of ['meta_data.json', 'network_data.json', 'vendor_data.json', 'user_data']) {
      const answer = metadata.lookup(`/openstack/latest/${name}`);
      expect(answer.body).toEqual(drive.get(`openstack/latest/${name}`));
      expect(answer.contentType).toBe(name.endsWith('.json') ? 'application/json' : 'text/plain');
    }
    expect(JSON.parse(body('/openstack/2012-08-10/meta_data.json'))).not.toHaveProperty('random_seed');
    expect(body('/openstack/latest').split('\n').sort()).toEqual([
      'meta_data.json',
      'network_data.json',
      'user_data',
      'vendor_data.json',
      'vendor_data2.json',
    ]);
    expect(body('/openstack/2012-08-10/').split('\n').sort()).toEqual(['meta_data.json', 'user_data']);
  });

  it('walks the EC2 tree: listings, values, the key as `0=<name>`, user-data', () => {
    expect(body('/latest').split('\n')).toEqual(['meta-data/', 'user-data']);
    const keys = body('/latest/meta-data/').split('\n');
    expect(keys).toEqual([...keys].sort());
    expect(keys).toEqual(expect.arrayContaining(['instance-id', 'local-ipv4', 'placement/', 'public-keys/']));
    expect(body('/latest/meta-data/instance-id')).toBe('i-6f1c3d2e');
    expect(body('/2009-04-04/meta-data/reservation-id')).toBe('r-abc123');
    expect(body('/latest/meta-data/local-ipv4')).toBe('10.0.0.5');
    expect(body('/latest/meta-data/placement/availability-zone')).toBe('nova');
    expect(body('/latest/meta-data/public-keys')).toBe('0=mykey');
    expect(body('/latest/meta-data/public-keys/0/')).toBe('openssh-key');
    expect(body('/latest/meta-data/public-keys/0/openssh-key')).toBe('ssh-ed25519 AAAA test@host');
    expect(body('/latest/user-data')).toBe('#!/bin/sh\necho hello\n');
    expect(body('/ec2/latest/meta-data/hostname')).toBe('vm1');
    expect(body('//latest//meta-data/./hostname')).toBe('vm1');
  });

  it('answers 404 for what is not there', () => {
    for (const path of [
      '/openstack/2099-01-01/meta_data.json',
      '/openstack/latest/password',
      '/openstack/latest/meta_data.json/uuid',
      '/openstack/content/0000',
      '/1999-01-01/meta-data/',
      '/latest/meta-data/no-such-key',
      '/latest/meta-data/public-keys/0/_name',
      '/latest/meta-data/hostname/x',
    ]) {
      expect([path, metadata.lookup(path).status]).toEqual([path, 404]);
    }
    const bare = new InstanceMetadata({ ...instance, userData: undefined, keyName: undefined }, []);
    expect(bare.lookup('/latest/user-data').status).toBe(404);
    expect(bare.lookup('/openstack/latest/user_data').status).toBe(404);
    expect(bare.lookup('/latest/meta-data/public-keys/').status).toBe(404);
    expect(bare.lookup('/latest').body.toString()).toBe('meta-data/');
  });
});
