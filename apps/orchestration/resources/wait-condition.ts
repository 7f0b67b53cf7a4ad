import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { BadRequestError } from '@novum/common';
import type { HeatResourceEntity } from '@novum/db';
import { isMap, Json, JsonMap } from '@novum/hot';
import { ResourceType } from './types';

export const WAIT_CONDITION_HANDLE = 'OS::Heat::WaitConditionHandle';

/** One signal as the handle keeps it in its resource metadata, by the signal's id (Heat's layout). */
export interface WaitSignal {
  status: 'SUCCESS' | 'FAILURE';
  reason: string;
  data: Json;
}

/** Where the wait condition resources find the signals and the URL guests signal at (bound at start). */
export interface WaitConditionBinding {
  /** Heat's `heat_waitcondition_server_url`: the orchestration API's root as guests reach it. */
  serverUrl: string;
  /** The signals of the handle whose reference is `handleRef` in the stack, or undefined without one. */
  signalsOf(stackId: string, handleRef: string): Promise<Record<string, WaitSignal> | undefined>;
}

let binding: WaitConditionBinding | undefined;

export function bindWaitConditions(bound: WaitConditionBinding): void {
  binding = bound;
}

function bound(): WaitConditionBinding {
  if (!binding) throw new Error('The wait condition signals are not available in this process.');
  return binding;
}

/**
 * A signal sent to a handle (Heat's HeatWaitConditionHandle.handle_signal): status defaults to SUCCESS,
 * id to the signal's number, reason to `Signal <n> received`; anything else is a malformed signal.
 */
export function acceptSignal(
  existing: Record<string, WaitSignal>,
  details: unknown,
): Record<string, WaitSignal> {
  const body = details === null || details === undefined || details === '' ? {} : details;
  if (!isMap(body as Json)) throw new BadRequestError('Metadata format invalid');
  const given = body as JsonMap;
  const allowed = new Set(['status', 'reason', 'data', 'id']);
  if (Object.keys(given).some((key) => !allowed.has(key)))
    throw new BadRequestError('Metadata format invalid');
  const status = given.status ?? 'SUCCESS';
  if (status !== 'SUCCESS' && status !== 'FAILURE') throw new BadRequestError('Metadata format invalid');
  const number = Object.keys(existing).length + 1;
  const id = given.id === undefined || given.id === null ? String(number) : String(given.id);
  const reason =
    given.reason === undefined || given.reason === null ? `Signal ${number} received` : String(given.reason);
  return { ...existing, [id]: { status, reason, data: given.data ?? null } };
}

