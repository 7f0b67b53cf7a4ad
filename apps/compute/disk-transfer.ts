import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { AddressInfo, connect, createServer, Server, Socket } from 'node:net';
import { Readable, Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { rootLogger } from '@novum/common';
import type { DiskOffer } from '@novum/compute';
import type { DiskExport } from '@novum/virt';

export interface DiskTransferOptions {
  /** Where the listener is and what destinations connect to (NOVUM_SERIAL_PROXYCLIENT_ADDRESS). */
  address: string;
  /** The TCP port; 0 (the default) takes a free one at each start. */
  port?: number;
  /** How long an offer waits for its destination before its export is dropped, in seconds. */
  offerSeconds?: number;
  now?: () => number;
}

/** The longest first line a destination may send (the ticket). */
const MAX_TICKET_LINE = 512;
/** How long a connection may take to send its ticket. */
const TICKET_TIMEOUT_MS = 10_000;
const DEFAULT_OFFER_SECONDS = 600;

interface Offered {
  nonce: string;
  exported: DiskExport;
  timer: NodeJS.Timeout;
}

/**
 * The source agent's side of a cross-host cold migration's disk copy (what Nova does over SSH in
 * migrate_disk_and_power_off, with no shared storage and no SSH between hosts): a TCP listener, as the serial
 * console relay's, serving each instance's exported disks once to whoever brings the ticket of the offer (the
 * instance, a nonce, an expiry and an HMAC under a key this agent keeps in memory). A destination sends the
 * ticket and a newline, reads `OK` and then the bytes; a refused ticket gets `ERR <reason>`. The export is
 * dropped once sent, withdrawn or expired; the guest's own disks stay for a revert.
 */
export class DiskTransfer {
  private readonly key = randomBytes(32);
  private readonly offers = new Map<string, Offered>();
  private readonly sockets = new Set<Socket>();
  private readonly log = rootLogger().child({ service: 'compute', component: 'disk-transfer' });
  private server?: Server;
  private listening?: Promise<void>;

  constructor(private readonly options: DiskTransferOptions) {}

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  /**
   * Starts the listener; offer starts it when it is not yet, so that an agent that never sends disks (the
   * thousand fake hosts of a benchmark) holds no socket for it.
   */
  listen(): Promise<void> {
    this.listening ??= new Promise<void>((resolve, reject) => {
      const server = createServer((socket) => this.accept(socket));
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.address, () => {
        server.off('error', reject);
        this.server = server;
        resolve();
      });
    }).catch((error: unknown) => {
      this.listening = undefined;
      throw error;
    });
    return this.listening;
  }

  async close(): Promise<void> {
    await this.listening?.catch(() => undefined);
    this.listening = undefined;
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    for (const uuid of [...this.offers.keys()]) await this.withdraw(uuid);
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * Offers an instance's exported disks (replacing an earlier offer for it): their size and SHA-256, and
   * where and with what ticket the destination fetches them.
   */
  async offer(instanceUuid: string, exported: DiskExport): Promise<DiskOffer> {
    try {
      await this.listen();
    } catch (error) {
      await exported.dispose();
      throw error;
    }
    await this.withdraw(instanceUuid);
    const hash = createHash('sha256');
    let sizeBytes = 0;
    try {
      await pipeline(exported.open(), async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          sizeBytes += chunk.length;
          hash.update(chunk);
        }
      });
    } catch (error) {
      await exported.dispose();
      throw error;
    }
    const seconds = this.options.offerSeconds ?? DEFAULT_OFFER_SECONDS;
    const expires = Math.floor(this.now() / 1000) + seconds;
    const nonce = randomBytes(16).toString('hex');
    const timer = setTimeout(() => {
      if (this.offers.get(instanceUuid)?.nonce !== nonce) return;
      this.log.warn({ instance_uuid: instanceUuid }, 'exported disks were not fetched in time; dropped');
      void this.withdraw(instanceUuid);
    }, seconds * 1000);
    timer.unref();
    this.offers.set(instanceUuid, { nonce, exported, timer });
    return {
      host: this.options.address,
      port: this.port,
      ticket: `${instanceUuid}.${nonce}.${expires}.${this.sign(instanceUuid, nonce, expires)}`,
      format: exported.format,
      sizeBytes,
      sha256: hash.digest('hex'),
    };
  }

  /** Drops an instance's pending offer and its export (a revert, a failed migration, a delete). */
  async withdraw(instanceUuid: string): Promise<void> {
    const offered = this.offers.get(instanceUuid);
    if (!offered) return;
    this.offers.delete(instanceUuid);
    clearTimeout(offered.timer);
    await offered.exported.dispose().catch((error: unknown) => {
      this.log.warn({ instance_uuid: instanceUuid, err: error }, 'could not remove exported disks');
    });
  }

  /** Takes the offer a ticket admits to, once; undefined when it is forged, malformed, expired or used. */
  private take(ticket: string): { uuid: string; offered: Offered } | undefined {
    const match = /^([0-9a-fA-F-]{1,64})\.([0-9a-f]{32})\.(\d{1,12})\.([0-9a-f]{64})$/.exec(ticket);
    if (!match) return undefined;
    const [, uuid, nonce, expiresText, mac] = match;
    const expires = Number(expiresText);
    const expected = Buffer.from(this.sign(uuid, nonce, expires), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(mac, 'hex'))) return undefined;
    if (expires * 1000 < this.now()) return undefined;
    const offered = this.offers.get(uuid);
    if (offered?.nonce !== nonce) return undefined;
    this.offers.delete(uuid);
    clearTimeout(offered.timer);
    return { uuid, offered };
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  private sign(uuid: string, nonce: string, expires: number): string {
    return createHmac('sha256', this.key).update(`disks.${uuid}.${nonce}.${expires}`).digest('hex');
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
        if (line.length > MAX_TICKET_LINE) socket.end('ERR ticket too long\n');
        return;
      }
      socket.off('data', onData);
      socket.setTimeout(0);
      void this.send(socket, line.subarray(0, newline).toString('utf8').trim());
    };
    socket.on('data', onData);
  }

  private async send(socket: Socket, ticket: string): Promise<void> {
    const taken = this.take(ticket);
    if (!taken) {
      socket.end('ERR invalid, expired or used ticket\n');
      return;
    }
    const { uuid, offered } = taken;
    const started = Date.now();
    try {
      socket.write('OK\n');
      await pipeline(offered.exported.open(), socket);
      this.log.info({ instance_uuid: uuid, ms: Date.now() - started }, 'exported disks sent');
    } catch (error) {
      this.log.warn({ instance_uuid: uuid, err: error }, 'sending exported disks failed');
      socket.destroy();
    } finally {
      await offered.exported.dispose().catch(() => undefined);
    }
  }
}

