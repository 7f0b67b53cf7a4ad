import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import { BadRequestError, NotAcceptableError, NotFoundError } from '@novum/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** A Nova API microversion, `2.55`. */
export class ApiVersion {
  constructor(
    readonly major: number,
    readonly minor: number,
  ) {}

  static parse(text: string): ApiVersion {
    const match = /^([1-9]\d*)\.(0|[1-9]\d*)$/.exec(text);
    if (!match) {
      throw new BadRequestError(
        `API Version String ${text} is of invalid format. Must be of format MajorNum.MinorNum.`,
      );
    }
    return new ApiVersion(Number(match[1]), Number(match[2]));
  }

  compare(other: ApiVersion | string): number {
    const o = typeof other === 'string' ? parsedLiteral(other) : other;
    return this.major - o.major || this.minor - o.minor;
  }

  /** At least `version`: the request sees the change made in that step. */
  atLeast(version: string): boolean {
    return this.compare(version) >= 0;
  }

  toString(): string {
    return `${this.major}.${this.minor}`;
  }
}

/** The versions code compares against (`v.atLeast('2.47')`), parsed once: views call this per server. */
const literals = new Map<string, ApiVersion>();
function parsedLiteral(text: string): ApiVersion {
  let version = literals.get(text);
  if (!version) {
    version = ApiVersion.parse(text);
    if (literals.size < 1000) literals.set(text, version);
  }
  return version;
}

export const MIN_VERSION = new ApiVersion(2, 1);
export const MAX_VERSION = new ApiVersion(2, 96);

const NEW_HEADER = 'openstack-api-version';
const LEGACY_HEADER = 'x-openstack-nova-api-version';

function headerValue(raw: string | string[] | undefined): string | undefined {
  return Array.isArray(raw) ? raw.join(',') : raw;
}

/**
 * The version a request asks for, as Nova reads it: `OpenStack-API-Version: compute X.Y` wins over the
 * legacy `X-OpenStack-Nova-API-Version: X.Y`; none means the minimum, `latest` the maximum.
 */
export function requestedVersion(headers: Record<string, string | string[] | undefined>): ApiVersion {
  let text: string | undefined;
  const modern = headerValue(headers[NEW_HEADER]);
  if (modern !== undefined) {
    for (const item of modern.split(',')) {
      const [service, value] = item.trim().split(/\s+/, 2);
      if (service?.toLowerCase() === 'compute') text = (value ?? '').trim();
    }
  }
  if (text === undefined) text = headerValue(headers[LEGACY_HEADER])?.trim();
  if (text === undefined) return MIN_VERSION;
  if (text.toLowerCase() === 'latest') return MAX_VERSION;
  const version = ApiVersion.parse(text);
  if (version.compare(MIN_VERSION) < 0 || version.compare(MAX_VERSION) > 0) {
    throw new NotAcceptableError(
      `Version ${version} is not supported by the API. Minimum is ${MIN_VERSION} and maximum is ${MAX_VERSION}.`,
    );
  }
  return version;
}

const VERSION_KEY = 'novumMicroversion';

/**
 * Negotiates the microversion of every request under `/<prefix>/v2.1`: keeps it on the request for
 * `@Microversion()`, and echoes it in both headers with `Vary`, as Nova does (errors included).
 */
export function installMicroversions(fastify: FastifyInstance, prefix: string): void {
  const versioned = new RegExp(`^/${prefix}/v2\\.1(?:[/?]|$)`);
  const trailingSlash = new RegExp(`^/${prefix}/v2\\.1/.+/$`);
  fastify.addHook('onRequest', (request, reply, done) => {
    if (!versioned.test(request.url)) return done();
    // Nova's routes match no resource path with a trailing slash (`/os-simple-tenant-usage/` is 404).
    if (trailingSlash.test(request.url.split('?')[0])) {
      return done(new NotFoundError('The resource could not be found.'));
    }
    let version: ApiVersion;
    try {
      version = requestedVersion(request.headers);
    } catch (error) {
      return done(error as Error);
    }
    (request as unknown as Record<string, unknown>)[VERSION_KEY] = version;
    reply.header('openstack-api-version', `compute ${version}`);
    reply.header('x-openstack-nova-api-version', String(version));
    reply.header('vary', 'OpenStack-API-Version, X-OpenStack-Nova-API-Version');
    done();
  });
}

/** The request's negotiated microversion. */
export const Microversion = createParamDecorator((_data: unknown, ctx: ExecutionContext): ApiVersion => {
  const request = ctx.switchToHttp().getRequest<FastifyRequest>();
  return ((request as unknown as Record<string, unknown>)[VERSION_KEY] as ApiVersion) ?? MIN_VERSION;
});

/**
 * One step of a versioned view: from `since` (and before `until`, when given) the step adds or changes
 * fields. A serializer is a list of steps, so a response at 2.1 has exactly the 2.1 fields.
 */
export interface ViewStep<T> {
  since: string;
  until?: string;
  apply(view: Record<string, unknown>, item: T): void;
}

export function renderView<T>(steps: ViewStep<T>[], item: T, version: ApiVersion): Record<string, unknown> {
  const view: Record<string, unknown> = {};
  for (const step of steps) {
    if (version.atLeast(step.since) && (!step.until || !version.atLeast(step.until))) step.apply(view, item);
  }
  return view;
}
