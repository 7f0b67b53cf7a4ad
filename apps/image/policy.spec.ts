import { AuthContext } from '@novum/auth';
import { ImageEntity } from '@novum/db';
import { canModifyImage, canSeeImage, inDefaultList } from './policy';

const caller = (projectId: string, roles = ['member', 'reader']) =>
  ({ projectId, roles }) as unknown as AuthContext;
const image = (visibility: ImageEntity['visibility'], owner = 'owner') =>
  ({ visibility, owner }) as ImageEntity;

describe('image policy', () => {
  it('shows private images to their project and admins only', () => {
    expect(canSeeImage(caller('owner'), image('private'))).toBe(true);
    expect(canSeeImage(caller('other'), image('private'))).toBe(false);
    expect(canSeeImage(caller('other', ['admin']), image('private'))).toBe(true);
  });

  it('shows public and community images to everyone, shared ones to members', () => {
    expect(canSeeImage(caller('other'), image('public'))).toBe(true);
    expect(canSeeImage(caller('other'), image('community'))).toBe(true);
    expect(canSeeImage(caller('other'), image('shared'))).toBe(false);
    expect(canSeeImage(caller('other'), image('shared'), 'pending')).toBe(true);
  });

  it('lets only owner members and admins change an image', () => {
    expect(canModifyImage(caller('owner'), image('public'))).toBe(true);
    expect(canModifyImage(caller('owner', ['reader']), image('private'))).toBe(false);
    expect(canModifyImage(caller('other'), image('public'))).toBe(false);
    expect(canModifyImage(caller('other', ['admin']), image('public'))).toBe(true);
  });

  it('lists shared images by member status and community images only on request', () => {
    expect(inDefaultList(caller('other'), image('shared'), 'accepted', 'accepted')).toBe(true);
    expect(inDefaultList(caller('other'), image('shared'), 'pending', 'accepted')).toBe(false);
    expect(inDefaultList(caller('other'), image('shared'), 'pending', 'all')).toBe(true);
    expect(inDefaultList(caller('other'), image('community'), undefined, 'accepted')).toBe(false);
  });
});
