import { DataSource } from 'typeorm';
import { NovumConfig } from '@novum/common';
import { ComputeNodeEntity, ComputeServiceEntity, InstanceEntity } from '@novum/db';
import { freeResources, InstanceRecords } from '@novum/compute';
import { HostSnapshot, HostState, rankHosts, RequestSpec, Scheduler } from './scheduler';

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

describe('Scheduler.select with a request snapshot', () => {
  const flavor = { vcpus: 1, memory_mb: 1024, root_gb: 10, ephemeral_gb: 0, swap: 0, extra_specs: {} };
  const instance = (uuid: string) =>
    ({ uuid, flavor, schedulerHints: {}, availabilityZone: null }) as unknown as InstanceEntity;
  const records = { hostsOf: async () => [] } as unknown as InstanceRecords;
  const config = { serviceDownTimeSeconds: 60 } as NovumConfig;

  it("reads the hosts once per request and charges each placement, so a request's instances spread", async () => {
    const scheduler = new Scheduler({} as DataSource, records, config);
    const load = jest.fn(async () => [host('a'), host('b'), host('c')]);
    jest.spyOn(scheduler, 'hostStates').mockImplementation(load);
    const snapshot = scheduler.snapshot();
    jest.spyOn(Date, 'now').mockReturnValue(NOW);
    try {
      const firsts = await Promise.all(
        Array.from(
          { length: 6 },
          async (_, i) => (await scheduler.select(instance(`i${i}`), [], snapshot))[0],
        ),
      );
      expect(load).toHaveBeenCalledTimes(1);
      const perHost = new Map<string, number>();
      for (const first of firsts) perHost.set(first.node.host, (perHost.get(first.node.host) ?? 0) + 1);
      expect(Object.fromEntries(perHost)).toEqual({ a: 2, b: 2, c: 2 });
      expect(firsts[0].free).toEqual({ vcpus: 6, memoryMb: 6144, diskGb: 80 });
      // Without a snapshot each selection reads the hosts afresh and charges nothing.
      await scheduler.select(instance('alone'), []);
      expect(load).toHaveBeenCalledTimes(2);
    } finally {
      jest.restoreAllMocks();
    }
  });

  it('reads again after a failed read', async () => {
    const load = jest
      .fn()
      .mockRejectedValueOnce(new Error('connection lost'))
      .mockResolvedValue([host('a')]);
    const snapshot = new HostSnapshot(load);
    await expect(snapshot.hosts()).rejects.toThrow('connection lost');
    expect(names(await snapshot.hosts())).toEqual(['a']);
    expect(names(await snapshot.hosts())).toEqual(['a']);
    expect(load).toHaveBeenCalledTimes(2);
  });
});
