import { randomUUID } from 'node:crypto';
import { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options, connect } from 'amqplib';
import { rootLogger } from '@novum/common';
import {
  BusClosedError,
  BusLogger,
  BusMessage,
  BusTimeoutError,
  BusTransport,
  DEFAULT_CALL_TIMEOUT_MS,
  EventHandler,
  RpcHandler,
} from './transport';
import { decodePayload, decodeReply, encodeFailure, encodePayload, encodeResult } from './wire';

const PREFETCH = 16;
/** How many handled message ids each transport remembers to recognise a redelivered duplicate. */
const DEDUPE_WINDOW = 10_000;
const RECONNECT_FIRST_DELAY_MS = 100;
const RECONNECT_MAX_DELAY_MS = 5_000;
/** Channel errors the broker raises for a bad declaration or access: retrying on a new connection can't help. */
const PERMANENT_CHANNEL_ERRORS = new Set([403, 404, 405, 406]);
/** The broker's answer to declaring a queue that exists with other arguments (another x-queue-type). */
const PRECONDITION_FAILED = 406;
const CONTENT_TYPE = 'application/json';

export type QueueType = 'quorum' | 'classic';

/**
 * The topics whose queues are one per host, `<topic>.<host>` (`computeQueue` in libs/compute/contract.ts):
 * their type is `hostQueueType`, every other work queue is a quorum queue.
 */
export const HOST_QUEUE_TOPICS: readonly string[] = ['compute'];

export interface RabbitMqTransportOptions {
  /** Prefix of every queue and exchange name, so several deployments can share a vhost. */
  prefix?: string;
  /**
   * The type of a new per-host queue (HOST_QUEUE_TOPICS), default classic: it has one consumer, its host,
   * and a deployment has one per host, while every quorum queue is a Raft group of its own on the broker
   * (its processes, its log, three file handles each on RabbitMQ 3.10). Whoever declares the queue first,
   * its host or a sender, makes it of this type, so every process of a deployment should be given the same.
   */
  hostQueueType?: QueueType;
  logger?: BusLogger;
}

/** One connection and its confirm channel; a dropped connection is replaced by a new session. */
interface Session {
  connection: ChannelModel;
  channel: ConfirmChannel;
  open: boolean;
  /** Destinations already declared on this connection, so each is asserted once. */
  declared: Map<string, Promise<unknown>>;
  /** The consumer tag of each subscription attached on this connection. */
  consumers: Map<Subscription, string>;
  /**
   * The channel work queues are declared on, apart from the confirm channel: the broker closes a channel that
   * declared a queue with other arguments than it has. Made again after that.
   */
  declarations?: Promise<Channel>;
  /** The declarations one after the other, so that one refused does not take others down with its channel. */
  declaring: Promise<unknown>;
}

/** A served work queue or a subscribed topic; declared and consumed again on every new session. */
interface Subscription {
  kind: 'queue' | 'topic';
  name: string;
  handler: RpcHandler;
  /**
   * Where a message id counts as handled: consumers of one work queue share it, while each topic subscriber
   * gets every event (same id) in its own queue.
   */
  dedupeScope: string;
  /** Its handlers still running, awaited before the subscription's consumer is gone for good. */
  running: Set<Promise<void>>;
}

interface OutgoingMessage {
  exchange: string;
  routingKey: string;
  declare?: { key: string; run: (session: Session) => Promise<unknown> };
  content: Buffer;
  options: Options.Publish;
  /** A call's request is not worth sending once its caller gave up. */
  deadline?: number;
}

interface Outgoing extends OutgoingMessage {
  /** The session it was last published on, while the broker's confirm is awaited. */
  session?: Session;
  settle(error?: Error): void;
}

