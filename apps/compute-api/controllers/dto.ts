import { Type } from 'class-transformer';
import {
  Allow,
  IsIn,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Matches,
  ValidateBy,
  ValidateIf,
  ValidateNested,
  ValidationOptions,
} from 'class-validator';

const MAX_INT = 2147483647;

/** An optional property that, when present, must be valid: unlike IsOptional, null is not a pass. */
export function Absent() {
  return ValidateIf((_object, value) => value !== undefined);
}

/** Nova's `flavor_param_*` and quota values: an integer, or a string holding one, within a range. */
export function IsNovaInt(min: number, max = MAX_INT, options?: ValidationOptions) {
  return ValidateBy(
    {
      name: 'isNovaInt',
      validator: {
        validate: (value: unknown) => {
          const n = toNovaInt(value);
          return n !== undefined && n >= min && n <= max;
        },
        defaultMessage: () => `must be an integer from ${min} to ${max}`,
      },
    },
    options,
  );
}

export function toNovaInt(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^\s*[-+]?\d+\s*$/.test(value)) return Number(value);
  return undefined;
}

const TRUE_WORDS = ['true', 't', 'yes', 'y', 'on', '1'];
const FALSE_WORDS = ['false', 'f', 'no', 'n', 'off', '0'];

/** Nova's `parameter_types.boolean`: a JSON boolean or one of oslo's boolean words. */
export function IsNovaBoolean(options?: ValidationOptions) {
  return ValidateBy(
    {
      name: 'isNovaBoolean',
      validator: {
        validate: (value: unknown) => toNovaBoolean(value) !== undefined,
        defaultMessage: () => 'must be a boolean',
      },
    },
    options,
  );
}

export function toNovaBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    if (TRUE_WORDS.includes(value.toLowerCase())) return true;
    if (FALSE_WORDS.includes(value.toLowerCase())) return false;
  }
  return undefined;
}

/** JSON schema's `additionalProperties: false`: only the listed keys may appear. */
export function OnlyKeys(keys: string[], options?: ValidationOptions) {
  return ValidateBy(
    {
      name: 'onlyKeys',
      validator: {
        validate: (value: unknown) =>
          typeof value === 'object' &&
          value !== null &&
          !Array.isArray(value) &&
          Object.keys(value).every((key) => keys.includes(key)),
        defaultMessage: (args) => {
          const value = (args?.value ?? {}) as Record<string, unknown>;
          const extra = typeof value === 'object' ? Object.keys(value).filter((k) => !keys.includes(k)) : [];
          return extra.length
            ? `Additional properties are not allowed (${extra.map((k) => `'${k}'`).join(', ')} unexpected)`
            : 'must be an object';
        },
      },
    },
    options,
  );
}

/** A number greater than 0 (Nova's rxtx_factor). */
export function IsPositiveNumber(options?: ValidationOptions) {
  return ValidateBy(
    {
      name: 'isPositiveNumber',
      validator: {
        validate: (value: unknown) => {
          const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
          return typeof n === 'number' && Number.isFinite(n) && n > 0 && n <= 3.40282e38;
        },
        defaultMessage: () => 'must be a number greater than 0',
      },
    },
    options,
  );
}

/** Nova's flavor name and id rules: printable, no leading or trailing whitespace. */
const NAME = /^(?!\s)[^\u0000-\u001f\u007f]*(?<!\s)$/;
const FLAVOR_ID = /^(?! )[a-zA-Z0-9. _-]+(?<! )$/;

/** Nova's flavor id: a string (or a number, kept as its text) of safe characters, 1-255 long. */
export function IsFlavorId(options?: ValidationOptions) {
  return ValidateBy(
    {
      name: 'isFlavorId',
      validator: {
        validate: (value: unknown) =>
          (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) &&
          String(value).length <= 255 &&
          FLAVOR_ID.test(String(value)),
        defaultMessage: () => 'must be 1-255 letters, digits, spaces, periods, dashes or underscores',
      },
    },
    options,
  );
}

export const FLAVOR_KEYS = [
  'name',
  'id',
  'ram',
  'vcpus',
  'disk',
  'OS-FLV-EXT-DATA:ephemeral',
  'swap',
  'rxtx_factor',
  'os-flavor-access:is_public',
  'description',
];

export class FlavorCreate {
  @IsString()
  @Length(1, 255)
  @Matches(NAME, { message: 'must not have leading or trailing whitespace' })
  name: string;
  @IsOptional() @IsFlavorId() id?: string | number | null;
  @IsNovaInt(1) ram: number | string;
  @IsNovaInt(1) vcpus: number | string;
  @IsNovaInt(0) disk: number | string;
  @Absent() @IsNovaInt(0) 'OS-FLV-EXT-DATA:ephemeral'?: number | string;
  @Absent() @IsNovaInt(0) swap?: number | string;
  @Absent() @IsPositiveNumber() rxtx_factor?: number | string;
  @Absent() @IsNovaBoolean() 'os-flavor-access:is_public'?: boolean | string;
  @IsOptional() @IsString() @Length(0, 65535) description?: string | null;
}

export class CreateFlavorBody {
  @OnlyKeys(FLAVOR_KEYS) @ValidateNested() @Type(() => FlavorCreate) flavor: FlavorCreate;
}

export class FlavorUpdate {
  @IsOptional() @IsString() @Length(0, 65535) description: string | null;
}

export class UpdateFlavorBody {
  @OnlyKeys(['description']) @ValidateNested() @Type(() => FlavorUpdate) flavor: FlavorUpdate;
}

export class ExtraSpecsBody {
  @IsObject() extra_specs: Record<string, unknown>;
}

export class FlavorAccessTarget {
  @IsString() @Length(1, 255) tenant: string;
}

export class FlavorActionBody {
  @Absent()
  @OnlyKeys(['tenant'])
  @ValidateNested()
  @Type(() => FlavorAccessTarget)
  addTenantAccess?: FlavorAccessTarget;
  @Absent()
  @OnlyKeys(['tenant'])
  @ValidateNested()
  @Type(() => FlavorAccessTarget)
  removeTenantAccess?: FlavorAccessTarget;
}

export class KeyPairCreate {
  @IsString() @Length(1, 255) name: string;
  @Absent() @IsString() public_key?: string;
  @Absent() @IsIn(['ssh', 'x509']) type?: string;
  @Absent() @IsString() @Length(1, 255) user_id?: string;
}

export class CreateKeyPairBody {
  @OnlyKeys(['name', 'public_key', 'type', 'user_id'])
  @ValidateNested()
  @Type(() => KeyPairCreate)
  keypair: KeyPairCreate;
}

export class QuotaSetBody {
  @IsObject() quota_set: Record<string, unknown>;
}

export class QuotaClassSetBody {
  @IsObject() quota_class_set: Record<string, unknown>;
}

export class ServerGroupCreate {
  @IsString()
  @Length(1, 255)
  @Matches(NAME, { message: 'must not have leading or trailing whitespace' })
  name: string;
  @Absent() @Allow() policies?: unknown;
  @Absent() @IsString() policy?: string;
  @Absent() @IsObject() rules?: Record<string, unknown>;
}

export class CreateServerGroupBody {
  @OnlyKeys(['name', 'policies', 'policy', 'rules'])
  @ValidateNested()
  @Type(() => ServerGroupCreate)
  server_group: ServerGroupCreate;
}
