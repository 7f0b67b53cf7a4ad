import { CloudHandle, startCloud } from './support/cloud';
import { api, issueToken } from './support/keystone';

const PUBLIC_KEY =
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@example';

/** The compute API spoken directly: microversions, Nova's views per version, validation, policy, isolation. */
describe('compute API', () => {
  let cloud: CloudHandle;
  let root: string;
  let adminToken: string;
  let demoToken: string;
  let altToken: string;
  let demoProject: string;
  let demoUser: string;
  let adminProject: string;

  const call = (
    token: string | undefined,
    method: string,
    path: string,
    options: { body?: unknown; raw?: string; version?: string; legacy?: string } = {},
  ) =>
    api(root, method, path, {
      token,
      body: options.body,
      raw: options.raw,
      headers: {
        ...(options.version ? { 'openstack-api-version': `compute ${options.version}` } : {}),
        ...(options.legacy ? { 'x-openstack-nova-api-version': options.legacy } : {}),
      },
    });
  const admin = (method: string, path: string, options?: Parameters<typeof call>[3]) =>
    call(adminToken, method, `/v2.1${path}`, options);
  const demo = (method: string, path: string, options?: Parameters<typeof call>[3]) =>
    call(demoToken, method, `/v2.1${path}`, options);

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 23210 });
    root = cloud.services.compute.replace(/\/v2\.1$/, '');
    const a = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    const d = await issueToken(cloud.identityUrl, {
      user: 'demo',
      password: cloud.demoPassword,
      project: 'demo',
    });
    const alt = await issueToken(cloud.identityUrl, {
      user: 'alt_demo',
      password: cloud.demoPassword,
      project: 'alt_demo',
    });
    adminToken = a.token;
    adminProject = a.body.token.project.id;
    demoToken = d.token;
    demoProject = d.body.token.project.id;
    demoUser = d.body.token.user.id;
    altToken = alt.token;
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  describe('versions and microversions', () => {
    it('serves the version documents without a token', async () => {
      const list = await call(undefined, 'GET', '/');
      expect(list.status).toBe(200);
      expect(list.body.versions.map((v: any) => v.id)).toEqual(['v2.0', 'v2.1']);
      expect(list.body.versions[1]).toMatchObject({ status: 'CURRENT', version: '2.96', min_version: '2.1' });
      const v21 = await call(undefined, 'GET', '/v2.1');
      expect(v21.body.version).toMatchObject({ id: 'v2.1', version: '2.96', min_version: '2.1' });
      expect(v21.body.version.links[0]).toEqual({ rel: 'self', href: `${root}/v2.1/` });
      expect((await call(undefined, 'GET', '/v2/')).body.version.id).toBe('v2.0');
    });

    it('echoes the negotiated version in both headers, with Vary and the request id', async () => {
      const plain = await admin('GET', '/flavors');
      expect(plain.headers.get('openstack-api-version')).toBe('compute 2.1');
      expect(plain.headers.get('x-openstack-nova-api-version')).toBe('2.1');
      expect(plain.headers.get('vary')).toContain('OpenStack-API-Version');
      expect(plain.headers.get('x-compute-request-id')).toMatch(/^req-[0-9a-f-]{36}$/);
      expect(plain.headers.get('x-compute-request-id')).toBe(plain.headers.get('x-openstack-request-id'));

      const latest = await admin('GET', '/flavors', { version: 'latest' });
      expect(latest.headers.get('openstack-api-version')).toBe('compute 2.96');
      const legacy = await admin('GET', '/flavors', { legacy: '2.55' });
      expect(legacy.headers.get('x-openstack-nova-api-version')).toBe('2.55');
      const both = await admin('GET', '/flavors', { version: '2.60', legacy: '2.3' });
      expect(both.headers.get('x-openstack-nova-api-version')).toBe('2.60');
    });

    it('answers 406 outside 2.1..2.96 and 400 for a malformed version', async () => {
      const high = await admin('GET', '/flavors', { version: '2.97' });
      expect(high.status).toBe(406);
      expect(JSON.stringify(high.body)).toContain(
        'Version 2.97 is not supported by the API. Minimum is 2.1 and maximum is 2.96.',
      );
      expect((await admin('GET', '/flavors', { legacy: '3.0' })).status).toBe(406);
      const bad = await admin('GET', '/flavors', { version: '2.x' });
      expect(bad.status).toBe(400);
      expect(bad.body.badRequest.message).toContain('API Version String 2.x is of invalid format');
    });

    it("answers 401 without a token and 404 in Nova's format for unknown routes", async () => {
      expect((await call(undefined, 'GET', '/v2.1/flavors')).status).toBe(401);
      const missing = await admin('GET', '/no-such-thing');
      expect(missing.status).toBe(404);
      expect(missing.body.itemNotFound.code).toBe(404);
    });
  });

  describe('flavors', () => {
    it('shows each microversion its own fields', async () => {
      const at21 = (await admin('GET', '/flavors/1')).body.flavor;
      expect(Object.keys(at21).sort()).toEqual(
        [
          'OS-FLV-DISABLED:disabled',
          'OS-FLV-EXT-DATA:ephemeral',
          'disk',
          'id',
          'links',
          'name',
          'os-flavor-access:is_public',
          'ram',
          'rxtx_factor',
          'swap',
          'vcpus',
        ].sort(),
      );
      expect(at21.swap).toBe('');
      expect(at21.links[0]).toEqual({ rel: 'self', href: `${root}/v2.1/flavors/1` });
      const at255 = (await admin('GET', '/flavors/1', { version: '2.55' })).body.flavor;
      expect(at255).toHaveProperty('description', null);
      expect(at255).not.toHaveProperty('extra_specs');
      const at261 = (await admin('GET', '/flavors/1', { version: '2.61' })).body.flavor;
      expect(at261.extra_specs).toEqual({ 'novum:driver': 'kvm' });
      expect(at261.swap).toBe('');
      expect((await admin('GET', '/flavors/1', { version: '2.75' })).body.flavor.swap).toBe(0);
      expect(Object.keys((await admin('GET', '/flavors')).body.flavors[0]).sort()).toEqual([
        'id',
        'links',
        'name',
      ]);
    });

    it("validates a new flavor as Nova's schema does, naming the field", async () => {
      const base = { name: 'api.flavor', ram: 512, vcpus: 1, disk: 1 };
      const cases: [unknown, string][] = [
        [{ ...base, ram: 'lots' }, 'ram'],
        [{ ...base, ram: 0 }, 'ram'],
        [{ ...base, vcpus: -1 }, 'vcpus'],
        [{ ...base, disk: 1.5 }, 'disk'],
        [{ ...base, name: '' }, 'name'],
        [{ ...base, name: ' padded ' }, 'name'],
        [{ ...base, id: 'bad/id' }, 'id'],
        [{ ...base, rxtx_factor: 0 }, 'rxtx_factor'],
        [{ ...base, 'os-flavor-access:is_public': 'perhaps' }, 'os-flavor-access:is_public'],
        [{ ...base, colour: 'blue' }, 'colour'],
        [{ ram: 512, vcpus: 1, disk: 1 }, 'name'],
      ];
      for (const [flavor, field] of cases) {
        const response = await admin('POST', '/flavors', { body: { flavor } });
        expect([response.status, field]).toEqual([400, field]);
        expect(response.body.badRequest.message).toContain(field);
      }
      for (const raw of ['[]', '"flavor"', 'null', '{"flavor": 3}', '{']) {
        expect((await admin('POST', '/flavors', { raw })).status).toBe(400);
      }
      // description is 2.55's
      const early = await admin('POST', '/flavors', { body: { flavor: { ...base, description: 'x' } } });
      expect(early.status).toBe(400);
    });

    it('creates with string numbers and integer ids, refuses duplicates, and is admin-only', async () => {
      const created = await admin('POST', '/flavors', {
        body: { flavor: { name: 'api.flavor', ram: '768', vcpus: '2', disk: 3, id: 1234, swap: 64 } },
      });
      expect(created.status).toBe(200);
      expect(created.body.flavor).toMatchObject({ id: '1234', ram: 768, vcpus: 2, disk: 3, swap: 64 });
      const byName = await admin('POST', '/flavors', {
        body: { flavor: { name: 'api.flavor', ram: 1, vcpus: 1, disk: 0 } },
      });
      expect(byName.status).toBe(409);
      expect(byName.body.conflictingRequest.message).toBe('Flavor with name api.flavor already exists.');
      const byId = await admin('POST', '/flavors', {
        body: { flavor: { name: 'other', ram: 1, vcpus: 1, disk: 0, id: '1234' } },
      });
      expect(byId.body.conflictingRequest.message).toBe('Flavor with ID 1234 already exists.');

      const member = await demo('POST', '/flavors', {
        body: { flavor: { name: 'm', ram: 1, vcpus: 1, disk: 0 } },
      });
      expect(member.status).toBe(403);
      expect(member.body.forbidden.message).toBe(
        "Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed.",
      );
      expect((await demo('DELETE', '/flavors/1234')).status).toBe(403);
      expect(
        (await demo('POST', '/flavors/1234/os-extra_specs', { body: { extra_specs: { a: 'b' } } })).status,
      ).toBe(403);
    });

    it('updates the description from 2.55 only', async () => {
      expect((await admin('PUT', '/flavors/1234', { body: { flavor: { description: 'd' } } })).status).toBe(
        404,
      );
      const updated = await admin('PUT', '/flavors/1234', {
        body: { flavor: { description: 'd' } },
        version: '2.55',
      });
      expect(updated.status).toBe(200);
      expect(updated.body.flavor.description).toBe('d');
      const extra = await admin('PUT', '/flavors/1234', { body: { flavor: { name: 'x' } }, version: '2.55' });
      expect(extra.status).toBe(400);
    });

    it("manages extra specs with Nova's checks", async () => {
      const set = await admin('POST', '/flavors/1234/os-extra_specs', {
        body: { extra_specs: { 'hw:cpu_policy': 'dedicated', 'custom:key': 'v', 'quota:cpu_shares': 100 } },
      });
      expect(set.status).toBe(200);
      expect(set.body.extra_specs['quota:cpu_shares']).toBe('100');
      expect((await demo('GET', '/flavors/1234/os-extra_specs')).body.extra_specs).toEqual({
        'hw:cpu_policy': 'dedicated',
        'custom:key': 'v',
        'quota:cpu_shares': '100',
      });
      expect((await demo('GET', '/flavors/1234/os-extra_specs/custom:key')).body).toEqual({
        'custom:key': 'v',
      });
      const missing = await demo('GET', '/flavors/1234/os-extra_specs/nope');
      expect(missing.body.itemNotFound.message).toBe('Flavor 1234 has no extra specs with key nope.');

      const put = await admin('PUT', '/flavors/1234/os-extra_specs/custom:key', {
        body: { 'custom:key': 'w' },
      });
      expect(put.body).toEqual({ 'custom:key': 'w' });
      expect(
        (await admin('PUT', '/flavors/1234/os-extra_specs/a', { body: { b: 'w' } })).body.badRequest.message,
      ).toBe('Request body and URI mismatch');
      // Known namespaces are validated from 2.86; novum:driver always.
      const strict = await admin('POST', '/flavors/1234/os-extra_specs', {
        body: { extra_specs: { 'hw:cpu_policy': 'sometimes' } },
        version: '2.86',
      });
      expect(strict.status).toBe(400);
      expect(strict.body.badRequest.message).toContain('hw:cpu_policy');
      const driver = await admin('POST', '/flavors/1234/os-extra_specs', {
        body: { extra_specs: { 'novum:driver': 'xen' } },
      });
      expect(driver.status).toBe(400);
      expect(
        (await admin('POST', '/flavors/1234/os-extra_specs', { body: { extra_specs: { 'bad/key': 'x' } } }))
          .status,
      ).toBe(400);

      expect((await admin('DELETE', '/flavors/1234/os-extra_specs/custom:key')).status).toBe(200);
      expect((await admin('DELETE', '/flavors/1234/os-extra_specs/custom:key')).status).toBe(404);
    });

    it('pages, filters and sorts the list', async () => {
      const page1 = await demo('GET', '/flavors?limit=2');
      expect(page1.body.flavors.map((f: any) => f.id)).toEqual(['1', '11']);
      const next = page1.body.flavors_links[0];
      expect(next.rel).toBe('next');
      const page2 = await api(next.href.replace(/^.*\/compute/, root), 'GET', '', { token: demoToken });
      expect(page2.body.flavors.map((f: any) => f.id)).toEqual(['12', '1234']);
      expect((await demo('GET', '/flavors?marker=nope')).status).toBe(400);
      expect(
        (await demo('GET', '/flavors/detail?minRam=4096')).body.flavors.map((f: any) => f.name).sort(),
      ).toEqual(['m1.large', 'm1.medium']);
      expect((await demo('GET', '/flavors/detail?minDisk=40&minRam=0')).body.flavors.length).toBe(2);
      expect((await demo('GET', '/flavors?minRam=lots')).status).toBe(400);
      const byRam = (await demo('GET', '/flavors/detail?sort_key=memory_mb&sort_dir=desc')).body.flavors;
      expect(byRam[0].name).toBe('m1.large');
      expect((await demo('GET', '/flavors?sort_key=colour')).status).toBe(400);
      expect((await demo('GET', '/flavors?sort_dir=sideways')).status).toBe(400);
    });

    it('keeps private flavors to admins and the projects given access', async () => {
      const created = await admin('POST', '/flavors', {
        body: {
          flavor: { name: 'api.private', ram: 64, vcpus: 1, disk: 0, 'os-flavor-access:is_public': false },
        },
      });
      const id = created.body.flavor.id;
      expect((await demo('GET', `/flavors/${id}`)).status).toBe(404);
      expect((await admin('GET', '/flavors')).body.flavors.map((f: any) => f.id)).not.toContain(id);
      expect((await admin('GET', '/flavors?is_public=none')).body.flavors.map((f: any) => f.id)).toContain(
        id,
      );
      expect((await admin('GET', '/flavors?is_public=false')).body.flavors.map((f: any) => f.id)).toEqual([
        id,
      ]);
      expect((await admin('GET', '/flavors?is_public=perhaps')).status).toBe(400);

      const added = await admin('POST', `/flavors/${id}/action`, {
        body: { addTenantAccess: { tenant: demoProject } },
      });
      expect(added.body.flavor_access).toEqual([{ flavor_id: id, tenant_id: demoProject }]);
      const again = await admin('POST', `/flavors/${id}/action`, {
        body: { addTenantAccess: { tenant: demoProject } },
      });
      expect(again.status).toBe(409);
      expect((await demo('GET', `/flavors/${id}`)).status).toBe(200);
      expect((await demo('GET', '/flavors')).body.flavors.map((f: any) => f.id)).toContain(id);
      expect((await call(altToken, 'GET', `/v2.1/flavors/${id}`)).status).toBe(404);
      expect(
        (
          await demo('POST', `/flavors/${id}/action`, {
            body: { removeTenantAccess: { tenant: demoProject } },
          })
        ).status,
      ).toBe(403);
      expect((await admin('GET', '/flavors/1/os-flavor-access')).status).toBe(404);
      expect(
        (await admin('POST', '/flavors/1/action', { body: { addTenantAccess: { tenant: demoProject } } }))
          .status,
      ).toBe(409);
      expect((await admin('POST', `/flavors/${id}/action`, { body: { fly: {} } })).status).toBe(400);
      const removed = await admin('POST', `/flavors/${id}/action`, {
        body: { removeTenantAccess: { tenant: demoProject } },
      });
      expect(removed.body.flavor_access).toEqual([]);
      expect((await demo('GET', `/flavors/${id}`)).status).toBe(404);
      expect((await admin('DELETE', `/flavors/${id}`)).status).toBe(202);
      expect((await admin('DELETE', `/flavors/${id}`)).status).toBe(404);
    });
  });

  describe('key pairs', () => {
    it('follows the microversion for status codes and fields', async () => {
      const old = await demo('POST', '/os-keypairs', { body: { keypair: { name: 'k21' } } });
      expect(old.status).toBe(200);
      expect(Object.keys(old.body.keypair).sort()).toEqual([
        'fingerprint',
        'name',
        'private_key',
        'public_key',
        'user_id',
      ]);
      const shown = (await demo('GET', '/os-keypairs/k21')).body.keypair;
      expect(shown).toMatchObject({ name: 'k21', user_id: demoUser, deleted: false, deleted_at: null });
      expect(Number.isInteger(shown.id)).toBe(true);
      expect((await demo('DELETE', '/os-keypairs/k21')).status).toBe(202);

      const typed = await demo('POST', '/os-keypairs', {
        body: { keypair: { name: 'k22', type: 'x509' } },
        version: '2.2',
      });
      expect(typed.status).toBe(201);
      expect(typed.body.keypair.type).toBe('x509');
      expect(typed.body.keypair.public_key).toContain('BEGIN CERTIFICATE');
      expect((await demo('GET', '/os-keypairs', { version: '2.2' })).body.keypairs[0].keypair.type).toBe(
        'x509',
      );
      expect((await demo('DELETE', '/os-keypairs/k22', { version: '2.2' })).status).toBe(204);
      expect(
        (await demo('POST', '/os-keypairs', { body: { keypair: { name: 'k', type: 'ssh' } } })).status,
      ).toBe(400);

      // 2.92: no generation, and more characters in names.
      const generate = await demo('POST', '/os-keypairs', {
        body: { keypair: { name: 'k92' } },
        version: '2.92',
      });
      expect(generate.status).toBe(400);
      expect(generate.body.badRequest.message).toContain('public_key');
      const at = await demo('POST', '/os-keypairs', {
        body: { keypair: { name: 'me@host.example', public_key: PUBLIC_KEY } },
        version: '2.92',
      });
      expect(at.status).toBe(201);
      expect(at.body.keypair).not.toHaveProperty('private_key');
      const unsafe = await demo('POST', '/os-keypairs', {
        body: { keypair: { name: 'me@host', public_key: PUBLIC_KEY } },
      });
      expect(unsafe.body.badRequest.message).toBe('Keypair name contains unsafe characters');
      await demo('DELETE', '/os-keypairs/me@host.example');
    });

    it('validates names and keys', async () => {
      const cases: unknown[] = [
        { name: '' },
        { name: 'x'.repeat(256) },
        { name: 'ok', public_key: 'ssh-rsa AAAA' },
        { name: 'ok', public_key: '' },
        { name: 'ok', public_key: 42 },
        { name: 'ok', shape: 'round' },
        { name: 7 },
      ];
      for (const keypair of cases) {
        const response = await demo('POST', '/os-keypairs', { body: { keypair } });
        expect([JSON.stringify(keypair), response.status]).toEqual([JSON.stringify(keypair), 400]);
      }
      expect((await demo('GET', '/os-keypairs/nope')).body.itemNotFound.message).toBe(
        `Keypair nope not found for user ${demoUser}`,
      );
    });

    it('gives exactly one of many parallel creates of a name', async () => {
      const results = await Promise.all(
        Array.from({ length: 10 }, () =>
          demo('POST', '/os-keypairs', { body: { keypair: { name: 'race', public_key: PUBLIC_KEY } } }),
        ),
      );
      expect(results.map((r) => r.status).sort()).toEqual([200, ...Array(9).fill(409)]);
      await demo('DELETE', '/os-keypairs/race');
    });

    it('lets admins act for another user from 2.10, and pages from 2.35', async () => {
      const forDemo = await admin('POST', '/os-keypairs', {
        body: { keypair: { name: 'given', public_key: PUBLIC_KEY, user_id: demoUser } },
        version: '2.10',
      });
      expect(forDemo.body.keypair.user_id).toBe(demoUser);
      expect((await demo('GET', '/os-keypairs/given')).status).toBe(200);
      expect((await admin('GET', `/os-keypairs/given?user_id=${demoUser}`, { version: '2.10' })).status).toBe(
        200,
      );
      // Below 2.10 user_id means nothing: the admin's own (absent) key.
      expect((await admin('GET', `/os-keypairs/given?user_id=${demoUser}`)).status).toBe(404);
      const stolen = await call(altToken, 'GET', `/v2.1/os-keypairs/given?user_id=${demoUser}`, {
        version: '2.10',
      });
      expect(stolen.status).toBe(403);

      for (const name of ['p1', 'p2', 'p3']) {
        await demo('POST', '/os-keypairs', { body: { keypair: { name, public_key: PUBLIC_KEY } } });
      }
      const page = await demo('GET', '/os-keypairs?limit=2', { version: '2.35' });
      expect(page.body.keypairs.map((k: any) => k.keypair.name)).toEqual(['given', 'p1']);
      expect(page.body.keypairs_links[0].href).toContain('marker=p1');
      const rest = await demo('GET', '/os-keypairs?limit=2&marker=p1', { version: '2.35' });
      expect(rest.body.keypairs.map((k: any) => k.keypair.name)).toEqual(['p2', 'p3']);
      expect((await demo('GET', '/os-keypairs?marker=zz', { version: '2.35' })).status).toBe(400);
      expect((await demo('GET', '/os-keypairs?limit=2')).body.keypairs).toHaveLength(4);
      for (const name of ['given', 'p1', 'p2', 'p3']) await demo('DELETE', `/os-keypairs/${name}`);
    });
  });

  describe('quotas and limits', () => {
    it('shows quota sets per microversion, to the project and admins only', async () => {
      const own = await demo('GET', `/os-quota-sets/${demoProject}`);
      expect(own.body.quota_set).toMatchObject({
        id: demoProject,
        instances: 10,
        cores: 20,
        ram: 51200,
        fixed_ips: -1,
      });
      const at236 = (await demo('GET', `/os-quota-sets/${demoProject}`, { version: '2.36' })).body.quota_set;
      expect(at236).not.toHaveProperty('floating_ips');
      expect(at236).toHaveProperty('injected_files');
      const at257 = (await demo('GET', `/os-quota-sets/${demoProject}`, { version: '2.57' })).body.quota_set;
      expect(at257).not.toHaveProperty('injected_files');
      expect((await demo('GET', `/os-quota-sets/${adminProject}`)).status).toBe(403);
      expect((await demo('GET', `/os-quota-sets/${adminProject}/defaults`)).body.quota_set.key_pairs).toBe(
        100,
      );
      expect(
        (await demo('PUT', `/os-quota-sets/${demoProject}`, { body: { quota_set: { instances: 99 } } }))
          .status,
      ).toBe(403);
    });

    it('updates, validates and resets quotas', async () => {
      const updated = await admin('PUT', `/os-quota-sets/${demoProject}`, {
        body: { quota_set: { instances: 5, cores: '8', server_groups: 1 } },
      });
      expect(updated.status).toBe(200);
      expect(updated.body.quota_set).toMatchObject({ instances: 5, cores: 8 });
      expect(updated.body.quota_set).not.toHaveProperty('id');
      for (const quota_set of [{ instances: 'many' }, { instances: -2 }, { colours: 3 }]) {
        const response = await admin('PUT', `/os-quota-sets/${demoProject}`, { body: { quota_set } });
        expect(response.status).toBe(400);
        expect(response.body.badRequest.message).toContain(Object.keys(quota_set)[0]);
      }
      const gone = await admin('PUT', `/os-quota-sets/${demoProject}`, {
        body: { quota_set: { floating_ips: 3 } },
        version: '2.36',
      });
      expect(gone.status).toBe(400);

      // Server groups are counted against the quota, with Nova's message.
      const group = await demo('POST', '/os-server-groups', {
        body: { server_group: { name: 'g', policies: ['affinity'] } },
      });
      expect(group.status).toBe(200);
      const over = await demo('POST', '/os-server-groups', {
        body: { server_group: { name: 'h', policies: ['affinity'] } },
      });
      expect(over.status).toBe(403);
      expect(over.body.forbidden.message).toBe('Quota exceeded, too many server groups.');
      const detail = (await demo('GET', `/os-quota-sets/${demoProject}/detail`)).body.quota_set;
      expect(detail.server_groups).toEqual({ limit: 1, in_use: 1, reserved: 0 });
      const below = await admin('PUT', `/os-quota-sets/${demoProject}`, {
        body: { quota_set: { server_groups: 0 } },
      });
      expect(below.status).toBe(400);
      expect(
        (
          await admin('PUT', `/os-quota-sets/${demoProject}`, {
            body: { quota_set: { server_groups: 0, force: true } },
          })
        ).status,
      ).toBe(200);
      await demo('DELETE', `/os-server-groups/${group.body.server_group.id}`);

      const limits = (await demo('GET', '/limits')).body.limits;
      expect(limits.rate).toEqual([]);
      expect(limits.absolute).toMatchObject({
        maxTotalInstances: 5,
        maxTotalCores: 8,
        maxImageMeta: 128,
        maxPersonality: 5,
      });
      const limits257 = (await demo('GET', '/limits', { version: '2.57' })).body.limits.absolute;
      expect(limits257).not.toHaveProperty('maxPersonality');
      expect(limits257).not.toHaveProperty('maxImageMeta');
      expect(limits257).not.toHaveProperty('maxSecurityGroups');
      expect(
        (await admin('GET', `/limits?tenant_id=${demoProject}`)).body.limits.absolute.maxTotalInstances,
      ).toBe(5);

      expect((await admin('DELETE', `/os-quota-sets/${demoProject}`)).status).toBe(202);
      expect((await demo('GET', `/os-quota-sets/${demoProject}`)).body.quota_set.instances).toBe(10);
    });

    it('never lets parallel creates exceed a quota', async () => {
      const { body } = await api(cloud.identityUrl, 'GET', '/v3/auth/tokens', {
        token: altToken,
        headers: { 'x-subject-token': altToken },
      });
      const project = body.token.project.id;
      await admin('PUT', `/os-quota-sets/${project}`, {
        body: { quota_set: { server_groups: 2, key_pairs: 2 } },
      });
      const groups = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          call(altToken, 'POST', '/v2.1/os-server-groups', {
            body: { server_group: { name: `race${i}`, policies: ['affinity'] } },
          }),
        ),
      );
      const created = groups.filter((r) => r.status === 200).length;
      expect(groups.every((r) => r.status === 200 || r.status === 403)).toBe(true);
      const listed = (await call(altToken, 'GET', '/v2.1/os-server-groups')).body.server_groups;
      expect(listed.length).toBe(created);
      expect(created).toBeLessThanOrEqual(2);
      const keys = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          call(altToken, 'POST', '/v2.1/os-keypairs', {
            body: { keypair: { name: `race${i}`, public_key: PUBLIC_KEY } },
          }),
        ),
      );
      const keyCount = (await call(altToken, 'GET', '/v2.1/os-keypairs')).body.keypairs.length;
      expect(keyCount).toBe(keys.filter((r) => r.status === 200).length);
      expect(keyCount).toBeLessThanOrEqual(2);
      for (const group of listed) await call(altToken, 'DELETE', `/v2.1/os-server-groups/${group.id}`);
      for (const k of (await call(altToken, 'GET', '/v2.1/os-keypairs')).body.keypairs) {
        await call(altToken, 'DELETE', `/v2.1/os-keypairs/${k.keypair.name}`);
      }
      await admin('DELETE', `/os-quota-sets/${project}`);
    });

    it('keeps quota classes whose defaults every project starts from', async () => {
      const shown = await admin('GET', '/os-quota-class-sets/default');
      expect(shown.body.quota_class_set).toMatchObject({ id: 'default', instances: 10 });
      expect(shown.body.quota_class_set).not.toHaveProperty('server_groups');
      expect(
        (await admin('GET', '/os-quota-class-sets/default', { version: '2.50' })).body.quota_class_set,
      ).toHaveProperty('server_groups');
      const updated = await admin('PUT', '/os-quota-class-sets/default', {
        body: { quota_class_set: { instances: 20 } },
      });
      expect(updated.body.quota_class_set.instances).toBe(20);
      expect((await demo('GET', `/os-quota-sets/${demoProject}`)).body.quota_set.instances).toBe(20);
      expect((await demo('GET', '/os-quota-class-sets/default')).status).toBe(403);
      await admin('PUT', '/os-quota-class-sets/default', { body: { quota_class_set: { instances: 10 } } });
    });
  });

  describe('server groups and zones', () => {
    it('speaks policies before 2.64 and policy + rules after', async () => {
      const old = await demo('POST', '/os-server-groups', {
        body: { server_group: { name: 'old', policies: ['anti-affinity'] } },
      });
      expect(old.body.server_group).toEqual({
        id: expect.any(String),
        name: 'old',
        policies: ['anti-affinity'],
        members: [],
        metadata: {},
      });
      const at213 = await demo('GET', `/os-server-groups/${old.body.server_group.id}`, { version: '2.13' });
      expect(at213.body.server_group).toMatchObject({ project_id: demoProject, user_id: demoUser });
      const created = await demo('POST', '/os-server-groups', {
        body: { server_group: { name: 'new', policy: 'anti-affinity', rules: { max_server_per_host: 2 } } },
        version: '2.64',
      });
      expect(created.body.server_group).toMatchObject({
        policy: 'anti-affinity',
        rules: { max_server_per_host: 2 },
      });
      expect(created.body.server_group).not.toHaveProperty('policies');

      const bad: [unknown, string | undefined][] = [
        [{ name: 'x', policies: ['soft-affinity'] }, '2.14'],
        [{ name: 'x', policies: ['affinity', 'anti-affinity'] }, undefined],
        [{ name: 'x', policy: 'affinity' }, undefined],
        [{ name: 'x', policies: ['affinity'] }, '2.64'],
        [{ name: 'x', policy: 'affinity', rules: { max_server_per_host: 2 } }, '2.64'],
        [{ name: 'x', policy: 'anti-affinity', rules: { max_server_per_host: 0 } }, '2.64'],
        [{ name: '', policies: ['affinity'] }, undefined],
      ];
      for (const [server_group, version] of bad) {
        const response = await demo('POST', '/os-server-groups', { body: { server_group }, version });
        expect([JSON.stringify(server_group), response.status]).toEqual([JSON.stringify(server_group), 400]);
      }
      const soft = await demo('POST', '/os-server-groups', {
        body: { server_group: { name: 'soft', policies: ['soft-affinity'] } },
        version: '2.15',
      });
      expect(soft.status).toBe(200);

      // Other projects get 404; admins see all with all_projects.
      const id = created.body.server_group.id;
      expect((await call(altToken, 'GET', `/v2.1/os-server-groups/${id}`)).status).toBe(404);
      expect((await call(altToken, 'DELETE', `/v2.1/os-server-groups/${id}`)).status).toBe(404);
      expect((await call(altToken, 'GET', '/v2.1/os-server-groups')).body.server_groups).toEqual([]);
      expect((await call(altToken, 'GET', '/v2.1/os-server-groups?all_projects=true')).status).toBe(403);
      expect((await admin('GET', '/os-server-groups?all_projects=true')).body.server_groups).toHaveLength(3);
      expect((await demo('GET', '/os-server-groups?limit=1&offset=1')).body.server_groups).toHaveLength(1);
      for (const group of [old, created, soft]) {
        expect((await demo('DELETE', `/os-server-groups/${group.body.server_group.id}`)).status).toBe(204);
      }
      expect((await demo('GET', `/os-server-groups/${id}`)).body.itemNotFound.message).toBe(
        `Instance group ${id} could not be found.`,
      );
    });

    it('lists the conductor, scheduler and compute agent to admins only, with filters', async () => {
      const all = (await admin('GET', '/os-services')).body.services;
      expect(all.map((s: any) => s.binary).sort()).toEqual([
        'nova-compute',
        'nova-conductor',
        'nova-scheduler',
      ]);
      for (const service of all) expect(service).toMatchObject({ state: 'up', status: 'enabled' });
      expect(all.find((s: any) => s.binary === 'nova-compute').zone).toBe('nova');
      const computes = await admin('GET', `/os-services?binary=nova-compute&host=${all[0].host}`, {
        version: '2.53',
      });
      expect(computes.status).toBe(200);
      expect(computes.body.services).toEqual([
        expect.objectContaining({ binary: 'nova-compute', id: expect.any(String) }),
      ]);
      expect((await admin('GET', '/os-services?host=no-such-host')).body).toEqual({ services: [] });
      const member = await demo('GET', '/os-services');
      expect(member.status).toBe(403);
      expect(member.body.forbidden.message).toBe(
        "Policy doesn't allow os_compute_api:os-services:list to be performed.",
      );
    });

    it('lists the default zone, and its detail to admins', async () => {
      expect((await demo('GET', '/os-availability-zone')).body).toEqual({
        availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true }, hosts: null }],
      });
      expect((await demo('GET', '/os-availability-zone/detail')).status).toBe(403);
      expect((await admin('GET', '/os-availability-zone/detail')).status).toBe(200);
    });
  });
});
