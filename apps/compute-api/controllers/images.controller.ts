import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put } from '@nestjs/common';
import { Auth, AuthContext } from '@novum/auth';
import { ApiError, ForbiddenError, NOVUM_CONFIG, NotFoundError, NovumConfig, publicUrl } from '@novum/common';
import { ApiVersion, Microversion } from '../microversion';
import { PeerError, PeerServices } from '../peers';
import {
  belowVersion,
  checkImageMetadata,
  glanceImageQuery,
  GlanceRecord,
  imageBrief,
  imageDetail,
  imageProperties,
  propertiesPatch,
} from '../proxy-views';
import { NovaQuery, NovaQueryParams } from '../query';
import { COMPUTE_ROOT_URL, ComputeLinks } from '../serializers';

const JSON_PATCH = 'application/openstack-images-v2.1-json-patch';
/** Nova's default `metadata_items` quota, which image metadata is checked against. */
const METADATA_ITEMS = 128;

/**
 * The deprecated image proxy (below 2.36): Glance v2 images in Nova's view, and their custom properties as
 * image metadata (below 2.39, as `/images/{id}/metadata` went with the proxy).
 */
@Controller('v2.1/images')
export class ImagesController {
  private readonly links: ComputeLinks;
  private readonly imageUrl: string;

  constructor(
    private readonly peers: PeerServices,
    @Inject(COMPUTE_ROOT_URL) root: string,
    @Inject(NOVUM_CONFIG) config: NovumConfig,
  ) {
    this.links = new ComputeLinks(root);
    this.imageUrl = publicUrl(config, config.ports.image, 'image');
  }

  @Get()
  async list(@Auth() auth: AuthContext, @NovaQuery() query: NovaQueryParams, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.36');
    const images = await this.find(auth, query);
    return this.page(
      images.map((i) => imageBrief(i, this.links, this.imageUrl)),
      query,
      images,
    );
  }

  @Get('detail')
  async detail(
    @Auth() auth: AuthContext,
    @NovaQuery() query: NovaQueryParams,
    @Microversion() v: ApiVersion,
  ) {
    belowVersion(v, '2.36');
    const images = await this.find(auth, query);
    return this.page(
      images.map((i) => imageDetail(i, this.links, this.imageUrl)),
      query,
      images,
    );
  }

  @Get(':id')
  async show(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.36');
    return { image: imageDetail(await this.image(auth, id), this.links, this.imageUrl) };
  }

