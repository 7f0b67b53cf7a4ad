import { Injectable } from '@nestjs/common';
import { CatalogEntry, rootLogger } from '@novum/common';
import { INTERFACES, CatalogService } from './catalog.service';
import { IdentityStore } from './identity.store';
import { DEFAULT_DOMAIN_ID, ResourceService } from './resource.service';
import { RoleService } from './role.service';
import { UserService } from './user.service';

export interface BootstrapSpec {
  region: string;
  /** Users to create if missing, each with a project of its own name and roles on it. */
  accounts: { name: string; password: string; project: string; roles: string[] }[];
  /** Catalog entries; each gets public, internal and admin endpoints at `url`. */
  services: CatalogEntry[];
}

/** Default roles, most powerful first: each implies the next. */
export const DEFAULT_ROLES = ['admin', 'member', 'reader'];

/**
 * `keystone-manage bootstrap`: makes the default domain, roles, accounts and catalog exist. Safe to run at
 * every start: it creates what is missing, points endpoints at the configured URLs, and changes nothing else
 * (an operator's later password or role changes stay).
 */
@Injectable()
export class BootstrapService {
  private readonly log = rootLogger().child({ service: 'identity', component: 'bootstrap' });

  constructor(
    private readonly store: IdentityStore,
    private readonly resources: ResourceService,
    private readonly users: UserService,
    private readonly roles: RoleService,
    private readonly catalog: CatalogService,
  ) {}

  /** Returns the project id of each bootstrap account, by project name. */
  async run(spec: BootstrapSpec): Promise<Record<string, string>> {
    if (!(await this.store.domains.existsBy({ id: DEFAULT_DOMAIN_ID }))) {
      await this.resources.createDomain({
        id: DEFAULT_DOMAIN_ID,
        name: 'Default',
        description: 'The default domain',
      });
    }
    const roleIds = new Map<string, string>();
    for (const name of DEFAULT_ROLES) {
      const existing = (await this.roles.listRoles({ name }))[0];
      roleIds.set(name, (existing ?? (await this.roles.createRole({ name }))).id);
    }
    for (let i = 0; i + 1 < DEFAULT_ROLES.length; i++) {
      await this.roles.addImplied(roleIds.get(DEFAULT_ROLES[i])!, roleIds.get(DEFAULT_ROLES[i + 1])!);
    }

    const projects: Record<string, string> = {};
    for (const account of spec.accounts) {
      const project =
        (await this.resources.listProjects({ name: account.project, domain_id: DEFAULT_DOMAIN_ID }))[0] ??
        (await this.resources.createProject({
          name: account.project,
          description: `Bootstrap project ${account.project}`,
        }));
      projects[account.project] = project.id;
      let user = (await this.users.listUsers({ name: account.name, domain_id: DEFAULT_DOMAIN_ID }))[0];
      if (!user) {
        user = await this.users.createUser({
          name: account.name,
          password: account.password,
          default_project_id: project.id,
        });
        this.log.info({ user: account.name }, 'created bootstrap user');
      }
      for (const role of account.roles) {
        const roleId = roleIds.get(role) ?? (await this.roles.listRoles({ name: role }))[0]?.id;
        if (roleId) await this.roles.grant('UserProject', user.id, project.id, roleId);
      }
    }

    if (!(await this.store.regions.existsBy({ id: spec.region })))
      await this.catalog.createRegion({ id: spec.region });
    for (const entry of spec.services) {
      const service =
        (await this.catalog.listServices({ type: entry.type }))[0] ??
        (await this.catalog.createService({
          type: entry.type,
          name: entry.name,
          description: entry.description,
        }));
      for (const iface of INTERFACES) {
        const endpoint = (
          await this.catalog.listEndpoints({
            service_id: service.id,
            interface: iface,
            region_id: spec.region,
          })
        )[0];
        if (!endpoint) {
          await this.catalog.createEndpoint({
            service_id: service.id,
            interface: iface,
            url: entry.url,
            region_id: spec.region,
          });
        } else if (endpoint.url !== entry.url) {
          await this.catalog.updateEndpoint(endpoint.id, { url: entry.url });
        }
      }
    }
    return projects;
  }
}
