import { AuthContext, authorize, canActOnProject, canReadProject, isAdmin } from '@novum/auth';
import { BadRequestError } from '@novum/common';

/** The project a new resource belongs to: the body's `project_id`/`tenant_id` (admins only), else the caller's. */
export function owningProject(
  auth: AuthContext,
  action: string,
  input: { project_id?: string; tenant_id?: string },
): string {
  if (input.project_id && input.tenant_id && input.project_id !== input.tenant_id) {
    throw new BadRequestError("Invalid input for operation: 'project_id' and 'tenant_id' do not match.");
  }
  const projectId = input.project_id ?? input.tenant_id ?? auth.projectId;
  authorize(action, canActOnProject(auth, projectId));
  return projectId as string;
}

/** Neutron's default read rule: admin, or a reader of the owning project. */
export function canRead(auth: AuthContext, projectId: string): boolean {
  return canReadProject(auth, projectId);
}

/** Neutron's default write rule: admin, or a member of the owning project. */
export function canWrite(auth: AuthContext, projectId: string): boolean {
  return canActOnProject(auth, projectId);
}

/**
 * Attributes only an admin may set (`shared`, `router:external`, `provider:*`, `binding:host_id`, ...). As in
 * Neutron's policy engine, an attribute given its default value on create (`"shared": false`, which Horizon's
 * network form always sends) is not explicitly set, so it needs no rule.
 */
export function adminOnly(
  auth: AuthContext,
  action: string,
  input: object,
  attributes: string[],
  defaults: Record<string, unknown> = {},
): void {
  for (const attribute of attributes) {
    const value = (input as Record<string, unknown>)[attribute];
    if (value === undefined) continue;
    if (attribute in defaults && value === defaults[attribute]) continue;
    authorize(`${action}:${attribute}`, isAdmin(auth));
  }
}

export { isAdmin };
