import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuthContext, authorize, canActOnProject, canReadProject, isAdmin } from '@novum/auth';
import { BadRequestError, NotFoundError } from '@novum/common';
import { HeatSoftwareConfigEntity, HeatSoftwareDeploymentEntity, nowIso } from '@novum/db';
import { DataSource, Repository } from 'typeorm';
import { heatTime } from './views';

type Body = Record<string, unknown>;

/** The value types of a software config's inputs and outputs (Heat's software_config_io TYPES). */
const IO_TYPES = ['String', 'Number', 'CommaDelimitedList', 'Json', 'Boolean'];

/** Heat's InputConfig / OutputConfig: each entry a map with a name, its type defaulted, unknown keys refused. */
function ioList(value: unknown, kind: 'inputs' | 'outputs'): Body[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new BadRequestError(`Software Config I/O Schema must be in a list`);
  const keys =
    kind === 'inputs'
      ? ['name', 'description', 'type', 'default', 'replace_on_change', 'value']
      : ['name', 'description', 'type', 'error_output'];
  return value.map((entry) => {
    if (!entry || typeof entry !== 'object' || Array.isArray(entry))
      throw new BadRequestError(`Software Config I/O Schema must be a dict`);
    const io = entry as Body;
    for (const key of Object.keys(io)) {
      if (!keys.includes(key)) throw new BadRequestError(`Unknown Property ${key}`);
    }
    if (typeof io.name !== 'string') throw new BadRequestError('Property name not assigned');
    const type = io.type ?? 'String';
    if (typeof type !== 'string' || !IO_TYPES.includes(type))
      throw new BadRequestError(`"${String(type)}" is not an allowed value [${IO_TYPES.join(', ')}]`);
    const flag = kind === 'inputs' ? 'replace_on_change' : 'error_output';
    if (io[flag] !== undefined && typeof io[flag] !== 'boolean')
      throw new BadRequestError(`Value '${String(io[flag])}' is not a valid Boolean`);
    const out: Body = { ...io, type };
    if (kind === 'outputs') out.error_output = io.error_output ?? false;
    // Heat persists replace_on_change only when set.
    if (kind === 'inputs' && !io.replace_on_change) delete out.replace_on_change;
    return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined && v !== null));
  });
}

function optionalString(body: Body, key: string): string | null {
  const value = body[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new BadRequestError(`The ${key} must be a string.`);
  return value;
}

function optionalMap(body: Body, key: string): Body | null {
  const value = body[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value))
    throw new BadRequestError(`The ${key} must be a map.`);
  return value as Body;
}

/** Heat's format_software_config: the summary in lists, the config with its I/O in detail. */
export function softwareConfigView(
  config: HeatSoftwareConfigEntity,
  detail = true,
  withProject = false,
): Body {
  const stored = config.config;
  return {
    id: config.id,
    name: config.name,
    group: config.group,
    creation_time: heatTime(config.createdAt),
    ...(detail
      ? {
          config: stored.config ?? null,
          inputs: stored.inputs ?? [],
          outputs: stored.outputs ?? [],
          options: stored.options ?? null,
        }
      : {}),
    ...(withProject ? { project: config.projectId } : {}),
  };
}

/** Heat's format_software_deployment. */
export function softwareDeploymentView(deployment: HeatSoftwareDeploymentEntity): Body {
  return {
    id: deployment.id,
    server_id: deployment.serverId,
    input_values: deployment.inputValues,
    output_values: deployment.outputValues,
    action: deployment.action,
    status: deployment.status,
    status_reason: deployment.statusReason,
    config_id: deployment.configId,
    creation_time: heatTime(deployment.createdAt),
    ...(deployment.updatedAt ? { updated_time: heatTime(deployment.updatedAt) } : {}),
  };
}

/**
 * Heat's software configs and deployments (service_software_config.py): a project's own, admins see all;
 * configs are immutable and cannot be deleted while a deployment refers to them.
 */
@Injectable()
export class SoftwareConfigService {
  readonly configs: Repository<HeatSoftwareConfigEntity>;
  readonly deployments: Repository<HeatSoftwareDeploymentEntity>;

  constructor(dataSource: DataSource) {
    this.configs = dataSource.getRepository(HeatSoftwareConfigEntity);
    this.deployments = dataSource.getRepository(HeatSoftwareDeploymentEntity);
  }

  async createConfig(auth: AuthContext, body: Body): Promise<HeatSoftwareConfigEntity> {
    authorize('software_configs:create', canActOnProject(auth, auth.projectId));
    const config = body.config;
    if (config !== undefined && config !== null && typeof config !== 'string')
      throw new BadRequestError('The config must be a string.');
    const row = this.configs.create({
      id: randomUUID(),
      name: optionalString(body, 'name'),
      group: optionalString(body, 'group'),
      config: {
        config: config ?? null,
        inputs: ioList(body.inputs, 'inputs'),
        outputs: ioList(body.outputs, 'outputs'),
        options: optionalMap(body, 'options'),
      },
      projectId: auth.projectId as string,
      createdAt: nowIso(),
      updatedAt: null,
    });
    return this.configs.save(row);
  }

