import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { AddressInfo, createServer, Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { rootLogger } from '@novum/common';
import type { ConsoleEndpoint } from '@novum/virt';

/** Opens a byte stream to a guest's serial port (the driver's connectSerialConsole, for a guest of this host). */
export type SerialConsoleOpener = (instanceUuid: string) => Promise<Duplex>;

export interface SerialConsoleRelayOptions {
  /** Where the relay listens and what it tells console proxies to connect to (NOVUM_SERIAL_PROXYCLIENT_ADDRESS). */
  address: string;
  /** The TCP port; 0 (the default) takes a free one at each start. */
  port?: number;
  /** How long a ticket admits a proxy, in seconds: the console token's lifetime (NOVUM_CONSOLE_TOKEN_TTL). */
  ticketSeconds: number;
  now?: () => number;
}

/** The longest first line a proxy may send (the ticket). */
const MAX_TICKET_LINE = 512;
/** How long a connection may take to send its ticket. */
const TICKET_TIMEOUT_MS = 10_000;

/** A guest's serial port, opened once and shared by every client connected to it (QEMU serves one). */
class SharedConsole {
  private readonly clients = new Set<Socket>();
  private closed = false;

  constructor(
    private readonly guest: Duplex,
    private readonly onClosed: () => void,
  ) {
    guest.on('data', (chunk: Buffer) => {
      for (const client of this.clients) client.write(chunk);
    });
    const end = () => this.close();
    guest.once('end', end);
    guest.once('close', end);
    guest.once('error', end);
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  add(client: Socket): void {
    this.clients.add(client);
    client.on('data', (chunk: Buffer) => {
      if (!this.closed) this.guest.write(chunk);
    });
    client.once('close', () => {
      this.clients.delete(client);
      if (this.clients.size === 0) this.close();
    });
  }

  closeIfIdle(): void {
    if (this.clients.size === 0) this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClosed();
    this.guest.destroy();
    for (const client of this.clients) client.end();
    this.clients.clear();
  }
}

/**
 * The compute agent's side of the serial console (what a libvirt TCP chardev is to nova-serialproxy): a TCP
 * listener that a console proxy connects to, sends the ticket the agent gave for one guest (its uuid, an
 * expiry and an HMAC under a key of this agent's own, so that no one without a ticket reaches a console),
 * reads `OK` and then the guest's serial port as raw bytes both ways. A refused ticket gets `ERR <reason>`.
 * Tickets die with the agent (a restarted one has a new key), as the proxy's tokens are short-lived anyway.
 */
export class SerialConsoleRelay {
  private readonly key = randomBytes(32);
  private readonly consoles = new Map<string, Promise<SharedConsole>>();
  private readonly sockets = new Set<Socket>();
  private readonly log = rootLogger().child({ service: 'compute', component: 'serial-console-relay' });
  private server?: Server;
  private open?: SerialConsoleOpener;

  constructor(private readonly options: SerialConsoleRelayOptions) {}

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  async listen(open: SerialConsoleOpener): Promise<void> {
    this.open = open;
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.address, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    for (const shared of this.consoles.values()) (await shared.catch(() => undefined))?.close();
    this.consoles.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Where a proxy reaches the serial console of `instanceUuid` on this host, with a fresh ticket. */
  endpoint(instanceUuid: string): ConsoleEndpoint {
    const expires = Math.floor(this.now() / 1000) + this.options.ticketSeconds;
    return {
      host: this.options.address,
      port: this.port,
      internalAccessPath: `${instanceUuid}.${expires}.${this.sign(instanceUuid, expires)}`,
    };
  }

  /** The instance a ticket admits to, or undefined when it is forged, malformed or expired. */
  verify(ticket: string): string | undefined {
    const match = /^([0-9a-fA-F-]{1,64})\.(\d{1,12})\.([0-9a-f]{64})$/.exec(ticket);
    if (!match) return undefined;
    const [, uuid, expiresText, mac] = match;
    const expires = Number(expiresText);
    const expected = Buffer.from(this.sign(uuid, expires), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(mac, 'hex'))) return undefined;
    return expires * 1000 >= this.now() ? uuid : undefined;
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  private sign(uuid: string, expires: number): string {
    return createHmac('sha256', this.key).update(`${uuid}.${expires}`).digest('hex');
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(TICKET_TIMEOUT_MS, () => socket.destroy());
    let line = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      line = Buffer.concat([line, chunk]);
      const newline = line.indexOf(0x0a);
      if (newline < 0) {
        if (line.length > MAX_TICKET_LINE) this.refuse(socket, 'ticket too long');
        return;
      }
      socket.off('data', onData);
      socket.pause();
      socket.setTimeout(0);
      const rest = line.subarray(newline + 1);
      void this.attach(socket, line.subarray(0, newline).toString('utf8').trim(), rest);
    };
    socket.on('data', onData);
  }

  private async attach(socket: Socket, ticket: string, rest: Buffer): Promise<void> {
    const uuid = this.verify(ticket);
    if (!uuid) return this.refuse(socket, 'invalid or expired ticket');
    let shared: SharedConsole;
    try {
      shared = await this.shared(uuid);
    } catch (error) {
      this.log.info({ instance_uuid: uuid, err: error }, 'serial console unavailable');
      return this.refuse(socket, (error as Error).message.replace(/\s+/g, ' '));
    }
    if (socket.destroyed) {
      shared.closeIfIdle();
      return;
    }
    socket.write('OK\n');
    shared.add(socket);
    if (rest.length > 0) socket.unshift(rest);
    socket.resume();
  }

  /** The guest's shared console, opened with the first client (a closed one is opened afresh). */
  private async shared(uuid: string): Promise<SharedConsole> {
    const existing = await this.consoles.get(uuid)?.catch(() => undefined);
    if (existing?.isOpen) return existing;
    const opening = this.open!(uuid).then(
      (guest) =>
        new SharedConsole(guest, () => {
          if (this.consoles.get(uuid) === opening) this.consoles.delete(uuid);
        }),
    );
    this.consoles.set(uuid, opening);
    opening.catch(() => {
      if (this.consoles.get(uuid) === opening) this.consoles.delete(uuid);
    });
    return opening;
  }

  private refuse(socket: Socket, reason: string): void {
    socket.end(`ERR ${reason}\n`);
  }
}
