import { BadRequestError, ConflictError } from '@novum/common';
import { HeatResourceEntity, HeatStackEntity } from '@novum/db';
import { StackStore } from './stack.store';

const MARK_UNHEALTHY_KEYS = ['mark_unhealthy', 'resource_status_reason'];

/** Heat's param_utils.extract_bool: true/false in any case, as a boolean or a string. */
function extractBool(name: string, value: unknown): boolean {
  const text = String(value).toLowerCase();
  if ((typeof value !== 'boolean' && typeof value !== 'string') || !['true', 'false'].includes(text))
    throw new BadRequestError(
      `Unrecognized value "${String(value)}" for "${name}", acceptable values are: true, false.`,
    );
  return text === 'true';
}

/** The request of `PATCH .../resources/{name}` checked as Heat's ResourceController.mark_unhealthy does. */
export function markUnhealthyRequest(body: unknown): { markUnhealthy: boolean; reason: string } {
  const given =
    body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  const invalid = Object.keys(given).filter((key) => !MARK_UNHEALTHY_KEYS.includes(key));
  if (invalid.length)
    throw new BadRequestError(
      `Invalid keys in resource mark unhealthy {${invalid.map((k) => `'${k}'`).join(', ')}}`,
    );
  if (!('mark_unhealthy' in given))
    throw new BadRequestError('Missing mandatory (mark_unhealthy) key from mark unhealthy request');
  const reason = given.resource_status_reason;
  return {
    markUnhealthy: extractBool('mark_unhealthy', given.mark_unhealthy),
    reason:
      typeof reason === 'string' ? reason : reason === undefined || reason === null ? '' : String(reason),
  };
}

/**
 * Heat's resource_mark_unhealthy: CHECK_FAILED when marked unhealthy (a deleted resource stays as it is);
 * back to CHECK_COMPLETE when marked healthy from CHECK_FAILED; otherwise no change. A resource being acted
 * on cannot be marked (409, as Heat's lock refuses it).
 */
export async function markResourceHealth(
  store: StackStore,
  stack: HeatStackEntity,
  row: HeatResourceEntity,
  markUnhealthy: boolean,
  reason: string,
): Promise<void> {
  if (row.status === 'IN_PROGRESS')
    throw new ConflictError(
      `Stack ${stack.name} already has an action (${stack.action}) in progress.`,
      'ActionInProgress',
    );
  const why = reason || 'state changed by resource_mark_unhealthy api';
  if (markUnhealthy) {
    if (row.action !== 'DELETE') await store.setResourceState(row, 'CHECK', 'FAILED', why);
  } else if (row.action === 'CHECK' && row.status === 'FAILED') {
    await store.setResourceState(row, 'CHECK', 'COMPLETE', why);
  }
}
