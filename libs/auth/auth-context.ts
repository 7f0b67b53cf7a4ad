/** Who is calling, as established from a validated Keystone token; put on every authenticated request. */
export interface AuthContext {
  token: string;
  userId: string;
  userName: string;
  userDomainId: string;
  projectId?: string;
  projectName?: string;
  projectDomainId?: string;
  domainId?: string;
  /** Role names on the scope, implied roles included (admin ⇒ member ⇒ reader). */
  roles: string[];
  methods: string[];
  auditIds: string[];
  expiresAt: string;
  issuedAt: string;
  applicationCredentialId?: string;
  /** True for an application credential that may not create further credentials or trusts. */
  restricted?: boolean;
}

export const AUTH_CONTEXT_KEY = 'novumAuth';
