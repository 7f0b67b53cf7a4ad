import { join } from 'node:path';
import { DynamicModule, Module } from '@nestjs/common';
import { serviceAuthProviders } from '@novum/auth';
import { BusModule } from '@novum/bus';
import { NOVUM_CONFIG, NovumConfig, publicUrl } from '@novum/common';
import { DbModule } from '@novum/db';
import { ImagesController } from './controllers/images.controller';
import { MetadefsController } from './controllers/metadefs.controller';
import { InfoController, SchemasController } from './controllers/schemas.controller';
import { VersionsController } from './controllers/versions.controller';
import { DiskInspector, QemuImgInspector } from './disk-inspector';
import { ImageFileStore } from './file-store';
import { IMAGE_BASE_URL } from './image-base-url';
import { ImageDataService } from './image-data.service';
import { ImageListService } from './image-list';
import { ImageService } from './image.service';
import { ImageStore } from './image.store';
import { MemberService } from './member.service';
import { ProjectCleanup } from './project-cleanup';

export function imagePublicUrl(config: NovumConfig): string {
  return publicUrl(config, config.ports.image, 'image');
}

/** Glance v2: images, their data in a file store under the data dir, tags, members and the import API. */
@Module({})
export class ImageModule {
  static forRoot(config: NovumConfig, validator?: unknown): DynamicModule {
    return {
      module: ImageModule,
      imports: [DbModule.forRoot(config), BusModule.forRoot({ amqpUrl: config.amqpUrl })],
      controllers: [
        VersionsController,
        SchemasController,
        InfoController,
        ImagesController,
        MetadefsController,
      ],
      providers: [
        { provide: NOVUM_CONFIG, useValue: config },
        { provide: IMAGE_BASE_URL, useValue: imagePublicUrl(config) },
        { provide: ImageFileStore, useFactory: () => new ImageFileStore(join(config.dataDir, 'images')) },
        { provide: DiskInspector, useClass: QemuImgInspector },
        ImageStore,
        ImageService,
        ImageListService,
        ImageDataService,
        MemberService,
        ProjectCleanup,
        ...serviceAuthProviders(config, validator),
      ],
    };
  }
}
