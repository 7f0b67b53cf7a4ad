import { Injectable } from '@nestjs/common';
import { AuthContext, authorize } from '@novum/auth';
import { BadRequestError, NotFoundError } from '@novum/common';
import { nowIso } from '@novum/db';
import { Repository } from 'typeorm';
import { canWrite } from './access';
import { MAX_TAG_LENGTH, MAX_TAGS } from './controllers/dto';
import { NetworkService } from './network.service';
import { NetworkStore } from './network.store';
import { PortService } from './port.service';
import { RouterService } from './router.service';
import { SecurityGroupService } from './security-group.service';
import { uniqueTags } from './tag-set';

interface Tagged {
  id: string;
  projectId: string;
  tags: string[];
  revisionNumber: number;
  updatedAt: string;
}

/** The `standard-attr-tag` sub-resource (`/v2.0/{collection}/{id}/tags`) of every taggable collection. */
@Injectable()
export class TagService {
  private readonly resources: Record<
    string,
    { get: (auth: AuthContext, id: string) => Promise<Tagged>; repository: Repository<Tagged> }
  >;

  constructor(
    store: NetworkStore,
    networks: NetworkService,
    ports: PortService,
    groups: SecurityGroupService,
    routers: RouterService,
  ) {
    const entry = (get: (auth: AuthContext, id: string) => Promise<Tagged>, repository: Repository<any>) => ({
      get,
      repository: repository as Repository<Tagged>,
    });
    this.resources = {
      networks: entry((a, id) => networks.getNetwork(a, id), store.networks),
      subnets: entry((a, id) => networks.getSubnet(a, id), store.subnets),
      ports: entry((a, id) => ports.getPort(a, id), store.ports),
      'security-groups': entry((a, id) => groups.getGroup(a, id), store.securityGroups),
      routers: entry((a, id) => routers.getRouter(a, id), store.routers),
      floatingips: entry((a, id) => routers.getFloatingIp(a, id), store.floatingIps),
    };
  }

  private async resource(auth: AuthContext, collection: string, id: string) {
    const kind = Object.hasOwn(this.resources, collection) ? this.resources[collection] : undefined;
    if (!kind) throw new NotFoundError('The resource could not be found.');
    return { kind, item: await kind.get(auth, id) };
  }

  async list(auth: AuthContext, collection: string, id: string): Promise<string[]> {
    return (await this.resource(auth, collection, id)).item.tags;
  }

  async has(auth: AuthContext, collection: string, id: string, tag: string): Promise<void> {
    const { item } = await this.resource(auth, collection, id);
    if (!item.tags.includes(tag)) throw tagNotFound(tag, id);
  }

  async replace(auth: AuthContext, collection: string, id: string, tags: string[]): Promise<string[]> {
    const { kind, item } = await this.resource(auth, collection, id);
    authorize(`update_${collection}_tags`, canWrite(auth, item.projectId));
    return this.save(kind.repository, item, uniqueTags(tags));
  }

  async add(auth: AuthContext, collection: string, id: string, tag: string): Promise<void> {
    const { kind, item } = await this.resource(auth, collection, id);
    authorize(`update_${collection}_tags`, canWrite(auth, item.projectId));
    if (tag.length < 1 || tag.length > MAX_TAG_LENGTH) {
      throw new BadRequestError(
        `Invalid input for operation: '${tag.slice(0, 64)}' exceeds maximum length of ${MAX_TAG_LENGTH}.`,
        'InvalidInput',
      );
    }
    if (item.tags.includes(tag)) return;
    if (item.tags.length >= MAX_TAGS) {
      throw new BadRequestError(
        `Invalid input for operation: the number of tags exceeds the limit ${MAX_TAGS}.`,
        'InvalidInput',
      );
    }
    await this.save(kind.repository, item, [...item.tags, tag]);
  }

  async remove(auth: AuthContext, collection: string, id: string, tag?: string): Promise<void> {
    const { kind, item } = await this.resource(auth, collection, id);
    authorize(`update_${collection}_tags`, canWrite(auth, item.projectId));
    if (tag !== undefined && !item.tags.includes(tag)) throw tagNotFound(tag, id);
    await this.save(kind.repository, item, tag === undefined ? [] : item.tags.filter((t) => t !== tag));
  }

  private async save(repository: Repository<Tagged>, item: Tagged, tags: string[]): Promise<string[]> {
    await repository.update(
      { id: item.id },
      { tags, revisionNumber: item.revisionNumber + 1, updatedAt: nowIso() },
    );
    return tags;
  }
}

function tagNotFound(tag: string, id: string): NotFoundError {
  return new NotFoundError(`Tag ${tag} could not be found for resource ${id}.`, 'TagNotFound');
}
