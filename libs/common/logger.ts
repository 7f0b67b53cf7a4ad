import { LoggerService } from '@nestjs/common';
import pino, { Logger } from 'pino';
import { requestContext } from './request-context';

let root: Logger | undefined;

/** The process-wide structured (JSON) logger; each line carries the current request id, if any. */
export function rootLogger(level = process.env.NOVUM_LOG_LEVEL || 'info'): Logger {
  if (!root) {
    root = pino({
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin() {
        const ctx = requestContext.getStore();
        if (!ctx) return {};
        return ctx.globalRequestId
          ? { request_id: ctx.requestId, global_request_id: ctx.globalRequestId }
          : { request_id: ctx.requestId };
      },
    });
  }
  return root;
}

/** Routes NestJS's own log calls into pino. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger = rootLogger()) {}
  log(message: unknown, context?: string) {
    this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string) {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string) {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string) {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string) {
    this.logger.trace({ context }, String(message));
  }
}
