import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { SERVICE_USER } from '@novum/common';
import { glanceImageUpload } from '../../apps/compute/image-upload';
import { CloudHandle, startCloud } from './support/cloud';
import { getData } from './support/image';
import { api, issueToken } from './support/keystone';

/**
 * The compute agents' service credential against the real cloud: the bootstrap creates the `nova` user in
 * project `service` with the password kept in the data dir, and the agent's uploader stores a snapshot's
 * bytes in a user's queued image through Glance, as a createImage or shelve does.
 */
jest.setTimeout(120_000);

describe('snapshot upload with the compute service user', () => {
  let cloud: CloudHandle;

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 23500 });
  });

  afterAll(async () => {
    await cloud?.destroy();
  });

  it('uploads into a queued image of another project, which then is active with those bytes', async () => {
    const password = readFileSync(join(cloud.dataDir, 'service-password'), 'utf8').trim();
    const service = await issueToken(cloud.identityUrl, {
      user: SERVICE_USER.name,
      password,
      project: SERVICE_USER.project,
    });
    expect(service.body.token.roles.map((r: { name: string }) => r.name)).toContain('admin');

    const demo = (
      await issueToken(cloud.identityUrl, { user: 'demo', password: cloud.demoPassword, project: 'demo' })
    ).token;
    const created = await api(cloud.services.image, 'POST', '/v2/images', {
      token: demo,
      body: { name: 'vm-snapshot', disk_format: 'raw', container_format: 'bare' },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;

    const upload = glanceImageUpload({
      identityUrl: cloud.identityUrl,
      username: SERVICE_USER.name,
      password,
      projectName: SERVICE_USER.project,
      domainId: SERVICE_USER.domainId,
    });
    const bytes = Buffer.from('NOVUM FAKE SNAPSHOT\n'.repeat(1000));
    await upload(id, { diskFormat: 'raw', containerFormat: 'bare', data: Readable.from([bytes]) });

    const shown = await api(cloud.services.image, 'GET', `/v2/images/${id}`, { token: demo });
    expect(shown.body).toMatchObject({ status: 'active', size: bytes.length });
    const data = await getData(cloud.services.image, `/v2/images/${id}/file`, demo);
    expect(data.status).toBe(200);
    expect(Buffer.compare(data.data, bytes)).toBe(0);

    // An image that is no longer queued refuses a second upload; the uploader says so.
    await expect(
      upload(id, { diskFormat: 'raw', containerFormat: 'bare', data: Readable.from([bytes]) }),
    ).rejects.toThrow(new RegExp(`The image service refused the snapshot of image ${id} \\(409\\)`));
  });
});
