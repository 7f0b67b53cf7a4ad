import { ApiVersion } from './microversion';
import {
  auditLogView,
  belowVersion,
  checkHostUpdate,
  glanceImageQuery,
  hostResources,
  imageDetail,
  imageProperties,
  lastCompletedAuditPeriod,
  NeutronRule,
  networkView,
  neutronRuleBody,
  newIngressRule,
  parseAuditTimestamp,
  propertiesPatch,
  pythonTime,
  ruleExists,
  securityGroupView,
  tenantNetworkView,
} from './proxy-views';
import { ComputeLinks } from './serializers';

const links = new ComputeLinks('http://h:8774/compute');

describe('image proxy views', () => {
  const image = {
    id: 'img-1',
    name: 'snap',
    status: 'queued',
    min_ram: 512,
    min_disk: 0,
    size: null,
    visibility: 'private',
    tags: [],
    created_at: '2026-01-02T03:04:05Z',
    updated_at: '2026-01-02T03:04:06Z',
    self: '/v2/images/img-1',
    os_hash_algo: null,
    instance_uuid: 'srv-1',
    auto_disk_config: 'True',
    os_distro: 'debian',
  };

  it('keeps only custom properties as metadata', () => {
    expect(imageProperties(image)).toEqual({
      instance_uuid: 'srv-1',
      auto_disk_config: 'True',
      os_distro: 'debian',
    });
  });

  it("translates Glance's record to Nova's view with server link, size and disk config", () => {
    const view = imageDetail(image, links, 'http://h:9292/image');
    expect(view).toMatchObject({
      status: 'SAVING',
      progress: 25,
      minRam: 512,
      minDisk: 0,
      created: '2026-01-02T03:04:05Z',
      'OS-EXT-IMG-SIZE:size': null,
      'OS-DCF:diskConfig': 'AUTO',
      server: { id: 'srv-1' },
    });
    expect((view.links as { rel: string }[]).map((l) => l.rel)).toEqual(['self', 'bookmark', 'alternate']);
    expect(imageDetail({ ...image, status: 'killed' }, links, '').status).toBe('ERROR');
    expect(imageDetail({ ...image, status: 'deactivated' }, links, '').status).toBe('UNKNOWN');
  });

  it("maps Nova's filters to Glance's query and checks the limit", () => {
    const { params, minRam } = glanceImageQuery({
      name: 'a',
      status: 'ACTIVE',
      'changes-since': '2026-01-01T00:00:00Z',
      server: 'http://h/servers/srv-9',
      'property-os_distro': 'debian',
      limit: '2',
      minRam: '128',
      other: 'x',
    });
    expect(Object.fromEntries(params)).toEqual({
      name: 'a',
      status: 'active',
      updated_at: 'gte:2026-01-01T00:00:00Z',
      instance_uuid: 'srv-9',
      os_distro: 'debian',
      limit: '2',
    });
    expect(minRam).toBe(128);
    expect(() => glanceImageQuery({ limit: 'x' })).toThrow('limit param must be an integer');
    expect(() => glanceImageQuery({ limit: '-1' })).toThrow('limit param must be positive');
  });

  it('patches properties into the wanted set', () => {
    expect(propertiesPatch({ a: '1', b: '2', 'x/y': '3' }, { a: '1', b: '9', c: '4' })).toEqual([
      { op: 'remove', path: '/x~1y' },
      { op: 'replace', path: '/b', value: '9' },
      { op: 'add', path: '/c', value: '4' },
    ]);
  });

  it('answers 404 from 2.36 on', () => {
    expect(() => belowVersion(ApiVersion.parse('2.35'), '2.36')).not.toThrow();
    expect(() => belowVersion(ApiVersion.parse('2.36'), '2.36')).toThrow(
      'API version 2.36 is not supported on this method.',
    );
  });
});

