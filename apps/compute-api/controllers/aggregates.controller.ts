import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put } from '@nestjs/common';
import { Auth, AuthContext } from '@novum/auth';
import { BadRequestError } from '@novum/common';
import { AggregateService } from '../aggregate.service';
import { aggregateView } from '../admin-views';
import { ApiVersion, Microversion } from '../microversion';
import { adminOnly } from '../policy';

const RULE = 'os_compute_api:os-aggregates';
/** Nova's `name` format: printable, no leading or trailing whitespace. */
const NAME = /^(?!\s)[^\u0000-\u001f\u007f]*(?<!\s)$/;
const HOST = /^[a-zA-Z0-9-._]*$/;
const METADATA_KEY = /^[a-zA-Z0-9-_:. ]{1,255}$/;

type Json = Record<string, unknown>;

function fail(field: string, value: unknown, why: string): never {
  throw new BadRequestError(
    `Invalid input for field/attribute ${field}. Value: ${JSON.stringify(value)}. ${why}`,
  );
}

function object(value: unknown, field: string, keys: string[], required: string[]): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(field, value, `${JSON.stringify(value)} is not of type 'object'`);
  }
  const o = value as Json;
  const extra = Object.keys(o).filter((k) => !keys.includes(k));
  if (extra.length) {
    fail(
      field,
      value,
      `Additional properties are not allowed (${extra.map((k) => `'${k}'`).join(', ')} ${extra.length > 1 ? 'were' : 'was'} unexpected)`,
    );
  }
  for (const key of required) if (!(key in o)) fail(field, value, `'${key}' is a required property`);
  return o;
}

function text(value: unknown, field: string, pattern: RegExp, what: string): string {
  if (typeof value !== 'string') fail(field, value, `${JSON.stringify(value)} is not of type 'string'`);
  const s = value as string;
  if (s.length < 1 || s.length > 255) fail(field, value, 'must be 1 to 255 characters long');
  if (!pattern.test(s)) fail(field, value, what);
  return s;
}

/** Nova's `az_name`: a name without ':' (null allowed). */
function zone(value: unknown, field: string): string | null {
  if (value === null) return null;
  const z = text(value, field, NAME, 'must not have leading or trailing whitespace');
  if (z.includes(':')) fail(field, value, 'availability zone names must not contain ":"');
  return z;
}

/** The body schemas of Nova's create and update. */
export function parseCreate(body: unknown): { name: string; availability_zone?: string | null } {
  const root = object(body, 'aggregate', ['aggregate'], ['aggregate']);
  const a = object(root.aggregate, 'aggregate', ['name', 'availability_zone'], ['name']);
  return {
    name: text(a.name, 'name', NAME, 'must not have leading or trailing whitespace'),
    ...('availability_zone' in a
      ? { availability_zone: zone(a.availability_zone, 'availability_zone') }
      : {}),
  };
}

export function parseUpdate(body: unknown): { name?: string; availability_zone?: string | null } {
  const root = object(body, 'aggregate', ['aggregate'], ['aggregate']);
  const a = object(root.aggregate, 'aggregate', ['name', 'availability_zone'], []);
  if (!('name' in a) && !('availability_zone' in a)) {
    fail('aggregate', a, `${JSON.stringify(a)} is not valid under any of the given schemas`);
  }
  const changes: { name?: string; availability_zone?: string | null } = {};
  // Nova's update accepts names with surrounding spaces and strips them (normalize_name).
  if ('name' in a)
    changes.name = text(a.name, 'name', /^[^\u0000-\u001f\u007f]*$/, 'must be printable').trim();
  if ('availability_zone' in a) changes.availability_zone = zone(a.availability_zone, 'availability_zone');
  return changes;
}

export function parseMetadata(value: unknown): Record<string, string | null> {
  const body = object(value, 'set_metadata', ['metadata'], ['metadata']);
  const metadata = body.metadata;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    fail('metadata', metadata, `${JSON.stringify(metadata)} is not of type 'object'`);
  }
  const result: Record<string, string | null> = {};
  for (const [key, item] of Object.entries(metadata as Json)) {
    if (!METADATA_KEY.test(key))
      fail('metadata', metadata, `Additional properties are not allowed ('${key}' was unexpected)`);
    if (item !== null && typeof item !== 'string')
      fail(`metadata/${key}`, item, `${JSON.stringify(item)} is not of type 'string', 'null'`);
    if (typeof item === 'string' && item.length > 255) fail(`metadata/${key}`, item, 'is too long');
    result[key] = item as string | null;
  }
  return result;
}

/** Nova's host aggregates API (admin), `uuid` from 2.41. */
@Controller('v2.1/os-aggregates')
export class AggregatesController {
  constructor(private readonly aggregates: AggregateService) {}

  @Get()
  async list(@Auth() auth: AuthContext, @Microversion() v: ApiVersion) {
    adminOnly(auth, `${RULE}:index`);
    return { aggregates: (await this.aggregates.list()).map((a) => aggregateView(a, v)) };
  }

  @Post()
  @HttpCode(200)
  async create(@Auth() auth: AuthContext, @Body() body: unknown, @Microversion() v: ApiVersion) {
    adminOnly(auth, `${RULE}:create`);
    const { name, availability_zone } = parseCreate(body);
    return { aggregate: aggregateView(await this.aggregates.create(name, availability_zone), v, true) };
  }

  @Get(':id')
  async show(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    adminOnly(auth, `${RULE}:show`);
    return { aggregate: aggregateView(await this.aggregates.get(id), v) };
  }

  @Put(':id')
  async update(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Body() body: unknown,
    @Microversion() v: ApiVersion,
  ) {
    adminOnly(auth, `${RULE}:update`);
    return { aggregate: aggregateView(await this.aggregates.update(id, parseUpdate(body)), v) };
  }

  @Delete(':id')
  @HttpCode(200)
  async remove(@Auth() auth: AuthContext, @Param('id') id: string) {
    adminOnly(auth, `${RULE}:delete`);
    await this.aggregates.delete(id);
  }

  @Post(':id/action')
  @HttpCode(200)
  async action(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Body() body: unknown,
    @Microversion() v: ApiVersion,
  ) {
    if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).length !== 1) {
      throw new BadRequestError('Malformed request body');
    }
    const [name, args] = Object.entries(body as Json)[0];
    if (name === 'add_host' || name === 'remove_host') {
      adminOnly(auth, `${RULE}:${name}`);
      const host = text(
        object(args, name, ['host'], ['host']).host,
        'host',
        HOST,
        'does not match the host pattern',
      );
      const view =
        name === 'add_host'
          ? await this.aggregates.addHost(id, host)
          : await this.aggregates.removeHost(id, host);
      return { aggregate: aggregateView(view, v) };
    }
    if (name === 'set_metadata') {
      adminOnly(auth, `${RULE}:set_metadata`);
      return { aggregate: aggregateView(await this.aggregates.setMetadata(id, parseMetadata(args)), v) };
    }
    throw new BadRequestError(`There is no such action: ${name}`);
  }
}
