import { CloudHandle, startCloud } from './support/cloud';
import { openstackJson } from './support/openstack';

/** Each app also runs alone (`node dist/apps/<app>/main.js`), bootstrapping and serving by itself. */
describe('identity started on its own', () => {
  let identity: CloudHandle;

  beforeAll(async () => {
    identity = await startCloud({ portBase: 21400, entry: 'identity' });
  }, 120_000);

  afterAll(async () => {
    await identity?.destroy();
  }, 60_000);

  it('bootstraps, writes clouds.yaml, and serves the client', async () => {
    const env = { OS_CLIENT_CONFIG_FILE: identity.cloudsYaml, OS_CLOUD: 'novum-demo' };
    const token = await openstackJson(env, 'token', 'issue');
    expect(token.project_id).toEqual(expect.any(String));
    const catalog = await openstackJson<any[]>(
      { OS_CLIENT_CONFIG_FILE: identity.cloudsYaml, OS_CLOUD: 'novum-admin' },
      'catalog',
      'list',
    );
    expect(catalog.map((entry) => entry.Type)).toEqual(['identity']);
  }, 60_000);

  it('stops cleanly on SIGTERM', async () => {
    expect(await identity.stop('SIGTERM')).toBe(0);
  }, 30_000);
});
