import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError } from '@novum/common';
import { DomainEntity, ProjectEntity } from '@novum/db';
import { In } from 'typeorm';
import { definedOnly } from './catalog.service';
import { IdentityCache } from './identity-cache';
import { IdentityStore, isUniqueViolation } from './identity.store';
import { IdentityNotifier } from './notifier';

export const DEFAULT_DOMAIN_ID = 'default';

export function newId(): string {
  return randomUUID().replace(/-/g, '');
}

/** Domains and projects. */
@Injectable()
export class ResourceService {
  constructor(
    private readonly store: IdentityStore,
    private readonly cache: IdentityCache,
    private readonly notifier: IdentityNotifier,
  ) {}

  listDomains(filter: { name?: string; enabled?: boolean }): Promise<DomainEntity[]> {
    return this.store.domains.find({ where: definedOnly(filter), order: { name: 'ASC' } });
  }

  async getDomain(id: string): Promise<DomainEntity> {
    const domain = await this.store.domains.findOneBy({ id });
    if (!domain) throw new NotFoundError(`Could not find domain: ${id}.`);
    return domain;
  }

  async createDomain(input: {
    id?: string;
    name: string;
    description?: string;
    enabled?: boolean;
  }): Promise<DomainEntity> {
    const domain: DomainEntity = {
      id: input.id ?? newId(),
      name: input.name,
      description: input.description ?? '',
      enabled: input.enabled ?? true,
      extra: {},
    };
    try {
      await this.store.domains.insert(domain);
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new ConflictError(
          `Conflict occurred attempting to store domain - Duplicate entry found with name ${input.name}.`,
        );
      }
      throw error;
    }
    this.notifier.emit('domain', 'created', domain.id);
    return domain;
  }

  async updateDomain(
    id: string,
    input: { name?: string; description?: string; enabled?: boolean },
  ): Promise<DomainEntity> {
    const domain = await this.getDomain(id);
    Object.assign(domain, definedOnly(input));
    await this.saveUnique(
      () => this.store.domains.save(domain),
      `domain - Duplicate entry found with name ${input.name}`,
    );
    this.cache.invalidate();
    this.notifier.emit('domain', 'updated', domain.id);
    return domain;
  }

  async deleteDomain(id: string): Promise<void> {
    const domain = await this.getDomain(id);
    if (domain.enabled)
      throw new ForbiddenError('Cannot delete a domain that is enabled, please disable it first.');
    if (await this.store.projects.existsBy({ domainId: id })) {
      throw new ConflictError(`Domain ${id} still owns projects; delete them first.`);
    }
    if (await this.store.users.existsBy({ domainId: id }))
      throw new ConflictError(`Domain ${id} still owns users; delete them first.`);
    await this.store.assignments.delete({ type: 'UserDomain', targetId: id });
    await this.store.domains.delete({ id });
    this.notifier.emit('domain', 'deleted', id);
    this.cache.invalidate();
  }

  listProjects(filter: {
    name?: string;
    domain_id?: string;
    enabled?: boolean;
    parent_id?: string;
    ids?: string[];
  }) {
    return this.store.projects.find({
      where: {
        ...definedOnly({
          name: filter.name,
          domainId: filter.domain_id,
          enabled: filter.enabled,
          parentId: filter.parent_id,
        }),
        ...(filter.ids && { id: In(filter.ids) }),
      },
      order: { name: 'ASC' },
    });
  }

  async getProject(id: string): Promise<ProjectEntity> {
    const project = await this.store.projects.findOneBy({ id });
    if (!project) throw new NotFoundError(`Could not find project: ${id}.`);
    return project;
  }

  async createProject(input: {
    name: string;
    domain_id?: string;
    description?: string;
    enabled?: boolean;
    parent_id?: string | null;
    tags?: string[];
    extra?: Record<string, unknown>;
  }): Promise<ProjectEntity> {
    let domainId = input.domain_id ?? DEFAULT_DOMAIN_ID;
    let parentId: string | null = null;
    if (input.parent_id && input.parent_id !== domainId) {
      const parent = await this.getProject(input.parent_id).catch(() => {
        throw new BadRequestError(`Could not find parent project: ${input.parent_id}.`);
      });
      if (input.domain_id && parent.domainId !== input.domain_id) {
        throw new BadRequestError('A project must be in the same domain as its parent.');
      }
      domainId = parent.domainId;
      parentId = parent.id;
    }
    await this.getDomain(domainId).catch(() => {
      throw new BadRequestError(`Could not find domain: ${domainId}.`);
    });
    const project: ProjectEntity = {
      id: newId(),
      name: input.name,
      domainId,
      parentId,
      description: input.description ?? '',
      enabled: input.enabled ?? true,
      tags: input.tags ?? [],
      extra: input.extra ?? {},
    };
    await this.saveUnique(
      () => this.store.projects.insert(project),
      `project - it is not permitted to have two projects with the same name in the same domain : ${input.name}`,
    );
    this.notifier.emit('project', 'created', project.id);
    return project;
  }

  async updateProject(
    id: string,
    input: {
      name?: string;
      description?: string;
      enabled?: boolean;
      tags?: string[];
      extra?: Record<string, unknown>;
    },
  ): Promise<ProjectEntity> {
    const project = await this.getProject(id);
    const { extra, ...core } = input;
    Object.assign(project, definedOnly(core));
    if (extra) project.extra = { ...project.extra, ...extra };
    await this.saveUnique(
      () => this.store.projects.save(project),
      `project - it is not permitted to have two projects with the same name in the same domain : ${input.name}`,
    );
    this.cache.invalidate();
    this.notifier.emit('project', 'updated', project.id);
    return project;
  }

  async deleteProject(id: string): Promise<void> {
    await this.getProject(id);
    if (await this.store.projects.existsBy({ parentId: id })) {
      throw new ForbiddenError(`Cannot delete project ${id}: it has child projects.`);
    }
    await this.store.assignments.delete({ type: 'UserProject', targetId: id });
    await this.store.applicationCredentials.delete({ projectId: id });
    await this.store.projects.delete({ id });
    this.notifier.emit('project', 'deleted', id);
    this.cache.invalidate();
  }

  private async saveUnique(write: () => Promise<unknown>, what: string): Promise<void> {
    try {
      await write();
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictError(`Conflict occurred attempting to store ${what}.`);
      throw error;
    }
  }
}
