import { Body, Controller, Delete, Get, HttpCode, Param, Put } from '@nestjs/common';
import { Auth, AuthContext } from '@novum/auth';
import { TagService } from '../tags';
import { TagsBody } from './dto';

@Controller('v2.0/:collection/:id/tags')
export class TagsController {
  constructor(private readonly tags: TagService) {}

  @Get()
  async list(@Auth() auth: AuthContext, @Param('collection') collection: string, @Param('id') id: string) {
    return { tags: await this.tags.list(auth, collection, id) };
  }

  @Put()
  async replace(
    @Auth() auth: AuthContext,
    @Param('collection') collection: string,
    @Param('id') id: string,
    @Body() body: TagsBody,
  ) {
    return { tags: await this.tags.replace(auth, collection, id, body.tags) };
  }

  @Delete()
  @HttpCode(204)
  async removeAll(
    @Auth() auth: AuthContext,
    @Param('collection') collection: string,
    @Param('id') id: string,
  ) {
    await this.tags.remove(auth, collection, id);
  }

  @Get(':tag')
  @HttpCode(204)
  async has(
    @Auth() auth: AuthContext,
    @Param('collection') collection: string,
    @Param('id') id: string,
    @Param('tag') tag: string,
  ) {
    await this.tags.has(auth, collection, id, tag);
  }

  @Put(':tag')
  @HttpCode(201)
  async add(
    @Auth() auth: AuthContext,
    @Param('collection') collection: string,
    @Param('id') id: string,
    @Param('tag') tag: string,
  ) {
    await this.tags.add(auth, collection, id, tag);
  }

  @Delete(':tag')
  @HttpCode(204)
  async remove(
    @Auth() auth: AuthContext,
    @Param('collection') collection: string,
    @Param('id') id: string,
    @Param('tag') tag: string,
  ) {
    await this.tags.remove(auth, collection, id, tag);
  }
}