describe('security group proxy views', () => {
  const rule = (over: Partial<NeutronRule>): NeutronRule => ({
    id: 'r',
    security_group_id: 'g1',
    direction: 'ingress',
    protocol: 'tcp',
    port_range_min: 22,
    port_range_max: 22,
    remote_ip_prefix: '10.0.0.0/8',
    remote_group_id: null,
    ...over,
  });

  it('shows ingress rules only, with open ports filled in and remote groups named', () => {
    const view = securityGroupView(
      {
        id: 'g1',
        name: 'web',
        description: null,
        project_id: 'p1',
        security_group_rules: [
          rule({ id: 'a' }),
          rule({ id: 'b', direction: 'egress' }),
          rule({
            id: 'c',
            protocol: 'udp',
            port_range_min: null,
            port_range_max: null,
            remote_ip_prefix: null,
          }),
          rule({
            id: 'd',
            protocol: 'icmp',
            port_range_min: null,
            port_range_max: null,
            remote_group_id: 'g2',
          }),
          rule({ id: 'e', remote_group_id: 'gone' }),
        ],
      },
      new Map([['g2', { name: 'db', tenant_id: 'p2' }]]),
    );
    expect(view).toEqual({
      id: 'g1',
      name: 'web',
      description: '',
      tenant_id: 'p1',
      rules: [
        expect.objectContaining({
          id: 'a',
          from_port: 22,
          to_port: 22,
          ip_range: { cidr: '10.0.0.0/8' },
          group: {},
        }),
        expect.objectContaining({ id: 'c', from_port: 1, to_port: 65535, ip_range: { cidr: '0.0.0.0/0' } }),
        expect.objectContaining({
          id: 'd',
          from_port: -1,
          to_port: -1,
          group: { name: 'db', tenant_id: 'p2' },
        }),
      ],
    });
  });

  it("validates new rules as Nova's _rule_args_to_dict", () => {
    expect(newIngressRule({ ip_protocol: 'tcp', from_port: '22', to_port: 23 })).toEqual({
      cidr: '0.0.0.0/0',
      protocol: 'tcp',
      from_port: 22,
      to_port: 23,
    });
    expect(newIngressRule({ ip_protocol: 'icmp', group_id: 'g2' })).toEqual({
      group_id: 'g2',
      protocol: 'icmp',
      from_port: -1,
      to_port: -1,
    });
    expect(newIngressRule({ group_id: 'g2' })).toEqual({ group_id: 'g2' });
    expect(newIngressRule({ cidr: '10.0.0.0/8' })).toBeUndefined();
    expect(() => newIngressRule({ ip_protocol: 'tcp', from_port: 23, to_port: 22 })).toThrow(
      'Invalid port range 23:22. Former value cannot be greater than the later',
    );
    expect(() => newIngressRule({ ip_protocol: 'udp', from_port: 1, to_port: 70000 })).toThrow(
      'Valid UDP ports should be between 1-65535',
    );
    expect(() => newIngressRule({ ip_protocol: 'icmp', from_port: 256, to_port: 0 })).toThrow(
      'For ICMP, the type:code must be valid',
    );
    expect(() => newIngressRule({ ip_protocol: 'tcp1', from_port: 1, to_port: 2 })).toThrow(
      'Invalid IP protocol tcp1.',
    );
    expect(() => newIngressRule({ ip_protocol: 'tcp', from_port: 'x', to_port: 2 })).toThrow(
      'To and From ports must be integers',
    );
    expect(() =>
      newIngressRule({ ip_protocol: 'tcp', from_port: 1, to_port: 2, cidr: '10.0.0.0/33' }),
    ).toThrow('10.0.0.0/33 is not a valid IP network.');
    expect(() =>
      newIngressRule({ ip_protocol: 'tcp', from_port: 1, to_port: 2, cidr: '10.0.0.0/0' }),
    ).toThrow('Bad prefix for network in cidr 10.0.0.0/0');
  });

  it('finds duplicates and builds the Neutron rule', () => {
    const wanted = newIngressRule({ ip_protocol: 'tcp', from_port: 22, to_port: 22, cidr: '10.0.0.0/8' })!;
    expect(ruleExists([rule({})], wanted)).toBe(true);
    expect(ruleExists([rule({ port_range_max: 23 })], wanted)).toBe(false);
    expect(neutronRuleBody('g1', { ...wanted, cidr: '2001:db8::/64' })).toEqual({
      direction: 'ingress',
      security_group_id: 'g1',
      ethertype: 'IPv6',
      protocol: 'tcp',
      remote_ip_prefix: '2001:db8::/64',
      port_range_min: 22,
      port_range_max: 22,
    });
    expect(neutronRuleBody('g1', { group_id: 'g2', protocol: 'icmp', from_port: -1, to_port: -1 })).toEqual({
      direction: 'ingress',
      security_group_id: 'g1',
      ethertype: 'IPv4',
      protocol: 'icmp',
      remote_group_id: 'g2',
    });
  });
});

