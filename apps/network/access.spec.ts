import { AuthContext } from '@novum/auth';
import { adminOnly } from './access';

function caller(roles: string[]): AuthContext {
  return {
    token: 't',
    userId: 'u',
    userName: 'demo',
    userDomainId: 'default',
    projectId: 'p',
    roles,
    methods: ['password'],
    auditIds: [],
    expiresAt: '',
    issuedAt: '',
  };
}

describe('adminOnly (Neutron attribute policies)', () => {
  const member = caller(['member', 'reader']);
  const defaults = { shared: false };

  it('lets a member create with an admin-only attribute at its default, as Horizon sends it', () => {
    expect(() => adminOnly(member, 'create_network', { shared: false }, ['shared'], defaults)).not.toThrow();
  });

  it('refuses a member an admin-only attribute set to anything else', () => {
    expect(() => adminOnly(member, 'create_network', { shared: true }, ['shared'], defaults)).toThrow(
      /create_network:shared/,
    );
  });

  it('refuses the default value too where no default is declared (updates)', () => {
    expect(() => adminOnly(member, 'update_network', { shared: false }, ['shared'])).toThrow(
      /update_network:shared/,
    );
  });

  it('lets an admin set it', () => {
    expect(() =>
      adminOnly(caller(['admin', 'member', 'reader']), 'create_network', { shared: true }, ['shared']),
    ).not.toThrow();
  });
});
