import { randomUUID } from 'node:crypto';
import { DynamicModule, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply } from 'fastify';
import { FaultFilter, sendFault } from './fault.filter';
import { BadRequestError, FaultStyle } from './faults';
import { PinoNestLogger, rootLogger } from './logger';
import { requestContext } from './request-context';
import { NovumValidationPipe } from './validation';

export interface HttpAppOptions {
  /** Service name, for logs ("identity", "compute-api", ...). */
  name: string;
  module: Type<unknown> | DynamicModule;
  /** Every route lives under this prefix ("identity" serves /identity/v3/...). */
  prefix: string;
  faultStyle: FaultStyle;
  /** Extra response headers that repeat the request id (Nova also sends x-compute-request-id). */
  requestIdHeaders?: string[];
  bodyLimit?: number;
}

/**
 * One Nest application on Fastify with Novum's cross-cutting behaviour: request ids on every response and
 * log line, OpenStack fault bodies for every error (including malformed JSON and unknown routes),
 * class-validator on bodies, and `/healthcheck`. Signals are runService's: it closes the app, which runs
 * the shutdown hooks once (Nest's own signal hooks would run them a second time).
 */
export async function createHttpApp(options: HttpAppOptions): Promise<NestFastifyApplication> {
  const log = rootLogger().child({ service: options.name });
  const adapter = new FastifyAdapter({
    logger: false,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    genReqId: () => `req-${randomUUID()}`,
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
    // Errors Fastify raises before routing (bad URL, over-long parameter, bad content type) get fault bodies too.
    frameworkErrors: (error: Error, _request: unknown, reply: FastifyReply) =>
      sendFault(reply, options.faultStyle, error),
  } as ConstructorParameters<typeof FastifyAdapter>[0]);
  const app = await NestFactory.create<NestFastifyApplication>(options.module, adapter, {
    logger: new PinoNestLogger(log),
    abortOnError: false,
  });
  const fastify = app.getHttpAdapter().getInstance();
  const idHeaders = ['x-openstack-request-id', ...(options.requestIdHeaders ?? [])];

  fastify.addHook('onRequest', (request, reply, done) => {
    // Clients (Tempest among them) send DELETE with a JSON content type and no body: no body is no body.
    const { 'content-length': length, 'transfer-encoding': chunked } = request.headers;
    if (!chunked && (length === undefined || length === '0')) delete request.headers['content-type'];
    const globalRequestId = request.headers['x-openstack-request-id'];
    for (const header of idHeaders) reply.header(header, request.id);
    const ctx = {
      requestId: request.id,
      globalRequestId:
        typeof globalRequestId === 'string' && /^req-[0-9a-f-]{36}$/.test(globalRequestId)
          ? globalRequestId
          : undefined,
    };
    requestContext.run(ctx, done);
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    log.info(
      {
        request_id: request.id,
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
    done();
  });
  // PostgreSQL cannot store NUL characters, and no OpenStack field needs them: refuse them up front.
  fastify.addHook('preValidation', (request, _reply, done) => {
    const inUrl = [request.params, request.query].some((map) =>
      Object.entries((map ?? {}) as Record<string, unknown>).some(
        ([k, v]) => containsNul(k) || containsNul(v),
      ),
    );
    if (inUrl || containsNul(request.body)) {
      done(new BadRequestError('Invalid input: NUL characters (\\u0000) are not allowed.'));
    } else {
      done();
    }
  });
  fastify.setErrorHandler((error, _request, reply) => sendFault(reply, options.faultStyle, error));
  fastify.get('/healthcheck', (_request, reply) => {
    reply.header('content-type', 'text/plain').send('OK');
  });

  app.setGlobalPrefix(options.prefix);
  app.useGlobalFilters(new FaultFilter(options.faultStyle));
  app.useGlobalPipes(new NovumValidationPipe());
  return app;
}

/** True when a string anywhere in a parsed JSON value (plain objects and arrays only) holds a NUL. */
export function containsNul(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (depth > 32 || value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return false;
  for (const [key, child] of Object.entries(value)) {
    if (key.includes('\u0000') || containsNul(child, depth + 1)) return true;
  }
  return false;
}
