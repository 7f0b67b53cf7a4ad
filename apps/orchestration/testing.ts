import { AuthContext } from '@novum/auth';
import { CredentialSeal, IdentityClient } from './cloud';

/** The caller of the orchestration unit tests: a member of project-1. */
export const memberAuth: AuthContext = {
  token: 'user-token',
  userId: 'user-1',
  userName: 'demo',
  userDomainId: 'default',
  projectId: 'project-1',
  roles: ['member', 'reader'],
  methods: ['password'],
  auditIds: [],
  expiresAt: '',
  issuedAt: '',
};

/** Core resources never reach the cloud in unit tests: the identity client only hands out a token credential. */
export function offlineIdentity(): IdentityClient {
  return {
    credentialFor: async () => ({ kind: 'token', token: 'user-token' }),
    credentials: new CredentialSeal('unit-test-key'),
    forget: async () => undefined,
    session: async () => {
      throw new Error('no cloud in unit tests');
    },
    dropSession: () => undefined,
  } as unknown as IdentityClient;
}
