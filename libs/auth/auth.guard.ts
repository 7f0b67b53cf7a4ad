import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { UnauthorizedError } from '@novum/common';
import { AUTH_CONTEXT_KEY } from './auth-context';
import { PUBLIC_ROUTE } from './policy';
import { TokenValidator } from './token-validator';

export const WWW_AUTHENTICATE_URI = Symbol('WWW_AUTHENTICATE_URI');

/** Every route needs a valid X-Auth-Token unless marked @Public(); 401 tells the client where Keystone is. */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly validator: TokenValidator,
    @Inject(WWW_AUTHENTICATE_URI) private readonly identityUri: string,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const isPublic = this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (isPublic) return true;
    const request = context.switchToHttp().getRequest();
    const token = request.headers['x-auth-token'];
    const challenge = { 'WWW-Authenticate': `Keystone uri="${this.identityUri}"` };
    if (typeof token !== 'string' || token.length === 0) throw new UnauthorizedError(undefined, challenge);
    try {
      request[AUTH_CONTEXT_KEY] = await this.validator.validate(token);
    } catch (error) {
      if (error instanceof UnauthorizedError) throw new UnauthorizedError(error.message, challenge);
      throw error;
    }
    return true;
  }
}
