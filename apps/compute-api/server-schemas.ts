import { isIP } from 'node:net';
import { BadRequestError, canonicalIp } from '@novum/common';
import { toNovaBoolean, toNovaInt } from './controllers/dto';
import { ApiVersion } from './microversion';

/**
 * Nova's JSON schemas of the servers API (nova/api/openstack/compute/schemas/servers.py), checked by hand:
 * each check fails with Nova's `Invalid input for field/attribute <name>. Value: <value>. <reason>`.
 */
export function invalid(field: string, value: unknown, reason: string): BadRequestError {
  const shown = typeof value === 'string' ? value : JSON.stringify(value);
  return new BadRequestError(`Invalid input for field/attribute ${field}. Value: ${shown}. ${reason}`);
}

type Json = Record<string, unknown>;

export const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
/** Nova's valid_name_regex: printable, no leading or trailing whitespace. */
const NAME = /^(?![\s])[^\u0000-\u001f\u007f]*(?<![\s])$/s;
const METADATA_KEY = /^[a-zA-Z0-9-_:. ]{1,255}$/;
const HOSTNAME =
  /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
/** Nova's tag: 1-60 characters, no `/` or `,`. */
const TAG = /^[^,/]{1,60}$/;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function onlyKeys(field: string, value: Json, allowed: readonly string[]): void {
  const extra = Object.keys(value).filter((key) => !allowed.includes(key));
  if (extra.length) {
    throw invalid(
      field,
      value,
      `Additional properties are not allowed (${extra.map((k) => `'${k}'`).join(', ')} ${extra.length > 1 ? 'were' : 'was'} unexpected)`,
    );
  }
}

export function requireObject(field: string, value: unknown): Json {
  if (!isObject(value)) throw invalid(field, value, `${JSON.stringify(value)} is not of type 'object'`);
  return value;
}

/** Nova's `parameter_types.name`: 1-255 characters without leading or trailing whitespace. */
export function checkName(field: string, value: unknown): string {
  if (typeof value !== 'string')
    throw invalid(field, value, `${JSON.stringify(value)} is not of type 'string'`);
  if (value.length < 1) throw invalid(field, value, `'' is too short`);
  if (value.length > 255) throw invalid(field, value, `'${value}' is too long`);
  if (!NAME.test(value)) throw invalid(field, value, `'${value}' does not match the allowed pattern`);
  return value;
}

export function checkString(field: string, value: unknown, min: number, max: number): string {
  if (typeof value !== 'string')
    throw invalid(field, value, `${JSON.stringify(value)} is not of type 'string'`);
  if (value.length < min) throw invalid(field, value, `'${value}' is too short`);
  if (value.length > max) throw invalid(field, value, `'${value}' is too long`);
  if (value.includes('\u0000')) throw invalid(field, value, 'must not contain NUL characters');
  return value;
}

export function checkDescription(value: unknown): string | null {
  if (value === null) return null;
  const text = checkString('description', value, 0, 255);
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) {
    throw invalid('description', value, 'contains control characters');
  }
  return text;
}

/** Nova's `parameter_types.metadata`: keys 1-255 of [a-zA-Z0-9-_:. ], string values up to 255. */
export function checkMetadata(field: string, value: unknown): Record<string, string> {
  const metadata = requireObject(field, value);
  for (const [key, item] of Object.entries(metadata)) {
    if (!METADATA_KEY.test(key))
      throw invalid(field, value, `Additional properties are not allowed ('${key}' was unexpected)`);
    if (typeof item !== 'string')
      throw invalid(field, value, `${JSON.stringify(item)} is not of type 'string'`);
    if (item.length > 255) throw invalid(field, value, `'${item}' is too long`);
    if (item.includes('\u0000')) throw invalid(field, value, 'must not contain NUL characters');
  }
  return metadata as Record<string, string>;
}

export function checkTag(field: string, value: unknown): string {
  if (typeof value !== 'string' || !TAG.test(value)) {
    throw invalid(
      field,
      value,
      `${JSON.stringify(value)} does not match '^[^,/]*$' or is not 1-60 characters`,
    );
  }
  return value;
}

export function checkTags(field: string, value: unknown, max = 50): string[] {
  if (!Array.isArray(value)) throw invalid(field, value, `${JSON.stringify(value)} is not of type 'array'`);
  if (value.length > max) throw invalid(field, value, `${JSON.stringify(value)} is too long`);
  const tags = value.map((tag) => checkTag(field, tag));
  if (new Set(tags).size !== tags.length) throw invalid(field, value, 'has non-unique elements');
  return tags;
}

