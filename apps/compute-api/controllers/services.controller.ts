import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Put } from '@nestjs/common';
import { Auth, AuthContext } from '@novum/auth';
import { BadRequestError, ConflictError, NOVUM_CONFIG, NotFoundError, NovumConfig } from '@novum/common';
import { Binary, hostAvailabilityZones } from '@novum/compute';
import { ComputeServiceEntity, InstanceEntity, inTransaction } from '@novum/db';
import { In, IsNull, Not } from 'typeorm';
import { UUID_PATTERN } from '../admin-query';
import { ComputeStore } from '../compute.store';
import { ApiVersion, Microversion } from '../microversion';
import { adminOnly } from '../policy';
import { NovaQuery, NovaQueryParams } from '../query';
import { serviceView } from '../serializers';
import { toNovaBoolean } from './dto';

/** Migration statuses that are over (Nova's `get_in_progress_by_host_and_node` leaves these out). */
const MIGRATION_DONE = ['confirmed', 'reverted', 'error', 'failed', 'completed', 'cancelled', 'done'];
const HOST_PATTERN = /^[a-zA-Z0-9-._]*$/;

type Body = Record<string, unknown>;

function invalid(field: string, value: unknown, why: string): BadRequestError {
  return new BadRequestError(`Invalid input for field/attribute ${field}. Value: ${String(value)}. ${why}`);
}

/** Nova's `update`/`update_v211`/`update_v253` body schemas. */
export function checkServiceBody(body: unknown, allowed: string[], required: string[]): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequestError('Malformed request body: a JSON object is required.');
  }
  const b = body as Body;
  const extra = Object.keys(b).filter((k) => !allowed.includes(k));
  if (extra.length) {
    throw new BadRequestError(
      `Invalid input for field/attribute. Additional properties are not allowed (${extra.map((k) => `'${k}'`).join(', ')} ${extra.length > 1 ? 'were' : 'was'} unexpected)`,
    );
  }
  for (const key of required) if (!(key in b)) throw new BadRequestError(`'${key}' is a required property`);
  const str = (key: string, pattern?: RegExp) => {
    const value = b[key];
    if (value === undefined) return;
    if (typeof value !== 'string')
      throw invalid(key, value, `${JSON.stringify(value)} is not of type 'string'`);
    if (value.length < 1 || value.length > 255) throw invalid(key, value, 'must be 1 to 255 characters long');
    if (pattern && !pattern.test(value)) throw invalid(key, value, `'${value}' does not match the pattern`);
  };
  str('host', HOST_PATTERN);
  str('binary');
  str('disabled_reason');
  if (b.status !== undefined && b.status !== 'enabled' && b.status !== 'disabled') {
    throw invalid('status', b.status, `'${String(b.status)}' is not one of ['enabled', 'disabled']`);
  }
  if (b.forced_down !== undefined && toNovaBoolean(b.forced_down) === undefined) {
    throw invalid('forced_down', b.forced_down, `${JSON.stringify(b.forced_down)} is not of type 'boolean'`);
  }
  return b;
}

/**
 * `/os-services` (admin): the conductor, scheduler and compute agents that registered, as Nova lists them
 * (the API itself is not listed, as in Nova); enabling, disabling, forcing down and deleting compute services.
 */
@Controller('v2.1/os-services')
export class ServicesController {
  constructor(
    private readonly store: ComputeStore,
    @Inject(NOVUM_CONFIG) private readonly config: NovumConfig,
  ) {}

  @Get()
  async list(@Auth() auth: AuthContext, @NovaQuery() query: NovaQueryParams, @Microversion() v: ApiVersion) {
    adminOnly(auth, 'os_compute_api:os-services:list');
    const where: { host?: string; binary?: string } = {};
    if (query.host) where.host = query.host;
    if (query.binary) where.binary = query.binary;
    const services = await this.store.services.find({ where, order: { id: 'ASC' } });
    const zones = await hostAvailabilityZones(this.store.dataSource, [
      ...new Set(services.map((s) => s.host)),
    ]);
    return { services: services.map((s) => this.view(s, v, zones.get(s.host))) };
  }

  /** Below 2.53 `{id}` is an action (`enable`, `disable`, `disable-log-reason`, 2.11 `force-down`); from 2.53 a service uuid. */
  @Put(':id')
  async update(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Body() body: unknown,
    @Microversion() v: ApiVersion,
  ) {
    adminOnly(auth, 'os_compute_api:os-services:update');
    if (v.atLeast('2.53')) return this.updateV253(id, body, v);
    const actions = ['enable', 'disable', 'disable-log-reason', ...(v.atLeast('2.11') ? ['force-down'] : [])];
    const allowed = ['host', 'binary', 'disabled_reason', ...(v.atLeast('2.11') ? ['forced_down'] : [])];
    const b = checkServiceBody(body, allowed, ['host', 'binary']);
    if (!actions.includes(id)) throw new NotFoundError('Unknown action');
    const host = b.host as string;
    const binary = b.binary as string;
    if (id === 'force-down') {
      if (b.forced_down === undefined) throw new BadRequestError('Missing forced_down field');
      const forcedDown = toNovaBoolean(b.forced_down)!;
      await this.updateByHost(host, binary, { forcedDown });
      return { service: { host, binary, forced_down: forcedDown } };
    }
    let reason: string | null = null;
    if (id === 'disable-log-reason') {
      if (b.disabled_reason === undefined) throw new BadRequestError('Missing disabled reason field');
      reason = b.disabled_reason as string;
    }
    const disabled = id !== 'enable';
    await this.updateByHost(host, binary, { disabled, disabledReason: reason });
    const service: Record<string, unknown> = { host, binary, status: disabled ? 'disabled' : 'enabled' };
    if (reason) service.disabled_reason = reason;
    return { service };
  }

