import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { NOVUM_CONFIG, NovumConfig, rootLogger } from '@novum/common';
import {
  aggregateExtraSpecsPass,
  aggregateMetadataByHost,
  Binary,
  DEFAULT_AVAILABILITY_ZONE,
  DRIVER_EXTRA_SPEC,
  HostAggregateMetadata,
  freeResources,
  InstanceRecords,
  isServiceUp,
  Resources,
  resourcesOf,
  zoneFromMetadata,
} from '@novum/compute';
import {
  ComputeNodeEntity,
  ComputeServiceEntity,
  InstanceEntity,
  ServerGroupEntity,
  ServerGroupMemberEntity,
} from '@novum/db';

export { DEFAULT_AVAILABILITY_ZONE };

export interface HostState {
  node: ComputeNodeEntity;
  service: ComputeServiceEntity;
  free: Resources;
  availabilityZone: string;
  /** The metadata of the host's aggregates (key to values), for AggregateInstanceExtraSpecsFilter. */
  aggregateMetadata?: HostAggregateMetadata;
}

/** What one instance asks of the scheduler (Nova's RequestSpec, as far as these filters read it). */
export interface RequestSpec {
  instanceUuid: string;
  resources: Resources;
  /** The flavor's `novum:driver`; absent: any host (the agent runs it on its first driver). */
  driver?: string;
  /** The flavor's extra specs, for AggregateInstanceExtraSpecsFilter. */
  extraSpecs?: Record<string, string>;
  availabilityZone?: string | null;
  requestedHost?: string;
  excludedHosts: readonly string[];
  sameHost: readonly string[];
  differentHost: readonly string[];
  /** The server group of the `group` hint: its policy and how many other members each host has. */
  group?: GroupPlacement;
  /** Milliseconds since the epoch, for the service-up check. */
  now: number;
  serviceDownTimeSeconds: number;
}

export interface GroupPlacement {
  policy: string;
  membersByHost: ReadonlyMap<string, number>;
  /** The 2.64 `max_server_per_host` rule of anti-affinity; 1 by default. */
  maxServerPerHost: number;
}

const groupMembersOn = (h: HostState, s: RequestSpec) => s.group?.membersByHost.get(h.node.host) ?? 0;

export interface HostFilter {
  name: string;
  passes(host: HostState, spec: RequestSpec): boolean;
}

/** Nova's filters, in Nova's order of cost (cheap checks first). */
export const FILTERS: readonly HostFilter[] = [
  { name: 'RetryFilter', passes: (h, s) => !s.excludedHosts.includes(h.node.host) },
  { name: 'RequestedHostFilter', passes: (h, s) => !s.requestedHost || s.requestedHost === h.node.host },
  {
    name: 'ComputeFilter',
    passes: (h, s) => !h.service.disabled && isServiceUp(h.service, s.now, s.serviceDownTimeSeconds),
  },
  {
    name: 'AvailabilityZoneFilter',
    passes: (h, s) => !s.availabilityZone || s.availabilityZone === h.availabilityZone,
  },
  {
    name: 'DriverFilter',
    // A host offering `fake` stands in for any driver (today's hosts until kvm and container exist).
    passes: (h, s) => !s.driver || h.node.drivers.includes(s.driver) || h.node.drivers.includes('fake'),
  },
  {
    name: 'AggregateInstanceExtraSpecsFilter',
    passes: (h, s) => aggregateExtraSpecsPass(s.extraSpecs, h.aggregateMetadata),
  },
  { name: 'ComputeCapabilitiesFilter (vCPU)', passes: (h, s) => h.free.vcpus >= s.resources.vcpus },
  { name: 'RamFilter', passes: (h, s) => h.free.memoryMb >= s.resources.memoryMb },
  { name: 'DiskFilter', passes: (h, s) => h.free.diskGb >= s.resources.diskGb },
  { name: 'SameHostFilter', passes: (h, s) => !s.sameHost.length || s.sameHost.includes(h.node.host) },
  { name: 'DifferentHostFilter', passes: (h, s) => !s.differentHost.includes(h.node.host) },
  {
    name: 'ServerGroupAffinityFilter',
    passes: (h, s) =>
      s.group?.policy !== 'affinity' || !s.group.membersByHost.size || groupMembersOn(h, s) > 0,
  },
  {
    name: 'ServerGroupAntiAffinityFilter',
    passes: (h, s) => s.group?.policy !== 'anti-affinity' || groupMembersOn(h, s) < s.group.maxServerPerHost,
  },
];

