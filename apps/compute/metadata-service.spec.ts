import { createServer, Server } from 'node:net';
import type { InstanceSpec } from '@novum/virt';
import { GuestMetadataService, MetadataSource } from './metadata-service';

const spec = (uuid: string): InstanceSpec => ({
  uuid,
  name: `instance-${uuid.slice(0, 8)}`,
  hostname: `host-${uuid.slice(0, 4)}`,
  projectId: 'p',
  userId: 'u',
  flavor: { vcpus: 1, memoryMb: 64, rootGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {} },
  imageRef: 'i',
  imageProperties: {},
  metadata: {},
  configDrive: false,
});

/** Listeners on loopback stand in for the namespaces: one port per network. */
function loopbackListeners() {
  const servers = new Map<string, Server>();
  const listen = (netns: string) =>
    new Promise<Server>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => {
        servers.set(netns, server);
        resolve(server);
      });
    });
  const url = (netns: string, path: string) => {
    const address = servers.get(netns)!.address() as { port: number };
    return `http://127.0.0.1:${address.port}${path}`;
  };
  return { listen, url, servers };
}

describe('GuestMetadataService', () => {
  it('answers each listener’s guests with the data the resolver finds for that network and address', async () => {
    const listeners = loopbackListeners();
    const service = new GuestMetadataService(listeners.listen);
    const asked: string[] = [];
    service.serve(async (networkId, address): Promise<MetadataSource | undefined> => {
      asked.push(`${networkId} ${address}`);
      return networkId === 'net-b' ? undefined : { instance: spec(`${networkId}-0000`), networkInfo: [] };
    });
    await service.open('net-a', 'ns-a');
    await service.open('net-a', 'ns-a');
    await service.open('net-b', 'ns-b');
    expect(listeners.servers.size).toBe(2);
    try {
      const meta = await fetch(listeners.url('ns-a', '/openstack/latest/meta_data.json'));
      expect(meta.status).toBe(200);
      expect(meta.headers.get('content-type')).toBe('application/json');
      expect(((await meta.json()) as { uuid: string }).uuid).toBe('net-a-0000');
      // A second request within the cache time does not ask again.
      expect((await fetch(listeners.url('ns-a', '/latest/meta-data/hostname'))).status).toBe(200);
      expect(asked).toEqual(['net-a 127.0.0.1']);

      expect((await fetch(listeners.url('ns-b', '/openstack'))).status).toBe(404);
      expect(asked).toContain('net-b 127.0.0.1');
      const post = await fetch(listeners.url('ns-a', '/openstack/latest/meta_data.json'), {
        method: 'POST',
        body: 'x',
      });
      expect(post.status).toBe(405);
    } finally {
      await service.closeAll();
    }
    expect(listeners.servers.get('ns-a')!.listening).toBe(false);
  });

  it('answers 503 until it has a resolver', async () => {
    const listeners = loopbackListeners();
    const service = new GuestMetadataService(listeners.listen);
    await service.open('net-a', 'ns-a');
    try {
      expect((await fetch(listeners.url('ns-a', '/'))).status).toBe(503);
    } finally {
      await service.close('net-a');
    }
  });
});