/** The handle's secret compared in constant time (the token a guest presents to signal it). */
export function handleTokenMatches(row: Pick<HeatResourceEntity, 'type' | 'data'>, token: string): boolean {
  const secret = row.type === WAIT_CONDITION_HANDLE ? row.data?.token : undefined;
  if (typeof secret !== 'string' || !token) return false;
  const a = Buffer.from(secret);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function endpointOf(state: { name: string; data: JsonMap }): string {
  const { serverUrl } = bound();
  const { projectId, stackName, stackId } = state.data as Record<string, string>;
  const path = [projectId, 'stacks', stackName, stackId, 'resources', state.name].map(encodeURIComponent);
  return `${serverUrl.replace(/\/$/, '')}/v1/${path.join('/')}/signal`;
}

/**
 * OS::Heat::WaitConditionHandle with Heat's TOKEN_SIGNAL transport: a guest POSTs its signal to `endpoint`
 * with `X-Auth-Token: <token>`. Heat's token is a Keystone token of a stack domain user; here it is a
 * secret of this handle that the signal API accepts for this resource only (a guest's token opens nothing
 * else), which also never expires while the stack waits.
 */
export const waitConditionHandle: ResourceType = {
  name: WAIT_CONDITION_HANDLE,
  description: 'Resource for managing instance signals.',
  properties: {
    signal_transport: {
      type: 'string',
      description:
        'How the client will signal the wait condition. TOKEN_SIGNAL will allow an HTTP POST to a Heat API ' +
        'endpoint with the provided token.',
      default: 'TOKEN_SIGNAL',
      allowedValues: ['TOKEN_SIGNAL'],
    },
  },
  attributes: {
    token: { description: 'Token which can be used for signalling the handle (TOKEN_SIGNAL).' },
    endpoint: { description: 'Endpoint/url which can be used for signalling the handle (TOKEN_SIGNAL).' },
    curl_cli: {
      description:
        'Convenience attribute, provides curl CLI command prefix, which can be used for signalling handle ' +
        'completion or failure.',
    },
    signal: {
      description:
        'JSON serialized map that includes the endpoint, token and/or other attributes the client must use ' +
        'for signalling this handle.',
    },
  },
  async create(ctx) {
    const cloud = await ctx.cloud();
    return {
      physicalId: randomUUID(),
      data: {
        token: randomBytes(32).toString('base64url'),
        projectId: cloud.projectId,
        stackName: ctx.stackName,
        stackId: ctx.stackId,
      },
    };
  },
  async delete() {},
  attribute(state, name) {
    const token = state.data.token as string | undefined;
    if (!token) return null;
    const endpoint = endpointOf(state);
    switch (name) {
      case 'token':
        return token;
      case 'endpoint':
        return endpoint;
      case 'curl_cli':
        return (
          `curl -i -X POST -H 'X-Auth-Token: ${token}' -H 'Content-Type: application/json' ` +
          `-H 'Accept: application/json' ${endpoint}`
        );
      case 'signal':
        return JSON.stringify({ endpoint, token });
      default:
        return null;
    }
  },
};

const POLL_MS = 1000;

/**
 * OS::Heat::WaitCondition: its create completes once the handle got `count` SUCCESS signals, fails on the
 * first FAILURE or after `timeout` seconds (Heat's WaitConditionFailure and WaitConditionTimeout).
 */
export const waitCondition: ResourceType = {
  name: 'OS::Heat::WaitCondition',
  description: 'Resource for handling signals received by WaitConditionHandle.',
  properties: {
    handle: {
      type: 'string',
      description: 'A reference to the wait condition handle used to signal this wait condition.',
      required: true,
    },
    timeout: {
      type: 'number',
      description: 'The number of seconds to wait for the correct number of signals to arrive.',
      required: true,
      check: (value) =>
        (value as number) >= 1 && (value as number) <= 43200
          ? null
          : `${String(value)} is out of range (min: 1, max: 43200)`,
    },
    count: {
      type: 'integer',
      description:
        'The number of success signals that must be received before the stack creation process continues.',
      default: 1,
      check: (value) =>
        (value as number) >= 1 ? null : `${String(value)} is out of range (min: 1, max: None)`,
    },
  },
  attributes: {
    data: {
      description: 'JSON string containing data associated with wait condition signals sent to the handle.',
    },
  },
  async create(ctx, props) {
    const deadline = Date.now() + (props.timeout as number) * 1000;
    const count = props.count as number;
    for (;;) {
      const signals = await bound().signalsOf(ctx.stackId, props.handle as string);
      if (!signals) throw new Error(`WaitConditionHandle ${String(props.handle)} could not be found.`);
      const entries = Object.entries(signals);
      const failures = entries.filter(([, signal]) => signal.status === 'FAILURE');
      if (failures.length) {
        throw new Error(`WaitConditionFailure: ${failures.map(([, signal]) => signal.reason).join(';')}`);
      }
      const successes = entries.filter(([, signal]) => signal.status === 'SUCCESS');
      if (successes.length >= count) {
        const data = Object.fromEntries(successes.map(([id, signal]) => [id, signal.data]));
        return { physicalId: randomUUID(), data: { data: JSON.stringify(data) } };
      }
      if (Date.now() >= deadline) {
        throw new Error(`WaitConditionTimeout: ${successes.length} of ${count} received`);
      }
      await ctx.sleep(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
    }
  },
  async delete() {},
  attribute(state, name) {
    return name === 'data' ? ((state.data.data as string | undefined) ?? null) : null;
  },
};
