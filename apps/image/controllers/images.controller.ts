import {
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Param,
  Patch,
  Post,
  Put,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import { Auth, AuthContext } from '@novum/auth';
import { ApiError, BadRequestError } from '@novum/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ImageDataService } from '../image-data.service';
import { ImageListService } from '../image-list';
import { ImageService } from '../image.service';
import { parseImagePatch } from '../json-patch';
import { MemberService } from '../member.service';
import { serializeImage, serializeMember } from '../serializers';
import { MemberCreateBody, MemberUpdateBody } from './dto';

export const JSON_PATCH_TYPES = [
  'application/openstack-images-v2.1-json-patch',
  'application/openstack-images-v2.0-json-patch',
];

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0].trim().toLowerCase();
}

/** Image data comes as `application/octet-stream` only; anything else would already have been parsed. */
function imageData(request: FastifyRequest): FastifyRequest['raw'] {
  if (mediaType(request.headers['content-type']) !== 'application/octet-stream')
    throw new ApiError(415, 'Unsupported Content-Type; image data must be sent as application/octet-stream.');
  return request.raw;
}

function contentLength(request: FastifyRequest): number | undefined {
  const raw = request.headers['content-length'];
  return raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : undefined;
}

function requireObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new BadRequestError('Malformed request body: a JSON object is required.');
  return body as Record<string, unknown>;
}

@Controller('v2/images')
export class ImagesController {
  constructor(
    private readonly images: ImageService,
    private readonly lists: ImageListService,
    private readonly data: ImageDataService,
    private readonly members: MemberService,
  ) {}

  @Get()
  async list(@Auth() auth: AuthContext, @Query() query: Record<string, string | string[]>) {
    const page = await this.lists.list(auth, query);
    const first = page.first.toString();
    return {
      images: page.views.map((v) => serializeImage(v.image, v.tags)),
      first: `/v2/images${first ? `?${first}` : ''}`,
      schema: '/v2/schemas/images',
      ...(page.next ? { next: `/v2/images?${page.next.toString()}` } : {}),
    };
  }

  @Post()
  @HttpCode(201)
  async create(
    @Auth() auth: AuthContext,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const { image, tags } = await this.images.create(auth, requireObject(body));
    reply.header('location', `/v2/images/${image.id}`);
    reply.header('openstack-image-import-methods', 'glance-direct');
    return serializeImage(image, tags);
  }

  @Get(':id')
  async show(@Auth() auth: AuthContext, @Param('id') id: string) {
    const { image, tags } = await this.images.show(auth, id);
    return serializeImage(image, tags);
  }

  @Patch(':id')
  async update(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Headers('content-type') contentType: string | undefined,
    @Body() body: unknown,
  ) {
    if (!JSON_PATCH_TYPES.includes(mediaType(contentType))) {
      throw new ApiError(415, `Unsupported Content-Type; use one of ${JSON_PATCH_TYPES.join(', ')}.`);
    }
    const { image, tags } = await this.images.update(auth, id, parseImagePatch(body));
    return serializeImage(image, tags);
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Auth() auth: AuthContext, @Param('id') id: string) {
    await this.images.delete(auth, id);
  }

  @Post(':id/actions/deactivate')
  @HttpCode(204)
  async deactivate(@Auth() auth: AuthContext, @Param('id') id: string) {
    await this.images.deactivate(auth, id);
  }

  @Post(':id/actions/reactivate')
  @HttpCode(204)
  async reactivate(@Auth() auth: AuthContext, @Param('id') id: string) {
    await this.images.reactivate(auth, id);
  }

  @Put(':id/tags/:tag')
  @HttpCode(204)
  async addTag(@Auth() auth: AuthContext, @Param('id') id: string, @Param('tag') tag: string) {
    await this.images.addTag(auth, id, tag);
  }

  @Delete(':id/tags/:tag')
  @HttpCode(204)
  async removeTag(@Auth() auth: AuthContext, @Param('id') id: string, @Param('tag') tag: string) {
    await this.images.removeTag(auth, id, tag);
  }

  @Put(':id/file')
  @HttpCode(204)
  async upload(@Auth() auth: AuthContext, @Param('id') id: string, @Req() request: FastifyRequest) {
    await this.data.upload(auth, id, imageData(request), contentLength(request));
  }

  @Put(':id/stage')
  @HttpCode(204)
  async stage(@Auth() auth: AuthContext, @Param('id') id: string, @Req() request: FastifyRequest) {
    await this.data.stage(auth, id, imageData(request), contentLength(request));
  }

  @Post(':id/import')
  @HttpCode(202)
  async import(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: unknown) {
    await this.data.import(auth, id, requireObject(body));
  }

  @Get(':id/file')
  async download(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Headers('range') range: string | undefined,
    @Res() reply: FastifyReply,
  ) {
    const download = await this.data.download(auth, id, range);
    reply.status(download.status).headers(download.headers);
    await reply.send(download.stream);
  }

  @Get(':id/members')
  async listMembers(@Auth() auth: AuthContext, @Param('id') id: string) {
    const members = await this.members.list(auth, id);
    return { members: members.map(serializeMember), schema: '/v2/schemas/members' };
  }

  @Post(':id/members')
  @HttpCode(200)
  async addMember(@Auth() auth: AuthContext, @Param('id') id: string, @Body() body: MemberCreateBody) {
    return serializeMember(await this.members.add(auth, id, body.member));
  }

  @Get(':id/members/:member')
  async showMember(@Auth() auth: AuthContext, @Param('id') id: string, @Param('member') member: string) {
    return serializeMember(await this.members.get(auth, id, member));
  }

  @Put(':id/members/:member')
  async updateMember(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Param('member') member: string,
    @Body() body: MemberUpdateBody,
  ) {
    return serializeMember(await this.members.setStatus(auth, id, member, body.status));
  }

  @Delete(':id/members/:member')
  @HttpCode(204)
  async removeMember(@Auth() auth: AuthContext, @Param('id') id: string, @Param('member') member: string) {
    await this.members.remove(auth, id, member);
  }
}
