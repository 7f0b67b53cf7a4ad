import { AuthContext, isAdmin } from '@novum/auth';
import { ForbiddenError } from '@novum/common';

/** Nova's policy refusal: `Policy doesn't allow <rule> to be performed.` */
export function allow(rule: string, ...rules: boolean[]): void {
  if (!rules.some(Boolean)) throw new ForbiddenError(`Policy doesn't allow ${rule} to be performed.`);
}

/** Nova's ADMIN rule. */
export function adminOnly(auth: AuthContext, rule: string): void {
  allow(rule, isAdmin(auth));
}
