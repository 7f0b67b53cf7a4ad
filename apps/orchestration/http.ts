import { createHttpApp, ServiceDescriptor } from '@novum/common';
import { OrchestrationModule, orchestrationRootUrl } from './orchestration.module';
import { heatFault } from './views';

export const orchestrationService: ServiceDescriptor = {
  name: 'orchestration',
  port: (config) => config.ports.orchestration,
  catalogEntry: (config) => ({
    type: 'orchestration',
    name: 'heat',
    description: 'Novum Orchestration (Heat v1)',
    url: `${orchestrationRootUrl(config)}/v1/$(project_id)s`,
  }),
  create: async (config, validator) => {
    const app = await createHttpApp({
      name: 'orchestration',
      module: OrchestrationModule.forRoot(config, validator),
      prefix: 'heat-api',
      faultStyle: heatFault,
    });
    // Heat's JSON responses say `application/json` without a charset (heat-tempest-plugin checks the header).
    app
      .getHttpAdapter()
      .getInstance()
      .addHook('onSend', async (_request, reply, payload) => {
        if (reply.getHeader('content-type') === 'application/json; charset=utf-8')
          reply.header('content-type', 'application/json');
        return payload;
      });
    return app;
  },
};
