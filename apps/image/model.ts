/** Glance's vocabulary: formats, visibilities and which attributes a client may not write. */
export const DISK_FORMATS = [
  'ami',
  'ari',
  'aki',
  'vhd',
  'vhdx',
  'vmdk',
  'raw',
  'qcow2',
  'vdi',
  'iso',
  'ploop',
];
export const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'];
export const VISIBILITIES = ['public', 'private', 'shared', 'community'] as const;
export const MEMBER_STATUSES = ['pending', 'accepted', 'rejected'] as const;

/** Core attributes a client may set (at create) or change (by JSON patch). */
export const WRITABLE_CORE = [
  'name',
  'visibility',
  'protected',
  'os_hidden',
  'disk_format',
  'container_format',
  'min_disk',
  'min_ram',
  'tags',
  'owner',
] as const;

/** Attributes Glance computes; writing them is 403 "Attribute 'x' is read-only.". */
export const READ_ONLY = [
  'id',
  'status',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'size',
  'virtual_size',
  'created_at',
  'updated_at',
  'self',
  'file',
  'schema',
  'direct_url',
  'locations',
  'stores',
];

/** Attributes no client may use at all: 403 "Attribute 'x' is reserved.". */
export function isReserved(key: string): boolean {
  return ['location', 'deleted', 'deleted_at'].includes(key) || key.startsWith('os_glance');
}

export const MAX_INT32 = 2 ** 31 - 1;
/** Glance's image_property_quota, image_tag_quota and image_member_quota defaults. */
export const PROPERTY_QUOTA = 128;
export const TAG_QUOTA = 128;
export const MEMBER_QUOTA = 128;
