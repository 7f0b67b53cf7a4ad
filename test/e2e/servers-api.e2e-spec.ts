import { startCloud, testMode } from './support/cloud';
import { putData } from './support/image';
import { api, issueToken } from './support/keystone';
import { schemaErrors, tempestSchemas } from './support/schema';

jest.setTimeout(120_000);

type Call = { status: number; body: any; headers: Headers };
type Options = { body?: unknown; version?: string };

/** Tempest's response schemas; `latest` (2.96) is 2.79's server plus 2.96's pinned_availability_zone. */
const SCHEMAS = tempestSchemas({
  create: 'v2_1.servers.create_server_with_admin_pass',
  show21: 'v2_1.servers.get_server',
  show247: 'v2_47.servers.get_server',
  show273: 'v2_73.servers.get_server',
  show279: 'v2_79.servers.get_server',
  list279: 'v2_79.servers.list_servers_detail',
  ips: 'v2_1.servers.list_addresses',
  interfaces: 'v2_1.interfaces.list_interfaces',
  actions: 'v2_1.servers.list_instance_actions',
  action: 'v2_62.servers.show_instance_action',
});
const body = (name: string) => SCHEMAS[name].response_body;
const latestServer = () => {
  const schema = JSON.parse(JSON.stringify(body('show279')));
  schema.properties.server.properties.pinned_availability_zone = { type: ['string', 'null'] };
  return schema;
};

