import { HotError, HotTemplate, Json, JsonMap } from '@novum/hot';
import { CloudError, CloudSession } from '../cloud';
import { validateStack } from '../engine';
import { dockerContainer, dockerMetadata, splitCommand, zunContainer, zunMetadata } from './containers';
import { flavor, serverGroup } from './nova-placement';
import { ActionContext, ResourceState, validateProperties } from './types';

const validate = (resources: JsonMap) =>
  validateStack(
    HotTemplate.parse({ heat_template_version: '2021-04-16', resources }).bind({
      stack: { name: 's', id: 'sid', projectId: 'p' },
      params: {},
      parameterDefaults: {},
      files: {},
      resource: () => undefined,
      checkAttribute: () => undefined,
    }),
    { parameters: {}, parameter_defaults: {}, resource_registry: {} },
  );

const refusal = (resources: JsonMap): HotError => {
  try {
    validate(resources);
  } catch (error) {
    if (error instanceof HotError) return error;
    throw error;
  }
  throw new Error('the template was accepted');
};

const docker = (properties: JsonMap) => ({ c: { type: 'DockerInc::Docker::Container', properties } });
const zun = (properties: JsonMap) => ({ z: { type: 'OS::Zun::Container', properties } });

describe('container resources: validation', () => {
  it("accepts a container within Docker's default isolation", () => {
    expect(() =>
      validate({
        ...docker({
          image: 'busybox',
          cmd: ['echo', 'hi'],
          env: ['A=1'],
          cap_add: ['NET_BIND_SERVICE'],
          cap_drop: ['ALL'],
          read_only: true,
          privileged: false,
          port_specs: ['80', '53/udp'],
          restart_policy: { Name: 'no' },
        }),
        ...zun({ image: 'busybox', command: 'echo "a b"', cpu: 0.5, memory: 64, restart_policy: 'no' }),
      }),
    ).not.toThrow();
  });

  it.each([
    [{ privileged: true }, 'resources.c.properties.privileged', 'isolation'],
    [{ cap_add: ['CHOWN', 'SYS_ADMIN'] }, 'resources.c.properties.cap_add[1]', 'SYS_ADMIN'],
    [{ cap_add: ['ALL'] }, 'resources.c.properties.cap_add[0]', 'isolation'],
    [{ devices: [{ path_on_host: '/dev/kvm' }] }, 'resources.c.properties.devices', 'isolation'],
    [{ volumes: { '/': '/host' } }, 'resources.c.properties.volumes', 'isolation'],
    [{ volumes_from: ['other'] }, 'resources.c.properties.volumes_from', 'isolation'],
    [{ docker_endpoint: 'tcp://10.0.0.1:2375' }, 'resources.c.properties.docker_endpoint', 'isolation'],
    [{ cap_add: ['NOT_A_CAP'] }, 'resources.c.properties.cap_add[0]', 'allowed value'],
    [{ env: ['NOEQUALS'] }, 'resources.c.properties.env[0]', 'NAME=value'],
    [{ port_specs: ['http'] }, 'resources.c.properties.port_specs[0]', 'port specification'],
    [{ restart_policy: { Name: 'always' } }, 'resources.c.properties.restart_policy.Name', 'not supported'],
    [{ cmd: ['x'.repeat(300)] }, 'resources.c.properties.cmd', '255'],
  ])('refuses %j at %s', (properties, path, words) => {
    const error = refusal(docker({ image: 'busybox', ...(properties as JsonMap) }));
    expect(error.message).toContain(path);
    expect(error.message).toContain(words);
  });

  it.each([
    [{ restart_policy: 'sometimes' }, 'resources.z.properties.restart_policy', 'is invalid'],
    [{ restart_policy: 'on-failure:3' }, 'resources.z.properties.restart_policy', 'not supported'],
    [{ mounts: [{ mount_path: '/data', volume_size: 1 }] }, 'resources.z.properties.mounts', 'not supported'],
    [{ image_driver: 'docker' }, 'resources.z.properties.image_driver', 'Glance'],
    [{ command: 'echo "unclosed' }, 'resources.z.properties.command', 'quotation'],
    [{ workdir: 'relative' }, 'resources.z.properties.workdir', 'absolute'],
    [{ memory: 0 }, 'resources.z.properties.memory', 'greater than 0'],
  ])('refuses the Zun container %j at %s', (properties, path, words) => {
    const error = refusal(zun({ image: 'busybox', ...(properties as JsonMap) }));
    expect(error.message).toContain(path);
    expect(error.message).toContain(words);
  });

  it('checks values that come from functions once they are evaluated', () => {
    expect(() =>
      validateProperties(dockerContainer, { image: 'busybox', privileged: 'yes' }, [
        'resources',
        'c',
        'properties',
      ]),
    ).toThrow('resources.c.properties.privileged');
  });

  it('checks flavors and server groups', () => {
    expect(refusal({ f: { type: 'OS::Nova::Flavor', properties: { ram: 0, vcpus: 1 } } }).message).toContain(
      'resources.f.properties.ram',
    );
    expect(
      refusal({
        g: { type: 'OS::Nova::ServerGroup', properties: { policies: ['affinity', 'anti-affinity'] } },
      }).message,
    ).toContain('Exactly one policy');
    expect(
      refusal({ g: { type: 'OS::Nova::ServerGroup', properties: { policies: ['nearby'] } } }).message,
    ).toContain('resources.g.properties.policies[0]');
  });
});