  @Delete(':id')
  @HttpCode(204)
  async remove(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    adminOnly(auth, 'os_compute_api:os-services:delete');
    if (v.atLeast('2.53')) {
      if (!UUID_PATTERN.test(id)) throw new BadRequestError(`Invalid uuid ${id}`);
    } else if (!/^\d+$/.test(id)) {
      throw new BadRequestError('Invalid input received: id must be an integer.');
    }
    const service = await this.store.services.findOneBy(
      v.atLeast('2.53') ? { uuid: id } : { id: Number(id) },
    );
    if (!service) throw new NotFoundError(`Service ${id} not found.`);
    if (service.binary === Binary.COMPUTE) {
      const instances = await this.store.dataSource
        .getRepository(InstanceEntity)
        .countBy({ host: service.host, deletedAt: IsNull() });
      if (instances) {
        throw new ConflictError(
          'Unable to delete compute service that is hosting instances. Migrate or delete the instances first.',
        );
      }
      const moving = await this.store.migrations.count({
        where: [
          { sourceCompute: service.host, status: Not(In(MIGRATION_DONE)) },
          { destCompute: service.host, status: Not(In(MIGRATION_DONE)) },
        ],
      });
      if (moving) {
        throw new ConflictError(
          'Unable to delete compute service that has in-progress migrations. Complete the migrations or delete the instances first.',
        );
      }
    }
    await inTransaction(this.store.dataSource, async (tx) => {
      if (service.binary === Binary.COMPUTE) {
        // As Nova: the host leaves its aggregates and its compute nodes go with the service.
        await tx.delete(this.store.aggregateHosts.target, { host: service.host });
        const nodes = await tx.findBy(this.store.computeNodes.target, { host: service.host });
        if (nodes.length) {
          await tx.delete(this.store.computeNodeIds.target, { nodeUuid: In(nodes.map((n) => n.uuid)) });
          await tx.delete(this.store.computeNodes.target, { host: service.host });
        }
      }
      await tx.delete(this.store.services.target, { id: service.id });
    });
  }

  private async updateV253(id: string, body: unknown, v: ApiVersion) {
    if (!UUID_PATTERN.test(id)) throw new BadRequestError(`Invalid uuid ${id}`);
    const b = checkServiceBody(body, ['status', 'disabled_reason', 'forced_down'], []);
    const service = await this.store.services.findOneBy({ uuid: id });
    if (!service) throw new NotFoundError(`Service ${id} could not be found.`);
    if (service.binary !== Binary.COMPUTE) throw this.notCompute(service.binary);
    const changes: Partial<ComputeServiceEntity> = {};
    if (b.status === 'enabled') {
      if (b.disabled_reason) {
        throw new BadRequestError("Specifying 'disabled_reason' with status 'enabled' is invalid.");
      }
      changes.disabled = false;
      changes.disabledReason = null;
    } else if (b.status === 'disabled') {
      changes.disabled = true;
      changes.disabledReason = (b.disabled_reason as string | undefined) ?? null;
    }
    if (b.forced_down !== undefined) changes.forcedDown = toNovaBoolean(b.forced_down)!;
    if (!Object.keys(changes).length) {
      throw new BadRequestError(
        "No updates were requested. Fields 'status' or 'forced_down' should be specified.",
      );
    }
    await this.store.services.update({ id: service.id }, changes);
    const updated = (await this.store.services.findOneBy({ id: service.id }))!;
    const zones = await hostAvailabilityZones(this.store.dataSource, [updated.host]);
    const view = this.view(updated, v, zones.get(updated.host));
    view.forced_down = updated.forcedDown;
    return { service: view };
  }

  private async updateByHost(host: string, binary: string, changes: Partial<ComputeServiceEntity>) {
    if (binary !== Binary.COMPUTE) throw this.notCompute(binary);
    const result = await this.store.services.update({ host, binary }, changes);
    if (!result.affected) throw new NotFoundError(`Could not find binary ${binary} on host ${host}.`);
  }

  private notCompute(binary: string): BadRequestError {
    return new BadRequestError(
      `Updating a ${binary} service is not supported. Only nova-compute services can be updated.`,
    );
  }

  private view(service: ComputeServiceEntity, v: ApiVersion, zone?: string) {
    return serviceView(service, Date.now(), this.config.serviceDownTimeSeconds, v, zone);
  }
}
