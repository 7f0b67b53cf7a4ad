import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthContext } from '@novum/auth';
import { acquireDataSource, releaseDataSource } from '@novum/db';
import { DataSource } from 'typeorm';
import { SoftwareConfigService, softwareConfigView, softwareDeploymentView } from './software-config.service';

const caller = (projectId: string, roles = ['member', 'reader']): AuthContext => ({
  token: 't',
  userId: `user-${projectId}`,
  userName: 'demo',
  userDomainId: 'default',
  projectId,
  roles,
  methods: ['password'],
  auditIds: [],
  expiresAt: '',
  issuedAt: '',
});

describe('software configs and deployments', () => {
  let dir: string;
  let dataSource: DataSource;
  let service: SoftwareConfigService;
  const demo = caller('project-a');
  const other = caller('project-b');
  const admin = caller('project-admin', ['admin', 'member', 'reader']);
  const reader = caller('project-a', ['reader']);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'novum-heat-sc-'));
    dataSource = await acquireDataSource({ dataDir: dir });
    service = new SoftwareConfigService(dataSource);
  });

  afterAll(async () => {
    await releaseDataSource(dataSource);
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores a config with its inputs and outputs completed as Heat does, and shows it', async () => {
    const created = await service.createConfig(demo, {
      name: 'hello',
      group: 'script',
      config: '#!/bin/sh\necho hello',
      inputs: [{ name: 'foo' }, { name: 'bar', type: 'Number', replace_on_change: true }],
      outputs: [{ name: 'result' }],
      options: { debug: true },
    });
    const view = softwareConfigView(await service.config(demo, created.id));
    expect(view).toMatchObject({
      id: created.id,
      name: 'hello',
      group: 'script',
      config: '#!/bin/sh\necho hello',
      inputs: [
        { name: 'foo', type: 'String' },
        { name: 'bar', type: 'Number', replace_on_change: true },
      ],
      outputs: [{ name: 'result', type: 'String', error_output: false }],
      options: { debug: true },
    });
    expect(view.creation_time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // The list has the summary only.
    const listed = (await service.listConfigs(demo)).map((row) => softwareConfigView(row, false));
    expect(listed.find((c) => c.id === created.id)).toEqual({
      id: created.id,
      name: 'hello',
      group: 'script',
      creation_time: view.creation_time,
    });
  });

  it('refuses malformed I/O schemas and non-members', async () => {
    await expect(service.createConfig(demo, { inputs: 'foo' })).rejects.toMatchObject({ status: 400 });
    await expect(service.createConfig(demo, { inputs: [{ type: 'String' }] })).rejects.toMatchObject({
      status: 400,
      message: 'Property name not assigned',
    });
    await expect(
      service.createConfig(demo, { outputs: [{ name: 'x', type: 'Float' }] }),
    ).rejects.toMatchObject({
      status: 400,
    });
    await expect(service.createConfig(reader, { name: 'x' })).rejects.toMatchObject({ status: 403 });
  });

  it("hides another project's configs (404) but shows them to an admin", async () => {
    const created = await service.createConfig(demo, { name: 'private' });
    await expect(service.config(other, created.id)).rejects.toMatchObject({
      status: 404,
      message: `Software config with id ${created.id} not found`,
    });
    expect((await service.listConfigs(other)).map((c) => c.id)).not.toContain(created.id);
    expect((await service.config(admin, created.id)).id).toBe(created.id);
    expect((await service.listConfigs(admin)).map((c) => c.id)).toContain(created.id);
  });

  it('pages the config list with limit and marker', async () => {
    const project = caller('project-paging');
    const ids: string[] = [];
    for (const name of ['one', 'two', 'three']) {
      ids.push((await service.createConfig(project, { name })).id);
      // Oldest first by creation time: each a millisecond apart.
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect((await service.listConfigs(project, '2')).map((c) => c.id)).toEqual(ids.slice(0, 2));
    expect((await service.listConfigs(project, undefined, ids[0])).map((c) => c.id)).toEqual(ids.slice(1));
    await expect(service.listConfigs(project, 'x')).rejects.toMatchObject({ status: 400 });
  });

  it('deploys a config to a server, updates the deployment, and serves the server metadata', async () => {
    const config = await service.createConfig(demo, { name: 'b-config', group: 'script', config: 'echo b' });
    const first = await service.createConfig(demo, { name: 'a-config', group: 'ansible', config: 'echo a' });
    const deployment = await service.createDeployment(demo, {
      config_id: config.id,
      server_id: 'server-1',
      action: 'ACTION0',
      input_values: { foo: 'bar' },
    });
    await service.createDeployment(demo, { config_id: first.id, server_id: 'server-1', action: 'CREATE' });
    expect(softwareDeploymentView(deployment)).toMatchObject({
      server_id: 'server-1',
      config_id: config.id,
      action: 'ACTION0',
      input_values: { foo: 'bar' },
      output_values: {},
    });
    expect(softwareDeploymentView(deployment)).not.toHaveProperty('updated_time');
    // Ordered by config name, as Heat's metadata_software_deployments.
    expect((await service.serverMetadata(demo, 'server-1')).map((c) => c.group)).toEqual([
      'ansible',
      'script',
    ]);

    const updated = await service.updateDeployment(demo, deployment.id, {
      action: 'ACTION1',
      status: 'COMPLETE',
      status_reason: 'completed',
      output_values: { result: 'ok' },
    });
    expect(softwareDeploymentView(updated)).toMatchObject({
      action: 'ACTION1',
      status: 'COMPLETE',
      status_reason: 'completed',
      input_values: { foo: 'bar' },
      output_values: { result: 'ok' },
    });
    expect(softwareDeploymentView(updated).updated_time).toBeTruthy();
    expect((await service.listDeployments(demo, 'server-1')).length).toBe(2);
    expect(await service.listDeployments(demo, 'server-2')).toEqual([]);
    expect((await service.listDeployments(other)).map((d) => d.id)).not.toContain(deployment.id);

    // A referenced config cannot go; once its deployment is gone, it can.
    await expect(service.deleteConfig(demo, config.id)).rejects.toMatchObject({
      status: 400,
      message: `Software config with id ${config.id} can not be deleted as it is referenced.`,
    });
    await service.deleteDeployment(demo, deployment.id);
    await expect(service.deployment(demo, deployment.id)).rejects.toMatchObject({
      status: 404,
      message: `Deployment with id ${deployment.id} not found`,
    });
    await service.deleteConfig(demo, config.id);
    await expect(service.config(demo, config.id)).rejects.toMatchObject({ status: 404 });
  });

  it('refuses a deployment of a missing or foreign config', async () => {
    await expect(
      service.createDeployment(demo, { config_id: 'missing', server_id: 'server-1' }),
    ).rejects.toMatchObject({ status: 404 });
    const foreign = await service.createConfig(other, { name: 'theirs' });
    await expect(
      service.createDeployment(demo, { config_id: foreign.id, server_id: 'server-1' }),
    ).rejects.toMatchObject({ status: 404 });
    await expect(service.createDeployment(demo, { config_id: foreign.id })).rejects.toMatchObject({
      status: 404,
    });
  });
});