describe('container resources: mapping to server metadata', () => {
  it('splits a command line as a shell does', () => {
    expect(splitCommand(`sh -c 'echo "$HOME" done'  a\\ b "c\\"d"`)).toEqual([
      'sh',
      '-c',
      'echo "$HOME" done',
      'a b',
      'c"d',
    ]);
    expect(splitCommand('')).toEqual([]);
    expect(splitCommand("''")).toEqual(['']);
  });

  it('maps Docker properties to the novum:* keys the container driver reads', () => {
    const props = validateProperties(
      dockerContainer,
      {
        image: 'busybox',
        cmd: ['sh', '-c', 'echo hi'],
        env: ['A=1'],
        user: '65534',
        read_only: true,
        cap_drop: ['NET_RAW'],
      },
      [],
    );
    expect(dockerMetadata(props)).toEqual({
      'novum:cmd': '["sh","-c","echo hi"]',
      'novum:env': '["A=1"]',
      'novum:user': '65534',
      'novum:read_only': 'true',
      'novum:cap_drop': '["NET_RAW"]',
    });
    expect(dockerMetadata(validateProperties(dockerContainer, { image: 'busybox' }, []))).toEqual({});
  });

  it('maps Zun properties: labels as metadata, command split, environment as NAME=value', () => {
    const props = validateProperties(
      zunContainer,
      {
        image: 'busybox',
        command: "sh -c 'echo $GREETING'",
        environment: { GREETING: 'hello', N: 3 },
        workdir: '/tmp',
        labels: { tier: 'web' },
      },
      [],
    );
    expect(zunMetadata(props)).toEqual({
      tier: 'web',
      'novum:cmd': '["sh","-c","echo $GREETING"]',
      'novum:env': '["GREETING=hello","N=3"]',
      'novum:workdir': '/tmp',
    });
  });
});

/** A cloud that answers from a table of routes and records every request. */
class FakeCloud {
  calls: { method: string; path: string; body?: any; headers: Record<string, string> }[] = [];
  consoleOutput = 'hello from c\nsecond line\n';
  images: Record<string, JsonMap> = {
    busybox: { id: 'img-1', name: 'busybox', container_format: 'docker' },
    cirros: { id: 'img-2', name: 'cirros', container_format: 'bare' },
  };
  serverStatus = 'ACTIVE';
  projectId = 'project-1';
  /** Nova's policy lets this owner make flavors (an admin). */
  canMakeFlavors = false;
  serverDeleted = false;

  async request<T>(
    type: string,
    method: string,
    path: string,
    body?: any,
    headers: Record<string, string> = {},
  ) {
    this.calls.push({ method, path, body, headers });
    return (await this.answer(type, method, path)) as T;
  }

