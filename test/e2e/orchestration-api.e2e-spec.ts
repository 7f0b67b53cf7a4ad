import { CloudHandle, startCloud } from './support/cloud';
import { api, issueToken } from './support/keystone';

jest.setTimeout(60_000);

/**
 * Heat API calls heat-tempest-plugin's gabbi tests make beyond stacks (test/tempest/heat-api.sh runs those):
 * software configs and deployments, mark unhealthy, generated resource type templates, function descriptions.
 */
describe('orchestration API: software configs, mark unhealthy, type templates', () => {
  let cloud: CloudHandle;
  let token: string;
  let otherToken: string;
  let base: string;

  const heat = (method: string, path: string, body?: unknown, as = token) =>
    api(base, method, path, { token: as, ...(body === undefined ? {} : { body }) });

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 26100 });
    const demo = await issueToken(cloud.identityUrl, {
      user: 'demo',
      password: cloud.demoPassword,
      project: 'demo',
    });
    const admin = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    token = demo.token;
    otherToken = admin.token;
    base = cloud.services.orchestration.replace(/[$%]\((project|tenant)_id\)s/, demo.body.token.project.id);
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('keeps software configs and deployments, and answers application/json as Heat', async () => {
    const created = await heat('POST', '/software_configs', {
      name: 'hello',
      group: 'script',
      config: '#!/bin/sh\necho hello',
      inputs: [{ name: 'greeting' }],
    });
    expect(created.status).toBe(200);
    expect(created.headers.get('content-type')).toBe('application/json');
    const config = created.body.software_config;
    expect(config).toMatchObject({
      name: 'hello',
      group: 'script',
      inputs: [{ name: 'greeting', type: 'String' }],
    });

    expect((await heat('GET', `/software_configs/${config.id}`)).body.software_config.config).toBe(
      '#!/bin/sh\necho hello',
    );
    const deployment = (
      await heat('POST', '/software_deployments', {
        action: 'ACTION0',
        config_id: config.id,
        server_id: 'dummy',
      })
    ).body.software_deployment;
    expect(deployment).toMatchObject({ action: 'ACTION0', config_id: config.id, server_id: 'dummy' });
    const metadata = await heat('GET', '/software_deployments/metadata/dummy');
    expect(metadata.body.metadata.map((c: { id: string }) => c.id)).toEqual([config.id]);

    const updated = await heat('PUT', `/software_deployments/${deployment.id}`, {
      action: 'ACTION1',
      status: 'COMPLETE',
      status_reason: 'completed',
    });
    expect(updated.status).toBe(200);
    expect(updated.body.software_deployment).toMatchObject({ action: 'ACTION1', status: 'COMPLETE' });

    const refused = await heat('DELETE', `/software_configs/${config.id}`);
    expect(refused.status).toBe(400);
    expect(refused.body.error.type).toBe('InvalidRestrictedAction');
    expect((await heat('DELETE', `/software_deployments/${deployment.id}`)).status).toBe(204);
    expect((await heat('DELETE', `/software_configs/${config.id}`)).status).toBe(204);
    const gone = await heat('GET', `/software_configs/${config.id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.message).toBe(`Software config with id ${config.id} not found`);
  });

  it("hides a project's configs from another project's member", async () => {
    const config = (await heat('POST', '/software_configs', { name: 'mine' })).body.software_config;
    const adminProject = (
      await api(cloud.identityUrl, 'GET', '/v3/auth/tokens', {
        token: otherToken,
        headers: { 'x-subject-token': otherToken },
      })
    ).body.token.project.id;
    const otherBase = base.replace(/\/v1\/[^/]+$/, `/v1/${adminProject}`);
    // An admin sees every project's configs (Heat's is_admin context); the demo project sees only its own.
    const listed = await api(otherBase, 'GET', '/software_configs', { token: otherToken });
    expect(listed.body.software_configs.find((c: { id: string }) => c.id === config.id)).toHaveProperty(
      'project',
    );
    expect((await heat('GET', '/software_configs')).body.software_configs[0]).not.toHaveProperty('project');
  });

  it('marks a resource unhealthy and healthy again', async () => {
    const created = await heat('POST', '/stacks', {
      stack_name: 'health',
      template: {
        heat_template_version: '2016-04-08',
        resources: { test: { type: 'OS::Heat::TestResource', properties: { value: 'v' } } },
      },
    });
    expect(created.status).toBe(201);
    const stackUrl = `/stacks/health/${created.body.stack.id}`;
    for (let i = 0; i < 100; i++) {
      if ((await heat('GET', stackUrl)).body.stack.stack_status === 'CREATE_COMPLETE') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const resourceUrl = `${stackUrl}/resources/test`;
    expect((await heat('PATCH', resourceUrl, { mark_unhealthy: 'maybe' })).status).toBe(400);
    const marked = await heat('PATCH', resourceUrl, {
      mark_unhealthy: true,
      resource_status_reason: 'broken',
    });
    expect(marked.status).toBe(200);
    expect((await heat('GET', resourceUrl)).body.resource).toMatchObject({
      resource_status: 'CHECK_FAILED',
      resource_status_reason: 'broken',
    });
    expect((await heat('PATCH', resourceUrl, { mark_unhealthy: false })).status).toBe(200);
    expect((await heat('GET', resourceUrl)).body.resource.resource_status).toBe('CHECK_COMPLETE');
    expect((await heat('DELETE', stackUrl)).status).toBe(204);
  });

  it('generates resource type templates and describes template functions', async () => {
    const hot = await heat('GET', '/resource_types/OS::Heat::TestResource/template?template_type=hot');
    expect(hot.status).toBe(200);
    expect(hot.body.heat_template_version).toBe('2016-10-14');
    expect(hot.body.resources.TestResource.type).toBe('OS::Heat::TestResource');
    const cfn = await heat('GET', '/resource_types/OS::Heat::TestResource/template');
    expect(cfn.body.HeatTemplateFormatVersion).toBe('2012-12-12');
    expect(
      (await heat('GET', '/resource_types/OS::Heat::TestResource/template?template_type=xml')).status,
    ).toBe(400);
    expect((await heat('GET', '/resource_types/OS::No::Such/template')).status).toBe(404);

    const functions = await heat('GET', '/template_versions/heat_template_version.2016-04-08/functions');
    expect(
      functions.body.template_functions.find((f: { functions: string }) => f.functions === 'get_file')
        .description,
    ).toBe('A function for including a file inline.');
  });
});
