import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

/** Query parameters as Nova (webob) reads them: one string per name, the last one when repeated. */
export type NovaQueryParams = Record<string, string | undefined>;

export const NovaQuery = createParamDecorator((_data: unknown, ctx: ExecutionContext): NovaQueryParams => {
  const query = (ctx.switchToHttp().getRequest<FastifyRequest>().query ?? {}) as Record<string, unknown>;
  const params: NovaQueryParams = {};
  for (const [name, value] of Object.entries(query)) {
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (typeof last === 'string') params[name] = last;
  }
  return params;
});
