import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { BUS_CONSUMER, EVENT_LISTENERS, EventBinding, RPC_METHOD } from './decorators';
import { BusMessage, BusTransport, DEFAULT_CALL_TIMEOUT_MS } from './transport';

export const BUS_TRANSPORT = Symbol('BUS_TRANSPORT');

export type BoundHandler = (payload: unknown, message: BusMessage) => unknown;

/** What a caller gets (as a RemoteError of this name) for a method no consumer of the queue has. */
class NoSuchMethodError extends Error {
  constructor(queue: string, method: string) {
    super(`Queue ${queue} has no method ${method}`);
  }
}

/**
 * The services' handle on the bus. At bootstrap it serves every @BusConsumer queue and subscribes every
 * @EventListener topic found among the app's providers, once per queue or topic, dispatching by name.
 */
@Injectable()
export class MessageBus implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(BUS_TRANSPORT) private readonly transport: BusTransport,
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
  ) {}

  call<T = unknown>(
    queue: string,
    method: string,
    payload: unknown,
    timeoutMs = DEFAULT_CALL_TIMEOUT_MS,
  ): Promise<T> {
    return this.transport.call<T>(queue, method, payload, timeoutMs);
  }

  cast(queue: string, method: string, payload: unknown): Promise<void> {
    return this.transport.cast(queue, method, payload);
  }

  publish(topic: string, event: string, payload: unknown): Promise<void> {
    return this.transport.publish(topic, event, payload);
  }

  /**
   * Serves `queue` with handlers by method name, for queues whose name is only known at run time (one
   * compute agent's `compute.<host>`). Like a @BusConsumer, it serves until the app shuts down.
   */
  async serve(queue: string, handlers: Readonly<Record<string, BoundHandler>>): Promise<void> {
    await this.serveMethods(queue, new Map(Object.entries(handlers)));
  }

  async onApplicationBootstrap(): Promise<void> {
    const { methods, listeners } = this.discoverHandlers();
    for (const [queue, handlers] of methods) await this.serveMethods(queue, handlers);
    for (const [topic, events] of listeners) {
      await this.transport.subscribe(topic, async (event, payload, message) => {
        await Promise.all((events.get(event) ?? []).map((listener) => listener(payload, message)));
      });
    }
  }

  private serveMethods(queue: string, handlers: ReadonlyMap<string, BoundHandler>): Promise<void> {
    return this.transport.serve(queue, async (method, payload, message) => {
      const handler = handlers.get(method);
      if (!handler) throw new NoSuchMethodError(queue, method);
      return handler(payload, message);
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.transport.close();
  }

  private discoverHandlers() {
    const methods = new Map<string, Map<string, BoundHandler>>();
    const listeners = new Map<string, Map<string, BoundHandler[]>>();
    const seen = new Set<object>();
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      // Request-scoped and transient providers have no single instance to bind to.
      if (
        !instance ||
        typeof instance !== 'object' ||
        !wrapper.isDependencyTreeStatic() ||
        seen.has(instance)
      ) {
        continue;
      }
      seen.add(instance);
      const prototype = Object.getPrototypeOf(instance) as object;
      const className = instance.constructor.name;
      const queue = Reflect.getMetadata(BUS_CONSUMER, instance.constructor) as string | undefined;
      for (const name of this.scanner.getAllMethodNames(prototype)) {
        const bound: BoundHandler = (payload, message) =>
          (instance as Record<string, BoundHandler>)[name](payload, message);
        const method = Reflect.getMetadata(RPC_METHOD, prototype, name) as string | undefined;
        if (method !== undefined) {
          if (queue === undefined) {
            throw new Error(
              `${className}.${name} is an @RpcMethod, but ${className} has no @BusConsumer(queue)`,
            );
          }
          const handlers = getOrCreate(methods, queue, () => new Map<string, BoundHandler>());
          if (handlers.has(method)) throw new Error(`Two @RpcMethod('${method}') handlers on queue ${queue}`);
          handlers.set(method, bound);
        }
        const bindings = (Reflect.getMetadata(EVENT_LISTENERS, prototype, name) ?? []) as EventBinding[];
        for (const { topic, event } of bindings) {
          const events = getOrCreate(listeners, topic, () => new Map<string, BoundHandler[]>());
          getOrCreate(events, event, () => []).push(bound);
        }
      }
    }
    return { methods, listeners };
  }
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = create()));
  return value;
}
