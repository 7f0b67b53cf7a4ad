import { Type } from 'class-transformer';
import {
  ArrayNotEmpty,
  Equals,
  IsArray,
  IsBoolean,
  IsDefined,
  IsIn,
  IsObject,
  IsOptional,
  IsString,
  MaxLength,
  MinLength,
  ValidateIf,
  ValidateNested,
} from 'class-validator';

export class NamedRef {
  @IsOptional() @IsString() @MinLength(1) @MaxLength(255) id?: string;
  @IsOptional() @IsString() @MinLength(1) @MaxLength(255) name?: string;
}

export class UserRef extends NamedRef {
  @IsOptional() @IsObject() @ValidateNested() @Type(() => NamedRef) domain?: NamedRef;
}

export class PasswordUser extends UserRef {
  @IsDefined() @IsString() @MaxLength(4096) password: string;
}

export class PasswordMethod {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => PasswordUser) user: PasswordUser;
}

export class TokenMethod {
  @IsDefined() @IsString() @MinLength(1) id: string;
}

export class ApplicationCredentialMethod extends NamedRef {
  @IsDefined() @IsString() @MaxLength(4096) secret: string;
  @IsOptional() @IsObject() @ValidateNested() @Type(() => UserRef) user?: UserRef;
}

export const SUPPORTED_METHODS = ['password', 'token', 'application_credential'] as const;

export class Identity {
  @IsArray() @ArrayNotEmpty() @IsIn(SUPPORTED_METHODS, { each: true }) methods: string[];
  @IsOptional() @IsObject() @ValidateNested() @Type(() => PasswordMethod) password?: PasswordMethod;
  @IsOptional() @IsObject() @ValidateNested() @Type(() => TokenMethod) token?: TokenMethod;
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => ApplicationCredentialMethod)
  application_credential?: ApplicationCredentialMethod;
}

export class ProjectScope extends NamedRef {
  @IsOptional() @IsObject() @ValidateNested() @Type(() => NamedRef) domain?: NamedRef;
}

export class SystemScope {
  @Equals(true) @IsBoolean() all: boolean;
}

export class Scope {
  @IsOptional() @IsObject() @ValidateNested() @Type(() => ProjectScope) project?: ProjectScope;
  @IsOptional() @IsObject() @ValidateNested() @Type(() => NamedRef) domain?: NamedRef;
  @IsOptional() @IsObject() @ValidateNested() @Type(() => SystemScope) system?: SystemScope;
}

/** Keystone's explicit request for an unscoped token (keystoneauth's `unscoped=True`, which Horizon logs in with). */
export const UNSCOPED = 'unscoped';

export class Auth {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => Identity) identity: Identity;
  @IsOptional()
  @ValidateIf((_, scope) => scope !== UNSCOPED)
  @IsObject()
  @ValidateNested()
  @Type(() => Scope)
  scope?: Scope | typeof UNSCOPED;
}

export class AuthRequest {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => Auth) auth: Auth;
}
