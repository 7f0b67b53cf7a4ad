import { NotFoundError } from '@novum/common';
import { MetadefsController } from './metadefs.controller';

describe('MetadefsController', () => {
  const controller = new MetadefsController();

  it("lists an empty catalog in Glance's list shape", () => {
    expect(controller.namespaces()).toEqual({
      namespaces: [],
      first: '/v2/metadefs/namespaces',
      schema: '/v2/schemas/metadefs/namespaces',
    });
    expect(controller.resourceTypes()).toEqual({ resource_types: [] });
  });

  it("answers a namespace by name with Glance's 404", () => {
    expect(() => controller.namespace('OS::Compute::Watchdog')).toThrow(NotFoundError);
    expect(() => controller.namespace('OS::Compute::Watchdog')).toThrow(
      'Metadata definition namespace=OS::Compute::Watchdog was not found.',
    );
  });
});