export interface HostWeigher {
  name: string;
  /** Nova's `*_weight_multiplier`; negative prefers the least. */
  multiplier: number;
  weigh(host: HostState, spec: RequestSpec): number;
}

/** Nova's default weighers: spread by free RAM, vCPU and disk; hosts that recently failed builds last. */
export const WEIGHERS: readonly HostWeigher[] = [
  { name: 'RAMWeigher', multiplier: 1, weigh: (h) => h.free.memoryMb },
  { name: 'CPUWeigher', multiplier: 1, weigh: (h) => h.free.vcpus },
  { name: 'DiskWeigher', multiplier: 1, weigh: (h) => h.free.diskGb },
  { name: 'BuildFailureWeigher', multiplier: -1_000_000, weigh: (h) => h.node.failedBuilds },
  {
    name: 'ServerGroupSoftAffinityWeigher',
    multiplier: 1,
    weigh: (h, s) => (s.group?.policy === 'soft-affinity' ? groupMembersOn(h, s) : 0),
  },
  {
    name: 'ServerGroupSoftAntiAffinityWeigher',
    multiplier: 1,
    weigh: (h, s) => (s.group?.policy === 'soft-anti-affinity' ? -groupMembersOn(h, s) : 0),
  },
];

/** Nova's weight normalisation: each weigher's values scaled to 0..1 over the candidates. */
function normalise(values: number[]): number[] {
  const min = Math.min(...values);
  const max = Math.max(...values);
  if (max === min) return values.map(() => 0);
  return values.map((value) => (value - min) / (max - min));
}

/**
 * Filters, then weighs, then orders: the best first, with every host that ties for the best weight
 * shuffled so that parallel builds spread out instead of racing for one host.
 */
export function rankHosts(
  hosts: readonly HostState[],
  spec: RequestSpec,
  random: () => number = Math.random,
): { ranked: HostState[]; rejectedBy: Record<string, number> } {
  const rejectedBy: Record<string, number> = {};
  const passing = hosts.filter((host) => {
    const failed = FILTERS.find((filter) => !filter.passes(host, spec));
    if (failed) rejectedBy[failed.name] = (rejectedBy[failed.name] ?? 0) + 1;
    return !failed;
  });
  if (!passing.length) return { ranked: [], rejectedBy };
  const totals = passing.map(() => 0);
  for (const weigher of WEIGHERS) {
    normalise(passing.map((host) => weigher.weigh(host, spec))).forEach(
      (value, i) => (totals[i] += weigher.multiplier * value),
    );
  }
  const order = passing.map((host, i) => ({ host, weight: totals[i] }));
  order.sort((a, b) => b.weight - a.weight);
  const best = order[0].weight;
  const ties = order.filter((entry) => best - entry.weight < 1e-9);
  for (let i = ties.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [ties[i], ties[j]] = [ties[j], ties[i]];
  }
  return { ranked: [...ties, ...order.slice(ties.length)].map((entry) => entry.host), rejectedBy };
}

/**
 * The hosts' state read once for every instance of one scheduling request (a multi-create), as Nova's
 * HostManager serves a request from one view of the hosts: each placement consumes its resources from the
 * chosen host here (Nova's consume_from_request), so that the request's instances spread as if placed one
 * after another, without reading every host's rows again for each of them. The claims in the database stay
 * the arbiter: a view that is out of date only costs a claim that fails and moves to the next candidate.
 */
export class HostSnapshot {
  private states?: Promise<HostState[]>;

  constructor(private readonly load: () => Promise<HostState[]>) {}

  hosts(): Promise<HostState[]> {
    if (!this.states) {
      this.states = this.load();
      // A failed read is not kept: the next instance of the request reads again.
      this.states.catch(() => (this.states = undefined));
    }
    return this.states;
  }
}

/** Takes an instance's resources from the free room of the host state it was placed on. */
export function consume(host: HostState, resources: Resources): void {
  host.free = {
    vcpus: host.free.vcpus - resources.vcpus,
    memoryMb: host.free.memoryMb - resources.memoryMb,
    diskGb: host.free.diskGb - resources.diskGb,
  };
}

