import { NovumConfig } from './config';
import { rootLogger } from './logger';
import type { BootstrapContext, CatalogEntry } from './service';
import { SERVICE_USER, servicePassword } from './service-credential';

/** The catalog's three interfaces; each entry's endpoints share its URL, as the identity bootstrap makes them. */
const INTERFACES = ['public', 'internal', 'admin'] as const;

interface Endpoint {
  id: string;
  interface: string;
  region_id: string | null;
  url: string;
}

/**
 * What a service running apart from identity does at each start, in the place of the all-in-one's in-process
 * bootstrap (and of a deployer's `openstack service create` / `endpoint create`): as the service user
 * (NOVUM_SERVICE_PASSWORD, the same on every host), it puts its own entry in the catalog (created when missing,
 * its endpoints pointed at the configured URL, nothing else changed), and reads the bootstrap projects its own
 * first-start data refers to. Identity may start later than the service: connection failures and 5xx answers
 * are retried until `waitMs` has passed.
 */
export async function registerWithIdentity(
  config: NovumConfig,
  identityUrl: string,
  entry: CatalogEntry,
  options: { waitMs?: number; fetchImpl?: typeof fetch } = {},
): Promise<BootstrapContext> {
  const fetchImpl = options.fetchImpl ?? fetch;
  const deadline = Date.now() + (options.waitMs ?? 120_000);
  const base = identityUrl.replace(/\/$/, '');
  const log = rootLogger();

  async function call(method: string, path: string, token?: string, body?: unknown): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      let problem: string;
      try {
        const response = await fetchImpl(`${base}${path}`, {
          method,
          headers: {
            accept: 'application/json',
            ...(token ? { 'x-auth-token': token } : {}),
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        if (response.status < 500) {
          if (!response.ok) {
            const detail = (await response.text().catch(() => '')).slice(0, 300);
            throw new Error(`${method} ${base}${path} answered ${response.status}: ${detail}`);
          }
          return response;
        }
        problem = `answered ${response.status}`;
      } catch (error) {
        if (error instanceof Error && / answered \d{3}: /.test(error.message)) throw error;
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        problem = cause?.code ?? cause?.message ?? (error as Error).message;
      }
      if (Date.now() > deadline)
        throw new Error(`the identity service at ${base} is unreachable: ${problem}`);
      if (attempt % 10 === 0) log.warn({ identity: base, problem }, 'waiting for the identity service');
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  const auth = await call('POST', '/v3/auth/tokens', undefined, {
    auth: {
      identity: {
        methods: ['password'],
        password: {
          user: {
            name: SERVICE_USER.name,
            domain: { id: SERVICE_USER.domainId },
            password: servicePassword(config),
          },
        },
      },
      scope: { project: { name: SERVICE_USER.project, domain: { id: SERVICE_USER.domainId } } },
    },
  });
  const token = auth.headers.get('x-subject-token') ?? '';

  const query = (params: Record<string, string>) => new URLSearchParams(params).toString();
  const { services } = (await (
    await call('GET', `/v3/services?${query({ type: entry.type })}`, token)
  ).json()) as { services: { id: string }[] };
  let serviceId = services[0]?.id;
  if (!serviceId) {
    const created = await call('POST', '/v3/services', token, {
      service: { type: entry.type, name: entry.name, description: entry.description, enabled: true },
    });
    serviceId = ((await created.json()) as { service: { id: string } }).service.id;
  }
  const { endpoints } = (await (
    await call('GET', `/v3/endpoints?${query({ service_id: serviceId })}`, token)
  ).json()) as { endpoints: Endpoint[] };
  for (const face of INTERFACES) {
    const endpoint = endpoints.find((e) => e.interface === face && (e.region_id ?? null) === config.region);
    if (!endpoint) {
      await call('POST', '/v3/endpoints', token, {
        endpoint: {
          service_id: serviceId,
          interface: face,
          region_id: config.region,
          url: entry.url,
          enabled: true,
        },
      });
    } else if (endpoint.url !== entry.url) {
      await call('PATCH', `/v3/endpoints/${endpoint.id}`, token, { endpoint: { url: entry.url } });
    }
  }

  const { projects } = (await (await call('GET', '/v3/projects', token)).json()) as {
    projects: { id: string; name: string }[];
  };
  return { projects: Object.fromEntries(projects.map((project) => [project.name, project.id])) };
}