function checkBoolean(field: string, value: unknown): boolean {
  const parsed = toNovaBoolean(value);
  if (parsed === undefined) throw invalid(field, value, `${JSON.stringify(value)} is not of type 'boolean'`);
  return parsed;
}

function checkCount(field: string, value: unknown): number {
  const parsed = toNovaInt(value);
  if (parsed === undefined || (typeof value === 'string' && !/^[0-9]+$/.test(value))) {
    throw invalid(field, value, `${JSON.stringify(value)} is not of type 'integer', 'string'`);
  }
  if (parsed < 1) throw invalid(field, value, `${parsed} is less than the minimum of 1`);
  if (parsed > 2147483647) throw invalid(field, value, `${parsed} is greater than the maximum of 2147483647`);
  return parsed;
}

function checkIp(field: string, value: unknown, version: 4 | 6): string {
  if (typeof value !== 'string' || isIP(value) !== version) {
    throw invalid(field, value, `${JSON.stringify(value)} is not a 'ipv${version}'`);
  }
  // Nova stores the address as netaddr prints it: `::babe:dc0c:1602`, not the spelling sent.
  return canonicalIp(value) ?? value;
}

/** A base64 text as Python's base64.b64decode accepts it (padding required). */
export function isBase64(text: string): boolean {
  const compact = text.replace(/\s/g, '');
  return compact.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(compact);
}

/** Nova's imageRef: a UUID, or an href ending in one. */
export function imageIdFromRef(ref: string): string | undefined {
  const last = ref.split('/').pop() ?? '';
  return UUID.test(last) ? last : undefined;
}

export interface RequestedNetwork {
  uuid?: string;
  port?: string;
  fixedIp?: string;
  tag?: string;
}

export interface ServerCreateRequest {
  name: string;
  imageRef?: string;
  flavorRef: string;
  /** `auto`, `none`, a list, or absent (before 2.37: as `auto`). */
  networks: 'auto' | 'none' | RequestedNetwork[] | undefined;
  securityGroups: string[];
  metadata: Record<string, string>;
  userData?: string;
  availabilityZone?: string;
  keyName?: string;
  adminPass?: string;
  accessIPv4?: string;
  accessIPv6?: string;
  minCount: number;
  maxCount: number;
  returnReservationId: boolean;
  diskConfig?: 'AUTO' | 'MANUAL';
  configDrive: boolean;
  description?: string | null;
  tags: string[];
  host?: string;
  hypervisorHostname?: string;
  hostname?: string;
  personality: { path: string; contents: string }[];
  schedulerHints: { group?: string; sameHost: string[]; differentHost: string[] };
}

const BASE_KEYS = [
  'name',
  'imageRef',
  'flavorRef',
  'adminPass',
  'metadata',
  'networks',
  'OS-DCF:diskConfig',
  'accessIPv4',
  'accessIPv6',
  'key_name',
  'availability_zone',
  'block_device_mapping',
  'block_device_mapping_v2',
  'config_drive',
  'min_count',
  'max_count',
  'return_reservation_id',
  'security_groups',
  'user_data',
];

function uuidList(field: string, value: unknown): string[] {
  const items = Array.isArray(value) ? value : [value];
  return items.map((item) => {
    if (typeof item !== 'string' || !UUID.test(item))
      throw invalid(field, value, `${JSON.stringify(item)} is not a 'uuid'`);
    return item;
  });
}