  async config(auth: AuthContext, id: string): Promise<HeatSoftwareConfigEntity> {
    authorize('software_configs:show', canReadProject(auth, auth.projectId));
    const row = await this.configs.findOneBy({ id });
    if (!row || (row.projectId !== auth.projectId && !isAdmin(auth)))
      throw new NotFoundError(`Software config with id ${id} not found`, 'NotFound');
    return row;
  }

  /** Oldest first, `limit` and `marker` (an id) as Heat's paginate_query. */
  async listConfigs(auth: AuthContext, limit?: string, marker?: string): Promise<HeatSoftwareConfigEntity[]> {
    authorize('software_configs:index', canReadProject(auth, auth.projectId));
    let rows = await this.configs.find({
      where: isAdmin(auth) ? {} : { projectId: auth.projectId },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
    if (marker !== undefined) {
      const index = rows.findIndex((row) => row.id === marker);
      if (index < 0) throw new NotFoundError(`Software config with id ${marker} not found`, 'NotFound');
      rows = rows.slice(index + 1);
    }
    if (limit !== undefined) {
      if (!/^\d+$/.test(limit)) throw new BadRequestError(`Only integer is acceptable by 'limit'.`);
      rows = rows.slice(0, Number(limit));
    }
    return rows;
  }

  async deleteConfig(auth: AuthContext, id: string): Promise<void> {
    authorize('software_configs:delete', canActOnProject(auth, auth.projectId));
    const row = await this.config(auth, id);
    if (await this.deployments.existsBy({ configId: id }))
      throw new BadRequestError(
        `Software config with id ${id} can not be deleted as it is referenced.`,
        'InvalidRestrictedAction',
      );
    await this.configs.delete({ id: row.id });
  }

  async createDeployment(auth: AuthContext, body: Body): Promise<HeatSoftwareDeploymentEntity> {
    authorize('software_deployments:create', canActOnProject(auth, auth.projectId));
    const configId = optionalString(body, 'config_id');
    if (!configId) throw new BadRequestError('Property config_id not assigned');
    await this.config(auth, configId);
    const serverId = optionalString(body, 'server_id');
    if (!serverId) throw new BadRequestError('Property server_id not assigned');
    const row = this.deployments.create({
      id: randomUUID(),
      configId,
      serverId,
      inputValues: optionalMap(body, 'input_values') ?? {},
      outputValues: {},
      action: optionalString(body, 'action'),
      status: optionalString(body, 'status'),
      statusReason: optionalString(body, 'status_reason'),
      projectId: auth.projectId as string,
      createdAt: nowIso(),
      updatedAt: null,
    });
    return this.deployments.save(row);
  }

  async deployment(auth: AuthContext, id: string): Promise<HeatSoftwareDeploymentEntity> {
    authorize('software_deployments:show', canReadProject(auth, auth.projectId));
    const row = await this.deployments.findOneBy({ id });
    if (!row || (row.projectId !== auth.projectId && !isAdmin(auth)))
      throw new NotFoundError(`Deployment with id ${id} not found`, 'NotFound');
    return row;
  }

  async listDeployments(auth: AuthContext, serverId?: string): Promise<HeatSoftwareDeploymentEntity[]> {
    authorize('software_deployments:index', canReadProject(auth, auth.projectId));
    return this.deployments.find({
      where: {
        ...(isAdmin(auth) ? {} : { projectId: auth.projectId }),
        ...(serverId !== undefined ? { serverId } : {}),
      },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
  }

  /** Heat's update: only the fields given (and not null) change; the update time always moves. */
  async updateDeployment(auth: AuthContext, id: string, body: Body): Promise<HeatSoftwareDeploymentEntity> {
    authorize('software_deployments:update', canActOnProject(auth, auth.projectId));
    const row = await this.deployment(auth, id);
    const configId = optionalString(body, 'config_id');
    if (configId) {
      await this.config(auth, configId);
      row.configId = configId;
    }
    const inputValues = optionalMap(body, 'input_values');
    if (inputValues) row.inputValues = inputValues;
    const outputValues = optionalMap(body, 'output_values');
    if (outputValues) row.outputValues = outputValues;
    row.action = optionalString(body, 'action') ?? row.action;
    row.status = optionalString(body, 'status') ?? row.status;
    row.statusReason = optionalString(body, 'status_reason') ?? row.statusReason;
    row.updatedAt = nowIso();
    return this.deployments.save(row);
  }

  async deleteDeployment(auth: AuthContext, id: string): Promise<void> {
    authorize('software_deployments:delete', canActOnProject(auth, auth.projectId));
    const row = await this.deployment(auth, id);
    await this.deployments.delete({ id: row.id });
  }

  /** The configs deployed to a server, ordered by config name (Heat's metadata_software_deployments). */
  async serverMetadata(auth: AuthContext, serverId: string): Promise<Body[]> {
    const deployments = await this.listDeployments(auth, serverId);
    const configs: HeatSoftwareConfigEntity[] = [];
    for (const deployment of deployments) {
      const config = await this.configs.findOneBy({ id: deployment.configId });
      if (config) configs.push(config);
    }
    configs.sort((a, b) => (a.name ?? '').localeCompare(b.name ?? ''));
    return configs.map((config) => softwareConfigView(config));
  }
}
