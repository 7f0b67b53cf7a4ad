import { ComputeNodeEntity, ComputeServiceEntity } from '@novum/db';
import { freeResources } from '@novum/compute';
import { HostState, rankHosts, RequestSpec } from './scheduler';

const NOW = Date.parse('2026-11-28T09:00:00.000Z');

function host(
  name: string,
  overrides: Partial<ComputeNodeEntity> = {},
  service: Partial<ComputeServiceEntity> = {},
): HostState {
  const node = {
    uuid: `node-${name}`,
    host: name,
    hypervisorHostname: name,
    vcpus: 8,
    memoryMb: 8192,
    localGb: 100,
    vcpusUsed: 0,
    memoryMbUsed: 0,
    localGbUsed: 0,
    cpuAllocationRatio: 1,
    ramAllocationRatio: 1,
    diskAllocationRatio: 1,
    drivers: ['fake'],
    failedBuilds: 0,
    ...overrides,
  } as ComputeNodeEntity;
  const record = {
    host: name,
    binary: 'nova-compute',
    disabled: false,
    forcedDown: false,
    lastSeenUp: new Date(NOW - 5_000).toISOString(),
    createdAt: new Date(NOW - 60_000).toISOString(),
    ...service,
  } as ComputeServiceEntity;
  return { node, service: record, free: freeResources(node), availabilityZone: 'nova' };
}

const spec = (overrides: Partial<RequestSpec> = {}): RequestSpec => ({
  instanceUuid: 'i',
  resources: { vcpus: 1, memoryMb: 1024, diskGb: 10 },
  excludedHosts: [],
  sameHost: [],
  differentHost: [],
  now: NOW,
  serviceDownTimeSeconds: 60,
  ...overrides,
});

const names = (hosts: HostState[]) => hosts.map((h) => h.node.host);

