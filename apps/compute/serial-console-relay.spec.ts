import { connect, Socket } from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import { SerialConsoleRelay } from './serial-console-relay';

const UUID = '6f1c3d2e-8a4b-4c5d-9e6f-0a1b2c3d4e5f';

/** A client of the relay: sends its ticket line, collects what comes back. */
async function client(relay: SerialConsoleRelay, ticket: string) {
  const socket: Socket = connect(relay.port, '127.0.0.1');
  let text = '';
  socket.on('data', (chunk) => (text += chunk.toString()));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(`${ticket}\n`);
  const until = async (pattern: RegExp) => {
    const deadline = Date.now() + 5_000;
    while (!pattern.test(text)) {
      if (Date.now() > deadline) throw new Error(`never saw ${pattern}: ${JSON.stringify(text)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return text;
  };
  return { socket, until, closed, text: () => text };
}

describe('SerialConsoleRelay', () => {
  let now: number;
  let relay: SerialConsoleRelay;
  let guests: { uuid: string; port: PassThrough; written: string }[];
  let refuse: Error | undefined;

  beforeEach(async () => {
    now = Date.parse('2026-11-28T12:00:00Z');
    guests = [];
    refuse = undefined;
    relay = new SerialConsoleRelay({ address: '127.0.0.1', ticketSeconds: 60, now: () => now });
    await relay.listen(async (uuid): Promise<Duplex> => {
      if (refuse) throw refuse;
      // The guest's side: what clients send is recorded; what the test pushes comes out to them.
      const written = { uuid, port: new PassThrough(), written: '' };
      const toGuest = new PassThrough();
      toGuest.on('data', (chunk) => (written.written += chunk.toString()));
      guests.push(written);
      return Duplex.from({ readable: written.port, writable: toGuest });
    });
  });

  afterEach(async () => {
    await relay.close();
  });

  it('gives an endpoint on its address and port with a ticket for the instance, good until it expires', () => {
    const endpoint = relay.endpoint(UUID);
    expect(endpoint).toEqual({ host: '127.0.0.1', port: relay.port, internalAccessPath: expect.any(String) });
    expect(relay.port).toBeGreaterThan(0);
    expect(relay.verify(endpoint.internalAccessPath!)).toBe(UUID);
    now += 60_000;
    expect(relay.verify(endpoint.internalAccessPath!)).toBe(UUID);
    now += 1_000;
    expect(relay.verify(endpoint.internalAccessPath!)).toBeUndefined();
  });

  it('refuses forged tickets: another instance, another expiry, another key', async () => {
    const [uuid, expires, mac] = relay.endpoint(UUID).internalAccessPath!.split('.');
    expect(relay.verify(`${uuid.replace(/^6/, '7')}.${expires}.${mac}`)).toBeUndefined();
    expect(relay.verify(`${uuid}.${Number(expires) + 3600}.${mac}`)).toBeUndefined();
    const other = new SerialConsoleRelay({ address: '127.0.0.1', ticketSeconds: 60, now: () => now });
    expect(relay.verify(other.endpoint(UUID).internalAccessPath!)).toBeUndefined();
    expect(relay.verify('garbage')).toBeUndefined();
    const refused = await client(relay, `${uuid}.${expires}.${'0'.repeat(64)}`);
    await refused.closed;
    expect(refused.text()).toBe('ERR invalid or expired ticket\n');
    expect(guests).toHaveLength(0);
  });

  it('relays bytes both ways after OK, one guest connection shared by every client', async () => {
    const ticket = relay.endpoint(UUID).internalAccessPath!;
    const first = await client(relay, ticket);
    await first.until(/^OK\n/);
    const second = await client(relay, ticket);
    await second.until(/^OK\n/);
    expect(guests).toHaveLength(1);
    expect(guests[0].uuid).toBe(UUID);
    guests[0].port.write('login: ');
    await first.until(/login: $/);
    await second.until(/login: $/);
    first.socket.write('root\n');
    second.socket.write('ls\n');
    const deadline = Date.now() + 5_000;
    while (!guests[0].written.includes('root\n') || !guests[0].written.includes('ls\n')) {
      if (Date.now() > deadline) throw new Error(`the guest got ${JSON.stringify(guests[0].written)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    first.socket.end();
    second.socket.end();
    await Promise.all([first.closed, second.closed]);
    // The last client gone, the guest's connection is closed; the next client opens a new one.
    const third = await client(relay, ticket);
    await third.until(/^OK\n/);
    expect(guests).toHaveLength(2);
    third.socket.destroy();
  });

  it("ends the clients when the guest's port closes, and says why a console cannot open", async () => {
    const ticket = relay.endpoint(UUID).internalAccessPath!;
    const attached = await client(relay, ticket);
    await attached.until(/^OK\n/);
    guests[0].port.end();
    await attached.closed;
    refuse = new Error('Instance x in power_state shutdown.\nCannot connect');
    const refused = await client(relay, ticket);
    await refused.closed;
    expect(refused.text()).toBe('ERR Instance x in power_state shutdown. Cannot connect\n');
  });
});
