import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  requestId: string;
  globalRequestId?: string;
}

/** Carries the request id through async work so every log line of a request names it. */
export const requestContext = new AsyncLocalStorage<RequestContext>();