/** The scheduler of the conductor: reads the hosts' state from the database and ranks them for an instance. */
@Injectable()
export class Scheduler {
  private readonly log = rootLogger().child({ service: 'conductor', component: 'scheduler' });

  constructor(
    private readonly dataSource: DataSource,
    private readonly records: InstanceRecords,
    @Inject(NOVUM_CONFIG) private readonly config: NovumConfig,
  ) {}

  async hostStates(): Promise<HostState[]> {
    const [nodes, services, metadata] = await Promise.all([
      this.dataSource.getRepository(ComputeNodeEntity).find(),
      this.dataSource.getRepository(ComputeServiceEntity).findBy({ binary: Binary.COMPUTE }),
      aggregateMetadataByHost(this.dataSource),
    ]);
    const serviceByHost = new Map(services.map((service) => [service.host, service]));
    return nodes.flatMap((node) => {
      const service = serviceByHost.get(node.host);
      if (!service) return [];
      const aggregateMetadata = metadata.get(node.host);
      return [
        {
          node,
          service,
          free: freeResources(node),
          availabilityZone: zoneFromMetadata(aggregateMetadata),
          aggregateMetadata,
        },
      ];
    });
  }

  async requestSpec(instance: InstanceEntity, excludedHosts: readonly string[]): Promise<RequestSpec> {
    const hints = instance.schedulerHints ?? {};
    const [sameHost, differentHost] = await Promise.all([
      this.records.hostsOf(hints.same_host ?? []),
      this.records.hostsOf(hints.different_host ?? []),
    ]);
    return {
      instanceUuid: instance.uuid,
      resources: resourcesOf(instance.flavor),
      driver: instance.flavor.extra_specs?.[DRIVER_EXTRA_SPEC],
      extraSpecs: instance.flavor.extra_specs,
      availabilityZone: instance.availabilityZone,
      requestedHost: hints.requested_host,
      excludedHosts,
      // A same_host hint whose instances are nowhere (yet) can only be met by no host, as in Nova.
      sameHost: hints.same_host?.length ? (sameHost.length ? sameHost : ['']) : [],
      differentHost,
      group: hints.group ? await this.groupPlacement(hints.group, instance.uuid) : undefined,
      now: Date.now(),
      serviceDownTimeSeconds: this.config.serviceDownTimeSeconds,
    };
  }

  /** Where the other members of a server group are; a group that does not exist places nothing. */
  private async groupPlacement(groupId: string, instanceUuid: string): Promise<GroupPlacement> {
    const group = await this.dataSource.getRepository(ServerGroupEntity).findOneBy({ id: groupId });
    if (!group) return { policy: 'anti-affinity', membersByHost: new Map(), maxServerPerHost: 0 };
    const members = await this.dataSource.getRepository(ServerGroupMemberEntity).findBy({ groupId });
    const others = members.map((m) => m.instanceUuid).filter((uuid) => uuid !== instanceUuid);
    return {
      policy: group.policy,
      membersByHost: await this.records.hostCounts(others),
      maxServerPerHost: group.rules?.max_server_per_host ?? 1,
    };
  }

  /** A view of the hosts for the instances of one request (see HostSnapshot). */
  snapshot(): HostSnapshot {
    return new HostSnapshot(() => this.hostStates());
  }

  /**
   * The hosts an instance may go to, best first; empty means "No valid host". With a snapshot, the hosts
   * are the request's view and the best one is charged with the instance at once, before any other
   * instance of the request is ranked.
   */
  async select(
    instance: InstanceEntity,
    excludedHosts: readonly string[],
    snapshot?: HostSnapshot,
  ): Promise<HostState[]> {
    const spec = await this.requestSpec(instance, excludedHosts);
    const hosts = await (snapshot ? snapshot.hosts() : this.hostStates());
    const { ranked, rejectedBy } = rankHosts(hosts, spec);
    if (snapshot && ranked.length) consume(ranked[0], spec.resources);
    if (!ranked.length) {
      this.log.info(
        { instance: instance.uuid, hosts: hosts.length, rejectedBy },
        'no host passed the filters',
      );
    }
    return ranked;
  }
}
