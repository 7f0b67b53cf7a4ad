import { apiFetch } from '@novum/common';

/** The answer of another service's API that is not a success. */
export class ServiceCallError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'ServiceCallError';
  }
}

export interface ServiceClient {
  /** JSON in, JSON out, with the service user's token; rejects with ServiceCallError on a non-2xx answer. */
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
}

/** A token is renewed this long before it expires, so that no call (or upload) starts with a dying one. */
const RENEW_BEFORE_MS = 5 * 60_000;

interface CatalogService {
  type: string;
  endpoints: { interface: string; url: string }[];
}

/** Who the agent is to the other services (Nova's [service_user] / [glance] keystoneauth options). */
export interface ServiceCredential {
  /** Keystone, e.g. `http://127.0.0.1:5000/identity`. */
  identityUrl: string;
  username: string;
  password: string;
  projectName: string;
  domainId: string;
}

/** The service user's token and one service's endpoint (no trailing slash). */
export interface ServiceToken {
  token: string;
  url: string;
}

/**
 * The compute service user's session with one service of the catalog, as Nova's keystoneauth sessions are:
 * a project-scoped token kept until near its expiry (dropped by `invalidate` after a 401), the endpoint from
 * the token's catalog (internal, else public).
 */
export function serviceSession(
  credential: ServiceCredential,
  serviceType: string,
  fetchImpl: typeof fetch = apiFetch,
): { current(): Promise<ServiceToken>; invalidate(): void } {
  let session: (ServiceToken & { expiresAt: number }) | undefined;

  async function authenticate() {
    const response = await fetchImpl(`${credential.identityUrl.replace(/\/$/, '')}/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ['password'],
            password: {
              user: {
                name: credential.username,
                domain: { id: credential.domainId },
                password: credential.password,
              },
            },
          },
          scope: { project: { name: credential.projectName, domain: { id: credential.domainId } } },
        },
      }),
    });
    const token = response.headers.get('x-subject-token');
    if (!response.ok || !token) {
      throw new ServiceCallError(
        `The identity service refused the compute service user (${response.status}).`,
        response.status,
      );
    }
    const body = (await response.json()) as { token: { expires_at: string; catalog?: CatalogService[] } };
    const service = body.token.catalog?.find((entry) => entry.type === serviceType);
    const endpoint =
      service?.endpoints.find((e) => e.interface === 'internal') ??
      service?.endpoints.find((e) => e.interface === 'public');
    if (!endpoint) throw new ServiceCallError(`The service catalog has no ${serviceType} endpoint.`, 500);
    return { token, expiresAt: Date.parse(body.token.expires_at), url: endpoint.url.replace(/\/$/, '') };
  }

  return {
    async current() {
      if (!session || session.expiresAt - Date.now() < RENEW_BEFORE_MS) session = await authenticate();
      return { token: session.token, url: session.url };
    },
    invalidate() {
      session = undefined;
    },
  };
}

/** A JSON client of one service of the catalog (`network`, ...) as the compute service user. */
export function serviceClient(
  credential: ServiceCredential,
  serviceType: string,
  fetchImpl: typeof fetch = apiFetch,
): ServiceClient {
  const session = serviceSession(credential, serviceType, fetchImpl);
  return {
    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      const { token, url } = await session.current();
      const response = await fetchImpl(`${url}${path}`, {
        method,
        headers: {
          'x-auth-token': token,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (response.status === 401) session.invalidate();
      if (!response.ok) {
        const detail = (await response.text().catch(() => '')).slice(0, 300);
        throw new ServiceCallError(
          `${method} ${serviceType}${path} answered ${response.status}: ${detail}`,
          response.status,
        );
      }
      return (response.status === 204 ? undefined : await response.json()) as T;
    },
  };
}
