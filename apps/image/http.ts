import { createHttpApp, glanceFault, ServiceDescriptor } from '@novum/common';
import { JSON_PATCH_TYPES } from './controllers/images.controller';
import { imagePublicUrl, ImageModule } from './image.module';

/** Request bodies other than image data (JSON and JSON patch) stay small. */
const JSON_BODY_LIMIT = 1024 * 1024;

export const imageService: ServiceDescriptor = {
  name: 'image',
  port: (config) => config.ports.image,
  catalogEntry: (config) => ({
    type: 'image',
    name: 'glance',
    description: 'Novum Image (Glance v2)',
    url: imagePublicUrl(config),
  }),
  create: async (config, validator) => {
    const app = await createHttpApp({
      name: 'image',
      module: ImageModule.forRoot(config, validator),
      prefix: 'image',
      faultStyle: glanceFault,
      bodyLimit: JSON_BODY_LIMIT,
    });
    const fastify = app.getHttpAdapter().getInstance();
    // Image data is left unread for the handler to stream to the store; the size cap and quota bound it.
    fastify.addContentTypeParser('application/octet-stream', (_request, _payload, done) => done(null));
    fastify.addContentTypeParser(
      JSON_PATCH_TYPES,
      { parseAs: 'string', bodyLimit: JSON_BODY_LIMIT },
      (_request, body, done) => {
        try {
          done(null, JSON.parse(body as string));
        } catch {
          done(
            Object.assign(new Error('Malformed request body: the body is not valid JSON.'), {
              statusCode: 400,
            }),
          );
        }
      },
    );
    return app;
  },
};
