/**
 * Calls between the services of one process. In the all-in-one cloud every API is an app of the same process,
 * and a service calling another's API (the compute API the image and network APIs, the agent the network API,
 * Heat every API) would otherwise go through a socket to itself: undici's fetch, a TCP connection, HTTP
 * written and parsed on both sides, all on the one event loop that also builds the servers. Such a call goes to
 * the app's Fastify `inject` instead, through the same routes, hooks, authentication and policy, with the same
 * answers (Nova's all-in-one has the same idea in its local conductor). Services in processes of their own
 * register nothing here, and their calls are fetch's.
 */

/** What a Fastify instance offers for this: `inject` (light-my-request). */
export interface InProcessServer {
  inject(request: {
    method: string;
    url: string;
    headers: Record<string, string>;
    payload?: string;
  }): Promise<{
    statusCode: number;
    statusMessage?: string;
    headers: Record<string, unknown>;
    payload: string;
  }>;
}

const servers = new Map<string, InProcessServer>();

/**
 * Serves the calls to `url`'s origin (scheme, host and port: the service's catalog endpoint) from `server`,
 * in process, until the returned function is called.
 */
export function serveInProcess(url: string, server: InProcessServer): () => void {
  const origin = new URL(url).origin;
  servers.set(origin, server);
  return () => {
    if (servers.get(origin) === server) servers.delete(origin);
  };
}

/**
 * fetch, for JSON calls to another service's API: in process when this process serves that API (a request
 * with a string body or none), else through the network. Its answer offers what such callers read of a
 * Response: status, ok, statusText, headers.get, text() and json().
 */
export async function apiFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  if (!servers.size || input instanceof Request) return fetch(input, init);
  const url = new URL(input);
  const server = servers.get(url.origin);
  const body = init.body;
  if (!server || (body !== undefined && body !== null && typeof body !== 'string')) return fetch(input, init);
  const signal = init.signal ?? undefined;
  signal?.throwIfAborted();
  const answer = server.inject({
    method: init.method ?? 'GET',
    url: url.pathname + url.search,
    headers: plainHeaders(init.headers),
    ...(typeof body === 'string' ? { payload: body } : {}),
  });
  const response = await (signal ? untilAborted(answer, signal) : answer);
  return new InProcessResponse(response) as unknown as Response;
}

class InProcessResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null; has(name: string): boolean };
  private readonly payload: string;

  constructor(answer: Awaited<ReturnType<InProcessServer['inject']>>) {
    this.status = answer.statusCode;
    this.statusText = answer.statusMessage ?? '';
    this.payload = answer.payload;
    const headers = answer.headers;
    this.headers = {
      get: (name) => {
        const value = headers[name.toLowerCase()];
        if (value === undefined || value === null) return null;
        return Array.isArray(value) ? value.join(', ') : String(value);
      },
      has: (name) => headers[name.toLowerCase()] !== undefined,
    };
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  async text(): Promise<string> {
    return this.payload;
  }

  async json(): Promise<unknown> {
    return JSON.parse(this.payload);
  }
}

function plainHeaders(headers: RequestInit['headers']): Record<string, string> {
  if (!headers) return {};
  if (headers instanceof Headers || Array.isArray(headers)) return Object.fromEntries(new Headers(headers));
  const plain: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) plain[name.toLowerCase()] = String(value);
  return plain;
}

/** The answer, or the signal's reason once it aborts first (as fetch rejects with a TimeoutError). */
function untilAborted<T>(answer: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener('abort', abort, { once: true });
    answer.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(error);
      },
    );
  });
}
