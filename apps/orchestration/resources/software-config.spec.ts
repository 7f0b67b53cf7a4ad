import { JsonMap } from '@novum/hot';
import { load } from 'js-yaml';
import { CloudSession } from '../cloud';
import { server } from './nova';
import { cloudConfig, multipartMessage, multipartMime, partsOf, softwareConfig } from './software-config';
import { ActionContext, ResourceType, validateProperties } from './types';

/** Configs this "project" has, by id, as the engine's look-up finds them among the stacks' resources. */
const contextWith = (configs: Record<string, string>, cloud?: unknown): ActionContext => ({
  cloud: async () => cloud as CloudSession,
  stackName: 'app',
  stackId: 'stack-1',
  physicalName: 'app-cfg-abcdef123456',
  sleep: async () => undefined,
  softwareConfig: async (id) => configs[id],
});

const props = (type: ResourceType, given: JsonMap) => validateProperties(type, given, ['resources', 'r']);
const ID = '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';

describe('software config resources', () => {
  it('renders cloud_config as #cloud-config YAML under a new config id', async () => {
    const created = await cloudConfig.create(
      contextWith({}),
      props(cloudConfig, {
        cloud_config: { runcmd: ['echo hi'], write_files: [{ path: '/x', content: 'y' }] },
      }),
    );
    expect(created.physicalId).toMatch(/^[0-9a-f-]{36}$/);
    const config = created.data.config as string;
    expect(config.startsWith('#cloud-config\n')).toBe(true);
    expect(load(config)).toEqual({ runcmd: ['echo hi'], write_files: [{ path: '/x', content: 'y' }] });
    const state = { name: 'r', physicalId: created.physicalId, properties: {}, data: created.data };
    expect(cloudConfig.attribute(state, 'config')).toBe(config);
    expect(cloudConfig.attribute(state, 'show')).toMatchObject({
      id: created.physicalId,
      group: 'Heat::Ungrouped',
    });
    expect(cloudConfig.properties.cloud_config.updateAllowed).toBeFalsy();
  });

  it('keeps a SoftwareConfig as given, with its group', async () => {
    const created = await softwareConfig.create(
      contextWith({}),
      props(softwareConfig, { config: '#!/bin/sh\necho hi', group: 'script' }),
    );
    expect(created.data).toMatchObject({ config: '#!/bin/sh\necho hi', group: 'script' });
  });

  it('assembles parts inline, by config id and from another multi-part message', async () => {
    const inner = multipartMessage([
      { subtype: 'x-shellscript', filename: 'a.sh', content: '#!/bin/sh\necho a' },
      { subtype: 'plain', content: 'héllo' },
    ]);
    const ctx = contextWith({
      [ID]: '#cloud-config\nruncmd: [b]\n',
      '11111111-2222-3333-4444-555555555555': inner,
    });
    const created = await multipartMime.create(
      ctx,
      props(multipartMime, {
        parts: [
          { config: ID, subtype: 'cloud-config' },
          { config: '#!/bin/sh\necho inline', filename: 'inline.sh', subtype: 'x-shellscript' },
          { config: '11111111-2222-3333-4444-555555555555', type: 'multipart' },
          { config: '99999999-2222-3333-4444-555555555555' },
        ],
      }),
    );
    const message = created.data.config as string;
    expect(message).toMatch(
      /^Content-Type: multipart\/mixed; boundary="===============\d{19}=="\nMIME-Version: 1.0\n/,
    );
    expect(message).toContain('Content-Disposition: attachment; filename="inline.sh"');
    expect(message).toContain('Content-Transfer-Encoding: base64');
    expect(partsOf(message)).toEqual([
      { subtype: 'cloud-config', filename: undefined, content: '#cloud-config\nruncmd: [b]\n' },
      { subtype: 'x-shellscript', filename: 'inline.sh', content: '#!/bin/sh\necho inline' },
      { subtype: 'x-shellscript', filename: 'a.sh', content: '#!/bin/sh\necho a' },
      { subtype: 'plain', filename: undefined, content: 'héllo' },
      // An id no config has stays as the text it is.
      { subtype: 'plain', filename: undefined, content: '99999999-2222-3333-4444-555555555555' },
    ]);
    expect(partsOf('#!/bin/sh\necho not multipart')).toEqual([]);
  });
});

describe('OS::Nova::Server user_data', () => {
  /** A Nova that records the boot request and has the server ACTIVE at once. */
  const nova = () => {
    const boots: JsonMap[] = [];
    return {
      boots,
      async request(_type: string, method: string, path: string, body?: JsonMap) {
        if (path.startsWith('/flavors/detail')) return { flavors: [{ id: '1', name: 'c1.tiny' }] };
        if (method === 'POST' && path === '/servers') {
          boots.push(body!.server as JsonMap);
          return { server: { id: 'srv-1' } };
        }
        return { server: { id: 'srv-1', status: 'ACTIVE', addresses: {} } };
      },
    };
  };
  const bootWith = async (given: JsonMap, configs: Record<string, string>) => {
    const cloud = nova();
    await server.create(contextWith(configs, cloud), props(server, { flavor: 'c1.tiny', ...given }));
    return Buffer.from(cloud.boots[0].user_data as string, 'base64').toString('utf8');
  };

  it('boots RAW user data as given, or as the content of the config it names', async () => {
    expect(await bootWith({ user_data: '#!/bin/sh\necho raw' }, {})).toBe('#!/bin/sh\necho raw');
    expect(await bootWith({ user_data: ID }, { [ID]: '#cloud-config\nruncmd: [x]\n' })).toBe(
      '#cloud-config\nruncmd: [x]\n',
    );
  });

  it('boots SOFTWARE_CONFIG user data as a multi-part message of its parts, or of itself as a script', async () => {
    const script = await bootWith(
      { user_data: '#!/bin/sh\necho sc', user_data_format: 'SOFTWARE_CONFIG' },
      {},
    );
    expect(partsOf(script)).toEqual([
      { subtype: 'x-shellscript', filename: undefined, content: '#!/bin/sh\necho sc' },
    ]);
    const message = multipartMessage([{ subtype: 'cloud-config', content: '#cloud-config\n{}\n' }]);
    const parts = await bootWith({ user_data: ID, user_data_format: 'SOFTWARE_CONFIG' }, { [ID]: message });
    expect(partsOf(parts)).toEqual([
      { subtype: 'cloud-config', filename: undefined, content: '#cloud-config\n{}\n' },
    ]);
  });

  it('leaves HEAT_CFNTOOLS user data alone', async () => {
    expect(await bootWith({ user_data: ID, user_data_format: 'HEAT_CFNTOOLS' }, { [ID]: 'content' })).toBe(
      ID,
    );
  });
});
