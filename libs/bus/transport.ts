/**
 * The message bus contract every service talks through. Two transports implement it: RabbitMQ (production,
 * when AMQP_URL is set) and in-process (the embedded all-in-one cloud). Handlers are written once.
 *
 * - call: RPC to a queue's consumer, waits for the answer or fails with BusTimeoutError.
 * - cast: fire-and-forget to a queue; durable and persistent on RabbitMQ; delivered to one consumer.
 * - publish/subscribe: a broadcast event every subscriber receives (fanout).
 */
import type { Logger } from 'pino';

export interface BusMessage {
  /** Unique per published message; redeliveries keep it, so consumers can tell a duplicate. */
  id: string;
  method: string;
  payload: unknown;
}

export type RpcHandler = (method: string, payload: unknown, message: BusMessage) => Promise<unknown>;
export type EventHandler = (event: string, payload: unknown, message: BusMessage) => Promise<void>;

export interface BusTransport {
  start(): Promise<void>;
  /** Stops consuming, lets handlers in flight finish and unconfirmed sends go out, then disconnects. */
  close(): Promise<void>;
  call<T = unknown>(queue: string, method: string, payload: unknown, timeoutMs?: number): Promise<T>;
  cast(queue: string, method: string, payload: unknown): Promise<void>;
  publish(topic: string, event: string, payload: unknown): Promise<void>;
  /** Consume a work queue: each message goes to one consumer and is acked only after the handler finished. */
  serve(queue: string, handler: RpcHandler): Promise<void>;
  /** Receive every event published on a topic. */
  subscribe(topic: string, handler: EventHandler): Promise<void>;
}

export type BusLogger = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export class BusTimeoutError extends Error {
  override name = 'BusTimeoutError';
  constructor(queue: string, method: string, timeoutMs: number) {
    super(`Timed out after ${timeoutMs} ms waiting for a reply to ${method} on ${queue}`);
  }
}

/** An error raised by a remote handler, carried back to the caller of `call`. */
export class RemoteError extends Error {
  override name = 'RemoteError';
  constructor(
    message: string,
    readonly remoteName: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** The transport was closed: nothing more is sent, and calls still waiting for a reply give up. */
export class BusClosedError extends Error {
  override name = 'BusClosedError';
  constructor() {
    super('The message bus is closed');
  }
}

export const DEFAULT_CALL_TIMEOUT_MS = 60_000;
