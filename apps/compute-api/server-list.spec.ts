import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { AuthContext } from '@novum/auth';
import { InstanceRecords } from '@novum/compute';
import { InstanceEntity, InstanceFlavor, openDataSource } from '@novum/db';
import { ApiVersion } from './microversion';
import { NovaQueryParams } from './query';
import { listServers } from './server-list';

const flavor: InstanceFlavor = {
  id: '1',
  name: 'm1.tiny',
  vcpus: 1,
  memory_mb: 512,
  root_gb: 1,
  ephemeral_gb: 0,
  swap: 0,
  extra_specs: {},
};

const auth = (projectId: string, roles: string[]) => ({ projectId, userId: 'u', roles }) as AuthContext;
const admin = auth('admin-project', ['admin', 'member', 'reader']);
const v21 = new ApiVersion(2, 1);
const noTags = async () => new Map<string, string[]>();

describe('listServers on SQLite', () => {
  let dir: string;
  let dataSource: DataSource;
  /** Every live server, in creation order. */
  let all: InstanceEntity[];
  /** A server of project p, deleted. */
  let gone: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'novum-server-list-'));
    dataSource = await openDataSource({ dataDir: dir });
    const records = new InstanceRecords(dataSource);
    const spec = { displayName: 'vm', userId: 'u', imageRef: 'img', flavor };
    all = [
      ...(await records.createInstances({ ...spec, projectId: 'p' }, { count: 5, requestId: 'r1' })),
      ...(await records.createInstances({ ...spec, projectId: 'q' }, { count: 4, requestId: 'r2' })),
    ];
    // Distinct creation times and some hosts, so that both sort keys have an order (and nulls) to respect.
    const repository = dataSource.getRepository(InstanceEntity);
    for (const [i, instance] of all.entries()) {
      instance.createdAt = new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
      instance.host = i % 3 === 0 ? null : `host-${i % 2}`;
      await repository.update(
        { uuid: instance.uuid },
        { createdAt: instance.createdAt, host: instance.host },
      );
    }
    [{ uuid: gone }] = await records.createInstances({ ...spec, projectId: 'p' }, { requestId: 'r3' });
    await repository.update({ uuid: gone }, { deletedAt: new Date().toISOString() });
  });

  afterAll(async () => {
    await dataSource.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const uuids = (instances: InstanceEntity[]) => instances.map((i) => i.uuid);
  const asAdmin = (query: NovaQueryParams) =>
    listServers(dataSource, admin, { all_tenants: '1', ...query }, v21, noTags);
  const newestFirst = () => [...all].reverse();

  it("pages an admin's listing of every project newest first, whole rows, with the next marker", async () => {
    const first = await asAdmin({ limit: '4' });
    expect(uuids(first.instances)).toEqual(uuids(newestFirst().slice(0, 4)));
    expect(first.next).toBe(first.instances[3].uuid);
    // The page's rows are whole entities, not just the sort keys the page was cut by.
    expect(first.instances[0]).toMatchObject({ flavor, imageRef: 'img', vmState: 'building' });
    const second = await asAdmin({ limit: '4', marker: first.next });
    expect(uuids(second.instances)).toEqual(uuids(newestFirst().slice(4, 8)));
    const last = await asAdmin({ limit: '4', marker: second.next });
    expect(uuids(last.instances)).toEqual(uuids(newestFirst().slice(8)));
    expect(last.next).toBeUndefined();
  });

  it("keeps a member to the project's servers and sorts by any key, nulls first ascending", async () => {
    const mine = await listServers(dataSource, auth('q', ['member']), {}, v21, noTags);
    expect(uuids(mine.instances)).toEqual(uuids(newestFirst().filter((i) => i.projectId === 'q')));
    const byHost = await asAdmin({ sort_key: 'host', sort_dir: 'asc' });
    const expected = [...all].sort(
      (a, b) =>
        (a.host ?? '').localeCompare(b.host ?? '') || (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0),
    );
    expect(uuids(byHost.instances)).toEqual(uuids(expected));
    expect(byHost.instances.slice(0, 3).map((i) => i.host)).toEqual([null, null, null]);
  });

  it('filters by name in memory and pages what is left', async () => {
    const named = await asAdmin({ name: '^vm-[12]$', limit: '3' });
    expect(uuids(named.instances)).toEqual(
      uuids(
        newestFirst()
          .filter((i) => /^vm-[12]$/.test(i.displayName))
          .slice(0, 3),
      ),
    );
    expect(named.next).toBe(named.instances[2].uuid);
  });

  it('pages on from a marker deleted since, as Nova finds a marker among deleted servers', async () => {
    // The deleted server sorts between the fifth and the sixth live one.
    await dataSource
      .getRepository(InstanceEntity)
      .update({ uuid: gone }, { createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, 4, 500)).toISOString() });
    const after = await asAdmin({ limit: '3', marker: gone });
    expect(uuids(after.instances)).toEqual(uuids(newestFirst().slice(4, 7)));
    const filtered = await asAdmin({ name: '^vm', limit: '3', marker: gone });
    expect(uuids(filtered.instances)).toEqual(uuids(newestFirst().slice(4, 7)));
  });

  it('answers 400 for an unknown marker', async () => {
    await expect(asAdmin({ marker: 'nope' })).rejects.toThrow('marker [nope] not found');
  });
});