describe('network, host and audit views', () => {
  it('shows networks as Nova with Neutron does', () => {
    expect(networkView({ id: 'n', name: 'private' }, false)).toEqual(
      expect.objectContaining({ id: 'n', label: 'private', cidr: null, gateway: null }),
    );
    expect(Object.keys(networkView({ id: 'n', name: 'x' }, false))).toHaveLength(11);
    expect(networkView({ id: 'n', name: 'x' }, true)).toHaveProperty('mtu', null);
    expect(tenantNetworkView({ id: 'n', name: 'x' })).toEqual({ id: 'n', cidr: 'None', label: 'x' });
  });

  it("sums a host's resources in total, used now, used max and per project", () => {
    const node = {
      vcpus: 8,
      memoryMb: 8192,
      localGb: 100,
      vcpusUsed: 3,
      memoryMbUsed: 1536,
      localGbUsed: 21,
    };
    const flavor = (vcpus: number) => ({ vcpus, memory_mb: 512 * vcpus, root_gb: 10, ephemeral_gb: 1 });
    const resources = hostResources('h1', node, [
      { projectId: 'p1', flavor: flavor(1) },
      { projectId: 'p2', flavor: flavor(2) },
    ]).map((r) => r.resource);
    expect(resources.map((r) => [r.project, r.cpu, r.memory_mb, r.disk_gb])).toEqual([
      ['(total)', 8, 8192, 100],
      ['(used_now)', 3, 1536, 21],
      ['(used_max)', 3, 1536, 22],
      ['p1', 1, 512, 11],
      ['p2', 2, 1024, 11],
    ]);
  });

  it('checks host updates against the schema', () => {
    expect(checkHostUpdate({ status: 'ENABLE' })).toEqual({ status: true, maintenance: undefined });
    expect(checkHostUpdate({ maintenance_mode: 'disable' })).toEqual({
      status: undefined,
      maintenance: false,
    });
    expect(() => checkHostUpdate({})).toThrow('is not valid under any of the given schemas');
    expect(() => checkHostUpdate({ status: 'bad' })).toThrow('is not one of');
    expect(() => checkHostUpdate({ status: 'enable', foo: 1 })).toThrow("'foo' was unexpected");
  });

  it('parses audit timestamps as strptime and finds the last completed month', () => {
    expect(parseAuditTimestamp('2026-3-5 01:02:03').toISOString()).toBe('2026-03-05T01:02:03.000Z');
    expect(parseAuditTimestamp('2026-03-05 01:02:03.5').toISOString()).toBe('2026-03-05T01:02:03.500Z');
    for (const bad of ['invalid_time', '2026-02-30 00:00:00', '2026-03-05T01:02:03', '2026-03-05 01:02:03.'])
      expect(() => parseAuditTimestamp(bad)).toThrow(`Invalid timestamp for date ${bad}`);
    const jan = lastCompletedAuditPeriod(new Date('2026-01-15T00:00:00Z'));
    expect([pythonTime(jan.begin), pythonTime(jan.end)]).toEqual([
      '2025-12-01 00:00:00',
      '2026-01-01 00:00:00',
    ]);
    const first = lastCompletedAuditPeriod(new Date('2026-03-01T00:00:00Z'));
    expect(pythonTime(first.end)).toBe('2026-02-01 00:00:00');
  });

  it("summarises the hosts' audit", () => {
    const period = lastCompletedAuditPeriod(new Date('2026-05-10T00:00:00Z'));
    const view = auditLogView(period, ['a', 'b'], [{ host: 'a', instances: 3 }]);
    expect(view).toMatchObject({
      period_beginning: '2026-04-01 00:00:00',
      num_hosts: 2,
      num_hosts_done: 1,
      num_hosts_not_run: 1,
      hosts_not_run: ['b'],
      total_instances: 3,
      overall_status: '1 of 2 hosts done. 0 errors.',
      log: { a: { state: 'DONE', instances: 3, errors: 0 } },
    });
  });
});
