import { isServiceUp } from '@novum/compute';
import { ComputeServiceEntity, KeyPairEntity } from '@novum/db';
import { FlavorView } from './flavor.service';
import { ApiVersion, renderView, ViewStep } from './microversion';
import { ServerGroupView } from './server-group.service';

/** Public root of the compute API (`http://host:8774/compute`), for links. */
export const COMPUTE_ROOT_URL = 'COMPUTE_ROOT_URL';

export class ComputeLinks {
  constructor(readonly root: string) {}

  /** Nova's pair of links: the versioned `self` and the unversioned `bookmark`. */
  resource(collection: string, id: string): { rel: string; href: string }[] {
    return [
      { rel: 'self', href: `${this.root}/v2.1/${collection}/${id}` },
      { rel: 'bookmark', href: `${this.root}/${collection}/${id}` },
    ];
  }

  /** The unversioned link Nova gives an image or flavor inside a server. */
  bookmark(collection: string, id: string): string {
    return `${this.root}/${collection}/${id}`;
  }

  next(collection: string, query: Record<string, string | undefined>, marker: string) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query))
      if (value !== undefined && key !== 'marker') params.set(key, value);
    params.set('marker', marker);
    return [{ rel: 'next', href: `${this.root}/v2.1/${collection}?${params.toString()}` }];
  }
}

type FlavorCtx = { flavor: FlavorView; links: ComputeLinks };

const FLAVOR_BRIEF: ViewStep<FlavorCtx>[] = [
  {
    since: '2.1',
    apply: (v, { flavor, links }) => {
      v.id = flavor.id;
      v.name = flavor.name;
      v.links = links.resource('flavors', flavor.id);
    },
  },
  { since: '2.55', apply: (v, { flavor }) => (v.description = flavor.description) },
];

const FLAVOR_DETAIL: ViewStep<FlavorCtx>[] = [
  ...FLAVOR_BRIEF,
  {
    since: '2.1',
    apply: (v, { flavor }) => {
      v.ram = flavor.memoryMb;
      v.disk = flavor.rootGb;
      v.vcpus = flavor.vcpus;
      v['OS-FLV-EXT-DATA:ephemeral'] = flavor.ephemeralGb;
      v['OS-FLV-DISABLED:disabled'] = flavor.disabled;
      v['os-flavor-access:is_public'] = flavor.isPublic;
      v.rxtx_factor = flavor.rxtxFactor;
    },
  },
  // Before 2.75 a flavor without swap says "" rather than 0.
  { since: '2.1', until: '2.75', apply: (v, { flavor }) => (v.swap = flavor.swap || '') },
  { since: '2.75', apply: (v, { flavor }) => (v.swap = flavor.swap) },
  { since: '2.61', apply: (v, { flavor }) => (v.extra_specs = flavor.extraSpecs) },
];

export function flavorBrief(flavor: FlavorView, links: ComputeLinks, version: ApiVersion) {
  return renderView(FLAVOR_BRIEF, { flavor, links }, version);
}

export function flavorDetail(flavor: FlavorView, links: ComputeLinks, version: ApiVersion) {
  return renderView(FLAVOR_DETAIL, { flavor, links }, version);
}

const KEYPAIR_LISTED: ViewStep<KeyPairEntity>[] = [
  {
    since: '2.1',
    apply: (v, k) => {
      v.name = k.name;
      v.public_key = k.publicKey;
      v.fingerprint = k.fingerprint;
    },
  },
  { since: '2.2', apply: (v, k) => (v.type = k.type) },
];

const KEYPAIR_SHOWN: ViewStep<KeyPairEntity>[] = [
  ...KEYPAIR_LISTED,
  {
    since: '2.1',
    apply: (v, k) => {
      v.user_id = k.userId;
      v.id = k.id;
      v.created_at = novaTime(k.createdAt);
      v.updated_at = null;
      v.deleted_at = null;
      v.deleted = false;
    },
  },
];

const KEYPAIR_CREATED: ViewStep<KeyPairEntity>[] = [
  ...KEYPAIR_LISTED,
  { since: '2.1', apply: (v, k) => (v.user_id = k.userId) },
];

export function keyPairListed(k: KeyPairEntity, version: ApiVersion) {
  return { keypair: renderView(KEYPAIR_LISTED, k, version) };
}

export function keyPairShown(k: KeyPairEntity, version: ApiVersion) {
  return { keypair: renderView(KEYPAIR_SHOWN, k, version) };
}

export function keyPairCreated(k: KeyPairEntity, privateKey: string | undefined, version: ApiVersion) {
  const view = renderView(KEYPAIR_CREATED, k, version);
  if (privateKey !== undefined) view.private_key = privateKey;
  return { keypair: view };
}

const SERVER_GROUP: ViewStep<ServerGroupView>[] = [
  {
    since: '2.1',
    apply: (v, g) => {
      v.id = g.id;
      v.name = g.name;
      v.members = g.members;
    },
  },
  {
    since: '2.1',
    until: '2.64',
    apply: (v, g) => {
      v.policies = [g.policy];
      v.metadata = {};
    },
  },
  {
    since: '2.13',
    apply: (v, g) => {
      v.project_id = g.projectId;
      v.user_id = g.userId;
    },
  },
  {
    since: '2.64',
    apply: (v, g) => {
      v.policy = g.policy;
      v.rules = g.rules;
    },
  },
];

export function serverGroupView(group: ServerGroupView, version: ApiVersion) {
  return renderView(SERVER_GROUP, group, version);
}

/** `downTimeSeconds` is Nova's `service_down_time` (NOVUM_SERVICE_DOWN_TIME): a service silent longer is down. */
type ServiceCtx = { service: ComputeServiceEntity; now: number; downTimeSeconds: number; zone?: string };

const SERVICE: ViewStep<ServiceCtx>[] = [
  { since: '2.1', until: '2.53', apply: (v, { service }) => (v.id = service.id) },
  { since: '2.53', apply: (v, { service }) => (v.id = service.uuid) },
  {
    since: '2.1',
    apply: (v, { service, now, downTimeSeconds, zone }) => {
      const seen = service.lastSeenUp ?? service.updatedAt ?? service.createdAt;
      v.binary = service.binary;
      v.host = service.host;
      v.zone = service.binary === 'nova-compute' ? (zone ?? 'nova') : 'internal';
      v.status = service.disabled ? 'disabled' : 'enabled';
      v.state = isServiceUp(service, now, downTimeSeconds) ? 'up' : 'down';
      v.updated_at = novaTime(seen);
      v.disabled_reason = service.disabledReason;
    },
  },
  { since: '2.11', apply: (v, { service }) => (v.forced_down = service.forcedDown) },
];

export function serviceView(
  service: ComputeServiceEntity,
  now: number,
  downTimeSeconds: number,
  version: ApiVersion,
  zone?: string,
) {
  return renderView(SERVICE, { service, now, downTimeSeconds, zone }, version);
}

/** Nova's timestamps: ISO 8601 without the fraction and zone (`2026-11-28T07:30:00.000000`). */
export function novaTime(iso: string): string {
  return `${iso.slice(0, 19)}.000000`;
}
