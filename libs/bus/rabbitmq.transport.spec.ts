import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ConfirmChannel, connect } from 'amqplib';
import { randomUUID } from 'node:crypto';
import { BUS_TRANSPORT, MessageBus } from './bus';
import { BusModule } from './bus.module';
import { BusConsumer, RpcMethod } from './decorators';
import { RabbitMqTransport, RabbitMqTransportOptions, sharedRabbitMqTransport } from './rabbitmq.transport';
import { BusClosedError, BusTransport } from './transport';
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
  const open = async (logger = silentLogger, options: RabbitMqTransportOptions = {}) => {
    const transport = new RabbitMqTransport(vhost.url, { prefix, logger, ...options });
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

  it('makes a new per-host queue (compute.<host>) classic, or of the type asked for', async () => {
    const served = `compute.served-${randomUUID()}`;
    const sent = `compute.sent-${randomUUID()}`;
    const asked = `compute.quorum-${randomUUID()}`;
    const transport = await open();
    await transport.serve(served, async () => 'ok');
    await transport.cast(sent, 'work', {});
    const quorum = await open(silentLogger, { hostQueueType: 'quorum' });
    await quorum.cast(asked, 'work', {});
    expect([await queueType(served), await queueType(sent), await queueType(asked)]).toEqual([
      'classic',
      'classic',
      'quorum',
    ]);
    expect(await transport.call(served, 'work', {})).toBe('ok');
  });

  it('uses a per-host queue of the other type as it is and says so, declaring the next ones all the same', async () => {
    // A quorum compute.<host> of a deployment before NOVUM_BUS_HOST_QUEUE_TYPE=classic: the broker refuses
    // to declare it again as classic (PRECONDITION_FAILED), which must not stop the agent.
    const existing = `compute.upgraded-${randomUUID()}`;
    const next = `compute.new-${randomUUID()}`;
    await direct((channel) =>
      channel.assertQueue(`${prefix}.${existing}`, {
        durable: true,
        arguments: { 'x-queue-type': 'quorum' },
      }),
    );
    const { logger, messages } = recordingLogger();
    const handled: unknown[] = [];
    const server = await open(logger);
    await server.serve(existing, async (_method, payload) => void handled.push(payload));
    await server.serve(next, async (_method, payload) => void handled.push(payload));
    const client = await open(logger);
    await client.cast(existing, 'work', { n: 1 });
    await client.cast(next, 'work', { n: 2 });
    await waitFor('both casts handled', () => handled.length === 2);
    expect(handled).toEqual(expect.arrayContaining([{ n: 1 }, { n: 2 }]));
    expect([await queueType(existing), await queueType(next)]).toEqual(['quorum', 'classic']);
    expect(messages.filter((m) => m.includes('exists with other arguments; using it as it is'))).toHaveLength(
      2,
    );
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

  describe('a connection shared by the applications of a process', () => {
    /** The connections of this spec's vhost the broker has open (rabbitmqctl lists every vhost's). */
    const connections = async () =>
      (await rabbitmqctl('list_connections', '-q', '--no-table-headers', 'vhost'))
        .split('\n')
        .filter((row) => row.trim() === vhost.name).length;
    let hosts: string[];
    beforeEach(() => {
      hosts = ['host-1', 'host-2', 'host-3'].map((host) => `shared.${randomUUID()}.${host}`);
    });
    const shares: BusTransport[] = [];
    const share = async (logger = silentLogger) => {
      const transport = sharedRabbitMqTransport(vhost.url, { prefix, logger });
      shares.push(transport);
      await transport.start();
      return transport;
    };
    afterEach(async () => {
      await Promise.all(shares.splice(0).map((t) => t.close()));
    });

    it('carries the queues of N applications on one connection, each queue consumed by its own', async () => {
      const handled: Record<string, unknown[]> = {};
      for (const queue of hosts) {
        handled[queue] = [];
        await (await share()).serve(queue, async (method, payload) => void handled[queue].push(payload));
      }
      await waitFor('one connection', async () => (await connections()) === 1);

      const client = await open();
      for (const [n, queue] of hosts.entries()) await client.cast(queue, 'work', n);
      await waitFor('every cast handled', () => hosts.every((queue) => handled[queue].length === 1));
      expect(hosts.map((queue) => handled[queue])).toEqual([[0], [1], [2]]);
      for (const queue of hosts) expect(await depth(queue)).toMatchObject({ consumerCount: 1 });
    });

    it('is what BusModule.forRoot({ shareConnection }) gives the applications of a process', async () => {
      const application = async (queue: string) => {
        const app = await Test.createTestingModule({
          imports: [BusModule.forRoot({ amqpUrl: vhost.url, prefix, shareConnection: true })],
        }).compile();
        await app.init();
        await app.get(MessageBus).serve(queue, { host: async () => queue });
        return app;
      };
      const [first, second] = [await application(hosts[0]), await application(hosts[1])];
      try {
        expect(await connections()).toBe(1);
        await first.close();
        const client = await open();
        expect(await client.call(hosts[1], 'host', {}, 5_000)).toBe(hosts[1]);
        expect(await depth(hosts[0])).toMatchObject({ consumerCount: 0 });
      } finally {
        await first.close();
        await second.close();
      }
      await waitFor('the shared connection closed', async () => (await connections()) === 1);
    });

    it('acks a message only after its handler, and closing one share stops its consumer alone', async () => {
      const [first, second] = [await share(), await share()];
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const runs: string[] = [];
      await first.serve(hosts[0], async (method) => {
        runs.push(method);
        await gate;
      });
      await second.serve(hosts[1], async (method) => method);
      const client = await open();
      await client.cast(hosts[0], 'slow', {});
      await waitFor('the handler to start', () => runs.length === 1);

      const closing = first.close();
      let closed = false;
      void closing.then(() => (closed = true));
      await sleep(100);
      await client.cast(hosts[0], 'after the close', {});
      await sleep(200);
      expect(closed).toBe(false);
      release();
      await closing;

      expect(runs).toEqual(['slow']);
      // The first message acked once its handler returned; the one cast after the close waits for a consumer.
      await waitFor('the ack', async () => (await depth(hosts[0])).messageCount === 1);
      expect(await client.call(hosts[1], 'still served', {}, 5_000)).toBe('still served');
      expect(await connections()).toBe(2);
      await expect(first.cast(hosts[1], 'work', {})).rejects.toBeInstanceOf(BusClosedError);
      await second.close();
      await waitFor('the shared connection closed', async () => (await connections()) === 1);
    });

    it('subscribes every application again when the shared connection is dropped', async () => {
      const { logger, messages } = recordingLogger();
      const answers: string[] = [];
      const events: string[] = [];
      for (const queue of hosts) {
        const transport = await share(logger);
        await transport.serve(queue, async () => queue);
        await transport.subscribe(queue, async (event) => void events.push(event));
      }
      const client = await open();

      await rabbitmqctl('close_all_connections', '-p', vhost.name, 'spec: dropping connections');
      for (const queue of hosts) {
        answers.push(await client.call<string>(queue, 'ping', {}, 10_000));
        await client.publish(queue, `event of ${queue}`, {});
      }
      await waitFor('every event', () => events.length === hosts.length);

      expect(answers).toEqual(hosts);
      expect(events.sort()).toEqual(hosts.map((queue) => `event of ${queue}`).sort());
      expect(messages.filter((m) => m === 'connected to RabbitMQ')).toHaveLength(2);
      for (const queue of hosts) expect(await depth(queue)).toMatchObject({ consumerCount: 1 });
      expect(await connections()).toBe(2);
    });
  });
});