  private async answer(type: string, method: string, path: string): Promise<Json> {
    const flavors: JsonMap[] = [
      { id: '1', name: 'm1.tiny', ram: 512, vcpus: 1, disk: 1, extra_specs: {} },
      {
        id: '12',
        name: 'c1.small',
        ram: 1024,
        vcpus: 1,
        disk: 10,
        extra_specs: { 'novum:driver': 'container' },
      },
      {
        id: '11',
        name: 'c1.tiny',
        ram: 256,
        vcpus: 1,
        disk: 1,
        extra_specs: { 'novum:driver': 'container' },
      },
      {
        id: '13',
        name: 'c1.duo',
        ram: 1024,
        vcpus: 2,
        disk: 10,
        extra_specs: { 'novum:driver': 'container' },
      },
    ];
    if (path.startsWith('/flavors/detail')) return { flavors };
    if (type === 'image' && path.startsWith('/v2/images/')) {
      const image = this.images[decodeURIComponent(path.slice('/v2/images/'.length))];
      if (!image) throw new CloudError(404, 'no image', 'image');
      return image;
    }
    if (method === 'POST' && path === '/flavors') {
      if (!this.canMakeFlavors) throw new CloudError(403, 'Policy does not allow it.', 'compute');
      return { flavor: { id: 'own-1' } };
    }
    if (path.startsWith('/flavors/own-1')) return {};
    if (method === 'POST' && path === '/servers') return { server: { id: 'srv-1' } };
    if (method === 'DELETE' && path === '/servers/srv-1') {
      this.serverDeleted = true;
      return null;
    }
    if (path === '/servers/srv-1' && !this.serverDeleted)
      return { server: { id: 'srv-1', name: 'web', status: this.serverStatus } };
    if (path === '/servers/srv-1/os-interface')
      return {
        interfaceAttachments: [
          {
            port_id: 'port-1',
            net_id: 'net-1',
            mac_addr: 'fa:16:3e:00:00:01',
            fixed_ips: [{ subnet_id: 'sub-1', ip_address: '10.0.0.5' }],
          },
        ],
      };
    if (path === '/v2.0/networks/net-1') return { network: { id: 'net-1', name: 'private' } };
    if (path === '/v2.0/subnets/sub-1')
      return { subnet: { id: 'sub-1', cidr: '10.0.0.0/24', gateway_ip: '10.0.0.1' } };
    if (path === '/servers/srv-1/action') return { output: this.consoleOutput };
    throw new CloudError(404, `no route ${method} ${path}`, type);
  }
}

const contextFor = (cloud: FakeCloud): ActionContext =>
  ({
    cloud: async () => cloud as unknown as CloudSession,
    stackName: 's',
    stackId: 'sid',
    physicalName: 's-c-abc',
    sleep: async () => undefined,
  }) as unknown as ActionContext;