interface PendingCall {
  resolve(result: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * The bus on RabbitMQ: durable queues, persistent messages, publisher confirms, and acks only once a handler
 * finished. It reconnects by itself, re-sends what the broker did not confirm, and acks without running
 * again a redelivered message whose handler already ran in this transport (the last 10,000 per transport),
 * so a broker restart loses nothing and runs nothing twice.
 */
export class RabbitMqTransport implements BusTransport {
  private readonly prefix: string;
  private readonly hostQueueType: QueueType;
  private readonly logger: BusLogger;
  private readonly replyQueue: string;
  private readonly subscriptions: Subscription[] = [];
  /** Every message not yet confirmed by the broker, in the order it was sent. */
  private readonly outbox = new Map<Outgoing, Promise<void>>();
  private readonly calls = new Map<string, PendingCall>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly handled = new Set<string>();
  private waiters: Array<{ resolve(): void; reject(error: Error): void }> = [];
  private session?: Session;
  private started = false;
  private connecting?: Promise<void>;
  private stopping = false;
  private closed = false;
  private closing?: Promise<void>;
  private backoffTimer?: NodeJS.Timeout;
  private wake?: () => void;

  constructor(
    private readonly url: string,
    options: RabbitMqTransportOptions = {},
  ) {
    this.prefix = options.prefix ?? 'novum';
    this.hostQueueType = options.hostQueueType ?? 'classic';
    this.logger = options.logger ?? rootLogger().child({ component: 'bus' });
    // A stable name across reconnects: a reply sent while this transport was away still reaches it.
    this.replyQueue = `${this.prefix}.reply.${randomUUID()}`;
  }

  /** Resolves once connected; while the broker is unreachable it keeps retrying (and logging). */
  start(): Promise<void> {
    if (!this.started) {
      this.started = true;
      this.reconnect();
    }
    return this.connecting ?? Promise.resolve();
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  async call<T = unknown>(
    queue: string,
    method: string,
    payload: unknown,
    timeoutMs = DEFAULT_CALL_TIMEOUT_MS,
  ): Promise<T> {
    this.assertOpen();
    const content = Buffer.from(encodePayload(payload));
    const id = randomUUID();
    const reply = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new BusTimeoutError(queue, method, timeoutMs));
      }, timeoutMs);
      this.calls.set(id, { resolve: resolve as (result: unknown) => void, reject, timer });
    });
    this.send({
      ...this.toQueue(queue),
      content,
      options: {
        messageId: id,
        type: method,
        correlationId: id,
        replyTo: this.replyQueue,
        contentType: CONTENT_TYPE,
      },
      deadline: Date.now() + timeoutMs,
    }).catch((error: Error) => this.settleCall(id, error));
    return reply;
  }

  async cast(queue: string, method: string, payload: unknown): Promise<void> {
    this.assertOpen();
    await this.send({
      ...this.toQueue(queue),
      content: Buffer.from(encodePayload(payload)),
      options: { messageId: randomUUID(), type: method, persistent: true, contentType: CONTENT_TYPE },
    });
  }

  async publish(topic: string, event: string, payload: unknown): Promise<void> {
    this.assertOpen();
    const exchange = this.exchangeName(topic);
    await this.send({
      exchange,
      routingKey: '',
      declare: {
        key: `exchange:${exchange}`,
        run: ({ channel }) => channel.assertExchange(exchange, 'fanout', { durable: true }),
      },
      content: Buffer.from(encodePayload(payload)),
      options: { messageId: randomUUID(), type: event, persistent: true, contentType: CONTENT_TYPE },
    });
  }

  serve(queue: string, handler: RpcHandler): Promise<void> {
    return this.register(queueSubscription(queue, handler));
  }

  subscribe(topic: string, handler: EventHandler): Promise<void> {
    return this.register(topicSubscription(topic, handler));
  }

  /**
   * A share of this transport's connection for one of the applications of a process (see
   * `sharedRabbitMqTransport`). Closing it cancels only the consumers it registered, once their handlers in
   * flight finished, and then calls `release`; a reconnect of the connection attaches them with all others.
   */
  lease(release: () => Promise<void>): BusTransport {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the lease's methods are its own object's
    const transport = this;
    const own: Subscription[] = [];
    let closing: Promise<void> | undefined;
    const assertOpen = () => {
      if (closing) throw new BusClosedError();
    };
    const register = async (subscription: Subscription) => {
      assertOpen();
      own.push(subscription);
      await transport.register(subscription);
    };
    return {
      start: () => transport.start(),
      close() {
        closing ??= transport.unregister(own).then(release);
        return closing;
      },
      async call<T = unknown>(queue: string, method: string, payload: unknown, timeoutMs?: number) {
        assertOpen();
        return transport.call<T>(queue, method, payload, timeoutMs);
      },
      async cast(queue, method, payload) {
        assertOpen();
        return transport.cast(queue, method, payload);
      },
      async publish(topic, event, payload) {
        assertOpen();
        return transport.publish(topic, event, payload);
      },
      serve: (queue, handler) => register(queueSubscription(queue, handler)),
      subscribe: (topic, handler) => register(topicSubscription(topic, handler)),
    };
  }

  private queueName(queue: string): string {
    return `${this.prefix}.${queue}`;
  }

  private exchangeName(topic: string): string {
    return `${this.prefix}.${topic}`;
  }

  private toQueue(queue: string): Pick<OutgoingMessage, 'exchange' | 'routingKey' | 'declare'> {
    const name = this.queueName(queue);
    // Declared before the first send, or a cast made before any consumer exists would be dropped.
    return {
      exchange: '',
      routingKey: name,
      declare: { key: `queue:${name}`, run: (session) => this.declareWorkQueue(session, queue) },
    };
  }

  private assertOpen(): void {
    if (this.closed) throw new BusClosedError();
  }

  private queueType(queue: string): QueueType {
    return HOST_QUEUE_TOPICS.some((topic) => queue.startsWith(`${topic}.`)) ? this.hostQueueType : 'quorum';
  }

  /**
   * A work queue (served by a service, cast and called to), declared durable of its type when new: a quorum
   * queue is replicated by Raft over the nodes of a RabbitMQ cluster so that losing a node loses no message
   * (RabbitMQ 3.8 and later; older brokers ignore the argument and make a classic one). A queue that already
   * exists with another type (a classic queue of an earlier deployment, or a per-host queue made before
   * NOVUM_BUS_HOST_QUEUE_TYPE changed) is used as it is and logged: the broker refuses to declare it again
   * with another type (PRECONDITION_FAILED), and a queue can't change type without being deleted with what
   * it holds, which is the operator's call.
   */
  private declareWorkQueue(session: Session, queue: string): Promise<void> {
    const name = this.queueName(queue);
    const type = this.queueType(queue);
    const declare = async () => {
      const opening = this.declarationChannel(session);
      const channel = await opening;
      try {
        await channel.assertQueue(name, { durable: true, arguments: { 'x-queue-type': type } });
      } catch (error) {
        if ((error as { code?: unknown }).code !== PRECONDITION_FAILED) throw error;
        // The broker closed that channel: the next declaration opens another.
        if (session.declarations === opening) session.declarations = undefined;
        this.logger.warn(
          { queue: name, type, reason: (error as Error).message },
          'a queue of this name exists with other arguments; using it as it is',
        );
      }
    };
    const declared = session.declaring.then(declare, declare);
    session.declaring = declared.catch(() => undefined);
    return declared;
  }

  private declarationChannel(session: Session): Promise<Channel> {
    if (session.declarations) return session.declarations;
    const opening = session.connection.createChannel().then((channel) => {
      // A refused declaration's error is the declaration's, not the connection's.
      channel.on('error', () => undefined);
      channel.on('close', () => {
        if (session.declarations === opening) session.declarations = undefined;
      });
      return channel;
    });
    opening.catch(() => {
      if (session.declarations === opening) session.declarations = undefined;
    });
    session.declarations = opening;
    return opening;
  }

  // Connection lifecycle

  private reconnect(): void {
    this.connecting = this.connectWithBackoff().finally(() => {
      this.connecting = undefined;
    });
  }

  private async connectWithBackoff(): Promise<void> {
    let delay = RECONNECT_FIRST_DELAY_MS;
    while (!this.stopping) {
      try {
        await this.openSession();
        return;
      } catch (error) {
        // Jitter keeps every service of a restarted broker from reconnecting in the same instant.
        const wait = Math.min(Math.round(delay * (0.8 + Math.random() * 0.4)), RECONNECT_MAX_DELAY_MS);
        this.logger.warn({ err: error, retryInMs: wait }, 'cannot connect to RabbitMQ; retrying');
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          this.backoffTimer = setTimeout(resolve, wait);
        });
        delay = Math.min(delay * 2, RECONNECT_MAX_DELAY_MS);
      }
    }
  }

  private async openSession(): Promise<void> {
    const connection = await connect(this.url, {
      clientProperties: { connection_name: `${this.prefix} (pid ${process.pid})` },
      // A broker that accepts the socket but never answers must not stall the reconnect loop.
      timeout: 10_000,
    });
    connection.on('error', (error: Error) => this.logger.warn({ err: error }, 'RabbitMQ connection error'));
    let channel: ConfirmChannel;
    try {
      channel = await connection.createConfirmChannel();
    } catch (error) {
      await connection.close().catch(() => undefined);
      throw error;
    }
    const session: Session = {
      connection,
      channel,
      open: true,
      declared: new Map(),
      consumers: new Map(),
      declaring: Promise.resolve(),
    };
    connection.on('close', () => this.lost(session));
    channel.on('error', (error: Error) => this.logger.warn({ err: error }, 'RabbitMQ channel error'));
    // Ahead of amqplib's own listener, which fails the pending confirms: they must see the session closed
    // to tell a dropped channel (send again) from a broker nack (fail the send).
    channel.prependListener('close', () => this.lost(session));
    try {
      await channel.prefetch(PREFETCH);
      await channel.assertQueue(this.replyQueue, { exclusive: true, autoDelete: true });
      await channel.consume(this.replyQueue, (message) => message && this.onReply(message), { noAck: true });
      for (const subscription of [...this.subscriptions]) await this.attach(subscription, session);
      if (!session.open) throw new Error('The connection closed while it was being set up');
    } catch (error) {
      await this.discard(session);
      throw error;
    }
    if (this.stopping) {
      await this.discard(session);
      return;
    }
    this.session = session;
    this.logger.info({ url: redact(this.url) }, 'connected to RabbitMQ');
    for (const waiter of this.waiters.splice(0)) waiter.resolve();
    for (const out of this.outbox.keys()) if (out.session !== session) void this.transmit(out, session);
  }

  /** Marks a session dead and closes its connection: a channel can die alone (a failed declaration). */
  private discard(session: Session): Promise<void> {
    session.open = false;
    return session.connection.close().catch(() => undefined);
  }

  private lost(session: Session): void {
    if (!session.open) return;
    void this.discard(session);
    if (this.session !== session) return;
    this.session = undefined;
    if (this.stopping) {
      for (const out of this.outbox.keys()) out.settle(new BusClosedError());
      return;
    }
    this.logger.warn('lost the RabbitMQ connection; reconnecting');
    this.reconnect();
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.backoffTimer);
    this.wake?.();
    await this.connecting;
    const session = this.session;
    if (session) {
      await Promise.allSettled([...session.consumers.values()].map((tag) => session.channel.cancel(tag)));
      // Handlers in flight may still reply and cast; what they send goes out before the connection closes.
      await Promise.allSettled(this.inFlight.values());
      await Promise.allSettled(this.outbox.values());
    }
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.reject(new BusClosedError());
    for (const id of [...this.calls.keys()]) this.settleCall(id, new BusClosedError());
    for (const out of this.outbox.keys()) out.settle(new BusClosedError());
    if (this.session) {
      const last = this.session;
      this.session = undefined;
      await this.discard(last);
    }
  }

  // Publishing

  private send(message: OutgoingMessage): Promise<void> {
    if (this.stopping && !this.session) return Promise.reject(new BusClosedError());
    let out!: Outgoing;
    const sent = new Promise<void>((resolve, reject) => {
      out = {
        ...message,
        settle: (error) => {
          this.outbox.delete(out);
          if (error) reject(error);
          else resolve();
        },
      };
    });
    this.outbox.set(out, sent);
    if (this.session) void this.transmit(out, this.session);
    return sent;
  }

  private async transmit(out: Outgoing, session: Session): Promise<void> {
    out.session = session;
    try {
      if (out.declare) await this.declare(session, out.declare);
    } catch (error) {
      // Otherwise the connection dropped, and the message goes again on the next one.
      if (isPermanent(error)) out.settle(error as Error);
      return;
    }
    if (out.session !== session || !session.open) return;
    const options = { ...out.options };
    if (out.deadline !== undefined) {
      const remaining = out.deadline - Date.now();
      if (remaining <= 0) return out.settle();
      options.expiration = String(remaining);
    }
    try {
      session.channel.publish(out.exchange, out.routingKey, out.content, options, (error) => {
        if (out.session !== session) return;
        if (!error) out.settle();
        else if (session.open) out.settle(error);
      });
    } catch (error) {
      if (session.open) out.settle(error as Error);
    }
  }

  private declare(session: Session, declaration: NonNullable<OutgoingMessage['declare']>): Promise<unknown> {
    let declared = session.declared.get(declaration.key);
    if (!declared) {
      declared = declaration.run(session);
      session.declared.set(declaration.key, declared);
      declared.catch(() => session.declared.delete(declaration.key));
    }
    return declared;
  }

  private onReply(message: ConsumeMessage): void {
    const id = message.properties.correlationId as string;
    if (!this.calls.has(id)) return;
    try {
      this.settleCall(id, undefined, decodeReply(message.content.toString()));
    } catch (error) {
      this.settleCall(id, error as Error);
    }
  }

  private settleCall(id: string, error?: Error, result?: unknown): void {
    const call = this.calls.get(id);
    if (!call) return;
    this.calls.delete(id);
    clearTimeout(call.timer);
    if (error) call.reject(error);
    else call.resolve(result);
  }

  // Consuming

  private async register(subscription: Subscription): Promise<void> {
    this.assertOpen();
    this.subscriptions.push(subscription);
    const session = this.session;
    if (session) {
      try {
        await this.attach(subscription, session);
        return;
      } catch (error) {
        if (isPermanent(error) || session.open) {
          this.subscriptions.splice(this.subscriptions.indexOf(subscription), 1);
          throw error;
        }
      }
    }
    // Opening a session attaches every registered subscription.
    await new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private async attach(subscription: Subscription, session: Session): Promise<void> {
    const { channel } = session;
    let queue: string;
    if (subscription.kind === 'queue') {
      queue = this.queueName(subscription.name);
      await this.declareWorkQueue(session, subscription.name);
    } else {
      const exchange = this.exchangeName(subscription.name);
      await channel.assertExchange(exchange, 'fanout', { durable: true });
      queue = (await channel.assertQueue('', { exclusive: true, autoDelete: true })).queue;
      await channel.bindQueue(queue, exchange, '');
    }
    const { consumerTag } = await channel.consume(
      queue,
      (message) => void this.deliver(subscription, session, message),
    );
    session.consumers.set(subscription, consumerTag);
    // A lease closed while a reconnect was attaching it.
    if (!this.subscriptions.includes(subscription)) await this.detach(subscription, session);
  }

  /** Stops consuming for these subscriptions alone, then waits for their handlers still running. */
  private async unregister(subscriptions: readonly Subscription[]): Promise<void> {
    for (const subscription of subscriptions) {
      const index = this.subscriptions.indexOf(subscription);
      if (index >= 0) this.subscriptions.splice(index, 1);
    }
    const session = this.session;
    if (session) await Promise.allSettled(subscriptions.map((s) => this.detach(s, session)));
    await Promise.allSettled(subscriptions.flatMap((s) => [...s.running]));
  }

  private async detach(subscription: Subscription, session: Session): Promise<void> {
    const tag = session.consumers.get(subscription);
    if (tag === undefined) return;
    session.consumers.delete(subscription);
    if (session.open) await session.channel.cancel(tag);
  }

  private async deliver(
    subscription: Subscription,
    session: Session,
    message: ConsumeMessage | null,
  ): Promise<void> {
    if (!message) {
      this.logger.warn(
        { [subscription.kind]: subscription.name },
        'RabbitMQ cancelled a consumer; reconnecting',
      );
      this.lost(session);
      return;
    }
    // Every message this transport sends has an id; one from elsewhere without it just can't be deduplicated.
    const id = (message.properties.messageId as string | undefined) ?? randomUUID();
    const key = `${subscription.dedupeScope}/${id}`;
    const earlier = this.inFlight.get(key);
    if (earlier || this.handled.has(key)) {
      this.logger.debug(
        { id, [subscription.kind]: subscription.name },
        'acking a redelivered message already handled',
      );
      await earlier;
      this.ack(session, message);
      return;
    }
    const handling = this.handle(subscription, message, id);
    this.inFlight.set(key, handling);
    subscription.running.add(handling);
    await handling;
    subscription.running.delete(handling);
    this.inFlight.delete(key);
    this.handled.add(key);
    if (this.handled.size > DEDUPE_WINDOW) this.handled.delete(this.handled.values().next().value!);
    this.ack(session, message);
  }

  private async handle(subscription: Subscription, delivery: ConsumeMessage, id: string): Promise<void> {
    const {
      type: method,
      replyTo,
      correlationId,
    } = delivery.properties as {
      type: string;
      replyTo?: string;
      correlationId?: string;
    };
    let reply: string;
    try {
      const payload = decodePayload(delivery.content.toString());
      const message: BusMessage = { id, method, payload };
      reply = encodeResult(await subscription.handler(method, payload, message));
    } catch (error) {
      if (!replyTo) {
        this.logger.error(
          { err: error, [subscription.kind]: subscription.name, method },
          'bus handler failed',
        );
      }
      reply = encodeFailure(error);
    }
    if (!replyTo) return;
    try {
      await this.send({
        exchange: '',
        routingKey: replyTo,
        content: Buffer.from(reply),
        options: { correlationId, contentType: CONTENT_TYPE },
      });
    } catch (error) {
      this.logger.warn({ err: error, queue: subscription.name, method }, 'could not send an RPC reply');
    }
  }

  private ack(session: Session, message: ConsumeMessage): void {
    if (!session.open) return;
    try {
      session.channel.ack(message);
    } catch {
      // The channel is already going down; the broker redelivers and the dedupe window acks the copy.
    }
  }
}

