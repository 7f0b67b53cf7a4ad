import { ServiceUnavailableError, UnauthorizedError } from '@novum/common';
import { AuthContext } from './auth-context';

/**
 * Turns an X-Auth-Token into an AuthContext or throws UnauthorizedError. In the all-in-one cloud the
 * identity service's own implementation is used in-process; a service running apart uses the remote one.
 */
export abstract class TokenValidator {
  abstract validate(token: string): Promise<AuthContext>;
}

interface KeystoneTokenBody {
  token: {
    methods: string[];
    user: { id: string; name: string; domain: { id: string } };
    project?: { id: string; name: string; domain: { id: string } };
    domain?: { id: string };
    roles?: { name: string }[];
    audit_ids: string[];
    expires_at: string;
    issued_at: string;
    application_credential?: { id: string; restricted: boolean };
  };
}

/** Validates through Keystone's `GET /v3/auth/tokens` (the token validates itself), with a short cache. */
export class RemoteTokenValidator extends TokenValidator {
  private readonly cache = new Map<string, { context: AuthContext; until: number }>();

  constructor(
    private readonly identityUrl: string,
    private readonly cacheSeconds: number,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {
    super();
  }

  async validate(token: string): Promise<AuthContext> {
    const now = Date.now();
    const cached = this.cache.get(token);
    if (cached && cached.until > now) return cached.context;
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.identityUrl.replace(/\/$/, '')}/v3/auth/tokens?nocatalog`, {
        headers: { 'x-auth-token': token, 'x-subject-token': token },
      });
    } catch {
      throw new ServiceUnavailableError('The identity service cannot be reached to validate the token.');
    }
    if (response.status === 401 || response.status === 404) {
      this.cache.delete(token);
      throw new UnauthorizedError();
    }
    if (!response.ok) {
      throw new ServiceUnavailableError(
        `The identity service answered ${response.status} to token validation.`,
      );
    }
    const { token: body } = (await response.json()) as KeystoneTokenBody;
    const context: AuthContext = {
      token,
      userId: body.user.id,
      userName: body.user.name,
      userDomainId: body.user.domain.id,
      projectId: body.project?.id,
      projectName: body.project?.name,
      projectDomainId: body.project?.domain.id,
      domainId: body.domain?.id,
      roles: (body.roles ?? []).map((role) => role.name),
      methods: body.methods,
      auditIds: body.audit_ids,
      expiresAt: body.expires_at,
      issuedAt: body.issued_at,
      applicationCredentialId: body.application_credential?.id,
      restricted: body.application_credential?.restricted,
    };
    if (this.cacheSeconds > 0) {
      const expires = Date.parse(body.expires_at);
      this.cache.set(token, { context, until: Math.min(now + this.cacheSeconds * 1000, expires) });
      if (this.cache.size > 10_000) this.cache.delete(this.cache.keys().next().value as string);
    }
    return context;
  }
}
