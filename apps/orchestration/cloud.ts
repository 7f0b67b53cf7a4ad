import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  apiFetch,
  authEncryptionKey,
  identityUrlFor,
  NOVUM_CONFIG,
  NovumConfig,
  rootLogger,
} from '@novum/common';

const TIMEOUT_MS = 30_000;

/** A refusal from Nova, Neutron, Glance or Keystone, with its status and the service's own message. */
export class CloudError extends Error {
  override name = 'CloudError';
  constructor(
    readonly status: number,
    message: string,
    readonly service: string,
  ) {
    super(message);
  }
}

/**
 * How the engine acts for a stack's owner: an application credential made at stack create (so later
 * operations work after the user's token expired), or the user's token when Keystone refused one
 * (a restricted application-credential token cannot make another).
 */
export type StackCredential =
  | { kind: 'application_credential'; id: string; secret: string; userId: string }
  | { kind: 'token'; token: string };

/** A StackCredential as the database keeps it: AES-256-GCM under the auth encryption key, never in clear. */
export interface SealedCredential {
  sealed: string;
}

/**
 * Seals and opens stack credentials (Heat's `heat.common.crypt` with `auth_encryption_key`): whoever reads
 * the database alone gets no secret; every orchestration process of a cloud needs the same key.
 */
export class CredentialSeal {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = createHash('sha256').update(secret).digest();
  }

  seal(credential: StackCredential): SealedCredential {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const data = Buffer.concat([cipher.update(JSON.stringify(credential), 'utf8'), cipher.final()]);
    return {
      sealed: ['v1', ...[iv, cipher.getAuthTag(), data].map((part) => part.toString('base64'))].join('.'),
    };
  }

  open(stored: unknown): StackCredential {
    const sealed = (stored as Partial<SealedCredential> | null)?.sealed;
    const parts = typeof sealed === 'string' ? sealed.split('.') : [];
    if (parts.length !== 4 || parts[0] !== 'v1') {
      throw new Error('The stack keeps no sealed credential.');
    }
    const [iv, tag, data] = parts.slice(1).map((part) => Buffer.from(part, 'base64'));
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
    decipher.setAuthTag(tag);
    try {
      return JSON.parse(Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8'));
    } catch {
      throw new Error("The stack's credential does not open with this auth encryption key.");
    }
  }
}

interface CatalogEndpoint {
  interface: string;
  url: string;
}
interface CatalogService {
  type: string;
  endpoints: CatalogEndpoint[];
}

/** One authenticated session against the cloud's APIs, with the endpoints from the token's catalog. */
export class CloudSession {
  constructor(
    readonly token: string,
    private readonly catalog: CatalogService[],
    readonly projectId: string,
  ) {}

  endpoint(type: string): string {
    const service = this.catalog.find((s) => s.type === type);
    const url = service?.endpoints.find((e) => e.interface === 'public')?.url ?? service?.endpoints[0]?.url;
    if (!url) throw new CloudError(503, `No ${type} endpoint in the service catalog.`, type);
    return url.replace(/\/$/, '');
  }

