import { Type } from 'class-transformer';
import {
  IsArray,
  IsBoolean,
  IsDefined,
  IsIn,
  IsISO8601,
  IsObject,
  IsOptional,
  IsString,
  IsUrl,
  Length,
  MaxLength,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { BadRequestError } from '@novum/common';
import { INTERFACES } from '../catalog.service';

/** Keystone keeps attributes it does not know in `extra`; these are the ones it does. */
export function extraAttributes(input: object, known: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).filter(([key]) => !known.includes(key)));
}

/** Query-string booleans as Keystone reads them. */
export function queryBool(value: unknown, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'true' || value === 'True' || value === '1' || value === '') return true;
  if (value === 'false' || value === 'False' || value === '0') return false;
  throw new BadRequestError(`Invalid value for query parameter '${name}': expected true or false.`);
}

/** A string query parameter, or undefined; repeated parameters are a client error. */
export function queryString(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new BadRequestError(`Query parameter '${name}' may be given once.`);
  return value;
}

export class DomainCreate {
  @IsOptional() @IsString() @Length(1, 64) id?: string;
  @IsString() @Length(1, 64) name: string;
  @IsOptional() @IsString() @MaxLength(65535) description?: string;
  @IsOptional() @IsBoolean() enabled?: boolean;
}
export class DomainUpdate {
  @IsOptional() @IsString() @Length(1, 64) name?: string;
  @IsOptional() @IsString() @MaxLength(65535) description?: string;
  @IsOptional() @IsBoolean() enabled?: boolean;
}
export class DomainCreateBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => DomainCreate) domain: DomainCreate;
}
export class DomainUpdateBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => DomainUpdate) domain: DomainUpdate;
}

export const PROJECT_FIELDS = [
  'name',
  'domain_id',
  'description',
  'enabled',
  'parent_id',
  'tags',
  'is_domain',
  'options',
  'id',
  'links',
];
export class ProjectCreate {
  @IsString() @Length(1, 64) name: string;
  @IsOptional() @IsString() @Length(1, 64) domain_id?: string;
  @IsOptional() @IsString() @MaxLength(65535) description?: string;
  @IsOptional() @IsBoolean() enabled?: boolean;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsString() @Length(1, 64) parent_id?: string | null;
  @IsOptional() @IsArray() @IsString({ each: true }) @Length(1, 255, { each: true }) tags?: string[];
  @IsOptional() @IsIn([false], { message: 'is_domain=true is not supported' }) is_domain?: boolean;
}
export class ProjectUpdate {
  @IsOptional() @IsString() @Length(1, 64) name?: string;
  @IsOptional() @IsString() @MaxLength(65535) description?: string;
  @IsOptional() @IsBoolean() enabled?: boolean;
  @IsOptional() @IsArray() @IsString({ each: true }) @Length(1, 255, { each: true }) tags?: string[];
}
export class ProjectCreateBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => ProjectCreate) project: ProjectCreate;
}
export class ProjectUpdateBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => ProjectUpdate) project: ProjectUpdate;
}

export const USER_FIELDS = [
  'name',
  'domain_id',
  'password',
  'enabled',
  'description',
  'default_project_id',
  'options',
  'id',
  'links',
  'federated',
];
export class UserCreate {
  @IsString() @Length(1, 255) name: string;
  @IsOptional() @IsString() @Length(1, 64) domain_id?: string;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsString() @MaxLength(4096) password?: string | null;
  @IsOptional() @IsBoolean() enabled?: boolean;
  @IsOptional() @IsString() @MaxLength(65535) description?: string;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsString() @Length(1, 64) default_project_id?:
    string | null;
}
export class UserUpdate {
  @IsOptional() @IsString() @Length(1, 255) name?: string;
  @IsOptional() @IsString() @Length(1, 64) domain_id?: string;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsString() @MaxLength(4096) password?: string | null;
  @IsOptional() @IsBoolean() enabled?: boolean;
  @IsOptional() @IsString() @MaxLength(65535) description?: string;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsString() @Length(1, 64) default_project_id?:
    string | null;
}
export class UserCreateBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => UserCreate) user: UserCreate;
}
export class UserUpdateBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => UserUpdate) user: UserUpdate;
}
export class PasswordChange {
  @IsString() @MaxLength(4096) original_password: string;
  @IsString() @Length(1, 4096) password: string;
}
export class PasswordChangeBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => PasswordChange) user: PasswordChange;
}

