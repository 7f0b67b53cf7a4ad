import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient, QmpError } from './qmp-client';

/** A QMP server that greets, insists on capabilities negotiation first, and answers from `handlers`. */
function fakeQemu(path: string, handlers: Record<string, (args: unknown, socket: Socket) => unknown>) {
  const received: { execute: string; arguments?: unknown }[] = [];
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    let negotiated = false;
    let buffer = '';
    const send = (message: unknown) => socket.write(JSON.stringify(message) + '\r\n');
    send({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: '' }, capabilities: [] } });
    socket.on('data', (chunk) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const request = JSON.parse(buffer.slice(0, newline)) as {
          execute: string;
          arguments?: unknown;
          id?: string;
        };
        buffer = buffer.slice(newline + 1);
        received.push({ execute: request.execute, arguments: request.arguments });
        if (request.execute === 'qmp_capabilities') {
          negotiated = true;
          send({ return: {}, id: request.id });
        } else if (!negotiated) {
          send({
            error: { class: 'CommandNotFound', desc: 'Expecting capabilities negotiation' },
            id: request.id,
          });
        } else if (handlers[request.execute]) {
          const result = handlers[request.execute](request.arguments, socket);
          if (result !== undefined) send({ return: result, id: request.id });
        } else {
          send({
            error: { class: 'CommandNotFound', desc: `The command ${request.execute} has not been found` },
            id: request.id,
          });
        }
      }
    });
  });
  return {
    received,
    listen: () => new Promise<void>((resolve) => server.listen(path, resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
    event: (event: string, data: Record<string, unknown> = {}) => {
      for (const socket of sockets) {
        socket.write(JSON.stringify({ event, data, timestamp: { seconds: 1, microseconds: 2 } }) + '\r\n');
      }
    },
  };
}

describe('QmpClient', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'novum-qmp-'));
    path = join(dir, 'qmp.sock');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('negotiates capabilities, then runs commands and returns their results', async () => {
    const qemu = fakeQemu(path, { 'query-status': () => ({ status: 'running', running: true }) });
    await qemu.listen();
    const client = await QmpClient.connect(path);
    expect(client.version).toEqual({ major: 7, minor: 2, micro: 22 });
    expect(await client.execute('query-status')).toEqual({ status: 'running', running: true });
    expect(qemu.received.map((r) => r.execute)).toEqual(['qmp_capabilities', 'query-status']);
    client.close();
    await qemu.close();
  });

  it('passes arguments and matches answers that arrive out of order by id', async () => {
    let held: (() => void) | undefined;
    const qemu = fakeQemu(path, {
      slow: (_args, socket) => {
        held = () => socket.write(JSON.stringify({ return: 'slow', id: '2' }) + '\n');
        return undefined;
      },
      echo: (args) => args,
    });
    await qemu.listen();
    const client = await QmpClient.connect(path);
    const slow = client.execute('slow');
    const echo = await client.execute('echo', { uri: 'exec:cat > x' });
    expect(echo).toEqual({ uri: 'exec:cat > x' });
    held!();
    expect(await slow).toBe('slow');
    client.close();
    await qemu.close();
  });

  it('rejects with a QmpError carrying the error class', async () => {
    const qemu = fakeQemu(path, {});
    await qemu.listen();
    const client = await QmpClient.connect(path);
    const error = await client.execute('no-such-command').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QmpError);
    expect(error).toMatchObject({ command: 'no-such-command', errorClass: 'CommandNotFound' });
    client.close();
    await qemu.close();
  });

  it('delivers events and waits for a named one', async () => {
    const qemu = fakeQemu(path, {});
    await qemu.listen();
    const client = await QmpClient.connect(path);
    const seen: string[] = [];
    client.on('event', (event: { event: string }) => seen.push(event.event));
    const shutdown = client.waitForEvent('SHUTDOWN', 5_000);
    qemu.event('RESET', { guest: true });
    qemu.event('SHUTDOWN', { guest: true, reason: 'guest-shutdown' });
    expect(await shutdown).toMatchObject({ event: 'SHUTDOWN', data: { reason: 'guest-shutdown' } });
    expect(seen).toEqual(['RESET', 'SHUTDOWN']);
    expect(await client.waitForEvent('POWERDOWN', 50)).toBeUndefined();
    client.close();
    await qemu.close();
  });

  it('rejects pending commands and reports close when QEMU goes away', async () => {
    const qemu = fakeQemu(path, { hang: () => undefined });
    await qemu.listen();
    const client = await QmpClient.connect(path);
    const pending = client.execute('hang');
    const closed = client.waitClosed(5_000);
    await qemu.close();
    await expect(pending).rejects.toThrow(/closed/);
    expect(await closed).toBe(true);
    expect(client.isOpen).toBe(false);
    await expect(client.execute('query-status')).rejects.toThrow(/closed/);
  });

  it('fails to connect where nothing listens', async () => {
    await expect(QmpClient.connect(path)).rejects.toThrow(/Cannot connect to QMP/);
  });
});
