/** Minimal Keystone HTTP helpers for tests that speak the API directly. */
export interface Credentials {
  user: string;
  password: string;
  project?: string;
}

export async function issueToken(identityUrl: string, c: Credentials): Promise<{ token: string; body: any }> {
  const response = await fetch(`${identityUrl}/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: c.user, domain: { id: 'default' }, password: c.password } },
        },
        ...(c.project ? { scope: { project: { name: c.project, domain: { id: 'default' } } } } : {}),
      },
    }),
  });
  if (response.status !== 201)
    throw new Error(`token issue for ${c.user} answered ${response.status}: ${await response.text()}`);
  return { token: response.headers.get('x-subject-token')!, body: await response.json() };
}

export async function api(
  identityUrl: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers['x-auth-token'] = options.token;
  let payload: string | undefined = options.raw;
  if (options.body !== undefined) payload = JSON.stringify(options.body);
  if (payload !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
  const response = await fetch(`${identityUrl}${path}`, { method, headers, body: payload });
  const text = await response.text();
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON; tests assert on it as text
  }
  return { status: response.status, body, headers: response.headers };
}
