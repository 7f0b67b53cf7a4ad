import { randomUUID } from 'node:crypto';
import { rootLogger } from '@novum/common';
import {
  BusClosedError,
  BusLogger,
  BusTimeoutError,
  BusTransport,
  DEFAULT_CALL_TIMEOUT_MS,
  EventHandler,
  RpcHandler,
} from './transport';
import { decodePayload, decodeReply, encodeFailure, encodePayload, encodeResult } from './wire';

/** As many messages as one RabbitMQ consumer has in hand at once, so both transports load handlers alike. */
const PREFETCH = 16;

interface Envelope {
  id: string;
  method: string;
  body: string;
  /** Set for a call: hands the encoded reply back to the caller. */
  reply?: (body: string) => void;
  /** A call's request is dropped unhandled once its caller gave up, as RabbitMQ drops an expired message. */
  expiresAt?: number;
}

interface Consumer {
  inFlight: number;
  handle(envelope: Envelope): Promise<void>;
}

class LocalQueue {
  private readonly backlog: Envelope[] = [];
  private readonly consumers: Consumer[] = [];
  private next = 0;
  private scheduled = false;

  enqueue(envelope: Envelope): void {
    this.backlog.push(envelope);
    this.schedule();
  }

  add(consumer: Consumer): void {
    this.consumers.push(consumer);
    this.schedule();
  }

  remove(consumer: Consumer): void {
    const index = this.consumers.indexOf(consumer);
    if (index >= 0) this.consumers.splice(index, 1);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // Never inside the sender's call stack: a handler must not run before cast/publish returned.
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (;;) {
      this.dropExpired();
      if (!this.backlog.length) return;
      const consumer = this.nextFreeConsumer();
      if (!consumer) return;
      const envelope = this.backlog.shift()!;
      consumer.inFlight++;
      void consumer.handle(envelope).finally(() => {
        consumer.inFlight--;
        this.schedule();
      });
    }
  }

  private dropExpired(): void {
    const now = Date.now();
    while (this.backlog.length && (this.backlog[0].expiresAt ?? Infinity) <= now) this.backlog.shift();
  }

  private nextFreeConsumer(): Consumer | undefined {
    for (let i = 0; i < this.consumers.length; i++) {
      const index = (this.next + i) % this.consumers.length;
      if (this.consumers[index].inFlight < PREFETCH) {
        this.next = index + 1;
        return this.consumers[index];
      }
    }
    return undefined;
  }
}

/** The queues and topics every in-process transport attached to it shares; by default one per process. */
export class InProcessBroker {
  private readonly queues = new Map<string, LocalQueue>();
  private readonly topics = new Map<string, Set<LocalQueue>>();

  queue(name: string): LocalQueue {
    let queue = this.queues.get(name);
    if (!queue) this.queues.set(name, (queue = new LocalQueue()));
    return queue;
  }

  subscribers(topic: string): Set<LocalQueue> {
    let subscribers = this.topics.get(topic);
    if (!subscribers) this.topics.set(topic, (subscribers = new Set()));
    return subscribers;
  }
}

const processBroker = new InProcessBroker();

export interface InProcessTransportOptions {
  /** Defaults to the process-wide broker, so every Nest app in the process reaches every other. */
  broker?: InProcessBroker;
  logger?: BusLogger;
}

/** The bus of the all-in-one cloud: same semantics as RabbitMQ, without durability across restarts. */
export class InProcessTransport implements BusTransport {
  private readonly broker: InProcessBroker;
  private readonly logger: BusLogger;
  private readonly detachments: Array<() => void> = [];
  private readonly running = new Set<Promise<void>>();
  private readonly calls = new Map<string, { reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  private closed = false;

  constructor(options: InProcessTransportOptions = {}) {
    this.broker = options.broker ?? processBroker;
    this.logger = options.logger ?? rootLogger().child({ component: 'bus' });
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const detach of this.detachments.splice(0)) detach();
    for (const { reject, timer } of this.calls.values()) {
      clearTimeout(timer);
      reject(new BusClosedError());
    }
    this.calls.clear();
    await Promise.allSettled(this.running);
  }

  async call<T = unknown>(
    queue: string,
    method: string,
    payload: unknown,
    timeoutMs = DEFAULT_CALL_TIMEOUT_MS,
  ): Promise<T> {
    this.assertOpen();
    const body = encodePayload(payload);
    const id = randomUUID();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new BusTimeoutError(queue, method, timeoutMs));
      }, timeoutMs);
      this.calls.set(id, { reject, timer });
      const reply = (replyBody: string) => {
        if (!this.calls.delete(id)) return;
        clearTimeout(timer);
        try {
          resolve(decodeReply(replyBody) as T);
        } catch (error) {
          reject(error);
        }
      };
      this.broker.queue(queue).enqueue({ id, method, body, reply, expiresAt: Date.now() + timeoutMs });
    });
  }

  async cast(queue: string, method: string, payload: unknown): Promise<void> {
    this.assertOpen();
    this.broker.queue(queue).enqueue({ id: randomUUID(), method, body: encodePayload(payload) });
  }

  async publish(topic: string, event: string, payload: unknown): Promise<void> {
    this.assertOpen();
    const envelope = { id: randomUUID(), method: event, body: encodePayload(payload) };
    for (const subscriber of this.broker.subscribers(topic)) subscriber.enqueue(envelope);
  }

  async serve(queue: string, handler: RpcHandler): Promise<void> {
    this.assertOpen();
    const consumer = this.consumer(queue, handler);
    const local = this.broker.queue(queue);
    local.add(consumer);
    this.detachments.push(() => local.remove(consumer));
  }

  async subscribe(topic: string, handler: EventHandler): Promise<void> {
    this.assertOpen();
    // Like a subscriber's own exclusive queue on RabbitMQ: it only sees events published from now on.
    const local = new LocalQueue();
    local.add(this.consumer(topic, handler));
    const subscribers = this.broker.subscribers(topic);
    subscribers.add(local);
    this.detachments.push(() => subscribers.delete(local));
  }

  private consumer(source: string, handler: RpcHandler): Consumer {
    return {
      inFlight: 0,
      handle: (envelope) => {
        const handling = this.handle(source, handler, envelope);
        this.running.add(handling);
        return handling.finally(() => this.running.delete(handling));
      },
    };
  }

  private async handle(source: string, handler: RpcHandler, envelope: Envelope): Promise<void> {
    const { id, method, reply } = envelope;
    let replyBody: string;
    try {
      const payload = decodePayload(envelope.body);
      replyBody = encodeResult(await handler(method, payload, { id, method, payload }));
    } catch (error) {
      if (!reply) this.logger.error({ err: error, source, method }, 'bus handler failed');
      replyBody = encodeFailure(error);
    }
    reply?.(replyBody);
  }

  private assertOpen(): void {
    if (this.closed) throw new BusClosedError();
  }
}
