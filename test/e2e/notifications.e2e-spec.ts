import { RabbitMqTransport } from '@novum/bus';
import { CloudHandle, startCloud } from './support/cloud';
import { openstackJson, openstackOk } from './support/openstack';

/**
 * In production mode identity publishes Keystone notifications on RabbitMQ. This test always runs the
 * cloud in production mode (whatever NOVUM_TEST_MODE says) and listens on the cloud's own vhost.
 */
describe('identity notifications over RabbitMQ', () => {
  let cloud: CloudHandle;
  let listener: RabbitMqTransport;
  const events: { event: string; payload: any }[] = [];

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 21500, mode: 'production' });
    listener = new RabbitMqTransport(cloud.env.AMQP_URL);
    await listener.start();
    await listener.subscribe('notifications', async (event, payload) => {
      events.push({ event, payload });
    });
  }, 120_000);

  afterAll(async () => {
    await listener?.close();
    await cloud?.destroy();
  }, 60_000);

  it('announces what the openstack client creates and deletes', async () => {
    const admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
    const project = await openstackJson(admin, 'project', 'create', 'announced');
    await openstackOk(admin, 'project', 'delete', project.id);
    const deadline = Date.now() + 10_000;
    while (events.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(events).toEqual([
      { event: 'identity.project.created', payload: { resource_info: project.id } },
      { event: 'identity.project.deleted', payload: { resource_info: project.id } },
    ]);
  }, 60_000);
});
