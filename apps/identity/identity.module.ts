import { DynamicModule, Module } from '@nestjs/common';
import { authProviders, TokenValidator } from '@novum/auth';
import { NOVUM_CONFIG, NovumConfig, publicUrl } from '@novum/common';
import { BusModule } from '@novum/bus';
import { DbModule } from '@novum/db';
import { AssignmentService } from './assignment.service';
import { BootstrapService } from './bootstrap.service';
import { CatalogService } from './catalog.service';
import { AuthController } from './controllers/auth.controller';
import { CatalogController } from './controllers/catalog.controller';
import { GroupsController } from './controllers/groups.controller';
import { GrantsController } from './controllers/grants.controller';
import { DomainsController, ProjectsController } from './controllers/resource.controller';
import { RolesController } from './controllers/roles.controller';
import { UsersController } from './controllers/users.controller';
import { VersionsController } from './controllers/versions.controller';
import { IdentityCache } from './identity-cache';
import { IdentityStore } from './identity.store';
import { IdentityNotifier } from './notifier';
import { ResourceService } from './resource.service';
import { RoleService } from './role.service';
import { IDENTITY_BASE_URL } from './serializers';
import { TokenKeyRing } from './token/token-keys';
import { TokenService } from './token/token.service';
import { UserService } from './user.service';

export function identityPublicUrl(config: NovumConfig): string {
  return publicUrl(config, config.ports.identity, 'identity');
}

/** Keystone v3 subset: tokens, catalog, domains, projects, users, roles, assignments, application credentials. */
@Module({})
export class IdentityModule {
  static forRoot(config: NovumConfig): DynamicModule {
    return {
      module: IdentityModule,
      imports: [DbModule.forRoot(config), BusModule.forRoot({ amqpUrl: config.amqpUrl })],
      controllers: [
        VersionsController,
        AuthController,
        DomainsController,
        ProjectsController,
        GrantsController,
        UsersController,
        GroupsController,
        RolesController,
        CatalogController,
      ],
      providers: [
        { provide: NOVUM_CONFIG, useValue: config },
        { provide: IDENTITY_BASE_URL, useValue: identityPublicUrl(config) },
        IdentityStore,
        IdentityCache,
        TokenKeyRing,
        TokenService,
        AssignmentService,
        CatalogService,
        ResourceService,
        UserService,
        RoleService,
        BootstrapService,
        IdentityNotifier,
        ...authProviders({
          identityPublicUrl: identityPublicUrl(config),
          validator: { provide: TokenValidator, useExisting: TokenService },
        }),
      ],
      exports: [TokenService, BootstrapService],
    };
  }
}