  @Delete(':id')
  @HttpCode(204)
  async remove(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.36');
    try {
      await this.peers.call(auth, 'image', 'DELETE', `/v2/images/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error instanceof PeerError && error.status === 404) throw new NotFoundError('Image not found.');
      if (error instanceof PeerError && error.status === 403) {
        throw new ForbiddenError('You are not allowed to delete the image.');
      }
      throw translate(error);
    }
  }

  @Get(':id/metadata')
  async metadata(@Auth() auth: AuthContext, @Param('id') id: string, @Microversion() v: ApiVersion) {
    belowVersion(v, '2.39');
    return { metadata: imageProperties(await this.image(auth, id)) };
  }

  @Get(':id/metadata/:key')
  async metadataItem(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Param('key') key: string,
    @Microversion() v: ApiVersion,
  ) {
    belowVersion(v, '2.39');
    const properties = imageProperties(await this.image(auth, id));
    if (!Object.hasOwn(properties, key)) throw new NotFoundError('Metadata item was not found');
    return { meta: { [key]: properties[key] } };
  }

  /** `POST`: merges the given items into the image's properties. */
  @Post(':id/metadata')
  @HttpCode(200)
  async mergeMetadata(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Body() body: unknown,
    @Microversion() v: ApiVersion,
  ) {
    belowVersion(v, '2.39');
    const items = checkImageMetadata(body, 'metadata');
    const image = await this.image(auth, id);
    const before = imageProperties(image);
    const updated = await this.setProperties(auth, image, before, { ...before, ...items });
    return { metadata: imageProperties(updated) };
  }

  /** `PUT`: replaces all of the image's properties. */
  @Put(':id/metadata')
  async replaceMetadata(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Body() body: unknown,
    @Microversion() v: ApiVersion,
  ) {
    belowVersion(v, '2.39');
    const items = checkImageMetadata(body, 'metadata');
    const image = await this.image(auth, id);
    await this.setProperties(auth, image, imageProperties(image), items);
    return { metadata: items };
  }

  @Put(':id/metadata/:key')
  async setMetadataItem(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Param('key') key: string,
    @Body() body: unknown,
    @Microversion() v: ApiVersion,
  ) {
    belowVersion(v, '2.39');
    const meta = checkImageMetadata(body, 'meta');
    if (!Object.hasOwn(meta, key)) throw new ApiError(400, 'Request body and URI mismatch');
    const image = await this.image(auth, id);
    const before = imageProperties(image);
    await this.setProperties(auth, image, before, { ...before, [key]: meta[key] });
    return { meta };
  }

  @Delete(':id/metadata/:key')
  @HttpCode(204)
  async deleteMetadataItem(
    @Auth() auth: AuthContext,
    @Param('id') id: string,
    @Param('key') key: string,
    @Microversion() v: ApiVersion,
  ) {
    belowVersion(v, '2.39');
    const image = await this.image(auth, id);
    const before = imageProperties(image);
    if (!Object.hasOwn(before, key)) throw new NotFoundError('Invalid metadata key');
    const after = { ...before };
    delete after[key];
    await this.setProperties(auth, image, before, after);
  }

  private async image(auth: AuthContext, id: string): Promise<GlanceRecord> {
    const image = await this.peers.image(auth, id);
    if (!image) throw new NotFoundError('Image not found.');
    return image as GlanceRecord;
  }

  /** Glance's images for Nova's filters: one page with `limit`, else every page (as glanceclient reads). */
  private async find(auth: AuthContext, query: NovaQueryParams): Promise<GlanceRecord[]> {
    const { params, minRam, minDisk } = glanceImageQuery(query);
    const images: GlanceRecord[] = [];
    let path: string | undefined = `/v2/images?${params.toString()}`;
    while (path) {
      const body: { images: GlanceRecord[]; next?: string } = await this.peers
        .call<{ images: GlanceRecord[]; next?: string }>(auth, 'image', 'GET', path)
        .catch((error: unknown) => {
          throw translate(error);
        });
      images.push(...body.images);
      path = params.has('limit') ? undefined : body.next;
    }
    return images.filter(
      (i) =>
        (minRam === undefined || Number(i.min_ram ?? 0) >= minRam) &&
        (minDisk === undefined || Number(i.min_disk ?? 0) >= minDisk),
    );
  }

  /** Nova's `images_links`: a next link when the page is as long as the limit asked for. */
  private page<T>(views: T[], query: NovaQueryParams, images: GlanceRecord[]) {
    const result: Record<string, unknown> = { images: views };
    if (query.limit !== undefined && images.length && Number(query.limit) === images.length) {
      result.images_links = this.links.next('images', query, images[images.length - 1].id);
    }
    return result;
  }

  private async setProperties(
    auth: AuthContext,
    image: GlanceRecord,
    before: Record<string, unknown>,
    after: Record<string, unknown>,
  ): Promise<GlanceRecord> {
    if (Object.keys(after).length > METADATA_ITEMS) throw new ForbiddenError('Image metadata limit exceeded');
    const patch = propertiesPatch(before, after);
    if (!patch.length) return image;
    try {
      return await this.peers.call<GlanceRecord>(
        auth,
        'image',
        'PATCH',
        `/v2/images/${encodeURIComponent(image.id)}`,
        patch,
        JSON_PATCH,
      );
    } catch (error) {
      if (error instanceof PeerError && error.status === 404) throw new NotFoundError('Image not found.');
      throw translate(error);
    }
  }
}

/** A Glance refusal as Nova answers it: 400, 403, 404 and 413 pass, anything else is the image service failing. */
function translate(error: unknown): unknown {
  if (!(error instanceof PeerError)) return error;
  if ([400, 403, 404, 409, 413].includes(error.status)) return new ApiError(error.status, error.message);
  return new ApiError(503, error.message);
}
