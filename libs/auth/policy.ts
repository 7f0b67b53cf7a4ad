import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { ForbiddenError } from '@novum/common';
import { AUTH_CONTEXT_KEY, AuthContext } from './auth-context';

export const PUBLIC_ROUTE = 'novum:public';
/** Marks a route that answers without a token (version documents, token issue). */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);

/** The caller's AuthContext, set by the AuthGuard. */
export const Auth = createParamDecorator((_data: unknown, ctx: ExecutionContext): AuthContext => {
  return ctx.switchToHttp().getRequest()[AUTH_CONTEXT_KEY];
});

export type Role = 'admin' | 'member' | 'reader';

export function hasRole(auth: AuthContext, role: Role): boolean {
  return auth.roles.includes(role);
}

export function isAdmin(auth: AuthContext): boolean {
  return hasRole(auth, 'admin');
}

/** Policy check: passes when any rule holds, else 403 in the service's fault format. */
export function authorize(action: string, ...rules: boolean[]): void {
  if (!rules.some(Boolean)) {
    throw new ForbiddenError(`You are not authorized to perform the requested action: ${action}.`);
  }
}

/** Member of the given project (or admin): may act on that project's resources. */
export function canActOnProject(auth: AuthContext, projectId: string | null | undefined): boolean {
  return isAdmin(auth) || (!!projectId && auth.projectId === projectId && hasRole(auth, 'member'));
}

/** Reader of the given project (or admin): may see that project's resources. */
export function canReadProject(auth: AuthContext, projectId: string | null | undefined): boolean {
  return isAdmin(auth) || (!!projectId && auth.projectId === projectId && hasRole(auth, 'reader'));
}
