/**
 * Test support shared by the transport specs and the broker-restart e2e test; not part of the library's API.
 */
import { afterEach, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import pino from 'pino';
import { NotFoundError } from '@novum/common';
import { BusClosedError, BusMessage, BusTimeoutError, BusTransport, RemoteError } from './transport';

export const silentLogger = pino({ level: 'silent' });

/** A logger that keeps the message of every line, to tell what a transport went through. */
export function recordingLogger(): { logger: pino.Logger; messages: string[] } {
  const messages: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => messages.push(JSON.parse(line).msg) });
  return { logger, messages };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

const execFileAsync = promisify(execFile);

export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('rabbitmqctl', args, { timeout: 120_000 });
  return stdout;
}

export const AMQP_BASE_URL = 'amqp://guest:guest@127.0.0.1:5672';

/** A vhost of its own for one test run, so runs never see each other's queues; deleted afterwards. */
export class TestVhost {
  private constructor(readonly name: string) {}

  static async create(): Promise<TestVhost> {
    const vhost = new TestVhost(`novum-test-${randomUUID().slice(0, 8)}`);
    await rabbitmqctl('add_vhost', vhost.name);
    await rabbitmqctl('set_permissions', '-p', vhost.name, 'guest', '.*', '.*', '.*');
    return vhost;
  }

  get url(): string {
    return `${AMQP_BASE_URL}/${encodeURIComponent(this.name)}`;
  }

  async delete(): Promise<void> {
    await rabbitmqctl('delete_vhost', this.name);
  }
}

/**
 * The behaviour every BusTransport promises, registered as tests in the caller's describe block. `open`
 * returns a started transport that reaches every other one it returns (same process broker or vhost).
 */
