import { CONTAINER_FORMATS, DISK_FORMATS, MEMBER_STATUSES, VISIBILITIES } from './model';

const nullableString = (description: string, maxLength = 255) => ({
  type: ['null', 'string'],
  description,
  maxLength,
});
const readOnly = <T extends object>(schema: T) => ({ ...schema, readOnly: true });

/** Glance's `GET /v2/schemas/image`, which glanceclient reads to know the attributes and their types. */
export const IMAGE_SCHEMA = {
  name: 'image',
  additionalProperties: { type: 'string' },
  properties: {
    id: {
      type: 'string',
      description: 'An identifier for the image',
      pattern: '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$',
    },
    name: nullableString('Descriptive name for the image'),
    status: readOnly({
      type: 'string',
      description: 'Status of the image',
      enum: [
        'queued',
        'saving',
        'active',
        'killed',
        'deleted',
        'uploading',
        'importing',
        'pending_delete',
        'deactivated',
      ],
    }),
    visibility: { type: 'string', description: 'Scope of image accessibility', enum: [...VISIBILITIES] },
    protected: { type: 'boolean', description: 'If true, image will not be deletable.' },
    os_hidden: {
      type: 'boolean',
      description: 'If true, image will not appear in default image list response.',
    },
    checksum: readOnly({ ...nullableString('md5 hash of image contents.', 32) }),
    os_hash_algo: readOnly(nullableString('Algorithm to calculate the os_hash_value', 64)),
    os_hash_value: readOnly(
      nullableString(
        'Hexdigest of the image contents using the algorithm specified by the os_hash_algo',
        128,
      ),
    ),
    owner: nullableString('Owner of the image'),
    size: readOnly({ type: ['null', 'integer'], description: 'Size of image file in bytes' }),
    virtual_size: readOnly({ type: ['null', 'integer'], description: 'Virtual size of image in bytes' }),
    container_format: {
      type: ['null', 'string'],
      description: 'Format of the container',
      enum: [null, ...CONTAINER_FORMATS],
    },
    disk_format: {
      type: ['null', 'string'],
      description: 'Format of the disk',
      enum: [null, ...DISK_FORMATS],
    },
    created_at: readOnly({ type: 'string', description: 'Date and time of image registration' }),
    updated_at: readOnly({ type: 'string', description: 'Date and time of the last image modification' }),
    tags: {
      type: 'array',
      description: 'List of strings related to the image',
      items: { type: 'string', maxLength: 255 },
    },
    direct_url: readOnly({
      type: 'string',
      description: 'URL to access the image file kept in external store',
    }),
    min_ram: { type: 'integer', description: 'Amount of ram (in MB) required to boot image.' },
    min_disk: { type: 'integer', description: 'Amount of disk space (in GB) required to boot image.' },
    self: readOnly({ type: 'string', description: 'An image self url' }),
    file: readOnly({ type: 'string', description: 'An image file url' }),
    stores: readOnly({ type: 'string', description: 'Store in which image data resides.' }),
    schema: readOnly({ type: 'string', description: 'An image schema url' }),
    locations: {
      type: 'array',
      description: 'A set of URLs to access the image file kept in external store',
      items: { type: 'object' },
    },
  },
  links: [
    { rel: 'self', href: '{self}' },
    { rel: 'enclosure', href: '{file}' },
    { rel: 'describedby', href: '{schema}' },
  ],
};

export const IMAGES_SCHEMA = {
  name: 'images',
  properties: {
    images: { type: 'array', items: IMAGE_SCHEMA },
    schema: { type: 'string' },
    first: { type: 'string' },
    next: { type: 'string' },
  },
  links: [
    { rel: 'first', href: '{first}' },
    { rel: 'next', href: '{next}' },
    { rel: 'describedby', href: '{schema}' },
  ],
};

export const MEMBER_SCHEMA = {
  name: 'member',
  properties: {
    created_at: { type: 'string', description: 'Date and time of image member creation' },
    image_id: { type: 'string', description: 'An identifier for the image' },
    member_id: { type: 'string', description: 'An identifier for the image member (tenantId)' },
    status: { type: 'string', description: 'The status of this image member', enum: [...MEMBER_STATUSES] },
    updated_at: { type: 'string', description: 'Date and time of last modification of image member' },
    schema: readOnly({ type: 'string' }),
  },
};

export const MEMBERS_SCHEMA = {
  name: 'members',
  properties: {
    members: { type: 'array', items: MEMBER_SCHEMA },
    schema: { type: 'string' },
  },
  links: [{ rel: 'describedby', href: '{schema}' }],
};

/**
 * Glance's `GET /v2/schemas/metadefs/namespace`: glanceclient builds its namespace model from it before it lists
 * the (empty) catalog of metadata definitions.
 */
export const METADEF_NAMESPACE_SCHEMA = {
  name: 'namespace',
  properties: {
    namespace: {
      type: 'string',
      description: 'The unique namespace text.',
      maxLength: 80,
    },
    display_name: { type: 'string', description: 'The user friendly name for the namespace.', maxLength: 80 },
    description: {
      type: 'string',
      description: 'Provides a user friendly description of the namespace.',
      maxLength: 500,
    },
    visibility: {
      type: 'string',
      description: 'Scope of namespace accessibility.',
      enum: ['public', 'private'],
    },
    protected: { type: 'boolean', description: 'If true, namespace will not be deletable.' },
    owner: { type: 'string', description: 'Owner of the namespace.', maxLength: 255 },
    created_at: readOnly({
      type: 'string',
      description: 'Date and time of namespace creation',
      format: 'date-time',
    }),
    updated_at: readOnly({
      type: 'string',
      description: 'Date and time of the last namespace modification',
      format: 'date-time',
    }),
    schema: readOnly({ type: 'string' }),
    self: readOnly({ type: 'string' }),
    resource_type_associations: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          prefix: { type: 'string' },
          properties_target: { type: 'string' },
        },
      },
    },
    properties: { type: 'object' },
    objects: { type: 'array', items: { type: 'object' } },
    tags: { type: 'array', items: { type: 'object' } },
  },
  required: ['namespace'],
  additionalProperties: false,
};

export const METADEF_NAMESPACES_SCHEMA = {
  name: 'namespaces',
  properties: {
    namespaces: { type: 'array', items: METADEF_NAMESPACE_SCHEMA },
    first: { type: 'string' },
    next: { type: 'string' },
    schema: { type: 'string' },
  },
  links: [
    { rel: 'first', href: '{first}' },
    { rel: 'next', href: '{next}' },
    { rel: 'describedby', href: '{schema}' },
  ],
};