describe('rankHosts', () => {
  it('drops disabled, down and forced-down hosts (ComputeFilter)', () => {
    const { ranked, rejectedBy } = rankHosts(
      [
        host('up'),
        host('disabled', {}, { disabled: true }),
        host('silent', {}, { lastSeenUp: new Date(NOW - 61_000).toISOString() }),
        host('forced', {}, { forcedDown: true }),
      ],
      spec(),
    );
    expect(names(ranked)).toEqual(['up']);
    expect(rejectedBy).toEqual({ ComputeFilter: 3 });
  });

  it('checks vCPU, RAM and disk against total x allocation ratio minus used', () => {
    const hosts = [
      host('cpu', { vcpus: 2, cpuAllocationRatio: 16, vcpusUsed: 32 }),
      host('ram', { memoryMb: 1000, ramAllocationRatio: 1.5, memoryMbUsed: 600 }),
      host('disk', { localGb: 9 }),
      host('roomy-by-ratio', {
        vcpus: 1,
        vcpusUsed: 15,
        cpuAllocationRatio: 16,
        memoryMb: 800,
        ramAllocationRatio: 1.5,
      }),
    ];
    const { ranked, rejectedBy } = rankHosts(hosts, spec());
    expect(names(ranked)).toEqual(['roomy-by-ratio']);
    expect(rejectedBy).toEqual({ 'ComputeCapabilitiesFilter (vCPU)': 1, RamFilter: 1, DiskFilter: 1 });
  });

  it("places a flavor's novum:driver only on hosts offering it (or fake); without one, anywhere", () => {
    const hosts = [host('fake'), host('both', { drivers: ['kvm', 'container'] })];
    expect(names(rankHosts(hosts, spec({ driver: 'fake' })).ranked)).toEqual(['fake']);
    expect(rankHosts(hosts, spec()).ranked).toHaveLength(2);
    // A host offering fake stands in for any driver; one offering only kvm does not take container.
    expect(names(rankHosts(hosts, spec({ driver: 'container' })).ranked).sort()).toEqual(['both', 'fake']);
    const kvmOnly = [host('kvm', { drivers: ['kvm'] }), host('container', { drivers: ['container'] })];
    const { ranked, rejectedBy } = rankHosts(kvmOnly, spec({ driver: 'container' }));
    expect(names(ranked)).toEqual(['container']);
    expect(rejectedBy).toEqual({ DriverFilter: 1 });
  });

  it('honours excluded hosts, the requested host, the zone and same/different host hints', () => {
    const hosts = [host('a'), host('b'), host('c')];
    expect(names(rankHosts(hosts, spec({ excludedHosts: ['a', 'b'] })).ranked)).toEqual(['c']);
    expect(names(rankHosts(hosts, spec({ requestedHost: 'b' })).ranked)).toEqual(['b']);
    expect(rankHosts(hosts, spec({ availabilityZone: 'elsewhere' })).ranked).toEqual([]);
    expect(rankHosts(hosts, spec({ availabilityZone: 'nova' })).ranked).toHaveLength(3);
    expect(names(rankHosts(hosts, spec({ sameHost: ['c'] })).ranked)).toEqual(['c']);
    expect(names(rankHosts(hosts, spec({ differentHost: ['a', 'c'] })).ranked)).toEqual(['b']);
  });

  it('applies server group policies: hard ones filter, soft ones weigh', () => {
    const hosts = [host('a'), host('b'), host('c')];
    const group = (policy: string, members: [string, number][], maxServerPerHost = 1) => ({
      group: { policy, membersByHost: new Map(members), maxServerPerHost },
    });
    expect(names(rankHosts(hosts, spec(group('affinity', [['b', 1]]))).ranked)).toEqual(['b']);
    expect(rankHosts(hosts, spec(group('affinity', []))).ranked).toHaveLength(3);
    expect(
      names(
        rankHosts(
          hosts,
          spec(
            group('anti-affinity', [
              ['a', 1],
              ['b', 1],
            ]),
          ),
        ).ranked,
      ),
    ).toEqual(['c']);
    expect(
      rankHosts(
        hosts,
        spec(
          group(
            'anti-affinity',
            [
              ['a', 1],
              ['b', 2],
            ],
            2,
          ),
        ),
      ).ranked,
    ).toHaveLength(2);
    expect(names(rankHosts(hosts, spec(group('soft-affinity', [['c', 2]]))).ranked)[0]).toBe('c');
    const soft = rankHosts(
      hosts,
      spec(
        group('soft-anti-affinity', [
          ['a', 2],
          ['b', 1],
        ]),
      ),
    ).ranked;
    expect(names(soft)).toEqual(['c', 'b', 'a']);
  });

  it('prefers free RAM, vCPU and disk, and puts hosts that failed builds last', () => {
    const hosts = [
      host('busy', { memoryMbUsed: 6000, vcpusUsed: 6, localGbUsed: 60 }),
      host('idle'),
      host('failing', { failedBuilds: 2 }),
      host('half', { memoryMbUsed: 3000, vcpusUsed: 3, localGbUsed: 30 }),
    ];
    expect(names(rankHosts(hosts, spec()).ranked)).toEqual(['idle', 'half', 'busy', 'failing']);
  });

  it('shuffles the hosts that tie for the best weight, so parallel builds spread', () => {
    const hosts = [host('a'), host('b'), host('c'), host('loaded', { memoryMbUsed: 4096 })];
    const firsts = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const { ranked } = rankHosts(hosts, spec());
      firsts.add(ranked[0].node.host);
      expect(ranked[3].node.host).toBe('loaded');
    }
    expect([...firsts].sort()).toEqual(['a', 'b', 'c']);
    expect(names(rankHosts(hosts, spec(), () => 0).ranked)).toEqual(['b', 'c', 'a', 'loaded']);
  });
  it("places by the aggregates' zone and their metadata (AggregateInstanceExtraSpecsFilter)", () => {
    const inZone = (name: string, metadata: Record<string, string[]>) => ({
      ...host(name),
      availabilityZone: metadata.availability_zone?.[0] ?? 'nova',
      aggregateMetadata: new Map(Object.entries(metadata).map(([k, v]) => [k, new Set(v)])),
    });
    const hosts = [inZone('plain', {}), inZone('fast', { availability_zone: ['az1'], ssd: ['true'] })];
    expect(names(rankHosts(hosts, spec({ availabilityZone: 'az1' })).ranked)).toEqual(['fast']);
    const ssd = spec({ extraSpecs: { 'aggregate_instance_extra_specs:ssd': 'true', 'novum:driver': 'kvm' } });
    const { ranked, rejectedBy } = rankHosts(hosts, ssd);
    expect(names(ranked)).toEqual(['fast']);
    expect(rejectedBy).toEqual({ AggregateInstanceExtraSpecsFilter: 1 });
  });
});
