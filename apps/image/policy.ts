import { AuthContext, canActOnProject, isAdmin } from '@novum/auth';
import { ImageEntity, MemberStatus } from '@novum/db';

/**
 * Glance's visibility rules: admins see everything; a project sees its own images, public and community
 * images, and shared images it is a member of (whatever the member status).
 */
export function canSeeImage(auth: AuthContext, image: ImageEntity, membership?: MemberStatus): boolean {
  if (isAdmin(auth)) return true;
  if (image.owner && image.owner === auth.projectId) return true;
  if (image.visibility === 'public' || image.visibility === 'community') return true;
  return image.visibility === 'shared' && membership !== undefined;
}

/** Owner members and admins change an image; others only read what they can see. */
export function canModifyImage(auth: AuthContext, image: ImageEntity): boolean {
  return canActOnProject(auth, image.owner);
}

/**
 * Whether an image belongs in a list without a `visibility` filter (Glance's default): own images, public
 * ones, and shared ones whose membership has the requested status. Community images only when asked for.
 */
export function inDefaultList(
  auth: AuthContext,
  image: ImageEntity,
  membership: MemberStatus | undefined,
  memberStatus: MemberStatus | 'all',
): boolean {
  if (isAdmin(auth)) return true;
  if (image.owner && image.owner === auth.projectId) return true;
  if (image.visibility === 'public') return true;
  return (
    image.visibility === 'shared' &&
    membership !== undefined &&
    (memberStatus === 'all' || membership === memberStatus)
  );
}
