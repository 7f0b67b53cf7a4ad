import { AuthContext } from '@novum/auth';
import { checkDraftPolicy, ImageDraft, removeAttribute, setAttribute } from './attributes';

const draft = (): ImageDraft => ({
  name: null,
  visibility: 'shared',
  protected: false,
  os_hidden: false,
  disk_format: null,
  container_format: null,
  min_disk: 0,
  min_ram: 0,
  owner: 'p1',
  tags: [],
  properties: {},
});

const auth = (roles: string[]): AuthContext =>
  ({ userId: 'u', projectId: 'p1', roles }) as unknown as AuthContext;

describe('image attributes', () => {
  it('sets core attributes and custom properties, de-duplicating tags', () => {
    const d = draft();
    setAttribute(d, 'name', 'cirros');
    setAttribute(d, 'disk_format', 'qcow2');
    setAttribute(d, 'min_ram', 512);
    setAttribute(d, 'tags', ['a', 'b', 'a']);
    setAttribute(d, 'hw_disk_bus', 'scsi');
    expect(d).toMatchObject({ name: 'cirros', disk_format: 'qcow2', min_ram: 512, tags: ['a', 'b'] });
    expect(d.properties).toEqual({ hw_disk_bus: 'scsi' });
    removeAttribute(d, 'hw_disk_bus');
    expect(d.properties).toEqual({});
  });

  it.each([
    ['status', 'active', 403, /read-only/],
    ['checksum', 'x', 403, /read-only/],
    ['os_glance_foo', 'x', 403, /reserved/],
    ['deleted', true, 403, /reserved/],
    ['disk_format', 'exe', 400, /disk_format/],
    ['container_format', 'zip', 400, /container_format/],
    ['visibility', 'world', 400, /visibility/],
    ['min_disk', 1.5, 400, /min_disk/],
    ['min_ram', 2 ** 31, 400, /min_ram/],
    ['protected', 'yes', 400, /protected/],
    ['name', 'x'.repeat(256), 400, /name/],
    ['owner', 'x'.repeat(65), 400, /owner/],
    ['tags', 'a', 400, /tags/],
    ['tags', [''], 400, /tags/],
    ['custom', 1, 400, /custom/],
    ['custom', null, 400, /custom/],
    ['__proto__', 'x', 400, /__proto__/],
  ])('refuses %s = %j', (key, value, status, message) => {
    expect(() => setAttribute(draft(), key, value)).toThrow(
      expect.objectContaining({ status, message: expect.stringMatching(message) }),
    );
  });

  it('limits custom properties and tags to 128 (413)', () => {
    const d = draft();
    for (let i = 0; i < 128; i++) setAttribute(d, `p${i}`, 'x');
    expect(() => setAttribute(d, 'one-more', 'x')).toThrow(expect.objectContaining({ status: 413 }));
    setAttribute(d, 'p0', 'changed');
    const tags = Array.from({ length: 129 }, (_, i) => `t${i}`);
    expect(() => setAttribute(d, 'tags', tags)).toThrow(expect.objectContaining({ status: 413 }));
  });

  it('removes only custom properties that exist', () => {
    expect(() => removeAttribute(draft(), 'name')).toThrow(expect.objectContaining({ status: 403 }));
    expect(() => removeAttribute(draft(), 'missing')).toThrow(expect.objectContaining({ status: 409 }));
    expect(() => removeAttribute(draft(), 'constructor')).toThrow(expect.objectContaining({ status: 409 }));
  });

  it('lets only admins publish or give an image away', () => {
    const pub = { ...draft(), visibility: 'public' as const };
    expect(() => checkDraftPolicy(auth(['member', 'reader']), pub)).toThrow(
      expect.objectContaining({ status: 403 }),
    );
    expect(() => checkDraftPolicy(auth(['admin', 'member']), pub)).not.toThrow();
    // already public: other changes by an admin-published image's owner are fine
    expect(() => checkDraftPolicy(auth(['member']), pub, pub)).not.toThrow();
    const given = { ...draft(), owner: 'p2' };
    expect(() => checkDraftPolicy(auth(['member']), given)).toThrow(expect.objectContaining({ status: 403 }));
    expect(() => checkDraftPolicy(auth(['admin']), given)).not.toThrow();
  });
});