/** Common bootstrap: a cloud, tokens, an image and the shared network, and helpers to boot and wait. */
async function setUp(portBase: number, extraEnv?: Record<string, string>) {
  const cloud = await startCloud({ portBase, extraEnv });
  const token = async (user: string, project: string, password = cloud.demoPassword) =>
    (await issueToken(cloud.identityUrl, { user, password, project })).token;
  const adminAuth = await issueToken(cloud.identityUrl, {
    user: 'admin',
    password: cloud.adminPassword,
    project: 'admin',
  });
  const demoAuth = await issueToken(cloud.identityUrl, {
    user: 'demo',
    password: cloud.demoPassword,
    project: 'demo',
  });
  const admin = adminAuth.token;
  const compute = cloud.services.compute;
  const nova = (t: string, method: string, path: string, o: Options = {}): Promise<Call> =>
    api(compute, method, path, {
      token: t,
      body: o.body,
      headers: o.version ? { 'openstack-api-version': `compute ${o.version}` } : {},
    });
  const glance = (t: string, method: string, path: string, b?: unknown) =>
    api(cloud.services.image, method, path, { token: t, body: b });
  const neutron = (t: string, method: string, path: string, b?: unknown) =>
    api(cloud.services.network, method, path, { token: t, body: b });

  const uploadImage = async (name: string) => {
    const created = await glance(admin, 'POST', '/v2/images', {
      name,
      disk_format: 'raw',
      container_format: 'bare',
      visibility: 'public',
    });
    expect(created.status).toBe(201);
    const put = await putData(
      cloud.services.image,
      `/v2/images/${created.body.id}/file`,
      admin,
      Buffer.alloc(4096, 7),
    );
    expect(put.status).toBe(204);
    return created.body.id as string;
  };
  const imageId = await uploadImage('cirros-e2e');
  const networks = await neutron(admin, 'GET', '/v2.0/networks?name=private');
  const networkId = networks.body.networks[0].id as string;
  const flavors = (await nova(admin, 'GET', '/flavors/detail')).body.flavors as any[];
  const flavor = (name: string) => flavors.find((f) => f.name === name).id as string;

  const server = (name: string, extra: Record<string, unknown> = {}) => ({
    server: {
      name,
      imageRef: imageId,
      flavorRef: flavor('m1.tiny'),
      networks: [{ uuid: networkId }],
      ...extra,
    },
  });
  const boot = async (t: string, name: string, extra: Record<string, unknown> = {}, version?: string) => {
    const created = await nova(t, 'POST', '/servers', { body: server(name, extra), version });
    if (created.status !== 202)
      throw new Error(`boot ${name}: ${created.status} ${JSON.stringify(created.body)}`);
    return created.body.server.id as string;
  };
  const show = async (t: string, id: string, version?: string) =>
    (await nova(t, 'GET', `/servers/${id}`, { version })).body.server;
  /** Polls until the server has `status` and no task; fails on an unexpected ERROR. */
  const waitFor = async (t: string, id: string, status: string, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    let last: any;
    for (;;) {
      last = await show(t, id, '2.1');
      if (last?.status === status && last['OS-EXT-STS:task_state'] === null) return last;
      if (last?.status === 'ERROR' && status !== 'ERROR')
        throw new Error(`${id} went to ERROR: ${JSON.stringify(last.fault)}`);
      if (Date.now() > deadline)
        throw new Error(`${id} is ${last?.status}/${last?.['OS-EXT-STS:task_state']}, not ${status}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const waitGone = async (t: string, id: string) => {
    const deadline = Date.now() + 30_000;
    while ((await nova(t, 'GET', `/servers/${id}`)).status !== 404) {
      if (Date.now() > deadline) throw new Error(`${id} was not deleted`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return {
    cloud,
    token,
    admin,
    adminProject: adminAuth.body.token.project.id as string,
    demo: demoAuth.token,
    demoProject: demoAuth.body.token.project.id as string,
    demoUser: demoAuth.body.token.user.id as string,
    nova,
    glance,
    neutron,
    uploadImage,
    imageId,
    networkId,
    flavor,
    server,
    boot,
    show,
    waitFor,
    waitGone,
  };
}

describe(`servers API (${testMode()})`, () => {
  let s: Awaited<ReturnType<typeof setUp>>;
  let demo: string;
  let admin: string;
  let alt: string;
  let reader: string;
  /** The server the lifecycle tests drive through every action. */
  let vm: string;

  const action = (t: string, id: string, b: unknown, version?: string) =>
    s.nova(t, 'POST', `/servers/${id}/action`, { body: b, version });

  beforeAll(async () => {
    s = await setUp(23700);
    demo = s.demo;
    admin = s.admin;
    alt = await s.token('alt_demo', 'alt_demo');
    // A user with only the reader role in demo.
    const identity = (method: string, path: string, b?: unknown) =>
      api(s.cloud.identityUrl, method, path, { token: admin, body: b });
    const user = await identity('POST', '/v3/users', {
      user: { name: 'demo-reader', password: 'reader-pass', domain_id: 'default' },
    });
    const roles = (await identity('GET', '/v3/roles?name=reader')).body.roles;
    expect(
      (await identity('PUT', `/v3/projects/${s.demoProject}/users/${user.body.user.id}/roles/${roles[0].id}`))
        .status,
    ).toBe(204);
    reader = await s.token('demo-reader', 'demo', 'reader-pass');
  }, 120_000);

  afterAll(async () => {
    await s?.cloud.destroy();
  }, 60_000);

  it('creates a server that goes ACTIVE, shaped as Tempest expects at 2.1, 2.47, 2.73 and latest', async () => {
    const created = await s.nova(demo, 'POST', '/servers', {
      body: s.server('vm-main', { metadata: { role: 'main' } }),
    });
    expect(created.status).toBe(202);
    expect(schemaErrors(body('create'), created.body)).toEqual([]);
    expect(created.body.server.adminPass).toEqual(expect.any(String));
    expect(created.headers.get('location')).toMatch(new RegExp(`/servers/${created.body.server.id}$`));
    vm = created.body.server.id;
    const active = await s.waitFor(demo, vm, 'ACTIVE');
    expect(active).toMatchObject({ name: 'vm-main', metadata: { role: 'main' }, tenant_id: s.demoProject });
    expect(active['OS-EXT-STS:power_state']).toBe(1);
    expect(active.addresses.private[0]).toMatchObject({ version: 4, 'OS-EXT-IPS:type': 'fixed' });

    const shapes: [string, any][] = [
      ['2.1', body('show21')],
      ['2.47', body('show247')],
      ['2.73', body('show273')],
      ['latest', latestServer()],
    ];
    for (const [version, schema] of shapes) {
      for (const t of [demo, admin]) {
        const shown = await s.nova(t, 'GET', `/servers/${vm}`, { version });
        expect([version, schemaErrors(schema, shown.body)]).toEqual([version, []]);
      }
    }
    // The flavor is a link at 2.1 and embedded from 2.47; admin attributes only for admins.
    expect(Object.keys((await s.show(demo, vm, '2.1')).flavor).sort()).toEqual(['id', 'links']);
    const at247 = await s.show(demo, vm, '2.47');
    expect(at247.flavor).toMatchObject({ original_name: 'm1.tiny', vcpus: 1, ram: 512, disk: 1 });
    expect(at247).not.toHaveProperty('OS-EXT-SRV-ATTR:host');
    expect(await s.show(admin, vm, '2.47')).toHaveProperty('OS-EXT-SRV-ATTR:host');
    const latest = await s.show(demo, vm, 'latest');
    expect(latest).toMatchObject({ locked: false, locked_reason: null, tags: [], description: null });
    expect(latest).toHaveProperty('pinned_availability_zone');
    expect(await s.show(demo, vm, '2.72')).not.toHaveProperty('locked_reason');

    const list = await s.nova(demo, 'GET', '/servers/detail', { version: '2.79' });
    expect(schemaErrors(body('list279'), list.body)).toEqual([]);
  });

  it('multi-creates between min_count and max_count and answers only the reservation id when asked', async () => {
    const created = await s.nova(demo, 'POST', '/servers', {
      body: s.server('multi', { min_count: 2, max_count: 3, return_reservation_id: true }),
    });
    expect(created.status).toBe(202);
    expect(Object.keys(created.body)).toEqual(['reservation_id']);
    expect(created.body.reservation_id).toMatch(/^r-[a-z0-9]{8}$/);
    const listed = await s.nova(demo, 'GET', `/servers?reservation_id=${created.body.reservation_id}`);
    const names = listed.body.servers.map((x: any) => x.name).sort();
    expect(names).toEqual(['multi-1', 'multi-2', 'multi-3']);
    const ids: string[] = listed.body.servers.map((x: any) => x.id);
    for (const id of ids) await s.waitFor(demo, id, 'ACTIVE');
    const launchIndexes = await Promise.all(
      ids.map(async (id) => (await s.show(admin, id, '2.3'))['OS-EXT-SRV-ATTR:launch_index']),
    );
    expect(launchIndexes.sort()).toEqual([0, 1, 2]);
    expect(
      (await s.nova(demo, 'POST', '/servers', { body: s.server('bad', { min_count: 3, max_count: 2 }) }))
        .status,
    ).toBe(400);
    for (const id of ids) expect((await s.nova(demo, 'DELETE', `/servers/${id}`)).status).toBe(204);
    for (const id of ids) await s.waitGone(demo, id);
  });

  it('filters the list by name, status, flavor, image, ip, changes-since and tags, and pages with servers_links', async () => {
    const before = new Date(Date.now() - 1000).toISOString();
    const a = await s.boot(demo, 'flt-a', { tags: ['red', 'blue'] }, '2.52');
    const b = await s.boot(demo, 'flt-b', { flavorRef: s.flavor('m1.small') });
    await s.waitFor(demo, a, 'ACTIVE');
    await s.waitFor(demo, b, 'ACTIVE');
    expect((await action(demo, b, { 'os-stop': null })).status).toBe(202);
    await s.waitFor(demo, b, 'SHUTOFF');
    const ids = async (query: string, version?: string) =>
      ((await s.nova(demo, 'GET', `/servers/detail?${query}`, { version })).body.servers as any[])
        .map((x) => x.id)
        .sort();
    expect(await ids('name=^flt-a$')).toEqual([a]);
    expect(await ids('name=flt-')).toEqual([a, b].sort());
    expect(await ids('status=SHUTOFF')).toEqual([b]);
    expect(await ids('status=ACTIVE&name=flt')).toEqual([a]);
    expect(await ids(`flavor=${s.flavor('m1.small')}`)).toEqual([b]);
    expect(await ids(`image=${s.imageId}&name=flt`)).toEqual([a, b].sort());
    const ip = (await s.show(demo, a)).addresses.private[0].addr as string;
    expect(await ids(`ip=${ip.replace(/\./g, '\\.')}$`)).toEqual([a]);
    expect(await ids(`changes-since=${before}&name=flt`)).toEqual([a, b].sort());
    expect(await ids(`changes-since=${new Date(Date.now() + 60_000).toISOString()}`)).toEqual([]);
    expect(await ids('tags=red', '2.26')).toEqual([a]);
    expect(await ids('not-tags=red&name=flt', '2.26')).toEqual([b]);
    // An unknown status lists nothing before 2.38 and is a 400 from then on.
    expect((await s.nova(demo, 'GET', '/servers?status=NOPE')).body.servers).toEqual([]);
    expect((await s.nova(demo, 'GET', '/servers?status=NOPE', { version: '2.38' })).status).toBe(400);

    const first = await s.nova(demo, 'GET', '/servers?limit=1&name=flt');
    expect(first.body.servers).toHaveLength(1);
    const next = new URL(first.body.servers_links[0].href);
    expect(first.body.servers_links[0].rel).toBe('next');
    expect(next.searchParams.get('marker')).toBe(first.body.servers[0].id);
    const second = await s.nova(demo, 'GET', `/servers?limit=1&name=flt&marker=${first.body.servers[0].id}`);
    expect(second.body.servers).toHaveLength(1);
    expect(second.body.servers[0].id).not.toBe(first.body.servers[0].id);
    const third = await s.nova(demo, 'GET', `/servers?limit=1&name=flt&marker=${second.body.servers[0].id}`);
    expect(third.body.servers).toEqual([]);
    expect(third.body).not.toHaveProperty('servers_links');
    const badMarker = await s.nova(demo, 'GET', '/servers?marker=00000000-0000-0000-0000-000000000000');
    expect(badMarker.status).toBe(400);

    for (const id of [a, b]) await s.nova(demo, 'DELETE', `/servers/${id}`);
    for (const id of [a, b]) await s.waitGone(demo, id);
  });

  it('stops and starts, pauses, suspends and reboots, refusing actions in the wrong state with 409', async () => {
    expect((await action(demo, vm, { 'os-stop': null })).status).toBe(202);
    expect((await s.waitFor(demo, vm, 'SHUTOFF'))['OS-EXT-STS:power_state']).toBe(4);
    const wrong = await action(demo, vm, { pause: null });
    expect(wrong.status).toBe(409);
    expect(wrong.body.conflictingRequest.message).toBe(
      `Cannot 'pause' instance ${vm} while it is in vm_state stopped`,
    );
    expect((await action(demo, vm, { 'os-start': null })).status).toBe(202);
    await s.waitFor(demo, vm, 'ACTIVE');
    expect((await action(demo, vm, { 'os-start': null })).status).toBe(409);

    expect((await action(demo, vm, { pause: null })).status).toBe(202);
    expect((await s.waitFor(demo, vm, 'PAUSED'))['OS-EXT-STS:power_state']).toBe(3);
    expect((await action(demo, vm, { suspend: null })).status).toBe(409);
    expect((await action(demo, vm, { unpause: null })).status).toBe(202);
    await s.waitFor(demo, vm, 'ACTIVE');

    expect((await action(demo, vm, { suspend: null })).status).toBe(202);
    await s.waitFor(demo, vm, 'SUSPENDED');
    expect((await action(demo, vm, { reboot: { type: 'SOFT' } })).status).toBe(409);
    expect((await action(demo, vm, { resume: null })).status).toBe(202);
    await s.waitFor(demo, vm, 'ACTIVE');

    expect((await action(demo, vm, { reboot: { type: 'SOFT' } })).status).toBe(202);
    await s.waitFor(demo, vm, 'ACTIVE');
    expect((await action(demo, vm, { reboot: { type: 'HARD' } })).status).toBe(202);
    await s.waitFor(demo, vm, 'ACTIVE');
    expect((await action(demo, vm, { reboot: { type: 'gentle' } })).status).toBe(400);
    const unknown = await action(demo, vm, { teleport: null });
    expect(unknown.status).toBe(400);
  });

  it('locks with a reason: the owner can neither delete nor act, an admin and unlock can', async () => {
    expect((await action(demo, vm, { lock: { locked_reason: 'maintenance' } }, '2.73')).status).toBe(202);
    expect(await s.show(demo, vm, '2.73')).toMatchObject({ locked: true, locked_reason: 'maintenance' });
    expect((await s.nova(demo, 'GET', '/servers?locked=true', { version: '2.73' })).body.servers).toEqual([
      expect.objectContaining({ id: vm }),
    ]);
    const refused = await s.nova(demo, 'DELETE', `/servers/${vm}`);
    expect(refused.status).toBe(409);
    expect(refused.body.conflictingRequest.message).toBe(`Instance ${vm} is locked`);
    expect((await action(demo, vm, { 'os-stop': null })).status).toBe(409);
    // The reason is 2.73's.
    expect((await action(demo, vm, { lock: { locked_reason: 'x' } }, '2.72')).status).toBe(400);
    expect((await action(demo, vm, { unlock: null })).status).toBe(202);
    expect(await s.show(demo, vm, '2.73')).toMatchObject({ locked: false, locked_reason: null });
  });

  it('rebuilds with a new name and image', async () => {
    const other = await s.uploadImage('rebuild-image');
    const rebuilt = await action(demo, vm, { rebuild: { imageRef: other, name: 'vm-rebuilt' } });
    expect(rebuilt.status).toBe(202);
    expect(rebuilt.body.server).toMatchObject({ id: vm, name: 'vm-rebuilt', adminPass: expect.any(String) });
    const active = await s.waitFor(demo, vm, 'ACTIVE');
    expect(active).toMatchObject({ name: 'vm-rebuilt', image: { id: other } });
    const bad = await action(demo, vm, { rebuild: { imageRef: '00000000-0000-0000-0000-000000000000' } });
    expect(bad.status).toBe(400);
  });

  it('resizes and confirms, then resizes and reverts back to the old flavor', async () => {
    const sameFlavor = await action(demo, vm, { resize: { flavorRef: s.flavor('m1.tiny') } });
    expect(sameFlavor.status).toBe(400);
    const notResized = await action(demo, vm, { confirmResize: null });
    expect(notResized.status).toBe(400);
    expect(notResized.body.badRequest.message).toBe('Instance has not been resized.');

    expect((await action(demo, vm, { resize: { flavorRef: s.flavor('m1.small') } })).status).toBe(202);
    await s.waitFor(demo, vm, 'VERIFY_RESIZE');
    expect((await action(demo, vm, { confirmResize: null })).status).toBe(204);
    const confirmed = await s.waitFor(demo, vm, 'ACTIVE');
    expect(confirmed.flavor.id).toBe(s.flavor('m1.small'));

    expect((await action(demo, vm, { resize: { flavorRef: s.flavor('m1.medium') } })).status).toBe(202);
    await s.waitFor(demo, vm, 'VERIFY_RESIZE');
    expect((await s.show(demo, vm, '2.47')).flavor.original_name).toBe('m1.medium');
    expect((await action(demo, vm, { revertResize: null })).status).toBe(202);
    await s.waitFor(demo, vm, 'ACTIVE');
    expect((await s.show(demo, vm, '2.47')).flavor.original_name).toBe('m1.small');
  });

  it('shelves to SHELVED_OFFLOADED and unshelves, rescues and unrescues', async () => {
    expect((await action(demo, vm, { shelve: null })).status).toBe(202);
    const shelved = await s.waitFor(demo, vm, 'SHELVED_OFFLOADED');
    expect(shelved['OS-EXT-STS:vm_state']).toBe('shelved_offloaded');
    expect((await s.show(admin, vm))['OS-EXT-SRV-ATTR:host']).toBeNull();
    expect((await action(demo, vm, { 'os-stop': null })).status).toBe(409);
    expect((await action(demo, vm, { unshelve: null })).status).toBe(202);
    await s.waitFor(demo, vm, 'ACTIVE');

    const rescued = await action(demo, vm, { rescue: { adminPass: 'rescue-pass' } });
    expect(rescued.status).toBe(200);
    expect(rescued.body).toEqual({ adminPass: 'rescue-pass' });
    await s.waitFor(demo, vm, 'RESCUE');
    expect((await action(demo, vm, { rescue: null })).status).toBe(409);
    expect((await action(demo, vm, { unrescue: null })).status).toBe(202);
    await s.waitFor(demo, vm, 'ACTIVE');
  });

  it('creates an image of the server that becomes active', async () => {
    const created = await action(
      demo,
      vm,
      { createImage: { name: 'vm-snap', metadata: { kind: 'snap' } } },
      '2.45',
    );
    expect(created.status).toBe(202);
    const imageId = created.body.image_id as string;
    expect(imageId).toMatch(/^[0-9a-f-]{36}$/);
    const deadline = Date.now() + 30_000;
    let image: any;
    do {
      image = (await s.glance(demo, 'GET', `/v2/images/${imageId}`)).body;
      if (image.status === 'active') break;
      await new Promise((r) => setTimeout(r, 100));
    } while (Date.now() < deadline);
    expect(image).toMatchObject({ status: 'active', name: 'vm-snap', kind: 'snap', instance_uuid: vm });
    await s.waitFor(demo, vm, 'ACTIVE');
    // Below 2.45 the image is named by the Location header.
    const old = await action(demo, vm, { createImage: { name: 'vm-snap-2' } });
    expect(old.status).toBe(202);
    expect(old.headers.get('location')).toMatch(/\/images\/[0-9a-f-]{36}$/);
    await s.waitFor(demo, vm, 'ACTIVE');
  });

  it('keeps metadata and tags as sub-resources', async () => {
    const base = `/servers/${vm}`;
    expect(
      (await s.nova(demo, 'PUT', `${base}/metadata`, { body: { metadata: { a: '1', b: '2' } } })).body,
    ).toEqual({ metadata: { a: '1', b: '2' } });
    expect(
      (await s.nova(demo, 'POST', `${base}/metadata`, { body: { metadata: { b: '3', c: '4' } } })).body,
    ).toEqual({ metadata: { a: '1', b: '3', c: '4' } });
    expect((await s.nova(demo, 'GET', `${base}/metadata/b`)).body).toEqual({ meta: { b: '3' } });
    expect((await s.nova(demo, 'PUT', `${base}/metadata/d`, { body: { meta: { d: '5' } } })).body).toEqual({
      meta: { d: '5' },
    });
    expect((await s.nova(demo, 'PUT', `${base}/metadata/d`, { body: { meta: { e: '5' } } })).status).toBe(
      400,
    );
    expect((await s.nova(demo, 'DELETE', `${base}/metadata/a`)).status).toBe(204);
    expect((await s.nova(demo, 'GET', `${base}/metadata/a`)).status).toBe(404);
    expect((await s.nova(demo, 'GET', `${base}/metadata`)).body.metadata).toEqual({ b: '3', c: '4', d: '5' });
    expect((await s.show(demo, vm)).metadata).toEqual({ b: '3', c: '4', d: '5' });

    const v = { version: '2.26' };
    expect((await s.nova(demo, 'PUT', `${base}/tags`, { ...v, body: { tags: ['x', 'y'] } })).body).toEqual({
      tags: ['x', 'y'],
    });
    expect((await s.nova(demo, 'PUT', `${base}/tags/z`, v)).status).toBe(201);
    expect((await s.nova(demo, 'PUT', `${base}/tags/z`, v)).status).toBe(204);
    expect((await s.nova(demo, 'GET', `${base}/tags/z`, v)).status).toBe(204);
    expect((await s.nova(demo, 'GET', `${base}/tags/w`, v)).status).toBe(404);
    expect((await s.nova(demo, 'DELETE', `${base}/tags/x`, v)).status).toBe(204);
    expect((await s.nova(demo, 'GET', `${base}/tags`, v)).body.tags.sort()).toEqual(['y', 'z']);
    expect((await s.nova(demo, 'PUT', `${base}/tags`, { ...v, body: { tags: ['a,b'] } })).status).toBe(400);
    expect((await s.nova(demo, 'DELETE', `${base}/tags`, v)).status).toBe(204);
    expect((await s.nova(demo, 'GET', `${base}/tags`, v)).body).toEqual({ tags: [] });
    expect((await s.nova(demo, 'GET', `${base}/tags`, { version: '2.25' })).status).toBe(404);
    // Concurrent writers of the same tags (a PostgreSQL unique-key race once answered 500).
    const adds = await Promise.all(
      Array.from({ length: 12 }, () => s.nova(demo, 'PUT', `${base}/tags/same`, v)),
    );
    expect(adds.map((r) => r.status).sort()).toEqual([201, ...Array(11).fill(204)]);
    const replaces = await Promise.all(
      Array.from({ length: 8 }, () =>
        s.nova(demo, 'PUT', `${base}/tags`, { ...v, body: { tags: ['p', 'q'] } }),
      ),
    );
    expect(replaces.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect((await s.nova(demo, 'GET', `${base}/tags`, v)).body.tags.sort()).toEqual(['p', 'q']);
  });

  it('records instance actions with events, and shows ips and interfaces', async () => {
    const actions = await s.nova(demo, 'GET', `/servers/${vm}/os-instance-actions`);
    expect(schemaErrors(body('actions'), actions.body)).toEqual([]);
    const names = actions.body.instanceActions.map((a: any) => a.action);
    for (const name of ['create', 'stop', 'start', 'pause', 'unpause', 'suspend', 'resume', 'reboot', 'lock'])
      expect(names).toContain(name);
    for (const name of ['rebuild', 'resize', 'confirmResize', 'revertResize', 'shelve', 'unshelve', 'rescue'])
      expect(names).toContain(name);
    const stop = actions.body.instanceActions.find((a: any) => a.action === 'stop');
    const detail = await s.nova(admin, 'GET', `/servers/${vm}/os-instance-actions/${stop.request_id}`, {
      version: '2.62',
    });
    expect(schemaErrors(body('action'), detail.body)).toEqual([]);
    expect(detail.body.instanceAction.events.length).toBeGreaterThan(0);
    expect(detail.body.instanceAction.events[0]).toMatchObject({ result: 'Success' });
    expect((await s.nova(demo, 'GET', `/servers/${vm}/os-instance-actions/req-nope`)).status).toBe(404);

    const ips = await s.nova(demo, 'GET', `/servers/${vm}/ips`);
    expect(schemaErrors(body('ips'), ips.body)).toEqual([]);
    expect(ips.body.addresses.private[0].version).toBe(4);
    expect((await s.nova(demo, 'GET', `/servers/${vm}/ips/private`)).body).toEqual({
      private: ips.body.addresses.private,
    });
    expect((await s.nova(demo, 'GET', `/servers/${vm}/ips/nowhere`)).status).toBe(404);
    const interfaces = await s.nova(demo, 'GET', `/servers/${vm}/os-interface`);
    expect(schemaErrors(body('interfaces'), interfaces.body)).toEqual([]);
    const [vif] = interfaces.body.interfaceAttachments;
    expect(vif).toMatchObject({ net_id: s.networkId, port_state: 'ACTIVE' });
    expect(vif.fixed_ips[0].ip_address).toBe(ips.body.addresses.private[0].addr);
    const one = await s.nova(demo, 'GET', `/servers/${vm}/os-interface/${vif.port_id}`);
    expect(one.body.interfaceAttachment).toEqual(vif);
  });

  it('hides a server from other projects (404), refuses readers (403) and shows admins all_tenants', async () => {
    for (const [method, path, b] of [
      ['GET', `/servers/${vm}`, undefined],
      ['DELETE', `/servers/${vm}`, undefined],
      ['POST', `/servers/${vm}/action`, { 'os-stop': null }],
      ['GET', `/servers/${vm}/metadata`, undefined],
    ] as const) {
      const response = await s.nova(alt, method, path, { body: b });
      expect([method, path, response.status]).toEqual([method, path, 404]);
      expect(response.body.itemNotFound.message).toBe(`Instance ${vm} could not be found.`);
    }
    expect((await s.nova(alt, 'GET', '/servers')).body.servers).toEqual([]);

    expect((await s.nova(reader, 'GET', `/servers/${vm}`)).status).toBe(200);
    const create = await s.nova(reader, 'POST', '/servers', { body: s.server('by-reader') });
    expect(create.status).toBe(403);
    expect(create.body.forbidden.message).toBe(
      "Policy doesn't allow os_compute_api:servers:create to be performed.",
    );
    const stop = await action(reader, vm, { 'os-stop': null });
    expect(stop.status).toBe(403);
    expect(stop.body.forbidden.message).toBe(
      "Policy doesn't allow os_compute_api:os-server-actions:stop to be performed.",
    );
    expect((await s.nova(reader, 'DELETE', `/servers/${vm}`)).status).toBe(403);

    const own = (await s.nova(admin, 'GET', '/servers')).body.servers.map((x: any) => x.id);
    expect(own).not.toContain(vm);
    const all = await s.nova(admin, 'GET', '/servers/detail?all_tenants=1');
    expect(all.body.servers.map((x: any) => x.id)).toContain(vm);
    const byProject = await s.nova(admin, 'GET', `/servers/detail?all_tenants=1&project_id=${s.demoProject}`);
    expect(byProject.body.servers.every((x: any) => x.tenant_id === s.demoProject)).toBe(true);
    const notAdmin = await s.nova(alt, 'GET', '/servers?all_tenants=1');
    expect(notAdmin.status).toBe(403);
    expect(notAdmin.body.forbidden.message).toBe(
      "Policy doesn't allow os_compute_api:servers:index:get_all_tenants to be performed.",
    );
  });

  it("enforces the instances quota with Nova's message", async () => {
    const demo2 = await s.token('demo2', 'demo2');
    const project = (
      await issueToken(s.cloud.identityUrl, {
        user: 'demo2',
        password: s.cloud.demoPassword,
        project: 'demo2',
      })
    ).body.token.project.id;
    const set = await s.nova(admin, 'PUT', `/os-quota-sets/${project}`, {
      body: { quota_set: { instances: 2 } },
    });
    expect(set.status).toBe(200);
    const ids = [await s.boot(demo2, 'q-1'), await s.boot(demo2, 'q-2')];
    const third = await s.nova(demo2, 'POST', '/servers', { body: s.server('q-3') });
    expect(third.status).toBe(403);
    expect(third.body.forbidden.message).toBe(
      'Quota exceeded for instances: Requested 1, but already used 2 of 2 instances',
    );
    const many = await s.nova(demo2, 'POST', '/servers', { body: s.server('q-m', { min_count: 3 }) });
    expect(many.status).toBe(403);
    for (const id of ids) await s.nova(demo2, 'DELETE', `/servers/${id}`);
    for (const id of ids) await s.waitGone(demo2, id);
    expect((await s.nova(demo2, 'POST', '/servers', { body: s.server('q-3') })).status).toBe(202);
  });

  it('deletes a server and leaves no port behind', async () => {
    const ports = await s.neutron(demo, 'GET', `/v2.0/ports?device_id=${vm}`);
    expect(ports.body.ports).toHaveLength(1);
    expect(ports.body.ports[0]).toMatchObject({ device_owner: 'compute:nova', network_id: s.networkId });
    expect((await s.nova(demo, 'DELETE', `/servers/${vm}`)).status).toBe(204);
    await s.waitGone(demo, vm);
    expect((await s.neutron(demo, 'GET', `/v2.0/ports?device_id=${vm}`)).body.ports).toEqual([]);
    expect((await s.nova(demo, 'DELETE', `/servers/${vm}`)).status).toBe(404);
  });
});

describe(`servers API scheduling (${testMode()})`, () => {
  let s: Awaited<ReturnType<typeof setUp>>;

  beforeAll(async () => {
    // One fake host with disk for exactly 10 m1.tiny servers (1 GB each, disk ratio 1.0).
    s = await setUp(23710, { NOVUM_FAKE_HOST_SIZE: '16,16384,10' });
  }, 120_000);

  afterAll(async () => {
    await s?.cloud.destroy();
  }, 60_000);

  it('50 parallel creates on room for 10: exactly 10 ACTIVE and 40 ERROR with No valid host', async () => {
    const quota = await s.nova(s.admin, 'PUT', `/os-quota-sets/${s.demoProject}`, {
      body: { quota_set: { instances: -1, cores: -1, ram: -1 } },
    });
    expect(quota.status).toBe(200);
    const ids = await Promise.all(
      Array.from({ length: 50 }, (_, i) => s.boot(s.demo, `cap-${i}`, { networks: 'none' }, '2.37')),
    );
    const deadline = Date.now() + 60_000;
    let servers: any[] = [];
    for (;;) {
      servers = (await s.nova(s.demo, 'GET', '/servers/detail?name=^cap-')).body.servers;
      const settled = servers.filter(
        (x) => ['ACTIVE', 'ERROR'].includes(x.status) && !x['OS-EXT-STS:task_state'],
      );
      if (settled.length === 50) break;
      if (Date.now() > deadline) throw new Error(`only ${settled.length} of 50 settled`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(servers.map((x) => x.id).sort()).toEqual([...ids].sort());
    const active = servers.filter((x) => x.status === 'ACTIVE');
    const failed = servers.filter((x) => x.status === 'ERROR');
    expect([active.length, failed.length]).toEqual([10, 40]);
    for (const server of failed) expect(server.fault.message).toContain('No valid host was found');
    const stats = await s.nova(s.admin, 'GET', '/os-hypervisors/statistics');
    expect(stats.body.hypervisor_statistics).toMatchObject({
      local_gb: 10,
      local_gb_used: 10,
    });
  });
});