export class RoleCreate {
  @IsOptional() @IsString() @Length(1, 64) id?: string;
  @IsString() @Length(1, 255) name: string;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsString() @Length(1, 64) domain_id?: string | null;
  @IsOptional() @IsString() @MaxLength(255) description?: string;
}
export class RoleUpdate {
  @IsOptional() @IsString() @Length(1, 255) name?: string;
  @IsOptional() @IsString() @MaxLength(255) description?: string;
}
export class RoleCreateBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => RoleCreate) role: RoleCreate;
}
export class RoleUpdateBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => RoleUpdate) role: RoleUpdate;
}

export class RoleRef {
  @IsOptional() @IsString() @Length(1, 64) id?: string;
  @IsOptional() @IsString() @Length(1, 255) name?: string;
}
export class ApplicationCredentialCreate {
  @IsString() @Length(1, 255) name: string;
  @IsOptional() @IsString() @Length(1, 4096) secret?: string;
  @IsOptional() @IsString() @MaxLength(255) description?: string;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsISO8601() expires_at?: string | null;
  @IsOptional() @IsArray() @ValidateNested({ each: true }) @Type(() => RoleRef) roles?: RoleRef[];
  @IsOptional() @IsBoolean() unrestricted?: boolean;
  @IsOptional()
  @IsArray()
  @MaxLength(0, { each: true, message: 'access rules are not supported' })
  access_rules?: unknown[];
}
export class ApplicationCredentialCreateBody {
  @IsDefined()
  @IsObject()
  @ValidateNested()
  @Type(() => ApplicationCredentialCreate)
  application_credential: ApplicationCredentialCreate;
}

export class RegionCreate {
  @IsOptional() @IsString() @Length(1, 255) id?: string;
  @IsOptional() @IsString() @MaxLength(65535) description?: string;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsString() @Length(1, 255) parent_region_id?:
    string | null;
}
export class RegionUpdate {
  @IsOptional() @IsString() @MaxLength(65535) description?: string;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsString() @Length(1, 255) parent_region_id?:
    string | null;
}
export class RegionCreateBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => RegionCreate) region: RegionCreate;
}
export class RegionUpdateBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => RegionUpdate) region: RegionUpdate;
}

export class ServiceCreate {
  @IsString() @Length(1, 255) type: string;
  @IsOptional() @IsString() @MaxLength(255) name?: string;
  @IsOptional() @IsString() @MaxLength(65535) description?: string;
  @IsOptional() @IsBoolean() enabled?: boolean;
}
export class ServiceUpdate {
  @IsOptional() @IsString() @Length(1, 255) type?: string;
  @IsOptional() @IsString() @MaxLength(255) name?: string;
  @IsOptional() @IsString() @MaxLength(65535) description?: string;
  @IsOptional() @IsBoolean() enabled?: boolean;
}
export class ServiceCreateBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => ServiceCreate) service: ServiceCreate;
}
export class ServiceUpdateBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => ServiceUpdate) service: ServiceUpdate;
}

const URL_OPTIONS = { require_tld: false, require_protocol: true, protocols: ['http', 'https'] };
export class EndpointCreate {
  @IsString() @Length(1, 64) service_id: string;
  @IsIn(INTERFACES) interface: string;
  @IsUrl(URL_OPTIONS) url: string;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsString() @Length(1, 255) region_id?: string | null;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsString() @Length(1, 255) region?: string | null;
  @IsOptional() @IsBoolean() enabled?: boolean;
}
export class EndpointUpdate {
  @IsOptional() @IsString() @Length(1, 64) service_id?: string;
  @IsOptional() @IsIn(INTERFACES) interface?: string;
  @IsOptional() @IsUrl(URL_OPTIONS) url?: string;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsString() @Length(1, 255) region_id?: string | null;
  @IsOptional() @IsBoolean() enabled?: boolean;
}
export class EndpointCreateBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => EndpointCreate) endpoint: EndpointCreate;
}
export class EndpointUpdateBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => EndpointUpdate) endpoint: EndpointUpdate;
}