describe('container resources: create and attributes', () => {
  it('creates a Docker container as a server on the smallest fitting container flavor', async () => {
    const cloud = new FakeCloud();
    const props = validateProperties(
      dockerContainer,
      {
        image: 'busybox',
        name: 'web',
        memory: 300 * 1024 * 1024,
        cmd: ['echo', 'hi'],
        port_specs: ['80', '53/udp'],
      },
      [],
    );
    const result = await dockerContainer.create(contextFor(cloud), props);
    expect(result.physicalId).toBe('srv-1');
    const post = cloud.calls.find((c) => c.method === 'POST' && c.path === '/servers')!;
    // 300 MiB: c1.tiny (256) is too small, c1.small (1024 MiB, 1 vCPU) is the smallest that holds it.
    expect(post.body).toEqual({
      server: { name: 'web', imageRef: 'img-1', flavorRef: '12', metadata: { 'novum:cmd': '["echo","hi"]' } },
    });
    expect(post.headers).toEqual({});

    const state: ResourceState = { name: 'c', physicalId: 'srv-1', properties: props, data: result.data };
    expect(dockerContainer.attribute(state, 'network_ip')).toBe('10.0.0.5');
    expect(dockerContainer.attribute(state, 'network_gateway')).toBe('10.0.0.1');
    expect(dockerContainer.attribute(state, 'logs')).toBe('hello from c\nsecond line\n');
    expect(dockerContainer.attribute(state, 'logs_head')).toBe('hello from c');
    expect(dockerContainer.attribute(state, 'logs_tail')).toBe('second line');
    expect(dockerContainer.attribute(state, 'network_tcp_ports')).toBe('80');
    expect(dockerContainer.attribute(state, 'network_udp_ports')).toBe('53');
    expect(dockerContainer.attribute(state, 'network_info')).toMatchObject({
      IPAddress: '10.0.0.5',
      IPPrefixLen: 24,
      Gateway: '10.0.0.1',
      MacAddress: 'fa:16:3e:00:00:01',
    });
    expect(dockerContainer.attribute(state, 'info')).toMatchObject({
      Id: 'srv-1',
      State: { Running: true },
      HostConfig: { Privileged: false },
    });
  });

  it('asks Nova 2.90 for a host name apart from the server name', async () => {
    const cloud = new FakeCloud();
    const props = validateProperties(dockerContainer, { image: 'busybox', hostname: 'db1' }, []);
    await dockerContainer.create(contextFor(cloud), props);
    const post = cloud.calls.find((c) => c.method === 'POST' && c.path === '/servers')!;
    expect(post.headers).toEqual({ 'OpenStack-API-Version': 'compute 2.90' });
    expect(post.body.server).toMatchObject({
      name: 's-c-abc',
      hostname: 'db1',
      networks: 'auto',
      flavorRef: '11',
    });
  });

  it('creates a Zun container with its vCPUs, networks and labels; addresses by network name and id', async () => {
    const cloud = new FakeCloud();
    const props = validateProperties(
      zunContainer,
      { image: 'busybox', cpu: 1.5, memory: 512, networks: [{ network: 'net-1' }], labels: { app: 'x' } },
      [],
    );
    const result = await zunContainer.create(contextFor(cloud), props);
    const post = cloud.calls.find((c) => c.method === 'POST' && c.path === '/servers')!;
    expect(post.body.server).toMatchObject({
      flavorRef: '13',
      networks: [{ uuid: 'net-1' }],
      metadata: { app: 'x' },
    });
    const state: ResourceState = { name: 'z', physicalId: 'srv-1', properties: props, data: result.data };
    const entry = {
      addr: '10.0.0.5',
      version: 4,
      port: 'port-1',
      subnet_id: 'sub-1',
      preserve_on_delete: false,
    };
    expect(zunContainer.attribute(state, 'addresses')).toEqual({ 'net-1': [entry], private: [entry] });
    expect(zunContainer.attribute(state, 'name')).toBe('web');
  });

  it('waits for the first logs of a Docker container only: a Zun container has no log attributes', async () => {
    const consoleReads = (cloud: FakeCloud) =>
      cloud.calls.filter((c) => c.path === '/servers/srv-1/action' && 'os-getConsoleOutput' in c.body).length;
    const silentDocker = Object.assign(new FakeCloud(), { consoleOutput: '' });
    await dockerContainer.create(
      contextFor(silentDocker),
      validateProperties(dockerContainer, { image: 'busybox' }, []),
    );
    expect(consoleReads(silentDocker)).toBe(20);
    const silentZun = Object.assign(new FakeCloud(), { consoleOutput: '' });
    await zunContainer.create(
      contextFor(silentZun),
      validateProperties(zunContainer, { image: 'busybox' }, []),
    );
    expect(consoleReads(silentZun)).toBe(0);
  });

  it('makes a private container flavor of the size when none fits and the owner may, and removes it with the server', async () => {
    const cloud = new FakeCloud();
    cloud.canMakeFlavors = true;
    const props = validateProperties(zunContainer, { image: 'busybox', memory: 4096, cpu: 3 }, []);
    const result = await zunContainer.create(contextFor(cloud), props);
    const requests = () =>
      cloud.calls
        .filter((c) => c.method !== 'GET' && !c.path.endsWith('/action') && !c.path.endsWith('os-interface'))
        .map((c) => `${c.method} ${c.path} ${JSON.stringify(c.body ?? null)}`);
    expect(requests()).toEqual([
      'POST /flavors {"flavor":{"name":"s-c-abc","ram":4096,"vcpus":3,"disk":1,"os-flavor-access:is_public":false}}',
      'POST /flavors/own-1/os-extra_specs {"extra_specs":{"novum:driver":"container"}}',
      'POST /servers {"server":{"name":"s-c-abc","imageRef":"img-1","flavorRef":"own-1","metadata":{}}}',
    ]);
    expect(cloud.calls.find((c) => c.path === '/flavors/own-1/action')?.body).toEqual({
      addTenantAccess: { tenant: 'project-1' },
    });
    expect(result.data.own_flavor).toBe('own-1');
    cloud.calls = [];
    await zunContainer.delete(contextFor(cloud), {
      name: 'z',
      physicalId: 'srv-1',
      properties: props,
      data: result.data,
    });
    expect(requests()).toEqual(['DELETE /servers/srv-1 null', 'DELETE /flavors/own-1 null']);
  });

  it('removes the flavor it made when the container fails', async () => {
    const cloud = new FakeCloud();
    cloud.canMakeFlavors = true;
    cloud.serverStatus = 'ERROR';
    const error = await zunContainer
      .create(contextFor(cloud), validateProperties(zunContainer, { image: 'busybox', memory: 4096 }, []))
      .catch((e) => e);
    expect(error.physicalId).toBe('srv-1');
    expect(cloud.calls.some((c) => c.method === 'DELETE' && c.path === '/flavors/own-1')).toBe(true);
  });

  it('refuses an image that is no container image, and a size no container flavor has', async () => {
    const cloud = new FakeCloud();
    await expect(
      dockerContainer.create(contextFor(cloud), validateProperties(dockerContainer, { image: 'cirros' }, [])),
    ).rejects.toThrow('not a container image');
    await expect(
      zunContainer.create(
        contextFor(cloud),
        validateProperties(zunContainer, { image: 'busybox', memory: 4096 }, []),
      ),
    ).rejects.toThrow('No flavor with novum:driver=container has 4096 MiB of RAM and 1 vCPUs.');
    expect(cloud.calls.some((c) => c.path === '/servers')).toBe(false);
  });

  it('keeps the server id of a container that went to ERROR, so that a rollback deletes it', async () => {
    const cloud = new FakeCloud();
    cloud.serverStatus = 'ERROR';
    const error = await dockerContainer
      .create(contextFor(cloud), validateProperties(dockerContainer, { image: 'busybox' }, []))
      .catch((e) => e);
    expect(error.message).toContain('ERROR');
    expect(error.physicalId).toBe('srv-1');
  });
});

