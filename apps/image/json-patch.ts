import { BadRequestError } from '@novum/common';

export type PatchOp = 'add' | 'replace' | 'remove';

export interface PatchOperation {
  op: PatchOp;
  /** The attribute the operation addresses (Glance's pointers have exactly one segment). */
  attribute: string;
  value?: unknown;
}

/** Decodes one JSON pointer reference token (RFC 6901: `~1` is `/`, `~0` is `~`). */
function decodeToken(token: string, pointer: string): string {
  if (/~[^01]|~$/.test(token)) throw new BadRequestError(`Invalid JSON pointer: '${pointer}'.`);
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

/**
 * Parses a body of media type `application/openstack-images-v2.1-json-patch`: an array of
 * `{"op": "add"|"replace"|"remove", "path": "/attribute", "value": ...}`. Anything else is a 400 that
 * says what is wrong.
 */
export function parseImagePatch(body: unknown): PatchOperation[] {
  if (!Array.isArray(body)) {
    throw new BadRequestError('Request body must be a JSON array of operation objects.');
  }
  if (body.length > 1000) throw new BadRequestError('Too many operations in one patch.');
  return body.map((entry, index) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new BadRequestError(`Operation ${index} must be a JSON object.`);
    }
    const { op, path } = entry as Record<string, unknown>;
    if (op !== 'add' && op !== 'replace' && op !== 'remove') {
      throw new BadRequestError(
        `Operation ${index}: 'op' must be one of 'add', 'replace' or 'remove', not ${JSON.stringify(op) ?? 'missing'}.`,
      );
    }
    if (typeof path !== 'string') {
      throw new BadRequestError(`Operation ${index}: 'path' must be a string.`);
    }
    if (!path.startsWith('/')) {
      throw new BadRequestError(`Invalid JSON pointer for this resource: '${path}': it must start with '/'.`);
    }
    const tokens = path.slice(1).split('/');
    if (tokens.length !== 1 || tokens[0] === '') {
      throw new BadRequestError(`Invalid JSON pointer for this resource: '${path}'.`);
    }
    const attribute = decodeToken(tokens[0], path);
    if (op === 'remove') {
      if ('value' in entry) throw new BadRequestError(`Operation ${index}: 'remove' takes no 'value'.`);
      return { op, attribute };
    }
    if (!('value' in entry)) throw new BadRequestError(`Operation ${index}: '${op}' needs a 'value'.`);
    return { op, attribute, value: (entry as { value: unknown }).value };
  });
}