export interface FetchOptions {
  /** A transfer that receives nothing for this long fails. */
  idleTimeoutMs?: number;
  /** The slowest rate a transfer may average before it fails (its deadline: a minute plus size / rate). */
  minBytesPerSecond?: number;
}

/**
 * The destination's side: the offered disks as a stream that fails (rather than ends) when the source
 * refuses the ticket, the connection stalls or breaks, the deadline passes, or the bytes are not the offer's
 * size and SHA-256, so that a driver importing it never finishes on damaged disks.
 */
export async function fetchDisks(offer: DiskOffer, options: FetchOptions = {}): Promise<Readable> {
  const socket = connect({ host: offer.host, port: offer.port });
  const idle = options.idleTimeoutMs ?? 60_000;
  const rate = options.minBytesPerSecond ?? 1024 * 1024;
  socket.setTimeout(idle, () => socket.destroy(new Error(`The disk transfer stalled for ${idle} ms.`)));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(`${offer.ticket}\n`);
  const rest = await answerLine(socket);
  // The driver may read it only after preparing the guest (an image to download first): a failure meanwhile
  // is kept by the stream for it to find, not thrown at the process, and the clocks start once it reads.
  socket.setTimeout(0);
  const verified = new VerifyingStream(offer).on('error', () => undefined);
  const deadlineMs = 60_000 + Math.ceil((offer.sizeBytes / rate) * 1000);
  let deadline: NodeJS.Timeout | undefined;
  const startClocks = (event: string | symbol) => {
    if (event !== 'data' && event !== 'readable') return;
    verified.off('newListener', startClocks);
    socket.setTimeout(idle);
    deadline = setTimeout(
      () => socket.destroy(new Error(`The disk transfer took longer than ${deadlineMs} ms.`)),
      deadlineMs,
    );
    deadline.unref();
  };
  verified.on('newListener', startClocks);
  if (rest.length > 0) verified.write(rest);
  socket.pipe(verified);
  socket.once('error', (error) => verified.destroy(error));
  socket.once('close', () => {
    clearTimeout(deadline);
    if (!socket.readableEnded) verified.destroy(new Error('The disk transfer broke off.'));
  });
  verified.once('close', () => {
    clearTimeout(deadline);
    socket.destroy();
  });
  return verified;
}

/** Reads the source's `OK` (answering the bytes after it) or rejects with its `ERR` reason. */
function answerLine(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let line = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      line = Buffer.concat([line, chunk]);
      const newline = line.indexOf(0x0a);
      if (newline < 0) {
        if (line.length > MAX_TICKET_LINE) fail(new Error('The disk transfer answered garbage.'));
        return;
      }
      cleanup();
      socket.pause();
      const answer = line.subarray(0, newline).toString('utf8').trim();
      if (answer === 'OK') resolve(line.subarray(newline + 1));
      else fail(new Error(`The source refused the disk transfer: ${answer.replace(/^ERR /, '')}`));
    };
    const onEnd = () => fail(new Error('The source closed the disk transfer before answering.'));
    const fail = (error: Error) => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', fail);
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', fail);
  });
}

/** Passes bytes through while counting and hashing them; fails at the end unless they are the offer's. */
class VerifyingStream extends Transform {
  private readonly hash = createHash('sha256');
  private received = 0;

  constructor(private readonly offer: DiskOffer) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.received += chunk.length;
    if (this.received > this.offer.sizeBytes) {
      done(new Error(`The disk transfer sent more than the ${this.offer.sizeBytes} bytes offered.`));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.received !== this.offer.sizeBytes) {
      done(new Error(`The disk transfer ended after ${this.received} of ${this.offer.sizeBytes} bytes.`));
      return;
    }
    const digest = this.hash.digest('hex');
    if (digest !== this.offer.sha256) {
      done(new Error(`The transferred disks' SHA-256 ${digest} is not the offered ${this.offer.sha256}.`));
      return;
    }
    done();
  }
}
