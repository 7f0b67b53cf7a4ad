import { EventEmitter } from 'node:events';
import { connect, Socket } from 'node:net';
import { DriverError } from '../driver';

/** A QMP event (`SHUTDOWN`, `RESET`, `STOP`, `RESUME`, ...) as QEMU sends it. */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/** QEMU answered a command with an error (`{"error": {"class", "desc"}}`). */
export class QmpError extends DriverError {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`QMP ${command} failed: ${errorClass}: ${desc}`);
  }
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * A QEMU Machine Protocol client over a unix socket: reads the greeting, negotiates capabilities, then runs
 * commands one JSON object per line, matching answers by `id`. Events go to 'event' listeners; 'close' fires
 * once when QEMU goes away (or close() is called), after which every pending command rejects.
 */
export class QmpClient extends EventEmitter {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closed = false;
  /** QEMU's version from the greeting. */
  version = { major: 0, minor: 0, micro: 0 };

  private constructor(
    private readonly socket: Socket,
    private readonly timeoutMs: number,
  ) {
    super();
  }

  /** Connects to `path`, waits for the greeting and sends `qmp_capabilities`. */
  static async connect(path: string, options: { timeoutMs?: number } = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const socket = connect(path);
    const client = new QmpClient(socket, timeoutMs);
    const greeting = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new DriverError(`QMP at ${path} sent no greeting within ${timeoutMs} ms`));
        socket.destroy();
      }, timeoutMs);
      client.once('greeting', () => {
        clearTimeout(timer);
        resolve();
      });
      client.once('close', () => {
        clearTimeout(timer);
        reject(new DriverError(`QMP at ${path} closed before its greeting`));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(new DriverError(`Cannot connect to QMP at ${path}: ${error.message}`, { cause: error }));
      });
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => client.receive(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => client.shutdown(new DriverError(`QMP at ${path} closed`)));
    await greeting;
    await client.execute('qmp_capabilities');
    return client;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Runs a command and resolves with its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed) return Promise.reject(new DriverError(`QMP is closed; cannot run ${command}`));
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new DriverError(`QMP ${command} had no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (value: unknown) => void, reject, timer });
      this.socket.write(
        JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n',
      );
    });
  }

  /** Resolves with the next event named `name` (optionally matching `filter`), or undefined on timeout/close. */
  waitForEvent(
    name: string,
    timeoutMs: number,
    filter: (event: QmpEvent) => boolean = () => true,
  ): Promise<QmpEvent | undefined> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(undefined);
      const done = (event: QmpEvent | undefined) => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
        resolve(event);
      };
      const onEvent = (event: QmpEvent) => {
        if (event.event === name && filter(event)) done(event);
      };
      const onClose = () => done(undefined);
      const timer = setTimeout(() => done(undefined), timeoutMs);
      this.on('event', onEvent);
      this.on('close', onClose);
    });
  }

  /** Resolves once QEMU has closed the connection (it exited), or false after timeoutMs. */
  waitClosed(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.off('close', onClose);
        resolve(false);
      }, timeoutMs);
      const onClose = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.once('close', onClose);
    });
  }

  close(): void {
    this.socket.destroy();
    this.shutdown(new DriverError('QMP connection closed'));
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line) this.message(line);
    }
  }

  private message(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if ('QMP' in message) {
      const qmp = message.QMP as { version?: { qemu?: QmpClient['version'] } };
      if (qmp.version?.qemu) this.version = qmp.version.qemu;
      this.emit('greeting', message);
      return;
    }
    if (typeof message.event === 'string') {
      this.emit('event', message as unknown as QmpEvent);
      return;
    }
    const id = message.id === undefined ? undefined : String(message.id);
    const pending = id === undefined ? undefined : this.pending.get(id);
    if (!pending || id === undefined) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if ('error' in message) {
      const error = message.error as { class?: string; desc?: string };
      pending.reject(new QmpError(pending.command, error.class ?? 'GenericError', error.desc ?? ''));
    } else {
      pending.resolve(message.return);
    }
  }

  private shutdown(reason: Error): void {
    if (this.closed) return;
    this.closed = true;
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(reason);
      this.pending.delete(id);
    }
    this.emit('close');
  }
}