describe('OS::Nova::Flavor and OS::Nova::ServerGroup', () => {
  it('creates a private flavor with extra specs and project access', async () => {
    const cloud = new FakeCloud();
    cloud.request = async function (this: FakeCloud, _type, method, path, body, headers = {}) {
      this.calls.push({ method, path, body, headers });
      return (path === '/flavors' ? { flavor: { id: 'f-1' } } : {}) as any;
    };
    const props = validateProperties(
      flavor,
      { ram: 128, vcpus: 1, is_public: false, tenants: ['p2'], extra_specs: { 'novum:driver': 'container' } },
      [],
    );
    const result = await flavor.create(contextFor(cloud), props);
    expect(result.physicalId).toBe('f-1');
    expect(cloud.calls.map((c) => `${c.method} ${c.path} ${JSON.stringify(c.body)}`)).toEqual([
      'POST /flavors {"flavor":{"name":"s-c-abc","ram":128,"vcpus":1,"disk":0,"swap":0,"OS-FLV-EXT-DATA:ephemeral":0,"rxtx_factor":1,"os-flavor-access:is_public":false}}',
      'POST /flavors/f-1/os-extra_specs {"extra_specs":{"novum:driver":"container"}}',
      'POST /flavors/f-1/action {"addTenantAccess":{"tenant":"p2"}}',
    ]);
    const state = { name: 'f', physicalId: 'f-1', properties: props, data: result.data };
    expect(flavor.attribute(state, 'extra_specs')).toEqual({ 'novum:driver': 'container' });
    expect(flavor.attribute(state, 'is_public')).toBe(false);

    cloud.calls = [];
    const next = validateProperties(
      flavor,
      { ...props, tenants: ['p3'], extra_specs: { 'quota:cpu_shares': 512 } },
      [],
    );
    await flavor.update!(contextFor(cloud), state, next);
    expect(cloud.calls.map((c) => `${c.method} ${c.path} ${JSON.stringify(c.body ?? null)}`)).toEqual([
      'DELETE /flavors/f-1/os-extra_specs/novum%3Adriver null',
      'POST /flavors/f-1/os-extra_specs {"extra_specs":{"quota:cpu_shares":"512"}}',
      'POST /flavors/f-1/action {"addTenantAccess":{"tenant":"p3"}}',
      'POST /flavors/f-1/action {"removeTenantAccess":{"tenant":"p2"}}',
    ]);
  });

  it('creates a server group with policies, or at 2.64 with rules', async () => {
    const cloud = new FakeCloud();
    cloud.request = async function (this: FakeCloud, _type, method, path, body, headers = {}) {
      this.calls.push({ method, path, body, headers });
      return { server_group: { id: 'g-1', ...body.server_group } } as any;
    };
    const plain = await serverGroup.create(
      contextFor(cloud),
      validateProperties(serverGroup, { name: 'g' }, []),
    );
    expect(plain.physicalId).toBe('g-1');
    expect(cloud.calls[0]).toMatchObject({
      body: { server_group: { name: 'g', policies: ['anti-affinity'] } },
      headers: {},
    });
    await serverGroup.create(
      contextFor(cloud),
      validateProperties(serverGroup, { policies: ['anti-affinity'], rules: { max_server_per_host: 2 } }, []),
    );
    expect(cloud.calls[1]).toMatchObject({
      body: { server_group: { name: 's-c-abc', policy: 'anti-affinity', rules: { max_server_per_host: 2 } } },
      headers: { 'OpenStack-API-Version': 'compute 2.64' },
    });
  });
});