/** Validates `POST /servers` at microversion `v` and returns the request in one shape. */
export function parseServerCreate(body: unknown, v: ApiVersion): ServerCreateRequest {
  const root = requireObject('root', body);
  onlyKeys('root', root, ['server', 'os:scheduler_hints', 'OS-SCH-HNT:scheduler_hints']);
  if (root.server === undefined) throw invalid('root', root, "'server' is a required property");
  const server = requireObject('server', root.server);
  const allowed = [...BASE_KEYS];
  if (!v.atLeast('2.57')) allowed.push('personality');
  if (v.atLeast('2.19')) allowed.push('description');
  if (v.atLeast('2.52')) allowed.push('tags');
  if (v.atLeast('2.63')) allowed.push('trusted_image_certificates');
  if (v.atLeast('2.74')) allowed.push('host', 'hypervisor_hostname');
  if (v.atLeast('2.90')) allowed.push('hostname');
  onlyKeys('server', server, allowed);

  if (server.name === undefined) throw invalid('server', server, "'name' is a required property");
  const name = checkName('name', server.name);
  if (server.flavorRef === undefined) throw invalid('server', server, "'flavorRef' is a required property");
  const flavorRaw = server.flavorRef;
  if (
    !(typeof flavorRaw === 'string' && flavorRaw.length >= 1 && flavorRaw.length <= 255) &&
    !(typeof flavorRaw === 'number' && Number.isInteger(flavorRaw))
  ) {
    throw invalid('flavorRef', flavorRaw, `${JSON.stringify(flavorRaw)} is not of type 'string', 'integer'`);
  }
  let imageRef: string | undefined;
  if (server.imageRef !== undefined) imageRef = checkString('imageRef', server.imageRef, 0, 255);

  let networks: ServerCreateRequest['networks'];
  if (server.networks === undefined) {
    if (v.atLeast('2.37')) throw invalid('server', server, "'networks' is a required property");
  } else if (server.networks === 'auto' || server.networks === 'none') {
    if (!v.atLeast('2.37'))
      throw invalid('networks', server.networks, `'${server.networks}' is not of type 'array'`);
    networks = server.networks;
  } else if (Array.isArray(server.networks)) {
    networks = server.networks.map((item) => {
      const entry = requireObject('networks', item);
      onlyKeys(
        'networks',
        entry,
        v.atLeast('2.32') ? ['uuid', 'port', 'fixed_ip', 'tag'] : ['uuid', 'port', 'fixed_ip'],
      );
      const requested: RequestedNetwork = {};
      if (entry.uuid !== undefined) requested.uuid = checkString('uuid', entry.uuid, 1, 255);
      if (entry.port !== undefined && entry.port !== null) {
        if (typeof entry.port !== 'string' || !UUID.test(entry.port)) {
          throw invalid('port', entry.port, `${JSON.stringify(entry.port)} is not a 'uuid'`);
        }
        requested.port = entry.port;
      }
      if (entry.fixed_ip !== undefined) {
        if (typeof entry.fixed_ip !== 'string' || !isIP(entry.fixed_ip)) {
          throw invalid(
            'fixed_ip',
            entry.fixed_ip,
            `${JSON.stringify(entry.fixed_ip)} is not a 'ip-address'`,
          );
        }
        requested.fixedIp = entry.fixed_ip;
      }
      if (entry.tag !== undefined) requested.tag = checkTag('tag', entry.tag);
      if (!requested.uuid && !requested.port) {
        throw new BadRequestError('Bad networks format: network uuid is not in proper format (None)');
      }
      return requested;
    });
  } else {
    throw invalid('networks', server.networks, `${JSON.stringify(server.networks)} is not of type 'array'`);
  }

  let securityGroups: string[] = [];
  if (server.security_groups !== undefined) {
    if (!Array.isArray(server.security_groups)) {
      throw invalid('security_groups', server.security_groups, "is not of type 'array'");
    }
    securityGroups = server.security_groups.map((item) => {
      const entry = requireObject('security_groups', item);
      onlyKeys('security_groups', entry, ['name']);
      return checkString('name', entry.name, 1, 255);
    });
  }

  const metadata = server.metadata === undefined ? {} : checkMetadata('metadata', server.metadata);
  let userData: string | undefined;
  if (server.user_data !== undefined && server.user_data !== null) {
    userData = checkString('user_data', server.user_data, 0, 65535);
    if (!isBase64(userData)) throw new BadRequestError('User data needs to be valid base 64.');
  }
  const minCount = server.min_count === undefined ? 1 : checkCount('min_count', server.min_count);
  const maxCount = server.max_count === undefined ? minCount : checkCount('max_count', server.max_count);
  if (minCount > maxCount) throw new BadRequestError('min_count must be <= max_count');

  let diskConfig: 'AUTO' | 'MANUAL' | undefined;
  if (server['OS-DCF:diskConfig'] !== undefined) {
    const value = server['OS-DCF:diskConfig'];
    if (value !== 'AUTO' && value !== 'MANUAL') {
      throw invalid('OS-DCF:diskConfig', value, `${JSON.stringify(value)} is not one of ['AUTO', 'MANUAL']`);
    }
    diskConfig = value;
  }

  let personality: { path: string; contents: string }[] = [];
  if (server.personality !== undefined) {
    if (!Array.isArray(server.personality))
      throw invalid('personality', server.personality, "is not of type 'array'");
    personality = server.personality.map((item) => {
      const entry = requireObject('personality', item);
      onlyKeys('personality', entry, ['path', 'contents']);
      const path = checkString('path', entry.path, 1, 255);
      const contents = checkString('contents', entry.contents, 0, 1_000_000);
      if (!isBase64(contents)) throw new BadRequestError(`Personality content for ${path} cannot be decoded`);
      return { path, contents };
    });
  }

  if (server.block_device_mapping_v2 !== undefined) checkImageBdm(server.block_device_mapping_v2, imageRef);
  if (server.block_device_mapping !== undefined) {
    throw new BadRequestError('Block Device Mapping is Invalid: volumes are not available in this cloud.');
  }
  if (server.trusted_image_certificates !== undefined && server.trusted_image_certificates !== null) {
    throw new BadRequestError(
      'Image certificate validation is not supported in this cloud; trusted_image_certificates must be null.',
    );
  }

  const hints = root['os:scheduler_hints'] ?? root['OS-SCH-HNT:scheduler_hints'];
  const schedulerHints: ServerCreateRequest['schedulerHints'] = { sameHost: [], differentHost: [] };
  if (hints !== undefined) {
    const object = requireObject('os:scheduler_hints', hints);
    if (object.group !== undefined) {
      if (typeof object.group !== 'string' || !UUID.test(object.group)) {
        throw invalid('group', object.group, `${JSON.stringify(object.group)} is not a 'uuid'`);
      }
      schedulerHints.group = object.group;
    }
    if (object.same_host !== undefined) schedulerHints.sameHost = uuidList('same_host', object.same_host);
    if (object.different_host !== undefined) {
      schedulerHints.differentHost = uuidList('different_host', object.different_host);
    }
  }

  const imageFromBdm = bdmImage(server.block_device_mapping_v2);
  return {
    name,
    imageRef: imageRef || imageFromBdm,
    flavorRef: String(flavorRaw),
    networks,
    securityGroups,
    metadata,
    userData,
    availabilityZone:
      server.availability_zone === undefined
        ? undefined
        : checkString('availability_zone', server.availability_zone, 1, 255),
    keyName:
      server.key_name === undefined || server.key_name === null
        ? undefined
        : checkString('key_name', server.key_name, 1, 255),
    adminPass:
      server.adminPass === undefined ? undefined : checkString('adminPass', server.adminPass, 0, 255),
    accessIPv4:
      server.accessIPv4 === undefined || server.accessIPv4 === ''
        ? undefined
        : checkIp('accessIPv4', server.accessIPv4, 4),
    accessIPv6:
      server.accessIPv6 === undefined || server.accessIPv6 === ''
        ? undefined
        : checkIp('accessIPv6', server.accessIPv6, 6),
    minCount,
    maxCount,
    returnReservationId:
      server.return_reservation_id === undefined
        ? false
        : checkBoolean('return_reservation_id', server.return_reservation_id),
    diskConfig,
    configDrive:
      server.config_drive === undefined || server.config_drive === ''
        ? false
        : checkBoolean('config_drive', server.config_drive),
    description: server.description === undefined ? undefined : checkDescription(server.description),
    tags: server.tags === undefined ? [] : checkTags('tags', server.tags),
    host: server.host === undefined ? undefined : checkString('host', server.host, 1, 255),
    hypervisorHostname:
      server.hypervisor_hostname === undefined
        ? undefined
        : checkString('hypervisor_hostname', server.hypervisor_hostname, 1, 255),
    hostname: server.hostname === undefined ? undefined : checkHostname(server.hostname),
    personality,
    schedulerHints,
  };
}

