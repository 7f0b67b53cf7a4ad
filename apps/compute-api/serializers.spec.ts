import { FlavorView } from './flavor.service';
import { ApiVersion } from './microversion';
import {
  ComputeLinks,
  flavorBrief,
  flavorDetail,
  keyPairCreated,
  keyPairListed,
  keyPairShown,
  serverGroupView,
  serviceView,
} from './serializers';
import { ServerGroupView } from './server-group.service';

const v = (text: string) => ApiVersion.parse(text);
const links = new ComputeLinks('http://h:8774/compute');

const flavor = {
  internalId: 1,
  id: '1',
  name: 'm1.tiny',
  memoryMb: 512,
  vcpus: 1,
  rootGb: 1,
  ephemeralGb: 0,
  swap: 0,
  rxtxFactor: 1,
  isPublic: true,
  disabled: false,
  description: null,
  createdAt: '2026-11-28T08:00:00.000Z',
  updatedAt: null,
  extraSpecs: { 'novum:driver': 'kvm' },
} as FlavorView;

describe('flavor views', () => {
  it('has exactly the fields of each step', () => {
    const base = [
      'OS-FLV-DISABLED:disabled',
      'OS-FLV-EXT-DATA:ephemeral',
      'disk',
      'id',
      'links',
      'name',
      'os-flavor-access:is_public',
      'ram',
      'rxtx_factor',
      'swap',
      'vcpus',
    ];
    expect(Object.keys(flavorDetail(flavor, links, v('2.1'))).sort()).toEqual(base.sort());
    expect(Object.keys(flavorDetail(flavor, links, v('2.55'))).sort()).toEqual(
      [...base, 'description'].sort(),
    );
    expect(Object.keys(flavorDetail(flavor, links, v('2.61'))).sort()).toEqual(
      [...base, 'description', 'extra_specs'].sort(),
    );
    expect(Object.keys(flavorBrief(flavor, links, v('2.1'))).sort()).toEqual(['id', 'links', 'name']);
    expect(Object.keys(flavorBrief(flavor, links, v('2.61'))).sort()).toEqual([
      'description',
      'id',
      'links',
      'name',
    ]);
  });

  it('spells no swap as "" before 2.75 and 0 from 2.75', () => {
    expect(flavorDetail(flavor, links, v('2.74')).swap).toBe('');
    expect(flavorDetail(flavor, links, v('2.75')).swap).toBe(0);
    expect(flavorDetail({ ...flavor, swap: 512 } as FlavorView, links, v('2.1')).swap).toBe(512);
  });

  it('links to the versioned and the bookmark URL', () => {
    expect(flavorBrief(flavor, links, v('2.1')).links).toEqual([
      { rel: 'self', href: 'http://h:8774/compute/v2.1/flavors/1' },
      { rel: 'bookmark', href: 'http://h:8774/compute/flavors/1' },
    ]);
  });
});

describe('key pair views', () => {
  const keypair = {
    id: 7,
    userId: 'u',
    name: 'k',
    type: 'ssh',
    publicKey: 'ssh-ed25519 AAAA',
    fingerprint: 'aa:bb',
    createdAt: '2026-11-28T08:00:00.123Z',
  };

  it('adds type at 2.2 and the stored fields only to show', () => {
    expect(Object.keys(keyPairListed(keypair, v('2.1')).keypair).sort()).toEqual([
      'fingerprint',
      'name',
      'public_key',
    ]);
    expect(keyPairListed(keypair, v('2.2')).keypair.type).toBe('ssh');
    expect(keyPairShown(keypair, v('2.1')).keypair).toEqual({
      name: 'k',
      public_key: 'ssh-ed25519 AAAA',
      fingerprint: 'aa:bb',
      user_id: 'u',
      id: 7,
      created_at: '2026-11-28T08:00:00.000000',
      updated_at: null,
      deleted_at: null,
      deleted: false,
    });
    expect(keyPairCreated(keypair, 'PRIVATE', v('2.2')).keypair).toEqual({
      name: 'k',
      public_key: 'ssh-ed25519 AAAA',
      fingerprint: 'aa:bb',
      type: 'ssh',
      user_id: 'u',
      private_key: 'PRIVATE',
    });
  });
});

describe('server group views', () => {
  const group = {
    id: 'g',
    name: 'n',
    projectId: 'p',
    userId: 'u',
    policy: 'anti-affinity',
    rules: { max_server_per_host: 2 },
    createdAt: '2026-11-28T08:00:00.000Z',
    members: [],
  } as ServerGroupView;

  it('moves from policies and metadata to policy and rules at 2.64', () => {
    expect(serverGroupView(group, v('2.1'))).toEqual({
      id: 'g',
      name: 'n',
      members: [],
      policies: ['anti-affinity'],
      metadata: {},
    });
    expect(serverGroupView(group, v('2.13'))).toMatchObject({
      project_id: 'p',
      user_id: 'u',
      policies: ['anti-affinity'],
    });
    expect(serverGroupView(group, v('2.64'))).toEqual({
      id: 'g',
      name: 'n',
      members: [],
      project_id: 'p',
      user_id: 'u',
      policy: 'anti-affinity',
      rules: { max_server_per_host: 2 },
    });
  });
});

describe('service views', () => {
  const now = Date.parse('2026-11-28T08:01:00.000Z');
  const service = {
    id: 3,
    uuid: '6f0c4b5e-8a51-4b6e-9d8e-4b7a8e4f2c11',
    host: 'host1',
    binary: 'nova-compute',
    topic: 'compute',
    reportCount: 5,
    disabled: true,
    disabledReason: 'maintenance',
    forcedDown: false,
    lastSeenUp: '2026-11-28T08:00:30.000Z',
    version: 1,
    createdAt: '2026-11-28T07:00:00.000Z',
    updatedAt: null,
  };

  it('shows Nova 2.1 fields, forced_down from 2.11 and the uuid as id from 2.53', () => {
    expect(serviceView(service, now, 60, v('2.1'))).toEqual({
      id: 3,
      binary: 'nova-compute',
      host: 'host1',
      zone: 'nova',
      status: 'disabled',
      state: 'up',
      updated_at: '2026-11-28T08:00:30.000000',
      disabled_reason: 'maintenance',
    });
    expect(serviceView(service, now, 60, v('2.11')).forced_down).toBe(false);
    expect(serviceView(service, now, 60, v('2.53')).id).toBe(service.uuid);
  });

  it('is down when silent for longer than the down time, or forced down', () => {
    expect(serviceView(service, now + 61_000, 60, v('2.1')).state).toBe('down');
    expect(serviceView(service, now + 61_000, 120, v('2.1')).state).toBe('up');
    expect(serviceView({ ...service, forcedDown: true }, now, 60, v('2.1')).state).toBe('down');
    expect(serviceView({ ...service, binary: 'nova-conductor' }, now, 60, v('2.1')).zone).toBe('internal');
  });
});
