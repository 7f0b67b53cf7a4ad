import { Duplex, PassThrough } from 'node:stream';
import { WebSocket } from 'ws';
import type { ConsoleConnectInfo } from '@novum/compute';
import { SerialConsoleRelay } from '../compute/serial-console-relay';
import { SerialProxy } from './serial-proxy';

const UUID = '6f1c3d2e-8a4b-4c5d-9e6f-0a1b2c3d4e5f';

/** The status of a refused upgrade, or 101. */
function upgrade(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, ['binary'], { headers });
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    socket.once('open', () => {
      resolve({ status: 101, body: '' });
      socket.close();
    });
    socket.on('error', (error) => {
      if (!/closed before|socket hang up/.test(error.message)) reject(error);
    });
  });
}

describe('SerialProxy', () => {
  let relay: SerialConsoleRelay;
  let proxy: SerialProxy;
  let records: Map<string, ConsoleConnectInfo>;
  let deleted: Set<string>;
  let guest: { toClient: PassThrough; fromClient: string };
  let guestDown: boolean;

  const record = (token: string, internalAccessPath = relay.endpoint(UUID).internalAccessPath!) =>
    records.set(token, {
      instanceUuid: UUID,
      consoleType: 'serial',
      host: '127.0.0.1',
      port: relay.port,
      internalAccessPath,
      accessUrlBase: 'ws://127.0.0.1/',
      expires: 0,
    });
  const url = (token: string) => `ws://127.0.0.1:${proxy.port}/?token=${token}`;

  beforeEach(async () => {
    records = new Map();
    deleted = new Set();
    guestDown = false;
    relay = new SerialConsoleRelay({ address: '127.0.0.1', ticketSeconds: 60 });
    await relay.listen(async () => {
      if (guestDown) throw new Error('Instance is not running');
      guest = { toClient: new PassThrough(), fromClient: '' };
      const fromClient = new PassThrough();
      fromClient.on('data', (chunk) => (guest.fromClient += chunk.toString()));
      return Duplex.from({ readable: guest.toClient, writable: fromClient });
    });
    proxy = new SerialProxy({
      tokens: { validate: async (token) => records.get(token) },
      instanceExists: async (uuid) => !deleted.has(uuid),
    });
    await proxy.listen(0, '127.0.0.1');
  });

  afterEach(async () => {
    await proxy.close();
    await relay.close();
  });

  it("relays a websocket client to the guest's serial port and back, speaking `binary`", async () => {
    record('good');
    const client = new WebSocket(url('good'), ['binary']);
    let received = '';
    client.on('message', (data: Buffer) => (received += data.toString()));
    await new Promise((resolve) => client.once('open', resolve));
    expect(client.protocol).toBe('binary');
    client.send(Buffer.from('uname\n'));
    client.send('text frames too\n');
    guest.toClient.write('Linux\n');
    const deadline = Date.now() + 5_000;
    while (!received.includes('Linux') || !guest.fromClient.includes('text frames too')) {
      if (Date.now() > deadline) throw new Error(`got ${received} / ${guest.fromClient}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(guest.fromClient).toBe('uname\ntext frames too\n');
    const closed = new Promise((resolve) => client.once('close', resolve));
    guest.toClient.end();
    await closed;
  });

  it('takes the token from a cookie too', async () => {
    record('cookie-token');
    const base = `ws://127.0.0.1:${proxy.port}/`;
    expect((await upgrade(base, { Cookie: 'other=1; token=cookie-token' })).status).toBe(101);
  });

  it("refuses unknown tokens, a deleted instance's, and pages from another origin", async () => {
    record('good');
    expect(await upgrade(url('bad'))).toEqual({
      status: 401,
      body: 'The token has expired or is invalid.\n',
    });
    expect((await upgrade(`ws://127.0.0.1:${proxy.port}/`)).status).toBe(401);
    expect((await upgrade(url('good'), { Origin: 'https://evil.example' })).status).toBe(403);
    expect((await upgrade(url('good'), { Origin: 'http://127.0.0.1:9999' })).status).toBe(101);
    deleted.add(UUID);
    expect((await upgrade(url('good'))).status).toBe(401);
  });

  it("says why when the guest's host refuses: a ticket it does not know, or a guest that is down", async () => {
    record('forged', `${UUID}.9999999999.${'0'.repeat(64)}`);
    expect(await upgrade(url('forged'))).toEqual({
      status: 409,
      body: 'The serial console is not available: invalid or expired ticket\n',
    });
    record('down');
    guestDown = true;
    expect(await upgrade(url('down'))).toEqual({
      status: 409,
      body: 'The serial console is not available: Instance is not running\n',
    });
  });

  it('answers a plain HTTP request with 426', async () => {
    const response = await fetch(`http://127.0.0.1:${proxy.port}/`);
    expect(response.status).toBe(426);
  });
});
