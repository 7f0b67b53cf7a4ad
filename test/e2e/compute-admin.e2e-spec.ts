import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { CloudHandle, startCloud } from './support/cloud';
import { api, issueToken } from './support/keystone';
import { openstack, openstackJson, openstackOk } from './support/openstack';

/**
 * Nova's admin compute APIs over HTTP and through the real CLI: hypervisors, os-services actions, host
 * aggregates and availability zones, simple tenant usage and migrations. Instance and migration rows are
 * written straight into the cloud's database, as the servers API and the resize work will write them.
 */
jest.setTimeout(60_000);

describe('compute admin APIs', () => {
  let cloud: CloudHandle;
  let root: string;
  let adminToken: string;
  let demoToken: string;
  let demoProject: string;
  let db: DataSource;
  let admin: Record<string, string>;

  const call = (token: string, method: string, path: string, version?: string, body?: unknown) =>
    api(root, method, `/v2.1${path}`, {
      token,
      body,
      headers: version ? { 'openstack-api-version': `compute ${version}` } : {},
    });
  const asAdmin = (method: string, path: string, version?: string, body?: unknown) =>
    call(adminToken, method, path, version, body);

  /** Raw SQL on either engine (`?` placeholders become `$n` on PostgreSQL). */
  const sql = (text: string, params: unknown[] = []) => {
    let n = 0;
    return db.query(cloud.mode === 'production' ? text.replace(/\?/g, () => `$${++n}`) : text, params);
  };

  async function insertInstance(
    host: string | null,
    project: string,
    launchedAt: string,
    terminatedAt?: string,
  ) {
    const uuid = randomUUID();
    const now = new Date().toISOString();
    const flavor = JSON.stringify({
      id: '2',
      name: 'm1.small',
      vcpus: 1,
      memory_mb: 2048,
      root_gb: 20,
      ephemeral_gb: 0,
      swap: 0,
      extra_specs: {},
    });
    await sql(
      `INSERT INTO instance (uuid, display_name, hostname, project_id, user_id, host, node, availability_zone,
        vm_state, task_state, power_state, flavor, image_ref, metadata, system_metadata, scheduler_hints,
        config_drive, locked, reservation_id, launch_index, launched_at, terminated_at, created_at, updated_at,
        deleted_at, version)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        uuid,
        'usage-vm',
        'usage-vm',
        project,
        'u',
        host,
        host,
        null,
        terminatedAt ? 'deleted' : 'active',
        null,
        1,
        flavor,
        'img',
        '{}',
        '{}',
        '{}',
        false,
        false,
        'r-1',
        0,
        launchedAt,
        terminatedAt ?? null,
        launchedAt,
        now,
        terminatedAt ?? null,
        1,
      ],
    );
    return uuid;
  }

  beforeAll(async () => {
    cloud = await startCloud({
      portBase: 23400,
      extraEnv: { NOVUM_HOST: 'adm', NOVUM_FAKE_HOSTS: '2', NOVUM_REPORT_INTERVAL: '1' },
    });
    root = cloud.services.compute.replace(/\/v2\.1$/, '');
    admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
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
    adminToken = a.token;
    demoToken = d.token;
    demoProject = d.body.token.project.id;
    db = new DataSource(
      cloud.mode === 'production'
        ? { type: 'postgres', url: cloud.env.DATABASE_URL, entities: [] }
        : { type: 'better-sqlite3', database: join(cloud.dataDir, 'novum.sqlite'), entities: [] },
    );
    await db.initialize();
    // Both fake hosts registered their service and node.
    for (let i = 0; i < 100; i++) {
      const list = await asAdmin('GET', '/os-hypervisors');
      if (list.body.hypervisors?.length === 2) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 120_000);

  afterAll(async () => {
    await db?.destroy();
    await cloud?.destroy();
  }, 60_000);

  describe('hypervisors', () => {
    it('lists with integer ids below 2.53 and uuids from 2.53, in each version its fields', async () => {
      const at21 = await asAdmin('GET', '/os-hypervisors');
      expect(at21.status).toBe(200);
      expect(at21.body.hypervisors.map((h: any) => h.hypervisor_hostname).sort()).toEqual(['adm-1', 'adm-2']);
      expect(typeof at21.body.hypervisors[0].id).toBe('number');
      expect(Object.keys(at21.body.hypervisors[0]).sort()).toEqual([
        'hypervisor_hostname',
        'id',
        'state',
        'status',
      ]);
      expect(at21.body.hypervisors[0]).toMatchObject({ state: 'up', status: 'enabled' });

      const detail = (await asAdmin('GET', '/os-hypervisors/detail')).body.hypervisors[0];
      expect(detail).toMatchObject({ hypervisor_type: 'fake', host_ip: '127.0.0.1', current_workload: 0 });
      expect(typeof detail.cpu_info).toBe('string');
      expect(detail.free_ram_mb).toBe(detail.memory_mb - detail.memory_mb_used);
      expect(typeof detail.service.id).toBe('number');
      expect(
        typeof (await asAdmin('GET', '/os-hypervisors/detail', '2.28')).body.hypervisors[0].cpu_info,
      ).toBe('object');

      const at253 = (await asAdmin('GET', '/os-hypervisors/detail', '2.53')).body.hypervisors[0];
      expect(at253.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(at253.service.id).toMatch(/^[0-9a-f-]{36}$/);
      const at288 = (await asAdmin('GET', `/os-hypervisors/${at253.id}`, '2.88')).body.hypervisor;
      expect(at288).not.toHaveProperty('vcpus');
      expect(at288).not.toHaveProperty('cpu_info');
      expect(at288.uptime).toMatch(/ up .*load average/);
    });

    it('shows, searches and pages as Nova, with its errors', async () => {
      const list = (await asAdmin('GET', '/os-hypervisors')).body.hypervisors;
      const id = list[0].id;
      expect((await asAdmin('GET', `/os-hypervisors/${id}`)).body.hypervisor.id).toBe(id);
      const missing = await asAdmin('GET', '/os-hypervisors/9999');
      expect(missing.status).toBe(404);
      expect(missing.body.itemNotFound.message).toBe("Hypervisor with ID '9999' could not be found.");
      expect((await asAdmin('GET', '/os-hypervisors/abc')).status).toBe(404);
      const bad = await asAdmin('GET', '/os-hypervisors/abc', '2.53');
      expect(bad.status).toBe(400);
      expect(bad.body.badRequest.message).toBe('Invalid uuid abc');
      expect((await asAdmin('GET', `/os-hypervisors/${randomUUID()}`, '2.53')).status).toBe(404);

      const uptime = await asAdmin('GET', `/os-hypervisors/${id}/uptime`);
      expect(uptime.body.hypervisor.uptime).toMatch(/load average/);
      expect((await asAdmin('GET', `/os-hypervisors/${id}/uptime`, '2.88')).status).toBe(404);

      const search = await asAdmin('GET', '/os-hypervisors/adm-2/search');
      expect(search.body.hypervisors.map((h: any) => h.hypervisor_hostname)).toEqual(['adm-2']);
      expect((await asAdmin('GET', '/os-hypervisors/nomatch/search')).status).toBe(404);
      expect((await asAdmin('GET', '/os-hypervisors/adm/search', '2.53')).status).toBe(404);
      const servers = await asAdmin('GET', '/os-hypervisors/adm/servers');
      expect(servers.body.hypervisors).toHaveLength(2);
      expect(servers.body.hypervisors[0]).not.toHaveProperty('servers');

      const pattern = await asAdmin(
        'GET',
        '/os-hypervisors?hypervisor_hostname_pattern=adm-1&with_servers=true',
        '2.75',
      );
      expect(pattern.body.hypervisors).toHaveLength(1);
      expect(pattern.body.hypervisors[0].servers).toEqual([]);
      expect(
        (await asAdmin('GET', '/os-hypervisors?hypervisor_hostname_pattern=adm&limit=1', '2.53')).status,
      ).toBe(400);
      expect((await asAdmin('GET', '/os-hypervisors?foo=1', '2.53')).status).toBe(400);
      expect((await asAdmin('GET', '/os-hypervisors?with_servers=maybe', '2.53')).status).toBe(400);

      const first = await asAdmin('GET', '/os-hypervisors?limit=1', '2.33');
      expect(first.body.hypervisors).toHaveLength(1);
      expect(first.body.hypervisors_links[0].href).toContain(`marker=${first.body.hypervisors[0].id}`);
      const second = await asAdmin(
        'GET',
        `/os-hypervisors?limit=1&marker=${first.body.hypervisors[0].id}`,
        '2.33',
      );
      expect(second.body.hypervisors[0].id).not.toBe(first.body.hypervisors[0].id);
      const badMarker = await asAdmin('GET', '/os-hypervisors?marker=424242', '2.33');
      expect(badMarker.status).toBe(400);
      expect(badMarker.body.badRequest.message).toBe('marker [424242] not found');
    });

    it('sums statistics below 2.88 and refuses members', async () => {
      const stats = (await asAdmin('GET', '/os-hypervisors/statistics')).body.hypervisor_statistics;
      expect(stats.count).toBe(2);
      expect(stats.free_ram_mb).toBe(stats.memory_mb - stats.memory_mb_used);
      expect((await asAdmin('GET', '/os-hypervisors/statistics', '2.88')).status).toBe(404);
      const refused = await call(demoToken, 'GET', '/os-hypervisors');
      expect(refused.status).toBe(403);
      expect(refused.body.forbidden.message).toBe(
        "Policy doesn't allow os_compute_api:os-hypervisors:list to be performed.",
      );
    });

    it('works with the openstack CLI', async () => {
      const list = await openstackJson<any[]>(admin, 'hypervisor', 'list');
      expect(list.map((h) => h['Hypervisor Hostname']).sort()).toEqual(['adm-1', 'adm-2']);
      const shown = await openstackJson<any>(admin, 'hypervisor', 'show', 'adm-1');
      expect(shown.hypervisor_hostname).toBe('adm-1');
      expect(shown.state).toBe('up');
      const stats = await openstack(admin, 'hypervisor', 'stats', 'show', '-f', 'json');
      expect(stats.code).toBe(0);
      expect(JSON.parse(stats.stdout).count).toBe(2);
    });
  });

  describe('os-services actions', () => {
    const computeService = async (host: string, version = '2.53') =>
      (await asAdmin('GET', `/os-services?binary=nova-compute&host=${host}`, version)).body.services[0];

    it('disables and enables with the CLI and the 2.53 PUT; the hypervisor and statistics follow', async () => {
      await openstackOk(
        admin,
        'compute',
        'service',
        'set',
        '--disable',
        '--disable-reason',
        'maintenance',
        'adm-1',
        'nova-compute',
      );
      const rows = await openstackJson<any[]>(admin, 'compute', 'service', 'list', '--long');
      const row = rows.find((s) => s.Host === 'adm-1' && s.Binary === 'nova-compute');
      expect(row).toMatchObject({ Status: 'disabled', 'Disabled Reason': 'maintenance' });
      const hyp = (await asAdmin('GET', '/os-hypervisors?hypervisor_hostname_pattern=adm-1', '2.53')).body
        .hypervisors[0];
      expect(hyp.status).toBe('disabled');
      expect((await asAdmin('GET', '/os-hypervisors/statistics')).body.hypervisor_statistics.count).toBe(1);

      const service = await computeService('adm-1');
      const enabled = await asAdmin('PUT', `/os-services/${service.id}`, '2.53', { status: 'enabled' });
      expect(enabled.status).toBe(200);
      expect(enabled.body.service).toMatchObject({
        id: service.id,
        status: 'enabled',
        disabled_reason: null,
        forced_down: false,
      });
      const both = await asAdmin('PUT', `/os-services/${service.id}`, '2.53', {
        status: 'enabled',
        disabled_reason: 'x',
      });
      expect(both.status).toBe(400);
      expect(both.body.badRequest.message).toBe(
        "Specifying 'disabled_reason' with status 'enabled' is invalid.",
      );
      expect((await asAdmin('PUT', `/os-services/${service.id}`, '2.53', {})).status).toBe(400);
      expect((await asAdmin('PUT', `/os-services/${service.id}`, '2.53', { status: 'off' })).status).toBe(
        400,
      );
      expect((await asAdmin('PUT', '/os-services/not-a-uuid', '2.53', { status: 'enabled' })).status).toBe(
        400,
      );
      expect(
        (await asAdmin('PUT', `/os-services/${randomUUID()}`, '2.53', { status: 'enabled' })).status,
      ).toBe(404);
      const conductor = (await asAdmin('GET', '/os-services?binary=nova-conductor', '2.53')).body.services[0];
      expect(
        (await asAdmin('PUT', `/os-services/${conductor.id}`, '2.53', { status: 'disabled' })).status,
      ).toBe(400);
    });

    it('serves the actions of the older microversions, forced down included', async () => {
      const off = await asAdmin('PUT', '/os-services/disable-log-reason', '2.11', {
        host: 'adm-2',
        binary: 'nova-compute',
        disabled_reason: 'old style',
      });
      expect(off.body).toEqual({
        service: { host: 'adm-2', binary: 'nova-compute', status: 'disabled', disabled_reason: 'old style' },
      });
      const on = await asAdmin('PUT', '/os-services/enable', '2.1', {
        host: 'adm-2',
        binary: 'nova-compute',
      });
      expect(on.body).toEqual({ service: { host: 'adm-2', binary: 'nova-compute', status: 'enabled' } });
      const down = await asAdmin('PUT', '/os-services/force-down', '2.11', {
        host: 'adm-2',
        binary: 'nova-compute',
        forced_down: true,
      });
      expect(down.body.service.forced_down).toBe(true);
      expect((await computeService('adm-2')).state).toBe('down');
      await asAdmin('PUT', '/os-services/force-down', '2.11', {
        host: 'adm-2',
        binary: 'nova-compute',
        forced_down: false,
      });
      expect((await computeService('adm-2')).state).toBe('up');
      expect(
        (await asAdmin('PUT', '/os-services/force-down', '2.1', { host: 'adm-2', binary: 'nova-compute' }))
          .status,
      ).toBe(404);
      const noFlag = await asAdmin('PUT', '/os-services/force-down', '2.11', {
        host: 'adm-2',
        binary: 'nova-compute',
      });
      expect(noFlag.status).toBe(400);
      expect(noFlag.body.badRequest.message).toBe('Missing forced_down field');
      expect(
        (await asAdmin('PUT', '/os-services/explode', '2.1', { host: 'adm-2', binary: 'nova-compute' }))
          .status,
      ).toBe(404);
      const missing = await asAdmin('PUT', '/os-services/disable', '2.1', {
        host: 'nowhere',
        binary: 'nova-compute',
      });
      expect(missing.status).toBe(404);
      expect(missing.body.itemNotFound.message).toBe('Could not find binary nova-compute on host nowhere.');
      expect((await asAdmin('PUT', '/os-services/disable', '2.1', { host: 'adm-2' })).status).toBe(400);
      expect(
        (
          await call(demoToken, 'PUT', '/os-services/disable', '2.1', {
            host: 'adm-2',
            binary: 'nova-compute',
          })
        ).status,
      ).toBe(403);
    });

    it('refuses to delete a compute service that hosts instances, and checks ids', async () => {
      const uuid = await insertInstance('adm-2', demoProject, new Date(Date.now() - 3_600_000).toISOString());
      const service = await computeService('adm-2');
      const refused = await asAdmin('DELETE', `/os-services/${service.id}`, '2.53');
      expect(refused.status).toBe(409);
      expect(refused.body.conflictingRequest.message).toBe(
        'Unable to delete compute service that is hosting instances. Migrate or delete the instances first.',
      );
      expect((await asAdmin('DELETE', '/os-services/abc', '2.53')).status).toBe(400);
      expect((await asAdmin('DELETE', '/os-services/abc')).status).toBe(400);
      expect((await asAdmin('DELETE', '/os-services/424242')).status).toBe(404);
      // The hypervisor lists its server.
      const hyp = await asAdmin('GET', '/os-hypervisors/adm-2/servers');
      expect(hyp.body.hypervisors[0].servers).toEqual([
        { uuid, name: `instance-${uuid.replace(/-/g, '').slice(0, 8)}` },
      ]);
    });
  });

  describe('aggregates and availability zones', () => {
    it('creates, updates, adds hosts and keeps the zone in step with the metadata', async () => {
      const created = await openstackJson<any>(admin, 'aggregate', 'create', '--zone', 'az1', 'agg1');
      expect(created).toMatchObject({ name: 'agg1', availability_zone: 'az1' });
      const dup = await asAdmin('POST', '/os-aggregates', undefined, { aggregate: { name: 'agg1' } });
      expect(dup.status).toBe(409);
      expect(dup.body.conflictingRequest.message).toBe('Aggregate agg1 already exists.');
      expect((await asAdmin('POST', '/os-aggregates', undefined, { aggregate: {} })).status).toBe(400);
      expect((await asAdmin('POST', '/os-aggregates', undefined, { aggregate: { name: ' x' } })).status).toBe(
        400,
      );
      expect(
        (await asAdmin('POST', '/os-aggregates', undefined, { aggregate: { name: 'x', foo: 1 } })).status,
      ).toBe(400);

      await openstackOk(admin, 'aggregate', 'set', '--property', 'ssd=true', 'agg1');
      await openstackOk(admin, 'aggregate', 'add', 'host', 'agg1', 'adm-1');
      const shown = await openstackJson<any>(admin, 'aggregate', 'show', 'agg1');
      expect(shown.hosts).toEqual(['adm-1']);
      expect(shown.availability_zone).toBe('az1');

      const id = created.id;
      const again = await asAdmin('POST', `/os-aggregates/${id}/action`, undefined, {
        add_host: { host: 'adm-1' },
      });
      expect(again.status).toBe(409);
      expect(again.body.conflictingRequest.message).toBe(`Aggregate ${id} already has host adm-1.`);
      const nohost = await asAdmin('POST', `/os-aggregates/${id}/action`, undefined, {
        add_host: { host: 'ghost' },
      });
      expect(nohost.status).toBe(404);
      expect(nohost.body.itemNotFound.message).toBe('Compute host ghost could not be found.');
      expect(
        (await asAdmin('POST', '/os-aggregates/9999/action', undefined, { add_host: { host: 'adm-1' } }))
          .status,
      ).toBe(404);
      expect((await asAdmin('GET', '/os-aggregates/abc')).status).toBe(400);
      expect((await asAdmin('GET', '/os-aggregates/9999')).status).toBe(404);

      // The zone as a field and as metadata are one.
      const meta = await asAdmin('POST', `/os-aggregates/${id}/action`, '2.41', {
        set_metadata: { metadata: { availability_zone: 'az2', ssd: null } },
      });
      expect(meta.body.aggregate).toMatchObject({
        availability_zone: 'az2',
        metadata: { availability_zone: 'az2' },
      });
      expect(meta.body.aggregate.uuid).toMatch(/^[0-9a-f-]{36}$/);
      const renamed = await asAdmin('PUT', `/os-aggregates/${id}`, undefined, {
        aggregate: { availability_zone: 'az1' },
      });
      expect(renamed.body.aggregate.metadata).toEqual({ availability_zone: 'az1' });
      expect(renamed.body.aggregate).not.toHaveProperty('uuid');

      // A host is in one zone only.
      const other = (
        await asAdmin('POST', '/os-aggregates', undefined, {
          aggregate: { name: 'agg2', availability_zone: 'az9' },
        })
      ).body.aggregate;
      const clash = await asAdmin('POST', `/os-aggregates/${other.id}/action`, undefined, {
        add_host: { host: 'adm-1' },
      });
      expect(clash.status).toBe(409);
      expect(clash.body.conflictingRequest.message).toBe(
        `Cannot add host to aggregate ${other.id}. Reason: One or more hosts already in availability zone(s) ['az1'].`,
      );
      const empty = await asAdmin('PUT', `/os-aggregates/${id}`, undefined, {
        aggregate: { availability_zone: null },
      });
      expect(empty.status).toBe(400);

      const zones = (await asAdmin('GET', '/os-availability-zone')).body.availabilityZoneInfo;
      expect(zones.map((z: any) => z.zoneName).sort()).toEqual(['az1', 'nova']);
      const detail = (await asAdmin('GET', '/os-availability-zone/detail')).body.availabilityZoneInfo;
      const az1 = detail.find((z: any) => z.zoneName === 'az1');
      expect(Object.keys(az1.hosts)).toEqual(['adm-1']);
      expect(az1.hosts['adm-1']['nova-compute']).toMatchObject({ available: true, active: true });
      expect(Object.keys(detail.find((z: any) => z.zoneName === 'internal').hosts)).toEqual(['adm']);
      expect((await call(demoToken, 'GET', '/os-availability-zone/detail')).status).toBe(403);
      const services = (await asAdmin('GET', '/os-services?binary=nova-compute')).body.services;
      expect(services.find((s: any) => s.host === 'adm-1').zone).toBe('az1');

      const notEmpty = await asAdmin('DELETE', `/os-aggregates/${id}`);
      expect(notEmpty.status).toBe(400);
      expect(notEmpty.body.badRequest.message).toBe(
        `Cannot remove host from aggregate ${id}. Reason: Host aggregate is not empty.`,
      );
      const gone = await asAdmin('POST', `/os-aggregates/${id}/action`, undefined, {
        remove_host: { host: 'adm-2' },
      });
      expect(gone.status).toBe(404);
      expect(gone.body.itemNotFound.message).toBe(`Cannot remove host adm-2 in aggregate ${id}`);
      await openstackOk(admin, 'aggregate', 'remove', 'host', 'agg1', 'adm-1');
      await openstackOk(admin, 'aggregate', 'delete', 'agg1', 'agg2');
      expect((await asAdmin('GET', '/os-aggregates')).body.aggregates).toEqual([]);
      expect((await call(demoToken, 'GET', '/os-aggregates')).status).toBe(403);
      expect((await asAdmin('POST', `/os-aggregates/${id}/action`, undefined, { explode: {} })).status).toBe(
        400,
      );
    });
  });

  describe('simple tenant usage', () => {
    it('reports hours per project, the own project to its members', async () => {
      const start = new Date(Date.now() - 2 * 3_600_000).toISOString().slice(0, 19);
      const list = await asAdmin('GET', `/os-simple-tenant-usage?start=${start}&detailed=1`);
      expect(list.status).toBe(200);
      const demo = list.body.tenant_usages.find((u: any) => u.tenant_id === demoProject);
      expect(demo.total_hours).toBeGreaterThan(0.9);
      expect(demo.total_memory_mb_usage).toBeCloseTo(demo.total_hours * 2048, 3);
      expect(demo.server_usages[0]).toMatchObject({
        flavor: 'm1.small',
        state: 'active',
        vcpus: 1,
        local_gb: 20,
      });

      const own = await call(demoToken, 'GET', `/os-simple-tenant-usage/${demoProject}?start=${start}`);
      expect(own.status).toBe(200);
      expect(own.body.tenant_usage.server_usages).toHaveLength(1);
      expect((await call(demoToken, 'GET', '/os-simple-tenant-usage')).status).toBe(403);
      expect((await call(demoToken, 'GET', '/os-simple-tenant-usage/someone-else')).status).toBe(403);
      expect((await asAdmin('GET', '/os-simple-tenant-usage/nobody')).body).toEqual({ tenant_usage: {} });
      const bad = await asAdmin('GET', '/os-simple-tenant-usage?start=yesterday');
      expect(bad.status).toBe(400);
      expect(bad.body.badRequest.message).toBe('Invalid datetime string: Datetime is in invalid format');
      const reversed = await asAdmin(
        'GET',
        `/os-simple-tenant-usage?start=2030-01-01T00:00:00&end=2029-01-01T00:00:00`,
      );
      expect(reversed.status).toBe(400);
      const paged = await asAdmin('GET', `/os-simple-tenant-usage?start=${start}&limit=1`, '2.40');
      expect(paged.body.tenant_usages_links[0].href).toContain('marker=');

      const cli = await openstackJson<any[]>(admin, 'usage', 'list', '--start', start.slice(0, 10));
      const row = cli.find((r) => r.Project === demoProject || r.Project === 'demo');
      expect(row.Servers).toHaveLength(1);
      expect(row['CPU Hours']).toBeGreaterThan(0.9);
    });
  });

  describe('migrations', () => {
    it('lists migration rows with the fields of each microversion', async () => {
      const now = new Date().toISOString();
      const uuid = randomUUID();
      await sql(
        `INSERT INTO migration (uuid, instance_uuid, migration_type, status, source_compute, source_node, dest_compute,
          dest_node, dest_host, old_instance_type_id, new_instance_type_id, user_id, project_id, hidden, created_at,
          updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          uuid,
          randomUUID(),
          'resize',
          'finished',
          'adm-1',
          'adm-1',
          'adm-2',
          'adm-2',
          '127.0.0.1',
          1,
          2,
          'u',
          demoProject,
          false,
          now,
          now,
        ],
      );
      const at21 = (await asAdmin('GET', '/os-migrations')).body.migrations;
      expect(at21).toHaveLength(1);
      expect(at21[0]).not.toHaveProperty('migration_type');
      expect(at21[0]).toMatchObject({ status: 'finished', source_compute: 'adm-1', new_instance_type_id: 2 });
      expect((await asAdmin('GET', '/os-migrations', '2.23')).body.migrations[0].migration_type).toBe(
        'resize',
      );
      expect((await asAdmin('GET', '/os-migrations', '2.59')).body.migrations[0].uuid).toBe(uuid);
      expect((await asAdmin('GET', '/os-migrations', '2.80')).body.migrations[0].project_id).toBe(
        demoProject,
      );
      expect((await asAdmin('GET', '/os-migrations?status=error')).body.migrations).toEqual([]);
      expect((await asAdmin('GET', '/os-migrations?host=adm-2')).body.migrations).toHaveLength(1);
      expect((await asAdmin('GET', '/os-migrations?marker=nope', '2.59')).status).toBe(400);
      expect((await call(demoToken, 'GET', '/os-migrations')).status).toBe(403);
    });
  });
});
