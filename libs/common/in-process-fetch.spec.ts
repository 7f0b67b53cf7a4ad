import { Body, Controller, Get, Headers, HttpCode, Module, Param, Post } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { neutronFault, NotFoundError } from './faults';
import { createHttpApp } from './http-app';
import { apiFetch, serveInProcess } from './in-process-fetch';

const seen: { method: string; id?: string; token?: string; body?: unknown }[] = [];

@Controller('v2.0/ports')
class PortsController {
  @Post()
  @HttpCode(201)
  create(@Headers('x-auth-token') token: string, @Body() body: unknown) {
    seen.push({ method: 'POST', token, body });
    return { port: { id: 'p1' } };
  }

  @Get('slow')
  slow() {
    return new Promise(() => undefined);
  }

  @Get(':id')
  get(@Param('id') id: string) {
    seen.push({ method: 'GET', id });
    throw new NotFoundError(`Port ${id} could not be found.`);
  }
}

@Module({ controllers: [PortsController] })
class PortsModule {}

describe('apiFetch', () => {
  let app: NestFastifyApplication;
  // A port nothing listens on (the app listens on none): a call that left the process would be refused.
  const base = 'http://127.0.0.1:9';

  beforeAll(async () => {
    app = await createHttpApp({
      name: 'test',
      module: PortsModule,
      prefix: 'networking',
      faultStyle: neutronFault,
    });
    await app.init();
  });
  afterAll(() => app.close());
  beforeEach(() => (seen.length = 0));

  it("serves a registered origin's calls in process, with the app's status, headers, body and faults", async () => {
    const unserve = serveInProcess(`${base}/networking`, app.getHttpAdapter().getInstance());
    try {
      const created = await apiFetch(`${base}/networking/v2.0/ports?x=1`, {
        method: 'POST',
        headers: { 'X-Auth-Token': 'tok', 'content-type': 'application/json' },
        body: JSON.stringify({ port: { network_id: 'n1' } }),
      });
      expect(created.status).toBe(201);
      expect(created.ok).toBe(true);
      expect(created.headers.get('X-OpenStack-Request-Id')).toMatch(/^req-/);
      expect(await created.json()).toEqual({ port: { id: 'p1' } });

      const missing = await apiFetch(`${base}/networking/v2.0/ports/missing`);
      expect(missing.status).toBe(404);
      expect(missing.ok).toBe(false);
      expect(JSON.parse(await missing.text())).toMatchObject({
        NeutronError: { message: 'Port missing could not be found.' },
      });
      expect(seen).toEqual([
        { method: 'POST', token: 'tok', body: { port: { network_id: 'n1' } } },
        { method: 'GET', id: 'missing' },
      ]);
    } finally {
      unserve();
    }
  });

  it('goes through the network for other origins, once unregistered, and for bodies that are not text', async () => {
    const unserve = serveInProcess(base, app.getHttpAdapter().getInstance());
    await expect(apiFetch('http://127.0.0.1:1/networking/v2.0/ports/x')).rejects.toThrow(/fetch failed/);
    await expect(
      apiFetch(`${base}/networking/v2.0/ports`, { method: 'POST', body: new Uint8Array([1, 2]) }),
    ).rejects.toThrow(/fetch failed/);
    unserve();
    await expect(apiFetch(`${base}/networking/v2.0/ports/x`)).rejects.toThrow(/fetch failed/);
    expect(seen).toEqual([]);
  });

  it("rejects with the signal's reason when it aborts first, as fetch does", async () => {
    const unserve = serveInProcess(base, app.getHttpAdapter().getInstance());
    try {
      await expect(
        apiFetch(`${base}/networking/v2.0/ports/slow`, { signal: AbortSignal.timeout(50) }),
      ).rejects.toMatchObject({ name: 'TimeoutError' });
    } finally {
      unserve();
    }
  });
});
