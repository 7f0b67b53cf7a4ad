import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { rootLogger } from './logger';
import { ApiError, Fault, FaultStyle } from './faults';

/** Turns anything thrown while serving a request into the service's own fault body; never a stack trace. */
export function toFault(error: unknown): Fault & { headers: Record<string, string> } {
  if (error instanceof ApiError) {
    return { status: error.status, message: error.message, type: error.type, headers: error.headers };
  }
  if (error instanceof HttpException) {
    const response = error.getResponse();
    let message = error.message;
    if (typeof response === 'object' && response && 'message' in response) {
      const m = (response as { message: unknown }).message;
      message = Array.isArray(m) ? m.join('; ') : String(m);
    }
    return { status: error.getStatus(), message, headers: {} };
  }
  const fastifyError = error as { statusCode?: number; code?: string; message?: string };
  if (
    typeof fastifyError?.statusCode === 'number' &&
    fastifyError.statusCode >= 400 &&
    fastifyError.statusCode < 500
  ) {
    return { status: fastifyError.statusCode, message: describeClientError(fastifyError), headers: {} };
  }
  if (isUnavailable(error)) {
    return {
      status: 503,
      message: 'The service is temporarily unavailable; try again later.',
      headers: { 'retry-after': '5' },
    };
  }
  return {
    status: 500,
    message: 'An unexpected error prevented the server from fulfilling your request.',
    headers: {},
  };
}

/**
 * A lost database (or other backend) connection, or one the database has no room for: the request may
 * succeed later, so 503, not 500.
 */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  // PostgreSQL: too many connections, out of resources, an administrator's or a crash's shutdown, starting up.
  '53300',
  '53000',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08003',
  '08006',
  'SQLITE_BUSY',
]);

function isUnavailable(error: unknown): boolean {
  type Chain = { code?: unknown; message?: unknown; driverError?: unknown; cause?: unknown };
  let link = error as Chain | undefined;
  for (let depth = 0; link && depth < 4; depth++) {
    if (typeof link.code === 'string' && UNAVAILABLE_CODES.has(link.code)) return true;
    if (
      typeof link.message === 'string' &&
      // pg-pool's wait for a free connection of the process's pool ran out: busy now, not broken.
      /Connection terminated|connection timeout|Connection is closed|timeout exceeded when trying to connect/i.test(
        link.message,
      )
    ) {
      return true;
    }
    link = (link.driverError ?? link.cause) as Chain | undefined;
  }
  return false;
}

function describeClientError(error: { code?: string; message?: string }): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'Malformed request body: the body is not valid JSON.';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Unsupported Content-Type.';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'Request body is too large.';
    default:
      return error.message ?? 'Bad request.';
  }
}

export function sendFault(reply: FastifyReply, style: FaultStyle, error: unknown): void {
  const fault = toFault(error);
  if (fault.status >= 500) rootLogger().error({ err: error }, 'unhandled error while serving a request');
  for (const [name, value] of Object.entries(fault.headers)) reply.header(name, value);
  reply
    .status(fault.status)
    .header('content-type', 'application/json')
    .send(JSON.stringify(style(fault)));
}

@Catch()
export class FaultFilter implements ExceptionFilter {
  constructor(private readonly style: FaultStyle) {}

  catch(error: unknown, host: ArgumentsHost): void {
    sendFault(host.switchToHttp().getResponse<FastifyReply>(), this.style, error);
  }
}