  async request<T>(
    type: string,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const url = `${this.endpoint(type)}${path}`;
    let response: Response;
    try {
      response = await apiFetch(url, {
        method,
        headers: {
          'x-auth-token': this.token,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch {
      throw new CloudError(503, `The ${type} service is not available.`, type);
    }
    const text = await response.text();
    if (!response.ok)
      throw new CloudError(
        response.status,
        faultMessage(text) ?? `${type} answered ${response.status}`,
        type,
      );
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

/** The message of an OpenStack fault body, whichever service's shape it has. */
export function faultMessage(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    if (typeof body.message === 'string') return body.message;
    for (const value of Object.values(body)) {
      if (value && typeof value === 'object' && 'message' in value) {
        return String((value as { message: unknown }).message);
      }
    }
  } catch {
    // not JSON
  }
  return undefined;
}

/** Keystone as the orchestration service uses it: application credentials and tokens for stacks. */
@Injectable()
export class IdentityClient {
  private readonly log = rootLogger().child({ service: 'orchestration', component: 'identity' });
  private readonly url: string;
  private readonly sessions = new Map<string, { session: CloudSession; expiresAt: number }>();
  /** Authentications under way, per stack: resources started side by side share one (Keystone hashes the secret). */
  private readonly authenticating = new Map<string, Promise<{ session: CloudSession; expiresAt: number }>>();

  readonly credentials: CredentialSeal;

  constructor(@Inject(NOVUM_CONFIG) config: NovumConfig) {
    this.url = identityUrlFor(config);
    this.credentials = new CredentialSeal(authEncryptionKey(config));
  }

  /** Makes the credential a new stack keeps: an application credential of the user, else their token. */
  async credentialFor(user: { userId: string; token: string }, stackId: string): Promise<StackCredential> {
    try {
      const body = await this.call<{ application_credential: { id: string; secret: string } }>(
        'POST',
        `/v3/users/${encodeURIComponent(user.userId)}/application_credentials`,
        user.token,
        {
          application_credential: {
            name: `heat-stack-${stackId}`,
            description: `Orchestration acts for stack ${stackId} with this credential`,
          },
        },
      );
      return {
        kind: 'application_credential',
        id: body.application_credential.id,
        secret: body.application_credential.secret,
        userId: user.userId,
      };
    } catch (error) {
      this.log.warn(
        { err: error, stack: stackId },
        'no application credential for the stack; keeping the token',
      );
      return { kind: 'token', token: user.token };
    }
  }

  /** Removes a stack's application credential (with the deleting user's token; best effort). */
  async forget(credential: StackCredential, token: string): Promise<void> {
    if (credential.kind !== 'application_credential') return;
    await this.call(
      'DELETE',
      `/v3/users/${encodeURIComponent(credential.userId)}/application_credentials/${encodeURIComponent(credential.id)}`,
      token,
    ).catch((error) => this.log.warn({ err: error }, 'could not delete the stack application credential'));
  }

  /** A session for the stack's owner (cached until shortly before its token expires; one authentication at a time). */
  async session(stackId: string, credential: StackCredential): Promise<CloudSession> {
    const cached = this.sessions.get(stackId);
    if (cached && cached.expiresAt > Date.now() + 60_000) return cached.session;
    let pending = this.authenticating.get(stackId);
    if (!pending) {
      pending = this.authenticate(credential);
      this.authenticating.set(stackId, pending);
    }
    try {
      const fresh = await pending;
      // The first caller to resume keeps it, unless dropSession came in between.
      if (this.authenticating.get(stackId) === pending) this.sessions.set(stackId, fresh);
      return fresh.session;
    } finally {
      if (this.authenticating.get(stackId) === pending) this.authenticating.delete(stackId);
    }
  }

  /** A new token (and its catalog) for the credential. */
  async authenticate(credential: StackCredential): Promise<{ session: CloudSession; expiresAt: number }> {
    const auth =
      credential.kind === 'application_credential'
        ? {
            identity: {
              methods: ['application_credential'],
              application_credential: { id: credential.id, secret: credential.secret },
            },
          }
        : { identity: { methods: ['token'], token: { id: credential.token } } };
    let response: Response;
    try {
      response = await apiFetch(`${this.url}/v3/auth/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ auth }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch {
      throw new CloudError(503, 'The identity service is not available.', 'identity');
    }
    const text = await response.text();
    if (!response.ok)
      throw new CloudError(response.status, faultMessage(text) ?? 'authentication failed', 'identity');
    const body = JSON.parse(text) as {
      token: { expires_at: string; catalog?: CatalogService[]; project?: { id: string } };
    };
    const session = new CloudSession(
      response.headers.get('x-subject-token') ?? '',
      body.token.catalog ?? [],
      body.token.project?.id ?? '',
    );
    return { session, expiresAt: Date.parse(body.token.expires_at) };
  }

  dropSession(stackId: string): void {
    this.sessions.delete(stackId);
    this.authenticating.delete(stackId);
  }

  private async call<T>(method: string, path: string, token: string, body?: unknown): Promise<T> {
    const response = await apiFetch(`${this.url}${path}`, {
      method,
      headers: {
        'x-auth-token': token,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const text = await response.text();
    if (!response.ok)
      throw new CloudError(
        response.status,
        faultMessage(text) ?? `identity answered ${response.status}`,
        'identity',
      );
    return (text ? JSON.parse(text) : undefined) as T;
  }
}
