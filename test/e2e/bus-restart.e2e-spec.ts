import { connect } from 'amqplib';
import { RabbitMqTransport } from '@novum/bus';
import { TestVhost, rabbitmqctl, recordingLogger, sleep, waitFor } from '../../libs/bus/testing';

/**
 * Restarts the machine's RabbitMQ (stop_app/start_app: the Erlang VM and every vhost's durable state stay)
 * while a producer casts a steady stream to a consumer, then checks that every message was handled exactly
 * once. It needs root (rabbitmqctl) and leaves the broker running, also when it fails.
 */
const MESSAGES = 2_000;
const PACE_MS = 5;
const RESTART_AT = 600;
const WORK = 'restart.work';
const RPC = 'restart.rpc';

jest.setTimeout(180_000);

describe('the RabbitMQ bus across a broker restart', () => {
  let vhost: TestVhost;
  const transports: RabbitMqTransport[] = [];

  beforeAll(async () => {
    vhost = await TestVhost.create();
  });

  afterAll(async () => {
    await rabbitmqctl('start_app');
    await rabbitmqctl('await_startup');
    // Before closing the transports: without their vhost they close at once, even after a failed test.
    await vhost?.delete();
    await Promise.all(transports.map((t) => t.close()));
  });

  async function restartBroker(): Promise<void> {
    await rabbitmqctl('stop_app');
    // Down long enough for producers to pile up casts and for consumers to be mid-way through handlers.
    await sleep(1_000);
    await rabbitmqctl('start_app');
    await rabbitmqctl('await_startup');
  }

  it('restart RabbitMQ under traffic: no message lost, no handler run twice for the same delivery after an ack', async () => {
    const consumerLog = recordingLogger();
    const producerLog = recordingLogger();
    const consumer = new RabbitMqTransport(vhost.url, { logger: consumerLog.logger });
    const producer = new RabbitMqTransport(vhost.url, { logger: producerLog.logger });
    transports.push(consumer, producer);
    await Promise.all([consumer.start(), producer.start()]);

    const runsById = new Map<string, number>();
    const runsByNumber = new Map<number, number>();
    await consumer.serve(WORK, async (_method, payload, message) => {
      await sleep(2);
      runsById.set(message.id, (runsById.get(message.id) ?? 0) + 1);
      const { n } = payload as { n: number };
      runsByNumber.set(n, (runsByNumber.get(n) ?? 0) + 1);
    });
    await consumer.serve(RPC, async (method, payload) => ({ method, payload }));

    let confirmed = 0;
    const failed: unknown[] = [];
    let restart: Promise<void> | undefined;
    for (let n = 1; n <= MESSAGES; n++) {
      producer.cast(WORK, 'work', { n }).then(
        () => confirmed++,
        (error: unknown) => failed.push(error),
      );
      if (n === RESTART_AT) restart = restartBroker();
      await sleep(PACE_MS);
    }
    await restart;
    await waitFor('every cast to be confirmed', () => confirmed + failed.length === MESSAGES, 60_000);
    expect(failed).toEqual([]);
    await waitFor(`all ${MESSAGES} messages handled`, () => runsByNumber.size === MESSAGES, 60_000);
    // A duplicate run would show up shortly after the last first run.
    await sleep(1_000);

    for (const { messages } of [consumerLog, producerLog]) {
      expect(messages).toContain('lost the RabbitMQ connection; reconnecting');
      expect(messages.filter((m) => m === 'connected to RabbitMQ').length).toBeGreaterThanOrEqual(2);
    }
    expect([...runsByNumber.keys()].sort((a, b) => a - b)).toEqual(
      Array.from({ length: MESSAGES }, (_, i) => i + 1),
    );
    expect([...runsByNumber.values()].filter((runs) => runs !== 1)).toEqual([]);
    expect(runsById.size).toBe(MESSAGES);
    expect([...runsById.values()].filter((runs) => runs !== 1)).toEqual([]);

    for (let i = 0; i < 5; i++) {
      await expect(producer.call(RPC, 'ping', i, 10_000)).resolves.toEqual({ method: 'ping', payload: i });
    }

    await consumer.close();
    const connection = await connect(vhost.url);
    const channel = await connection.createChannel();
    const left = await channel.checkQueue(`novum.${WORK}`);
    await connection.close();
    expect(left.messageCount).toBe(0);
  });
});
