import { Provider } from '@nestjs/common';
import { identityUrlFor, NovumConfig } from '@novum/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthGuard, WWW_AUTHENTICATE_URI } from './auth.guard';
import { RemoteTokenValidator, TokenValidator } from './token-validator';

export interface AuthOptions {
  /** Keystone's public URL, named in 401 challenges. */
  identityPublicUrl: string;
  /** In-process validator (all-in-one, or identity itself); without it tokens are validated over HTTP. */
  validator?: Provider<TokenValidator>;
  /** Where to validate tokens when there is no in-process validator (defaults to the public URL). */
  identityUrl?: string;
  cacheSeconds?: number;
}

/**
 * Providers an HTTP app's root module includes so that every route is authenticated: the token validator
 * and the global AuthGuard (resolved in the app's own module, where an in-process validator lives).
 */
export function authProviders(options: AuthOptions): Provider[] {
  const validator: Provider = options.validator ?? {
    provide: TokenValidator,
    useFactory: () =>
      new RemoteTokenValidator(options.identityUrl ?? options.identityPublicUrl, options.cacheSeconds ?? 5),
  };
  return [
    validator,
    { provide: WWW_AUTHENTICATE_URI, useValue: options.identityPublicUrl },
    { provide: APP_GUARD, useClass: AuthGuard },
  ];
}

/**
 * authProviders for a service other than identity: the in-process validator the all-in-one hands over,
 * or validation through the identity API (NOVUM_IDENTITY_URL) with the configured cache when it runs alone.
 */
export function serviceAuthProviders(config: NovumConfig, validator?: unknown): Provider[] {
  return authProviders({
    identityPublicUrl: identityUrlFor(config),
    identityUrl: identityUrlFor(config),
    cacheSeconds: config.tokenCacheSeconds,
    validator: validator ? { provide: TokenValidator, useValue: validator as TokenValidator } : undefined,
  });
}
