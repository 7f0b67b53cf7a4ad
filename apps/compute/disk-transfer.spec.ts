import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { DiskExport } from '@novum/virt';
import { DiskTransfer, fetchDisks } from './disk-transfer';

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

function exportOf(data: Buffer | (() => Readable)): DiskExport & { disposed: number } {
  const exported = {
    format: 'test-disks',
    disposed: 0,
    open: typeof data === 'function' ? data : () => Readable.from([data]),
    dispose: async () => void exported.disposed++,
  };
  return exported;
}

describe('DiskTransfer', () => {
  let transfer: DiskTransfer;

  beforeEach(async () => {
    transfer = new DiskTransfer({ address: '127.0.0.1' });
    await transfer.listen();
  });

  afterEach(() => transfer.close());

  it('serves an offer once to its ticket, with its size and SHA-256, and drops the export', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const exported = exportOf(data);
    const uuid = randomUUID();
    const offer = await transfer.offer(uuid, exported);
    expect(offer).toMatchObject({ host: '127.0.0.1', port: transfer.port, format: 'test-disks' });
    expect(offer.sizeBytes).toBe(data.length);

    expect((await readAll(await fetchDisks(offer))).equals(data)).toBe(true);
    expect(exported.disposed).toBe(1);
    await expect(fetchDisks(offer)).rejects.toThrow(/refused.*invalid, expired or used ticket/);
  });

  it('starts listening with its first offer', async () => {
    const lazy = new DiskTransfer({ address: '127.0.0.1' });
    try {
      expect(lazy.port).toBe(0);
      const offer = await lazy.offer(randomUUID(), exportOf(Buffer.from('lazy')));
      expect(offer.port).toBe(lazy.port);
      expect(offer.port).toBeGreaterThan(0);
      expect((await readAll(await fetchDisks(offer))).toString()).toBe('lazy');
    } finally {
      await lazy.close();
    }
  });

  it('refuses a forged ticket and one of a withdrawn offer', async () => {
    const exported = exportOf(Buffer.from('disk'));
    const uuid = randomUUID();
    const offer = await transfer.offer(uuid, exported);
    const forged = { ...offer, ticket: offer.ticket.replace(/.$/, (c) => (c === '0' ? '1' : '0')) };
    await expect(fetchDisks(forged)).rejects.toThrow(/refused/);
    await transfer.withdraw(uuid);
    expect(exported.disposed).toBe(1);
    await expect(fetchDisks(offer)).rejects.toThrow(/refused/);
  });

  it('fails the stream when the bytes are not the offered ones', async () => {
    let opened = 0;
    const exported = exportOf(() => Readable.from([Buffer.from(opened++ === 0 ? 'original' : 'tampered')]));
    const offer = await transfer.offer(randomUUID(), exported);
    await expect(readAll(await fetchDisks(offer))).rejects.toThrow(/SHA-256/);

    let reopened = 0;
    const short = await transfer.offer(
      randomUUID(),
      exportOf(() => Readable.from([Buffer.from(reopened++ === 0 ? 'a longer disk' : 'short')])),
    );
    await expect(readAll(await fetchDisks(short))).rejects.toThrow(/ended after 5 of 13 bytes/);
  });

  it('counts the time from when the receiver starts reading, not while it prepares the guest', async () => {
    const data = randomBytes(1024 * 1024);
    const offer = await transfer.offer(randomUUID(), exportOf(data));
    const stream = await fetchDisks(offer, { idleTimeoutMs: 100 });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await readAll(stream)).equals(data)).toBe(true);
  });

  it('fails a transfer that stalls', async () => {
    let opened = 0;
    const stalling = () =>
      opened++ === 0 ? Readable.from([Buffer.from('0123456789')]) : new Readable({ read() {} });
    const offer = await transfer.offer(randomUUID(), exportOf(stalling));
    await expect(readAll(await fetchDisks(offer, { idleTimeoutMs: 200 }))).rejects.toThrow(/stalled/);
  });
});
