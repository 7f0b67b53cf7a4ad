import { InProcessBroker, InProcessTransport } from './in-process.transport';
import { silentLogger, sleep, transportContract, waitFor } from './testing';

describe('InProcessTransport', () => {
  describe('contract', () => {
    transportContract(async () => new InProcessTransport({ logger: silentLogger }));
  });

  const opened: InProcessTransport[] = [];
  const open = (broker?: InProcessBroker) => {
    const transport = new InProcessTransport({ broker, logger: silentLogger });
    opened.push(transport);
    return transport;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((t) => t.close()));
  });

  it('never runs a handler inside cast itself', async () => {
    const transport = open(new InProcessBroker());
    let ran = false;
    await transport.serve('work', async () => {
      ran = true;
    });

    await transport.cast('work', 'go', {});
    expect(ran).toBe(false);
    await waitFor('the handler', () => ran);
  });

  it('alternates strictly between consumers', async () => {
    const broker = new InProcessBroker();
    const order: string[] = [];
    await open(broker).serve('work', async () => void order.push('a'));
    await open(broker).serve('work', async () => void order.push('b'));

    for (let n = 0; n < 6; n++) await open(broker).cast('work', 'go', n);
    await waitFor('6 casts', () => order.length === 6);
    expect(order).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
  });

  it('gives one consumer at most 16 messages at a time', async () => {
    const transport = open(new InProcessBroker());
    let running = 0;
    let peak = 0;
    let done = 0;
    await transport.serve('work', async () => {
      peak = Math.max(peak, ++running);
      await sleep(20);
      running--;
      done++;
    });

    for (let n = 0; n < 40; n++) await transport.cast('work', 'go', n);
    await waitFor('40 casts', () => done === 40);
    expect(peak).toBe(16);
  });

  it('stops delivering to a closed transport and keeps the messages for the other consumers', async () => {
    const broker = new InProcessBroker();
    const leaving = open(broker);
    const got: number[] = [];
    await leaving.serve('work', async () => void got.push(-1));
    await leaving.close();
    await open(broker).cast('work', 'go', 1);
    await sleep(20);
    await open(broker).serve('work', async (_method, payload) => void got.push(payload as number));

    await waitFor('the cast', () => got.length === 1);
    expect(got).toEqual([1]);
  });

  it('drops a timed-out call instead of running it late', async () => {
    const broker = new InProcessBroker();
    const caller = open(broker);
    await expect(caller.call('late', 'go', {}, 20)).rejects.toThrow(/Timed out/);
    let ran = false;
    await open(broker).serve('late', async () => {
      ran = true;
    });
    await sleep(50);
    expect(ran).toBe(false);
  });
});