function queueSubscription(queue: string, handler: RpcHandler): Subscription {
  return { kind: 'queue', name: queue, handler, dedupeScope: `queue:${queue}`, running: new Set() };
}

function topicSubscription(topic: string, handler: EventHandler): Subscription {
  return { kind: 'topic', name: topic, handler, dedupeScope: `topic:${randomUUID()}`, running: new Set() };
}

const shared = new Map<string, { transport: RabbitMqTransport; users: number }>();

/**
 * The applications of one process that ask for it share one RabbitMQ connection (and its confirm channel), as
 * they share one database pool: a process running many fake compute hosts would otherwise open a connection
 * per host, and a broker allows only so many. Every application still consumes its own queues, each
 * consumer with its own prefetch and acks; the connection closes when the last application closes its share.
 */
export function sharedRabbitMqTransport(url: string, options: RabbitMqTransportOptions = {}): BusTransport {
  const key = `${options.prefix ?? 'novum'} ${options.hostQueueType ?? 'classic'} ${url}`;
  let entry = shared.get(key);
  if (!entry) {
    entry = { transport: new RabbitMqTransport(url, options), users: 0 };
    shared.set(key, entry);
  }
  const share = entry;
  share.users += 1;
  return share.transport.lease(async () => {
    share.users -= 1;
    if (share.users > 0) return;
    if (shared.get(key) === share) shared.delete(key);
    await share.transport.close();
  });
}

function isPermanent(error: unknown): boolean {
  return PERMANENT_CHANNEL_ERRORS.has((error as { code?: unknown }).code as number);
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}
