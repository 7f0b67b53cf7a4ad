import { CloudHandle, startCloud } from './support/cloud';
import { api, issueToken } from './support/keystone';

/**
 * Nova's deprecated proxy and legacy APIs over HTTP: images and image metadata (Glance), security groups and
 * rules, networks and tenant networks (Neutron) below 2.36, os-hosts below 2.43, extensions and the
 * instance usage audit log.
 */
jest.setTimeout(60_000);

describe('compute proxy and legacy APIs', () => {
  let cloud: CloudHandle;
  let root: string;
  let adminToken: string;
  let demoToken: string;
  let demoProject: string;

  const call = (token: string, method: string, path: string, body?: unknown, version = '2.1') =>
    api(root, method, `/v2.1${path}`, {
      token,
      body,
      headers: { 'openstack-api-version': `compute ${version}` },
    });
  const glance = (method: string, path: string, body?: unknown, contentType?: string) =>
    api(cloud.services.image, method, path, {
      token: demoToken,
      body,
      headers: contentType ? { 'content-type': contentType } : {},
    });

  beforeAll(async () => {
    cloud = await startCloud({
      portBase: 23900,
      extraEnv: { NOVUM_HOST: 'prx', NOVUM_REPORT_INTERVAL: '1' },
    });
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
    adminToken = a.token;
    demoToken = d.token;
    demoProject = d.body.token.project.id;
    for (let i = 0; i < 100; i++) {
      const hosts = await call(adminToken, 'GET', '/os-hosts');
      if (hosts.body.hosts?.some((h: any) => h.service === 'compute')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  describe('images', () => {
    let imageId: string;

    beforeAll(async () => {
      const created = await glance('POST', '/v2/images', {
        name: 'proxy-img',
        disk_format: 'raw',
        container_format: 'bare',
        min_ram: 64,
        os_distro: 'debian',
      });
      expect(created.status).toBe(201);
      imageId = created.body.id;
    });

    it("shows a Glance image in Nova's view and lists it with filters and paging", async () => {
      const shown = await call(demoToken, 'GET', `/images/${imageId}`);
      expect(shown.status).toBe(200);
      expect(shown.body.image).toMatchObject({
        id: imageId,
        name: 'proxy-img',
        status: 'SAVING',
        progress: 25,
        minRam: 64,
        minDisk: 0,
        metadata: { os_distro: 'debian' },
        'OS-EXT-IMG-SIZE:size': null,
      });
      const brief = await call(demoToken, 'GET', '/images?name=proxy-img');
      expect(brief.body.images).toEqual([
        {
          id: imageId,
          name: 'proxy-img',
          links: expect.arrayContaining([expect.objectContaining({ rel: 'self' })]),
        },
      ]);
      expect(
        (await call(demoToken, 'GET', '/images/detail?status=ACTIVE')).body.images.map((i: any) => i.id),
      ).not.toContain(imageId);
      expect((await call(demoToken, 'GET', '/images/detail?minRam=65')).body.images).toEqual([]);
      const paged = await call(demoToken, 'GET', '/images?limit=1');
      expect(paged.body.images).toHaveLength(1);
      expect(paged.body.images_links[0].href).toContain(`marker=${paged.body.images[0].id}`);
      expect((await call(demoToken, 'GET', '/images?limit=x')).status).toBe(400);
      expect((await call(demoToken, 'GET', '/images/00000000-0000-4000-8000-000000000099')).body).toEqual({
        itemNotFound: { code: 404, message: 'Image not found.' },
      });
      expect((await call(demoToken, 'GET', '/images', undefined, '2.36')).status).toBe(404);
    });

    it('reads and writes image metadata as Glance properties', async () => {
      const base = `/images/${imageId}/metadata`;
      const put = await call(demoToken, 'PUT', base, { metadata: { a: '1', b: '2' } });
      expect(put).toMatchObject({ status: 200, body: { metadata: { a: '1', b: '2' } } });
      expect((await call(demoToken, 'GET', base)).body.metadata).toEqual({ a: '1', b: '2' });
      const merged = await call(demoToken, 'POST', base, { metadata: { b: '3', c: '4' } });
      expect(merged).toMatchObject({ status: 200, body: { metadata: { a: '1', b: '3', c: '4' } } });
      expect((await call(demoToken, 'PUT', `${base}/d`, { meta: { d: '5' } })).body).toEqual({
        meta: { d: '5' },
      });
      expect((await call(demoToken, 'PUT', `${base}/d`, { meta: { e: '5' } })).status).toBe(400);
      expect((await call(demoToken, 'GET', `${base}/c`)).body).toEqual({ meta: { c: '4' } });
      expect((await call(demoToken, 'DELETE', `${base}/a`)).status).toBe(204);
      expect((await call(demoToken, 'DELETE', `${base}/a`)).status).toBe(404);
      const image = await glance('GET', `/v2/images/${imageId}`);
      expect(image.body).toMatchObject({ b: '3', c: '4', d: '5' });
      expect(image.body.a).toBeUndefined();
      expect(
        (await call(demoToken, 'GET', '/images/00000000-0000-4000-8000-000000000099/metadata')).status,
      ).toBe(404);
    });

    it('deletes through Glance', async () => {
      expect((await call(demoToken, 'DELETE', `/images/${imageId}`)).status).toBe(204);
      expect((await glance('GET', `/v2/images/${imageId}`)).status).toBe(404);
      expect((await call(demoToken, 'DELETE', `/images/${imageId}`)).status).toBe(404);
    });
  });

  describe('security groups', () => {
    it('creates, shows, updates, lists and deletes groups and rules in Neutron', async () => {
      const created = await call(demoToken, 'POST', '/os-security-groups', {
        security_group: { name: 'web', description: 'http' },
      });
      expect(created.status).toBe(200);
      const group = created.body.security_group;
      expect(group).toEqual({
        id: group.id,
        name: 'web',
        description: 'http',
        tenant_id: demoProject,
        rules: [],
      });
      const other = (
        await call(demoToken, 'POST', '/os-security-groups', {
          security_group: { name: 'db', description: '' },
        })
      ).body.security_group;

      const rule = await call(demoToken, 'POST', '/os-security-group-rules', {
        security_group_rule: { parent_group_id: group.id, ip_protocol: 'tcp', from_port: 80, to_port: 80 },
      });
      expect(rule.status).toBe(200);
      expect(rule.body.security_group_rule).toEqual({
        id: expect.any(String),
        parent_group_id: group.id,
        ip_protocol: 'tcp',
        from_port: 80,
        to_port: 80,
        group: {},
        ip_range: { cidr: '0.0.0.0/0' },
      });
      const byGroup = await call(demoToken, 'POST', '/os-security-group-rules', {
        security_group_rule: { parent_group_id: group.id, ip_protocol: 'icmp', group_id: other.id },
      });
      expect(byGroup.body.security_group_rule).toMatchObject({
        from_port: -1,
        to_port: -1,
        group: { name: 'db', tenant_id: demoProject },
        ip_range: {},
      });
      const neutronRule = await api(
        cloud.services.network,
        'GET',
        `/v2.0/security-group-rules/${rule.body.security_group_rule.id}`,
        {
          token: demoToken,
        },
      );
      expect(neutronRule.body.security_group_rule).toMatchObject({
        direction: 'ingress',
        protocol: 'tcp',
        port_range_min: 80,
        port_range_max: 80,
      });

      const bad = (body: Record<string, unknown>) =>
        call(demoToken, 'POST', '/os-security-group-rules', {
          security_group_rule: { parent_group_id: group.id, ...body },
        });
      expect((await bad({ ip_protocol: 'tcp', from_port: 80, to_port: 80 })).body.badRequest.message).toBe(
        `This rule already exists in group ${group.id}`,
      );
      expect((await bad({ ip_protocol: 'tcp', from_port: 22, to_port: 21 })).status).toBe(400);
      expect((await bad({ ip_protocol: 'tcp', from_port: 1, to_port: 65536 })).status).toBe(400);
      expect((await bad({ ip_protocol: 'gre', from_port: 1, to_port: 2 })).body.badRequest.message).toBe(
        'Invalid IP protocol gre.',
      );
      expect((await bad({ ip_protocol: 'tcp', from_port: 1, to_port: 2, cidr: '10.0.0.0/40' })).status).toBe(
        400,
      );
      expect((await bad({ cidr: '10.0.0.0/8' })).body.badRequest.message).toBe(
        'Not enough parameters to build a valid rule.',
      );
      expect(
        (
          await call(demoToken, 'POST', '/os-security-group-rules', {
            security_group_rule: {
              parent_group_id: 'not-a-uuid',
              ip_protocol: 'tcp',
              from_port: 1,
              to_port: 2,
            },
          })
        ).status,
      ).toBe(400);
      expect(
        (
          await call(demoToken, 'POST', '/os-security-group-rules', {
            security_group_rule: {
              parent_group_id: '00000000-0000-4000-8000-0000000000aa',
              ip_protocol: 'tcp',
              from_port: 1,
              to_port: 2,
            },
          })
        ).status,
      ).toBe(404);

      const shown = await call(demoToken, 'GET', `/os-security-groups/${group.id}`);
      expect(shown.body.security_group.rules).toHaveLength(2);
      const updated = await call(demoToken, 'PUT', `/os-security-groups/${group.id}`, {
        security_group: { name: 'web2', description: 'https' },
      });
      expect(updated.body.security_group).toMatchObject({ name: 'web2', description: 'https' });
      const list = await call(demoToken, 'GET', '/os-security-groups');
      expect(list.body.security_groups.map((g: any) => g.name)).toEqual(['db', 'default', 'web2']);

      expect(
        (await call(demoToken, 'DELETE', `/os-security-group-rules/${rule.body.security_group_rule.id}`))
          .status,
      ).toBe(202);
      expect(
        (await call(demoToken, 'DELETE', `/os-security-group-rules/${rule.body.security_group_rule.id}`))
          .status,
      ).toBe(404);
      const defaultGroup = list.body.security_groups.find((g: any) => g.name === 'default');
      expect((await call(demoToken, 'DELETE', `/os-security-groups/${defaultGroup.id}`)).status).toBe(400);
      expect((await call(demoToken, 'DELETE', '/os-security-groups/nope')).body.badRequest.message).toBe(
        'Security group id should be uuid',
      );
      // The rule pointing at `db` goes with it; then `web2` goes too.
      expect((await call(demoToken, 'DELETE', `/os-security-groups/${other.id}`)).status).toBe(202);
      expect(
        (await call(demoToken, 'GET', `/os-security-groups/${group.id}`)).body.security_group.rules,
      ).toEqual([]);
      expect((await call(demoToken, 'DELETE', `/os-security-groups/${group.id}`)).status).toBe(202);
      expect((await call(demoToken, 'GET', `/os-security-groups/${group.id}`)).status).toBe(404);
      expect((await call(demoToken, 'GET', '/os-security-groups', undefined, '2.36')).status).toBe(404);
    });
  });

  describe('networks', () => {
    it('lists and shows Neutron networks as os-networks and os-tenant-networks', async () => {
      const nets = await call(demoToken, 'GET', '/os-tenant-networks');
      expect(nets.status).toBe(200);
      const priv = nets.body.networks.find((n: any) => n.label === 'private');
      expect(priv).toEqual({ id: expect.any(String), cidr: 'None', label: 'private' });
      expect((await call(demoToken, 'GET', `/os-tenant-networks/${priv.id}`)).body.network).toEqual(priv);
      const admin = await call(adminToken, 'GET', `/os-networks/${priv.id}`);
      expect(admin.body.network).toMatchObject({ id: priv.id, label: 'private', cidr: null, mtu: null });
      const member = await call(demoToken, 'GET', '/os-networks');
      expect(Object.keys(member.body.networks[0])).toHaveLength(11);
      expect((await call(demoToken, 'GET', '/os-networks/00000000-0000-4000-8000-0000000000aa')).status).toBe(
        404,
      );
      expect((await call(adminToken, 'POST', '/os-networks', { network: { label: 'x' } })).status).toBe(410);
      expect((await call(demoToken, 'DELETE', `/os-tenant-networks/${priv.id}`)).status).toBe(410);
      expect((await call(demoToken, 'GET', '/os-tenant-networks', undefined, '2.36')).status).toBe(404);
    });
  });

  describe('hosts', () => {
    it("lists hosts by zone, shows a compute host's resources and refuses power actions as libvirt does", async () => {
      const list = await call(adminToken, 'GET', '/os-hosts');
      expect(list.body.hosts).toEqual(
        expect.arrayContaining([
          { host_name: 'prx', service: 'compute', zone: 'nova' },
          { host_name: 'prx', service: 'conductor', zone: 'internal' },
        ]),
      );
      expect(
        (await call(adminToken, 'GET', '/os-hosts?zone=nova')).body.hosts.map((h: any) => h.service),
      ).toEqual(['compute']);
      expect((await call(adminToken, 'GET', '/os-hosts?zone=nowhere')).body.hosts).toEqual([]);
      const shown = await call(adminToken, 'GET', '/os-hosts/prx');
      expect(shown.body.host.map((r: any) => r.resource.project)).toEqual([
        '(total)',
        '(used_now)',
        '(used_max)',
      ]);
      expect((await call(adminToken, 'GET', '/os-hosts/nohost')).status).toBe(404);
      expect((await call(adminToken, 'GET', '/os-hosts/prx/reboot')).status).toBe(501);
      expect((await call(adminToken, 'GET', '/os-hosts/nohost/startup')).status).toBe(404);
      expect((await call(adminToken, 'PUT', '/os-hosts/prx', {})).status).toBe(400);
      expect((await call(adminToken, 'PUT', '/os-hosts/prx', { status: 'bad' })).status).toBe(400);
      expect((await call(adminToken, 'PUT', '/os-hosts/nohost', { status: 'enable' })).status).toBe(404);
      expect((await call(adminToken, 'PUT', '/os-hosts/prx', { status: 'enable' })).status).toBe(501);
      expect((await call(demoToken, 'GET', '/os-hosts')).status).toBe(403);
      expect((await call(adminToken, 'GET', '/os-hosts', undefined, '2.43')).status).toBe(404);
    });
  });

  describe('extensions and audit log', () => {
    it("answers Nova's extension list to anyone", async () => {
      const list = await call(demoToken, 'GET', '/extensions');
      expect(list.body.extensions.length).toBeGreaterThan(90);
      const one = await call(demoToken, 'GET', '/extensions/os-hosts');
      expect(one.body.extension).toEqual(
        expect.objectContaining({ alias: 'os-hosts', name: 'Hosts', links: [] }),
      );
      expect((await call(demoToken, 'GET', '/extensions/nope')).status).toBe(404);
    });

    it('summarises the last completed month per compute host, for admins', async () => {
      const list = await call(adminToken, 'GET', '/os-instance_usage_audit_log');
      expect(list.status).toBe(200);
      expect(list.body.instance_usage_audit_logs).toMatchObject({
        num_hosts: 1,
        num_hosts_done: 1,
        hosts_not_run: [],
        overall_status: 'ALL hosts done. 0 errors.',
        log: { prx: { state: 'DONE', errors: 0 } },
      });
      const at = await call(
        adminToken,
        'GET',
        `/os-instance_usage_audit_log/${encodeURIComponent('2026-03-15 10:00:00')}`,
      );
      expect(at.body.instance_usage_audit_log).toMatchObject({
        period_beginning: '2026-02-01 00:00:00',
        period_ending: '2026-03-01 00:00:00',
      });
      const bad = await call(adminToken, 'GET', '/os-instance_usage_audit_log/invalid_time');
      expect(bad.body).toEqual({
        badRequest: { code: 400, message: 'Invalid timestamp for date invalid_time' },
      });
      expect((await call(demoToken, 'GET', '/os-instance_usage_audit_log')).status).toBe(403);
    });
  });
});
