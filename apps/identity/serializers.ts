import {
  ApplicationCredentialEntity,
  DomainEntity,
  EndpointEntity,
  ProjectEntity,
  RegionEntity,
  RoleEntity,
  ServiceEntity,
  UserEntity,
} from '@novum/db';

export const IDENTITY_BASE_URL = Symbol('IDENTITY_BASE_URL');

/** Keystone's timestamp spelling: microseconds and a Z (`2026-11-28T08:30:00.000000Z`). */
export function keystoneTime(ms: number | string): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 23)}000Z`;
}

/** Builds Keystone's `links` members against the public URL the catalog advertises. */
export class Links {
  constructor(private readonly base: string) {}

  url(path: string): string {
    return `${this.base}/v3/${path}`;
  }
  self(path: string) {
    return { self: this.url(path) };
  }
  collection(path: string) {
    return { self: this.url(path), previous: null, next: null };
  }

  domain(d: DomainEntity) {
    return {
      id: d.id,
      name: d.name,
      description: d.description,
      enabled: d.enabled,
      tags: [],
      options: {},
      links: this.self(`domains/${d.id}`),
    };
  }
  project(p: ProjectEntity) {
    return {
      ...p.extra,
      id: p.id,
      name: p.name,
      domain_id: p.domainId,
      description: p.description,
      enabled: p.enabled,
      parent_id: p.parentId ?? p.domainId,
      is_domain: false,
      tags: p.tags,
      options: {},
      links: this.self(`projects/${p.id}`),
    };
  }
  user(u: UserEntity) {
    return {
      ...u.extra,
      id: u.id,
      name: u.name,
      domain_id: u.domainId,
      enabled: u.enabled,
      ...(u.description ? { description: u.description } : {}),
      ...(u.defaultProjectId ? { default_project_id: u.defaultProjectId } : {}),
      password_expires_at: u.passwordExpiresAt ? keystoneTime(u.passwordExpiresAt) : null,
      options: {},
      links: this.self(`users/${u.id}`),
    };
  }
  role(r: RoleEntity) {
    return {
      id: r.id,
      name: r.name,
      domain_id: r.domainId || null,
      description: r.description || null,
      options: {},
      links: this.self(`roles/${r.id}`),
    };
  }
  region(r: RegionEntity) {
    return {
      id: r.id,
      description: r.description,
      parent_region_id: r.parentRegionId,
      links: this.self(`regions/${r.id}`),
    };
  }
  service(s: ServiceEntity) {
    return {
      id: s.id,
      type: s.type,
      name: s.name,
      description: s.description,
      enabled: s.enabled,
      links: this.self(`services/${s.id}`),
    };
  }
  endpoint(e: EndpointEntity) {
    return {
      id: e.id,
      interface: e.interface,
      region: e.regionId,
      region_id: e.regionId,
      service_id: e.serviceId,
      url: e.url,
      enabled: e.enabled,
      links: this.self(`endpoints/${e.id}`),
    };
  }
  applicationCredential(c: ApplicationCredentialEntity, roles: RoleEntity[], secret?: string) {
    return {
      id: c.id,
      name: c.name,
      description: c.description || null,
      ...(secret !== undefined ? { secret } : {}),
      expires_at: c.expiresAt ? keystoneTime(c.expiresAt) : null,
      project_id: c.projectId,
      user_id: c.userId,
      roles: roles.map((r) => ({ id: r.id, name: r.name, domain_id: r.domainId || null })),
      unrestricted: c.unrestricted,
      access_rules: [],
      links: this.self(`users/${c.userId}/application_credentials/${c.id}`),
    };
  }
}
