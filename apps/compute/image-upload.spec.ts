import { createHash } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { glanceImageUpload } from './image-upload';

/** A stand-in Keystone and Glance on one port, recording what the uploader sends. */
async function fakeCloud(options: { expiresInMs?: number; uploadStatus?: number } = {}) {
  const seen: { method: string; url: string; token?: string; body: string }[] = [];
  let tokens = 0;
  let port = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method!, url: req.url!, token: req.headers['x-auth-token'] as string, body });
      if (req.url === '/identity/v3/auth/tokens' && req.method === 'POST') {
        const auth = JSON.parse(body).auth;
        if (auth.identity.password.user.password !== 'right') {
          res.writeHead(401).end();
          return;
        }
        tokens++;
        res.writeHead(201, { 'content-type': 'application/json', 'x-subject-token': `token-${tokens}` });
        res.end(
          JSON.stringify({
            token: {
              expires_at: new Date(Date.now() + (options.expiresInMs ?? 3_600_000)).toISOString(),
              catalog: [
                { type: 'identity', endpoints: [{ interface: 'public', url: 'http://nowhere/identity' }] },
                {
                  type: 'image',
                  endpoints: [{ interface: 'public', url: `http://127.0.0.1:${port}/image` }],
                },
              ],
            },
          }),
        );
        return;
      }
      if (req.method === 'GET') {
        const [, id, file] = /^\/image\/v2\/images\/([^/]+)(\/file)?$/.exec(req.url!) ?? [];
        if (!id || id === 'missing') res.writeHead(404).end();
        else if (file)
          res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(`data of ${id}`);
        else {
          // `tampered`'s record does not match its data; `odd` names a hash nobody can compute.
          const recorded = `data of ${id === 'tampered' ? 'something else' : id}`;
          res.writeHead(200, { 'content-type': 'application/json' }).end(
            JSON.stringify({
              id,
              checksum: id === 'nomd5' ? null : createHash('md5').update(recorded).digest('hex'),
              os_hash_algo: id === 'odd' ? 'whirlpool9' : 'sha512',
              os_hash_value: createHash('sha512').update(recorded).digest('hex'),
            }),
          );
        }
        return;
      }
      res.writeHead(options.uploadStatus ?? 204).end(options.uploadStatus ? 'Image is not queued' : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  const credential = {
    identityUrl: `http://127.0.0.1:${port}/identity`,
    username: 'nova',
    password: 'right',
    projectName: 'service',
    domainId: 'default',
  };
  return { seen, credential, close: () => new Promise((resolve) => server.close(resolve)) };
}

const snapshot = (text: string) => ({
  diskFormat: 'raw',
  containerFormat: 'bare',
  data: Readable.from([Buffer.from(text)]),
});

describe('glanceImageUpload', () => {
  it('authenticates as the service user, finds the image endpoint in the catalog and PUTs the bytes', async () => {
    const cloud = await fakeCloud();
    try {
      const upload = glanceImageUpload(cloud.credential);
      await upload('1b2c', snapshot('disk bytes'));
      await upload('3d4e', snapshot('more bytes'));
      const [auth, first, second] = cloud.seen;
      expect(JSON.parse(auth.body).auth).toEqual({
        identity: {
          methods: ['password'],
          password: { user: { name: 'nova', domain: { id: 'default' }, password: 'right' } },
        },
        scope: { project: { name: 'service', domain: { id: 'default' } } },
      });
      expect(first).toMatchObject({
        method: 'PUT',
        url: '/image/v2/images/1b2c/file',
        token: 'token-1',
        body: 'disk bytes',
      });
      // The token is cached.
      expect(second).toMatchObject({ url: '/image/v2/images/3d4e/file', token: 'token-1' });
      expect(cloud.seen).toHaveLength(3);
    } finally {
      await cloud.close();
    }
  });

  it('renews a token close to its expiry, and reports refusals of identity and image', async () => {
    const dying = await fakeCloud({ expiresInMs: 60_000 });
    try {
      const upload = glanceImageUpload(dying.credential);
      await upload('a', snapshot('x'));
      await upload('b', snapshot('y'));
      expect(dying.seen.filter((s) => s.method === 'PUT').map((s) => s.token)).toEqual([
        'token-1',
        'token-2',
      ]);
      await expect(
        glanceImageUpload({ ...dying.credential, password: 'wrong' })('c', snapshot('z')),
      ).rejects.toThrow('The identity service refused the compute service user (401).');
    } finally {
      await dying.close();
    }
    const refusing = await fakeCloud({ uploadStatus: 409 });
    try {
      await expect(glanceImageUpload(refusing.credential)('d', snapshot('z'))).rejects.toThrow(
        'The image service refused the snapshot of image d (409). Image is not queued',
      );
    } finally {
      await refusing.close();
    }
  });

  it("downloads an image's data with the service token, and reports an image it cannot get", async () => {
    const cloud = await fakeCloud();
    try {
      const upload = glanceImageUpload(cloud.credential);
      const chunks: Buffer[] = [];
      for await (const chunk of await upload.download!('5f6a')) chunks.push(Buffer.from(chunk as Buffer));
      expect(Buffer.concat(chunks).toString()).toBe('data of 5f6a');
      expect(cloud.seen[1]).toMatchObject({ method: 'GET', url: '/image/v2/images/5f6a', token: 'token-1' });
      expect(cloud.seen[2]).toMatchObject({
        method: 'GET',
        url: '/image/v2/images/5f6a/file',
        token: 'token-1',
      });
      await expect(upload.download!('missing')).rejects.toThrow(
        'The image service refused image missing (404).',
      );
    } finally {
      await cloud.close();
    }
  });

  it('fails the download of data that does not match what Glance recorded', async () => {
    const cloud = await fakeCloud();
    const drain = async (imageId: string) => {
      const chunks: Buffer[] = [];
      for await (const chunk of await glanceImageUpload(cloud.credential).download!(imageId)) {
        chunks.push(Buffer.from(chunk as Buffer));
      }
      return Buffer.concat(chunks).toString();
    };
    try {
      await expect(drain('tampered')).rejects.toThrow(
        'Image tampered data does not match its checksum: refused.',
      );
      // Without an MD5 the multihash alone decides.
      await expect(drain('nomd5')).resolves.toBe('data of nomd5');
      await expect(drain('odd')).rejects.toThrow(
        'Image odd has os_hash_algo whirlpool9, which cannot be verified.',
      );
    } finally {
      await cloud.close();
    }
  });
});
