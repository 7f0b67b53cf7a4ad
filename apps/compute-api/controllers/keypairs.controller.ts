import { Body, Controller, Delete, Get, Inject, Param, Post, Res } from '@nestjs/common';
import { Auth, AuthContext, isAdmin } from '@novum/auth';
import { BadRequestError } from '@novum/common';
import type { FastifyReply } from 'fastify';
import { parseLimit } from '../flavor.service';
import { KeyPairService } from '../keypair.service';
import { ApiVersion, Microversion } from '../microversion';
import { NovaQuery, NovaQueryParams } from '../query';
import { allow } from '../policy';
import { COMPUTE_ROOT_URL, ComputeLinks, keyPairCreated, keyPairListed, keyPairShown } from '../serializers';
import { CreateKeyPairBody } from './dto';

@Controller('v2.1/os-keypairs')
export class KeyPairsController {
  private readonly links: ComputeLinks;

  constructor(
    private readonly keypairs: KeyPairService,
    @Inject(COMPUTE_ROOT_URL) root: string,
  ) {
    this.links = new ComputeLinks(root);
  }

  /** Whose key pairs: the caller's, or from 2.10 an admin's choice of `user_id`. */
  private owner(auth: AuthContext, userId: string | undefined, v: ApiVersion, rule: string): string {
    if (userId === undefined || !v.atLeast('2.10')) return auth.userId;
    allow(`os_compute_api:os-keypairs:${rule}`, isAdmin(auth), userId === auth.userId);
    return userId;
  }

  @Get()
  async list(@Auth() auth: AuthContext, @NovaQuery() query: NovaQueryParams, @Microversion() v: ApiVersion) {
    const userId = this.owner(auth, query.user_id, v, 'index');
    const paged = v.atLeast('2.35');
    const limit = paged ? parseLimit(query.limit) : undefined;
    const keypairs = await this.keypairs.list(userId, limit, paged ? query.marker : undefined);
    const body: Record<string, unknown> = { keypairs: keypairs.map((k) => keyPairListed(k, v)) };
    if (limit !== undefined && keypairs.length > 0 && keypairs.length === limit) {
      body.keypairs_links = this.links.next('os-keypairs', query, keypairs[keypairs.length - 1].name);
    }
    return body;
  }

  @Get(':name')
  async show(
    @Auth() auth: AuthContext,
    @Param('name') name: string,
    @NovaQuery() query: NovaQueryParams,
    @Microversion() v: ApiVersion,
  ) {
    return keyPairShown(await this.keypairs.get(this.owner(auth, query.user_id, v, 'show'), name), v);
  }

  @Post()
  async create(
    @Auth() auth: AuthContext,
    @Body() body: CreateKeyPairBody,
    @Microversion() v: ApiVersion,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const input = body.keypair;
    if (!v.atLeast('2.2') && input.type !== undefined) {
      throw unexpected('type');
    }
    if (!v.atLeast('2.10') && input.user_id !== undefined) {
      throw unexpected('user_id');
    }
    const userId = this.owner(auth, input.user_id, v, 'create');
    const created = await this.keypairs.create(
      {
        name: input.name,
        publicKey: input.public_key,
        type: (input.type ?? 'ssh') as 'ssh' | 'x509',
        userId,
        projectId: auth.projectId ?? '',
      },
      v,
    );
    reply.status(v.atLeast('2.2') ? 201 : 200);
    return keyPairCreated(created.keypair, created.privateKey, v);
  }

  @Delete(':name')
  async remove(
    @Auth() auth: AuthContext,
    @Param('name') name: string,
    @NovaQuery() query: NovaQueryParams,
    @Microversion() v: ApiVersion,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    await this.keypairs.delete(this.owner(auth, query.user_id, v, 'delete'), name);
    reply.status(v.atLeast('2.2') ? 204 : 202);
  }
}

/** A keypair field that the requested microversion does not know yet. */
function unexpected(field: string): BadRequestError {
  return new BadRequestError(
    `Invalid input for field/attribute keypair. Additional properties are not allowed ('${field}' was unexpected)`,
  );
}
