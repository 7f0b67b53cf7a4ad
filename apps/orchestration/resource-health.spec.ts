import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireDataSource, HeatStackEntity, nowIso, releaseDataSource } from '@novum/db';
import { DataSource } from 'typeorm';
import { markResourceHealth, markUnhealthyRequest } from './resource-health';
import { StackStore } from './stack.store';

describe('mark unhealthy', () => {
  describe('the request', () => {
    it('takes mark_unhealthy as a boolean or a true/false string, with an optional reason', () => {
      expect(markUnhealthyRequest({ mark_unhealthy: true, resource_status_reason: 'gone' })).toEqual({
        markUnhealthy: true,
        reason: 'gone',
      });
      expect(markUnhealthyRequest({ mark_unhealthy: 'False' })).toEqual({ markUnhealthy: false, reason: '' });
    });

    it("refuses what Heat's controller refuses", () => {
      expect(() => markUnhealthyRequest({ mark_unhealthy: true, other: 1 })).toThrow(
        "Invalid keys in resource mark unhealthy {'other'}",
      );
      expect(() => markUnhealthyRequest({})).toThrow(
        'Missing mandatory (mark_unhealthy) key from mark unhealthy request',
      );
      expect(() => markUnhealthyRequest({ mark_unhealthy: 'yes' })).toThrow(
        'Unrecognized value "yes" for "mark_unhealthy", acceptable values are: true, false.',
      );
      expect(() => markUnhealthyRequest({ mark_unhealthy: 1 })).toThrow(/Unrecognized value "1"/);
    });
  });

  describe('the state change', () => {
    let dir: string;
    let dataSource: DataSource;
    let store: StackStore;
    const stack = { id: 'stack-1', name: 'mystack', action: 'CREATE' } as HeatStackEntity;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'novum-heat-health-'));
      dataSource = await acquireDataSource({ dataDir: dir });
      store = new StackStore(dataSource);
    });

    afterAll(async () => {
      await releaseDataSource(dataSource);
      rmSync(dir, { recursive: true, force: true });
    });

    const resource = async (name: string, action: string, status: string) =>
      store.resources.save(
        store.resources.create({
          id: `res-${name}`,
          stackId: stack.id,
          name,
          type: 'OS::Heat::TestResource',
          physicalId: `phys-${name}`,
          action,
          status,
          statusReason: 'state changed',
          properties: {},
          data: {},
          metadata: {},
          createdAt: nowIso(),
          updatedAt: null,
        }),
      );
    const stored = (name: string) => store.resources.findOneByOrFail({ id: `res-${name}` });

    it('puts a resource in CHECK_FAILED with the reason, writes an event, and back to CHECK_COMPLETE', async () => {
      const row = await resource('a', 'CREATE', 'COMPLETE');
      await markResourceHealth(store, stack, row, true, 'resource deleted');
      expect(await stored('a')).toMatchObject({
        action: 'CHECK',
        status: 'FAILED',
        statusReason: 'resource deleted',
      });
      const events = await store.events.findBy({ stackId: stack.id, resourceName: 'a' });
      expect(events.map((e) => `${e.action}_${e.status}`)).toEqual(['CHECK_FAILED']);

      await markResourceHealth(store, stack, await stored('a'), false, '');
      expect(await stored('a')).toMatchObject({
        action: 'CHECK',
        status: 'COMPLETE',
        statusReason: 'state changed by resource_mark_unhealthy api',
      });
    });

    it('leaves a healthy resource alone when marked healthy, and a deleted one when marked unhealthy', async () => {
      await markResourceHealth(store, stack, await resource('b', 'CREATE', 'COMPLETE'), false, 'x');
      expect(await stored('b')).toMatchObject({ action: 'CREATE', status: 'COMPLETE' });
      await markResourceHealth(store, stack, await resource('c', 'DELETE', 'COMPLETE'), true, 'x');
      expect(await stored('c')).toMatchObject({ action: 'DELETE', status: 'COMPLETE' });
    });

    it('refuses a resource in progress with 409 ActionInProgress', async () => {
      const row = await resource('d', 'UPDATE', 'IN_PROGRESS');
      await expect(markResourceHealth(store, stack, row, true, 'x')).rejects.toMatchObject({
        status: 409,
        message: 'Stack mystack already has an action (CREATE) in progress.',
      });
    });
  });
});
