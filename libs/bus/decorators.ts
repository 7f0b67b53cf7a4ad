import 'reflect-metadata';

export const BUS_CONSUMER = Symbol('novum:bus-consumer');
export const RPC_METHOD = Symbol('novum:bus-rpc-method');
export const EVENT_LISTENERS = Symbol('novum:bus-event-listeners');

export interface EventBinding {
  topic: string;
  event: string;
}

/** Marks a provider whose @RpcMethod methods answer calls and casts sent to `queue`. */
export function BusConsumer(queue: string): ClassDecorator {
  return (target) => Reflect.defineMetadata(BUS_CONSUMER, queue, target);
}

/** Handles `method` on the class's @BusConsumer queue; called with (payload, message), its result is the reply. */
export function RpcMethod(method: string): MethodDecorator {
  return (target, key) => Reflect.defineMetadata(RPC_METHOD, method, target, key);
}

/** Receives every `event` published on `topic`, with (payload, message); on any provider, stackable. */
export function EventListener(topic: string, event: string): MethodDecorator {
  return (target, key) => {
    const bindings: EventBinding[] = Reflect.getOwnMetadata(EVENT_LISTENERS, target, key) ?? [];
    Reflect.defineMetadata(EVENT_LISTENERS, [...bindings, { topic, event }], target, key);
  };
}
