import type { HeatResourceEntity } from '@novum/db';
import type { CloudSession } from '../cloud';
import type { ActionContext, ResourceState } from './types';
import {
  acceptSignal,
  bindWaitConditions,
  handleTokenMatches,
  waitCondition,
  waitConditionHandle,
  WaitSignal,
} from './wait-condition';

const signals = new Map<string, Record<string, WaitSignal>>();
bindWaitConditions({
  serverUrl: 'http://169.254.169.254/heat-api/',
  signalsOf: async (stackId, handleRef) => signals.get(`${stackId}/${handleRef}`),
});

function context(): ActionContext & { slept: number } {
  const ctx = {
    slept: 0,
    cloud: async () => ({ projectId: 'proj1' }) as CloudSession,
    stackName: 'st',
    stackId: 'sid',
    physicalName: 'st-wait-abc',
    // A short real pause, so that the polls take turns with the signals of the test.
    sleep: async (ms: number) => {
      ctx.slept += ms;
      await new Promise((resolve) => setTimeout(resolve, Math.min(ms, 5)));
    },
  };
  return ctx;
}

describe('acceptSignal', () => {
  it('fills in Heat’s defaults: SUCCESS, the signal’s number as id, `Signal <n> received`, no data', () => {
    const first = acceptSignal({}, undefined);
    expect(first).toEqual({ '1': { status: 'SUCCESS', reason: 'Signal 1 received', data: null } });
    const second = acceptSignal(first, { status: 'FAILURE', reason: 'disk full', data: { a: 1 }, id: 'x' });
    expect(second.x).toEqual({ status: 'FAILURE', reason: 'disk full', data: { a: 1 } });
    expect(Object.keys(second)).toEqual(['1', 'x']);
  });

  it('refuses what is not a signal (400 Metadata format invalid)', () => {
    for (const bad of [{ status: 'DONE' }, { colour: 'red' }, ['SUCCESS'], 'SUCCESS']) {
      expect(() => acceptSignal({}, bad)).toThrow('Metadata format invalid');
    }
  });
});

describe('OS::Heat::WaitConditionHandle', () => {
  it('makes a secret token and the endpoint of its signal, and accepts only that token', async () => {
    const created = await waitConditionHandle.create(context(), { signal_transport: 'TOKEN_SIGNAL' });
    const state: ResourceState = {
      name: 'handle',
      physicalId: created.physicalId,
      properties: {},
      data: created.data,
    };
    const token = waitConditionHandle.attribute(state, 'token') as string;
    expect(token).toMatch(/^[\w-]{43}$/);
    expect(waitConditionHandle.attribute(state, 'endpoint')).toBe(
      'http://169.254.169.254/heat-api/v1/proj1/stacks/st/sid/resources/handle/signal',
    );
    expect(waitConditionHandle.attribute(state, 'curl_cli')).toBe(
      `curl -i -X POST -H 'X-Auth-Token: ${token}' -H 'Content-Type: application/json' ` +
        "-H 'Accept: application/json' http://169.254.169.254/heat-api/v1/proj1/stacks/st/sid/resources/handle/signal",
    );
    expect(JSON.parse(waitConditionHandle.attribute(state, 'signal') as string)).toEqual({
      endpoint: waitConditionHandle.attribute(state, 'endpoint'),
      token,
    });
    const row = { type: 'OS::Heat::WaitConditionHandle', data: created.data } as HeatResourceEntity;
    expect(handleTokenMatches(row, token)).toBe(true);
    expect(handleTokenMatches(row, `${token.slice(0, -1)}x`)).toBe(false);
    expect(handleTokenMatches(row, '')).toBe(false);
    expect(handleTokenMatches({ ...row, type: 'OS::Heat::None' } as HeatResourceEntity, token)).toBe(false);
  });
});

describe('OS::Heat::WaitCondition', () => {
  beforeEach(() => signals.clear());

  it('completes with `count` successes, the data attribute a JSON map of the signals’ data', async () => {
    signals.set('sid/h1', { a: { status: 'SUCCESS', reason: 'r', data: 'one' } });
    const ctx = context();
    const pending = waitCondition.create(ctx, { handle: 'h1', timeout: 60, count: 2 });
    setTimeout(() => (signals.get('sid/h1')!.b = { status: 'SUCCESS', reason: 'r', data: null }), 20);
    const result = await pending;
    expect(ctx.slept).toBeGreaterThan(0);
    const state = { name: 'wait', physicalId: result.physicalId, properties: {}, data: result.data };
    expect(JSON.parse(waitCondition.attribute(state, 'data') as string)).toEqual({ a: 'one', b: null });
  });

  it('fails on a FAILURE signal with its reason, and after the timeout with what it got', async () => {
    signals.set('sid/h2', {
      '1': { status: 'SUCCESS', reason: 'ok', data: null },
      '2': { status: 'FAILURE', reason: 'boom', data: null },
    });
    await expect(waitCondition.create(context(), { handle: 'h2', timeout: 60, count: 1 })).rejects.toThrow(
      'WaitConditionFailure: boom',
    );
    signals.set('sid/h3', {});
    await expect(waitCondition.create(context(), { handle: 'h3', timeout: 1, count: 1 })).rejects.toThrow(
      'WaitConditionTimeout: 0 of 1 received',
    );
    await expect(waitCondition.create(context(), { handle: 'gone', timeout: 1, count: 1 })).rejects.toThrow(
      'could not be found',
    );
  });
});
