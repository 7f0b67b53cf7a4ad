export * from './bus';
export * from './bus.module';
export { BusConsumer, EventListener, RpcMethod } from './decorators';
export * from './in-process.transport';
export * from './rabbitmq.transport';
export * from './transport';
