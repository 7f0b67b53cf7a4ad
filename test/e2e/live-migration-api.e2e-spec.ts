import { startCloud, CloudHandle } from './support/cloud';
import { putData } from './support/image';
import { api, issueToken } from './support/keystone';

/**
 * os-migrateLive over HTTP on a cloud of three fake hosts (the fake driver live-migrates as the kvm one
 * does, without guests): Nova's body per microversion, policy, 400s and 409s, the MIGRATING status, the
 * `live-migration` migration record and instance action, the claims moving with the server. The real guest
 * moving between hosts is the kvm driver's spec and the multi-host e2e.
 */
jest.setTimeout(120_000);

type Call = { status: number; body: any };

describe('os-migrateLive', () => {
  let cloud: CloudHandle;
  let admin: string;
  let demo: string;
  let nova: (token: string, method: string, path: string, body?: unknown, version?: string) => Promise<Call>;
  let boot: (flavorName: string) => Promise<string>;
  let adminShow: (id: string) => Promise<any>;

  beforeAll(async () => {
    cloud = await startCloud({
      portBase: 26950,
      extraEnv: { NOVUM_HOST: 'lm', NOVUM_FAKE_HOSTS: '3', NOVUM_REPORT_INTERVAL: '1' },
    });
    admin = (
      await issueToken(cloud.identityUrl, { user: 'admin', password: cloud.adminPassword, project: 'admin' })
    ).token;
    demo = (
      await issueToken(cloud.identityUrl, { user: 'demo', password: cloud.demoPassword, project: 'demo' })
    ).token;
    nova = (token, method, path, body, version) =>
      api(cloud.services.compute, method, path, {
        token,
        body,
        headers: version ? { 'openstack-api-version': `compute ${version}` } : {},
      });
    const glance = (method: string, path: string, body?: unknown) =>
      api(cloud.services.image, method, path, { token: admin, body });
    const image = await glance('POST', '/v2/images', {
      name: 'lm-image',
      disk_format: 'raw',
      container_format: 'bare',
      visibility: 'public',
    });
    expect(
      (await putData(cloud.services.image, `/v2/images/${image.body.id}/file`, admin, Buffer.alloc(4096, 7)))
        .status,
    ).toBe(204);
    const flavors = (await nova(admin, 'GET', '/flavors/detail')).body.flavors as any[];
    adminShow = async (id) => (await nova(admin, 'GET', `/servers/${id}`, undefined, '2.1')).body.server;
    boot = async (flavorName) => {
      const created = await nova(
        demo,
        'POST',
        '/servers',
        {
          server: {
            name: `lm-${flavorName}`,
            imageRef: image.body.id,
            flavorRef: flavors.find((f) => f.name === flavorName).id,
            networks: 'none',
          },
        },
        '2.37',
      );
      expect(created.status).toBe(202);
      const id = created.body.server.id as string;
      await settled(id, 'ACTIVE');
      return id;
    };
  });

  afterAll(async () => {
    await cloud?.destroy();
  });

  /** Polls until the server has `status` and no task. */
  async function settled(id: string, status: string, timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const server = await adminShow(id);
      if (server.status === status && server['OS-EXT-STS:task_state'] === null) return server;
      if (Date.now() > deadline) throw new Error(`${id} is ${server.status}, not ${status}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const live = (id: string, body: unknown, version = '2.30', token = admin) =>
    nova(token, 'POST', `/servers/${id}/action`, { 'os-migrateLive': body }, version);
  const hostOf = async (id: string) => (await adminShow(id))['OS-EXT-SRV-ATTR:host'] as string;

  it('moves a running server to the named host, or where the scheduler picks, with Nova records', async () => {
    const id = await boot('m1.tiny');
    const source = await hostOf(id);
    const dest = ['lm-1', 'lm-2', 'lm-3'].find((host) => host !== source)!;

    const moved = await live(id, { host: dest, block_migration: true });
    expect(moved).toMatchObject({ status: 202 });
    expect(moved.body).toBeFalsy();
    await settled(id, 'ACTIVE');
    expect(await hostOf(id)).toBe(dest);

    // The migration, as os-migrations lists it (2.23's type), done; none left in progress for the server.
    const listed = await nova(admin, 'GET', `/os-migrations?instance_uuid=${id}`, undefined, '2.59');
    expect(listed.body.migrations).toEqual([
      expect.objectContaining({
        migration_type: 'live-migration',
        status: 'completed',
        source_compute: source,
        dest_compute: dest,
        instance_uuid: id,
      }),
    ]);
    expect(listed.body.migrations[0]).not.toHaveProperty('links');
    expect(await nova(admin, 'GET', `/servers/${id}/migrations`, undefined, '2.23')).toMatchObject({
      status: 200,
      body: { migrations: [] },
    });
    expect(
      (
        await nova(
          admin,
          'GET',
          `/servers/${id}/migrations/${listed.body.migrations[0].id}`,
          undefined,
          '2.23',
        )
      ).status,
    ).toBe(404);
    expect((await nova(admin, 'GET', `/servers/${id}/migrations`, undefined, '2.22')).status).toBe(404);
    // The instance action and its events.
    const actions = (await nova(admin, 'GET', `/servers/${id}/os-instance-actions`)).body.instanceActions;
    const action = actions.find((a: any) => a.action === 'live-migration');
    expect(action).toBeDefined();
    const events = (
      await nova(admin, 'GET', `/servers/${id}/os-instance-actions/${action.request_id}`, undefined, '2.51')
    ).body.instanceAction.events.map((e: any) => `${e.event}:${e.result}`);
    expect(events.sort()).toEqual([
      'compute_live_migration:Success',
      'compute_post_live_migration_at_destination:Success',
      'compute_pre_live_migration:Success',
      'conductor_live_migrate_instance:Success',
    ]);
    // The claim moved: only the destination's hypervisor counts the server.
    const hypervisors = (await nova(admin, 'GET', '/os-hypervisors/detail', undefined, '2.1')).body
      .hypervisors as any[];
    const used = (host: string) => hypervisors.find((h) => h.service.host === host).vcpus_used;
    expect(used(source)).toBe(0);
    expect(used(dest)).toBe(1);

    // host null: the scheduler picks another host (2.25's `auto`).
    expect((await live(id, { host: null, block_migration: 'auto' }, '2.25')).status).toBe(202);
    await settled(id, 'ACTIVE');
    expect(await hostOf(id)).not.toBe(dest);

    // A paused server is migrated too, and stays paused (2.1's body, booleans as strings).
    expect((await nova(admin, 'POST', `/servers/${id}/action`, { pause: null })).status).toBe(202);
    await settled(id, 'PAUSED');
    const before = await hostOf(id);
    expect(
      (await live(id, { host: null, block_migration: 'false', disk_over_commit: 'False' }, '2.1')).status,
    ).toBe(202);
    await settled(id, 'PAUSED');
    expect(await hostOf(id)).not.toBe(before);
  });

  it("answers Nova's 400s for the body, the host and the driver, 403 for non-admins, 409 for the state", async () => {
    const id = await boot('m1.tiny');
    const host = await hostOf(id);
    const other = ['lm-1', 'lm-2', 'lm-3'].find((h) => h !== host)!;
    const cases: [unknown, string, number, RegExp | string][] = [
      [{ host: other, block_migration: true }, '2.1', 400, "'disk_over_commit' is a required property"],
      [{ host: other, block_migration: true, disk_over_commit: false }, '2.25', 400, /Additional properties/],
      [{ block_migration: 'auto' }, '2.25', 400, "'host' is a required property"],
      [{ host: other, block_migration: 'maybe' }, '2.25', 400, /is not one of/],
      [
        { host: null, block_migration: 'auto', force: true },
        '2.30',
        400,
        "Can't force to a non-provided destination",
      ],
      [{ host: other, block_migration: 'auto', force: true }, '2.68', 400, /Additional properties/],
      [{ host: 'nowhere', block_migration: 'auto' }, '2.30', 400, 'Compute host nowhere could not be found.'],
      [{ host, block_migration: 'auto' }, '2.30', 400, "The target host can't be the same one."],
    ];
    for (const [body, version, status, message] of cases) {
      const answer = await live(id, body, version);
      expect({ body, status: answer.status }).toEqual({ body, status });
      expect(answer.body.badRequest.message).toMatch(message);
    }
    const refused = await live(id, { host: other, block_migration: 'auto' }, '2.30', demo);
    expect(refused.status).toBe(403);
    expect(refused.body.forbidden.message).toBe(
      "Policy doesn't allow os_compute_api:os-migrate-server:migrate_live to be performed.",
    );

    expect((await nova(admin, 'POST', `/servers/${id}/action`, { 'os-stop': null })).status).toBe(202);
    await settled(id, 'SHUTOFF');
    const stopped = await live(id, { host: other, block_migration: 'auto' });
    expect(stopped.status).toBe(409);
    expect(stopped.body.conflictingRequest.message).toBe(
      `Cannot 'os-migrateLive' instance ${id} while it is in vm_state stopped`,
    );
    // Nothing moved, nothing recorded.
    expect(await hostOf(id)).toBe(host);
    expect(
      (await nova(admin, 'GET', `/os-migrations?instance_uuid=${id}`, undefined, '2.23')).body.migrations,
    ).toEqual([]);

    // A container cannot be live-migrated.
    const container = await boot('c1.tiny');
    const answer = await live(container, { host: null, block_migration: 'auto' });
    expect(answer.status).toBe(400);
    expect(answer.body.badRequest.message).toBe(
      'Migration pre-check error: the container driver cannot live-migrate servers.',
    );
    expect((await adminShow(container)).status).toBe('ACTIVE');
  });
});