export function transportContract(open: () => Promise<BusTransport>): void {
  const opened: BusTransport[] = [];
  const transport = async () => {
    const t = await open();
    opened.push(t);
    return t;
  };
  const uniqueQueue = () => `contract.${randomUUID()}`;

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((t) => t.close()));
  });

  it('answers a call from another transport, handing each side its own copy', async () => {
    const [server, client] = [await transport(), await transport()];
    const queue = uniqueQueue();
    const kept = { count: 1 };
    await server.serve(queue, async (method, payload, message) => {
      (payload as { nested: { x: number } }).nested.x = 99;
      return { method, payload, id: message.id, kept };
    });
    const sent = { nested: { x: 1 }, list: [1, 2] };

    const reply = await client.call<{ kept: typeof kept }>(queue, 'echo', sent, 5_000);

    expect(reply).toEqual({
      method: 'echo',
      payload: { nested: { x: 99 }, list: [1, 2] },
      id: expect.any(String),
      kept: { count: 1 },
    });
    expect(sent.nested.x).toBe(1);
    reply.kept.count = 2;
    expect(kept.count).toBe(1);
  });

  it('resolves a call whose handler returns nothing with undefined', async () => {
    const [server, client] = [await transport(), await transport()];
    const queue = uniqueQueue();
    await server.serve(queue, async () => undefined);
    await expect(client.call(queue, 'noop', undefined, 5_000)).resolves.toBeUndefined();
  });

  it('fails a call with BusTimeoutError when the reply does not come in time', async () => {
    const [server, client] = [await transport(), await transport()];
    const slow = uniqueQueue();
    await server.serve(slow, () => sleep(300));
    await expect(client.call(slow, 'slow', {}, 50)).rejects.toBeInstanceOf(BusTimeoutError);
    await expect(client.call(uniqueQueue(), 'nobody', {}, 50)).rejects.toThrow(/Timed out after 50 ms/);
  });

  it("carries a handler's error back to the caller as a RemoteError with its class name and status", async () => {
    const [server, client] = [await transport(), await transport()];
    const queue = uniqueQueue();
    await server.serve(queue, async (method) => {
      if (method === 'find') throw new NotFoundError('Instance abc could not be found.');
      throw new TypeError('bad input');
    });

    const notFound = await client.call(queue, 'find', {}, 5_000).catch((error: unknown) => error);
    expect(notFound).toBeInstanceOf(RemoteError);
    expect(notFound).toMatchObject({
      message: 'Instance abc could not be found.',
      remoteName: 'NotFoundError',
      status: 404,
    });
    const typeError = await client.call(queue, 'other', {}, 5_000).catch((error: unknown) => error);
    expect(typeError).toMatchObject({ message: 'bad input', remoteName: 'TypeError', status: undefined });
  });

  it('delivers each cast to exactly one of the consumers of a queue, in turn', async () => {
    const [first, second, client] = [await transport(), await transport(), await transport()];
    const queue = uniqueQueue();
    const seen = { first: [] as number[], second: [] as number[] };
    await first.serve(queue, async (_method, payload) => void seen.first.push(payload as number));
    await second.serve(queue, async (_method, payload) => void seen.second.push(payload as number));

    for (let n = 1; n <= 10; n++) await client.cast(queue, 'work', n);
    await waitFor('10 casts handled', () => seen.first.length + seen.second.length === 10);

    expect([...seen.first, ...seen.second].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(seen.first.length).toBe(5);
    expect(seen.second.length).toBe(5);
  });

  it('keeps casts sent before any consumer exists until one serves the queue', async () => {
    const [client, server] = [await transport(), await transport()];
    const queue = uniqueQueue();
    for (let n = 1; n <= 3; n++) await client.cast(queue, 'work', { n });
    await sleep(50);
    const received: Array<[string, unknown]> = [];
    await server.serve(queue, async (method, payload) => void received.push([method, payload]));

    await waitFor('3 queued casts', () => received.length === 3);
    expect(received).toEqual([
      ['work', { n: 1 }],
      ['work', { n: 2 }],
      ['work', { n: 3 }],
    ]);
  });

  it('broadcasts a published event to every subscriber', async () => {
    const [one, two, publisher] = [await transport(), await transport(), await transport()];
    const topic = uniqueQueue();
    const got = { one: [] as unknown[], two: [] as unknown[] };
    const ids = new Set<string>();
    const listener = (into: unknown[]) => async (event: string, payload: unknown, message: BusMessage) => {
      into.push([event, payload]);
      ids.add(message.id);
    };
    await one.subscribe(topic, listener(got.one));
    await two.subscribe(topic, listener(got.two));

    await publisher.publish(topic, 'instance.create.end', { id: 'a' });
    await publisher.publish(topic, 'instance.delete.end', { id: 'a' });
    await waitFor('both subscribers to get both events', () => got.one.length === 2 && got.two.length === 2);

    const expected = [
      ['instance.create.end', { id: 'a' }],
      ['instance.delete.end', { id: 'a' }],
    ];
    expect(got).toEqual({ one: expected, two: expected });
    expect(ids.size).toBe(2);
  });

  it('drops a cast whose handler throws, without redelivering it, and goes on with the next', async () => {
    const [server, client] = [await transport(), await transport()];
    const queue = uniqueQueue();
    const attempts: number[] = [];
    await server.serve(queue, async (_method, payload) => {
      attempts.push(payload as number);
      if (payload === 1) throw new Error('handler failure');
    });

    await client.cast(queue, 'work', 1);
    await client.cast(queue, 'work', 2);
    await waitFor('the second cast', () => attempts.includes(2));
    await sleep(200);
    expect(attempts).toEqual([1, 2]);
  });

  it('refuses to send once closed', async () => {
    const client = await transport();
    await client.close();
    await expect(client.cast(uniqueQueue(), 'work', {})).rejects.toBeInstanceOf(BusClosedError);
    await expect(client.call(uniqueQueue(), 'work', {})).rejects.toBeInstanceOf(BusClosedError);
  });
}
