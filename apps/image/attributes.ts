import { AuthContext, isAdmin } from '@novum/auth';
import { BadRequestError, ConflictError, ForbiddenError, PayloadTooLargeError } from '@novum/common';
import { ImageVisibility } from '@novum/db';
import {
  CONTAINER_FORMATS,
  DISK_FORMATS,
  isReserved,
  MAX_INT32,
  PROPERTY_QUOTA,
  READ_ONLY,
  TAG_QUOTA,
  VISIBILITIES,
  WRITABLE_CORE,
} from './model';

/** The writable part of an image, as create and JSON patch build it before it is stored. */
export interface ImageDraft {
  name: string | null;
  visibility: ImageVisibility;
  protected: boolean;
  os_hidden: boolean;
  disk_format: string | null;
  container_format: string | null;
  min_disk: number;
  min_ram: number;
  owner: string | null;
  tags: string[];
  properties: Record<string, string>;
}

const isCore = (key: string): key is (typeof WRITABLE_CORE)[number] =>
  (WRITABLE_CORE as readonly string[]).includes(key);

function invalid(key: string, why: string): BadRequestError {
  return new BadRequestError(`Invalid value for '${key}': ${why}.`);
}

/** Refuses keys no client may write: computed attributes (read-only) and Glance's reserved names. */
export function checkWritable(key: string): void {
  if (READ_ONLY.includes(key)) throw new ForbiddenError(`Attribute '${key}' is read-only.`);
  if (isReserved(key)) throw new ForbiddenError(`Attribute '${key}' is reserved.`);
}

/** Validates and sets one attribute (core or custom) on a draft; every bad value is a 400 naming it. */
export function setAttribute(draft: ImageDraft, key: string, value: unknown): void {
  checkWritable(key);
  if (!isCore(key)) {
    if (key.length === 0 || key.length > 255) throw invalid(key, 'property names have 1 to 255 characters');
    if (key === '__proto__') throw invalid(key, 'not a usable property name');
    if (typeof value !== 'string') throw invalid(key, 'custom properties are strings');
    if (value.length > 65535) throw invalid(key, 'at most 65535 characters');
    if (!Object.hasOwn(draft.properties, key) && Object.keys(draft.properties).length >= PROPERTY_QUOTA) {
      throw new PayloadTooLargeError(`Maximum number of properties (${PROPERTY_QUOTA}) exceeded.`);
    }
    draft.properties[key] = value;
    return;
  }
  switch (key) {
    case 'name':
      if (value !== null && (typeof value !== 'string' || value.length > 255))
        throw invalid(key, 'a string of at most 255 characters or null');
      draft.name = value as string | null;
      return;
    case 'owner':
      if (value !== null && (typeof value !== 'string' || value.length > 64))
        throw invalid(key, 'a project id (at most 64 characters) or null');
      draft.owner = value as string | null;
      return;
    case 'visibility':
      if (!VISIBILITIES.includes(value as ImageVisibility))
        throw invalid(key, `one of ${VISIBILITIES.join(', ')}`);
      draft.visibility = value as ImageVisibility;
      return;
    case 'protected':
    case 'os_hidden':
      if (typeof value !== 'boolean') throw invalid(key, 'true or false');
      draft[key] = value;
      return;
    case 'disk_format':
      if (value !== null && !DISK_FORMATS.includes(value as string))
        throw invalid(key, `one of ${DISK_FORMATS.join(', ')}`);
      draft.disk_format = value as string | null;
      return;
    case 'container_format':
      if (value !== null && !CONTAINER_FORMATS.includes(value as string))
        throw invalid(key, `one of ${CONTAINER_FORMATS.join(', ')}`);
      draft.container_format = value as string | null;
      return;
    case 'min_disk':
    case 'min_ram':
      if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > MAX_INT32)
        throw invalid(key, `a whole number from 0 to ${MAX_INT32}`);
      draft[key] = value as number;
      return;
    case 'tags':
      if (!Array.isArray(value)) throw invalid(key, 'a list of strings');
      draft.tags = checkTags(value);
      return;
  }
}

export function checkTag(tag: unknown): string {
  if (typeof tag !== 'string' || tag.length === 0 || tag.length > 255)
    throw invalid('tags', 'each tag is a string of 1 to 255 characters');
  return tag;
}

function checkTags(tags: unknown[]): string[] {
  const unique = [...new Set(tags.map(checkTag))];
  if (unique.length > TAG_QUOTA)
    throw new PayloadTooLargeError(`Maximum number of tags (${TAG_QUOTA}) exceeded.`);
  return unique;
}

/** Removes an attribute: custom properties only, since core attributes always have a value. */
export function removeAttribute(draft: ImageDraft, key: string): void {
  checkWritable(key);
  if (isCore(key)) throw new ForbiddenError(`Property ${key} may not be removed.`);
  if (!Object.hasOwn(draft.properties, key)) throw new ConflictingPropertyError(key);
  delete draft.properties[key];
}

export function hasAttribute(draft: ImageDraft, key: string): boolean {
  return isCore(key) || Object.hasOwn(draft.properties, key);
}

export class ConflictingPropertyError extends ConflictError {
  constructor(key: string) {
    super(`Property ${key} does not exist.`);
  }
}

/** Policy on attribute values: only admins publish images or give them to another project. */
export function checkDraftPolicy(auth: AuthContext, draft: ImageDraft, before?: ImageDraft): void {
  if (draft.visibility === 'public' && before?.visibility !== 'public' && !isAdmin(auth)) {
    throw new ForbiddenError('You are not authorized to complete publicize_image action.');
  }
  if (draft.owner !== (before ? before.owner : auth.projectId) && !isAdmin(auth)) {
    throw new ForbiddenError(`You are not permitted to set the owner of an image to '${draft.owner}'.`);
  }
}
