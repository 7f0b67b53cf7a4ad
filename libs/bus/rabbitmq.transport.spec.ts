import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ConfirmChannel, connect } from 'amqplib';
import { randomUUID } from 'node:crypto';
import { BUS_TRANSPORT, MessageBus } from './bus';
import { BusModule } from './bus.module';
import { BusConsumer, RpcMethod } from './decorators';
import { RabbitMqTransport } from './rabbitmq.transport';
import {
  TestVhost,
  rabbitmqctl,
  recordingLogger,
  silentLogger,
  sleep,
  transportContract,
  waitFor,
} from './testing';

// Needs the broker at 127.0.0.1:5672 and rabbitmqctl: without them the suite fails, it never skips.
jest.setTimeout(30_000);

@BusConsumer('module.rpc')
@Injectable()
class Counter {
  @RpcMethod('increment')
  increment(n: number) {
    return n + 1;
  }
}

describe('RabbitMqTransport', () => {
  let vhost: TestVhost;
  const prefix = 'spec';

  beforeAll(async () => {
    vhost = await TestVhost.create();
  });

  afterAll(async () => {
    await vhost?.delete();
  });

  /** Straight to the broker with amqplib, on a connection of its own (the tests drop the others). */
  const direct = async <T>(use: (channel: ConfirmChannel) => Promise<T>): Promise<T> => {
    const connection = await connect(vhost.url);
    try {
      return await use(await connection.createConfirmChannel());
    } finally {
      await connection.close();
    }
  };
  const depth = (queue: string) => direct((channel) => channel.checkQueue(`${prefix}.${queue}`));

  const opened: RabbitMqTransport[] = [];
  const open = async (logger = silentLogger) => {
    const transport = new RabbitMqTransport(vhost.url, { prefix, logger });
    opened.push(transport);
    await transport.start();
    return transport;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((t) => t.close()));
  });

  describe('contract', () => {
    transportContract(open);
  });

  it('carries the decorated handlers of BusModule.forRoot({ amqpUrl })', async () => {
    const app = await Test.createTestingModule({
      imports: [BusModule.forRoot({ amqpUrl: vhost.url, prefix })],
      providers: [Counter],
    }).compile();
    await app.init();
    try {
      expect(app.get(BUS_TRANSPORT)).toBeInstanceOf(RabbitMqTransport);
      expect(await app.get(MessageBus).call('module.rpc', 'increment', 41, 5_000)).toBe(42);
    } finally {
      await app.close();
    }
    expect(await depth('module.rpc')).toMatchObject({ consumerCount: 0 });
  });

  it('keeps casts in a durable queue across transports, persistent', async () => {
    const queue = `durable.${randomUUID()}`;
    const producer = await open();
    await producer.cast(queue, 'work', { n: 1 });
    await producer.close();

    expect(await depth(queue)).toMatchObject({ messageCount: 1, consumerCount: 0 });
    const message = await direct((channel) => channel.get(`${prefix}.${queue}`, { noAck: true }));
    expect(message && message.properties).toMatchObject({
      deliveryMode: 2,
      type: 'work',
      messageId: expect.any(String),
    });
  });

  const queueType = async (queue: string) => {
    const rows = await rabbitmqctl(
      'list_queues',
      '-q',
      '--no-table-headers',
      '-p',
      vhost.name,
      'name',
      'type',
    );
    return rows
      .split('\n')
      .map((row) => row.trim().split(/\s+/))
      .find(([name]) => name === `${prefix}.${queue}`)?.[1];
  };

  it('makes a new work queue a quorum queue, whether a server or a sender declares it first', async () => {
    const served = `quorum.served.${randomUUID()}`;
    const sent = `quorum.sent.${randomUUID()}`;
    const transport = await open();
    await transport.serve(served, async () => 'ok');
    await transport.cast(sent, 'work', {});
    expect([await queueType(served), await queueType(sent)]).toEqual(['quorum', 'quorum']);
    expect(await transport.call(served, 'work', {})).toBe('ok');
  });

  it('uses a classic queue an earlier deployment declared, as it is', async () => {
    const queue = `classic.${randomUUID()}`;
    await direct((channel) => channel.assertQueue(`${prefix}.${queue}`, { durable: true }));
    const handled: unknown[] = [];
    const server = await open();
    await server.serve(queue, async (_method, payload) => void handled.push(payload));
    const client = await open();
    await client.cast(queue, 'work', { n: 1 });
    await waitFor('the cast handled', () => handled.length === 1);
    expect(handled).toEqual([{ n: 1 }]);
    expect(await queueType(queue)).toBe('classic');
  });

  it('runs the handler once for a message published twice with the same id, and acks both', async () => {
    const queue = `dedupe.${randomUUID()}`;
    const server = await open();
    const handled: unknown[] = [];
    await server.serve(queue, async (_method, payload) => void handled.push(payload));

    await direct(async (channel) => {
      const copy = { messageId: 'same-id', type: 'work', persistent: true };
      channel.sendToQueue(`${prefix}.${queue}`, Buffer.from(JSON.stringify({ payload: 'first' })), copy);
      channel.sendToQueue(`${prefix}.${queue}`, Buffer.from(JSON.stringify({ payload: 'second' })), copy);
      await channel.waitForConfirms();
    });
    await sleep(200);
    await server.close();

    expect(handled).toEqual(['first']);
    expect(await depth(queue)).toMatchObject({ messageCount: 0 });
  });

  it('reconnects when the broker drops its connections, serving, subscribing and sending again', async () => {
    const queue = `reconnect.${randomUUID()}`;
    const serverLog = recordingLogger();
    const clientLog = recordingLogger();
    const server = await open(serverLog.logger);
    const client = await open(clientLog.logger);
    const events: unknown[] = [];
    await server.serve(queue, async (method, payload) => ({ method, payload }));
    await server.subscribe(queue, async (_event, payload) => void events.push(payload));

    await rabbitmqctl('close_all_connections', '-p', vhost.name, 'spec: dropping connections');
    await client.cast(queue, 'while reconnecting', {});
    expect(await client.call(queue, 'ping', 1, 10_000)).toEqual({ method: 'ping', payload: 1 });
    await client.publish(queue, 'event', 'after');
    await waitFor('the event', () => events.length === 1);
    expect(events).toEqual(['after']);
    for (const { messages } of [serverLog, clientLog]) {
      expect(messages.filter((m) => m === 'connected to RabbitMQ')).toHaveLength(2);
      expect(messages).toContain('lost the RabbitMQ connection; reconnecting');
    }
  });

  it('does not run a handler again for a message redelivered while it was still running', async () => {
    const queue = `redelivery.${randomUUID()}`;
    const { logger, messages } = recordingLogger();
    const server = await open(logger);
    const client = await open();
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    await server.serve(queue, async () => {
      runs++;
      await gate;
    });
    await client.cast(queue, 'slow', {});
    await waitFor('the handler to start', () => runs === 1);

    await rabbitmqctl('close_all_connections', '-p', vhost.name, 'spec: dropping connections');
    await waitFor(
      'the redelivery',
      () => messages.includes('acking a redelivered message already handled'),
      10_000,
    );
    release();
    await server.close();

    expect(runs).toBe(1);
    expect(await depth(queue)).toMatchObject({ messageCount: 0, consumerCount: 0 });
  });
});