function checkHostname(value: unknown): string {
  const text = checkString('hostname', value, 2, 255);
  if (!HOSTNAME.test(text)) throw invalid('hostname', value, `'${text}' does not match the hostname pattern`);
  return text;
}

function bdmImage(value: unknown): string | undefined {
  if (!Array.isArray(value)) return undefined;
  const boot = value.find((item) => isObject(item) && (item.boot_index === 0 || item.boot_index === '0'));
  return isObject(boot) && boot.source_type === 'image' && typeof boot.uuid === 'string'
    ? boot.uuid
    : undefined;
}

/** Only image-backed local boot disks exist here (no block storage service). */
function checkImageBdm(value: unknown, imageRef: string | undefined): void {
  if (!Array.isArray(value)) throw invalid('block_device_mapping_v2', value, "is not of type 'array'");
  for (const item of value) {
    const bdm = requireObject('block_device_mapping_v2', item);
    const source = bdm.source_type;
    const destination = bdm.destination_type ?? 'local';
    if (source === 'image' && destination === 'local') {
      if (typeof bdm.uuid !== 'string' || !UUID.test(bdm.uuid)) {
        throw invalid('uuid', bdm.uuid, `${JSON.stringify(bdm.uuid)} is not a 'uuid'`);
      }
      if (imageRef && imageIdFromRef(imageRef) !== bdm.uuid) {
        throw new BadRequestError('Block Device Mapping is Invalid: the image differs from imageRef.');
      }
      continue;
    }
    if (source === 'blank' && destination === 'local') continue;
    throw new BadRequestError(
      'Block Device Mapping is Invalid: only image-backed local disks are available (no volume service).',
    );
  }
}
