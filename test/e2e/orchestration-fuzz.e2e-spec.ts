import { CloudHandle, startCloud } from './support/cloud';
import { mutate, pool, queryValue, randomBytesString, randomValue, Rng } from './support/fuzz';
import { api, issueToken } from './support/keystone';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 100_000);
const COUNT = Number(process.env.FUZZ_COUNT ?? 2000);

/** Words of HOT templates and of the stack API's bodies, for mutations that reach deep into templates. */
const HOT_KEYS = [
  'id',
  'name',
  'x',
  '__proto__',
  'constructor',
  'stack_name',
  'template',
  'parameters',
  'environment',
  'files',
  'timeout_mins',
  'disable_rollback',
  'tags',
  'heat_template_version',
  'description',
  'resources',
  'outputs',
  'conditions',
  'parameter_groups',
  'parameter_defaults',
  'resource_registry',
  'type',
  'properties',
  'depends_on',
  'condition',
  'deletion_policy',
  'metadata',
  'value',
  'default',
  'constraints',
  'get_param',
  'get_attr',
  'get_resource',
  'get_file',
  'str_replace',
  'list_join',
  'repeat',
  'if',
  'equals',
  'not',
  'yaql',
  'map_merge',
  'str_split',
  'digest',
  'wait_secs',
  'length',
  'count',
  'resource_def',
];

const VALID_TEMPLATE = {
  heat_template_version: '2021-04-16',
  description: 'fuzz',
  parameters: {
    size: { type: 'number', default: 8, constraints: [{ range: { min: 1, max: 64 } }] },
    label: { type: 'string', default: 'x' },
    flag: { type: 'boolean', default: true },
    items: { type: 'comma_delimited_list', default: 'a,b' },
    blob: { type: 'json', default: { k: 'v' } },
  },
  conditions: { on: { equals: [{ get_param: 'flag' }, true] } },
  resources: {
    secret: { type: 'OS::Heat::RandomString', properties: { length: { get_param: 'size' } } },
    value: {
      type: 'OS::Heat::Value',
      condition: 'on',
      properties: {
        value: {
          str_replace: {
            template: 'L-S',
            params: { L: { get_param: 'label' }, S: { get_attr: ['secret', 'value'] } },
          },
        },
      },
    },
    test: {
      type: 'OS::Heat::TestResource',
      depends_on: ['secret'],
      properties: { value: { list_join: [',', { get_param: 'items' }] } },
    },
    nested: { type: 'inner.yaml', properties: { name: { get_file: 'name.txt' } } },
    group: {
      type: 'OS::Heat::ResourceGroup',
      properties: { count: 2, resource_def: { type: 'OS::Heat::None' } },
    },
  },
  outputs: {
    joined: { value: { get_attr: ['value', 'value'] } },
    blob: { value: { get_param: 'blob' } },
  },
};

const FILES = {
  'inner.yaml':
    'heat_template_version: 2021-04-16\nparameters:\n  name: {type: string}\nresources:\n  r: {type: OS::Heat::Value, properties: {value: {get_param: name}}}\noutputs:\n  out: {value: {get_attr: [r, value]}}\n',
  'name.txt': 'inner-name',
};

/** Templates Heat refuses, each with (part of) the message the refusal must carry: the template path where one applies. */
const BAD_TEMPLATES: [string, unknown, Record<string, unknown>, RegExp][] = [
  [
    'malformed YAML',
    'heat_template_version: 2021-04-16\nresources: [\n  a: {type: ',
    {},
    /^Error parsing template /,
  ],
  [
    'malformed JSON',
    '{"heat_template_version": "2021-04-16", "resources": {',
    {},
    /^Error parsing template /,
  ],
  ['not a mapping', '- a\n- b\n', {}, /not a JSON object or YAML mapping/],
  ['no version', { resources: {} }, {}, /heat_template_version|version/i],
  ['unknown version', { heat_template_version: '2001-01-01', resources: {} }, {}, /2001-01-01/],
  ['unknown section', { heat_template_version: '2021-04-16', resourcez: {} }, {}, /resourcez/],
  [
    'function of another version',
    {
      heat_template_version: '2021-04-16',
      resources: { a: { type: 'OS::Heat::Value', properties: { value: { 'Fn::Join': [',', ['x']] } } } },
    },
    {},
    /resources\.a\.properties\.value.*Fn::Join/,
  ],
  [
    'function not offered',
    {
      heat_template_version: '2021-04-16',
      resources: { a: { type: 'OS::Heat::Value', properties: { value: { yaql: { expression: '1' } } } } },
    },
    {},
    /resources\.a\.properties\.value.*yaql/,
  ],
  [
    'dependency cycle',
    {
      heat_template_version: '2021-04-16',
      resources: {
        a: { type: 'OS::Heat::None', depends_on: 'b' },
        b: { type: 'OS::Heat::None', depends_on: 'c' },
        c: { type: 'OS::Heat::None', depends_on: 'a' },
      },
    },
    {},
    /Circular Dependency Found/,
  ],
  [
    'cycle through get_attr',
    {
      heat_template_version: '2021-04-16',
      resources: {
        a: { type: 'OS::Heat::Value', properties: { value: { get_attr: ['b', 'value'] } } },
        b: { type: 'OS::Heat::Value', properties: { value: { get_resource: 'a' } } },
      },
    },
    {},
    /Circular Dependency Found/,
  ],
  [
    'depends on nothing',
    {
      heat_template_version: '2021-04-16',
      resources: { a: { type: 'OS::Heat::None', depends_on: 'ghost' } },
    },
    {},
    /resources\.a.*ghost|ghost/,
  ],
  [
    'wrong parameter type',
    {
      heat_template_version: '2021-04-16',
      parameters: { n: { type: 'number' } },
      resources: { a: { type: 'OS::Heat::Value', properties: { value: { get_param: 'n' } } } },
    },
    { parameters: { n: 'not-a-number' } },
    /\bn\b/,
  ],
  [
    'parameter out of range',
    {
      heat_template_version: '2021-04-16',
      parameters: { n: { type: 'number', constraints: [{ range: { max: 3 } }] } },
      resources: {},
    },
    { parameters: { n: 9 } },
    /\bn\b/,
  ],
  [
    'missing parameter',
    {
      heat_template_version: '2021-04-16',
      parameters: { needed: { type: 'string' } },
      resources: {},
    },
    {},
    /needed/,
  ],
  [
    'missing file',
    {
      heat_template_version: '2021-04-16',
      resources: { a: { type: 'OS::Heat::Value', properties: { value: { get_file: 'missing.txt' } } } },
    },
    {},
    /missing\.txt/,
  ],
  [
    'missing template resource file',
    { heat_template_version: '2021-04-16', resources: { a: { type: 'missing.yaml' } } },
    {},
    /resources\.a.*missing\.yaml/,
  ],
  [
    'unknown resource type',
    { heat_template_version: '2021-04-16', resources: { a: { type: 'OS::Nope::Thing' } } },
    {},
    /resources\.a.*OS::Nope::Thing/,
  ],
  [
    'unknown property',
    { heat_template_version: '2021-04-16', resources: { a: { type: 'OS::Heat::None2', properties: {} } } },
    {},
    /resources\.a/,
  ],
  [
    'property of the wrong type',
    {
      heat_template_version: '2021-04-16',
      resources: { a: { type: 'OS::Heat::RandomString', properties: { length: 'long' } } },
    },
    {},
    /resources\.a\.properties.*length|length/,
  ],
  [
    'get_attr of an unknown resource',
    {
      heat_template_version: '2021-04-16',
      resources: {},
      outputs: { o: { value: { get_attr: ['ghost', 'x'] } } },
    },
    {},
    /outputs\.o|ghost/,
  ],
  [
    'resource that is not a mapping',
    { heat_template_version: '2021-04-16', resources: { a: 'OS::Heat::None' } },
    {},
    /resources\.a|\ba\b/,
  ],
  [
    'a value nested too deep',
    `{"heat_template_version": "2021-04-16", "resources": {"a": {"type": "OS::Heat::Value", "properties": {"value": ${'['.repeat(20_000)}${']'.repeat(20_000)}}}}}`,
    {},
    /./,
  ],
  [
    'functions nested too deep',
    {
      heat_template_version: '2021-04-16',
      resources: {
        a: {
          type: 'OS::Heat::Value',
          properties: {
            value: Array.from({ length: 1_000 }).reduce<unknown>(
              (inner) => ({ list_join: [',', [inner]] }),
              'x',
            ),
          },
        },
      },
    },
    {},
    /./,
  ],
  [
    'a timeout beyond any clock',
    { heat_template_version: '2021-04-16', resources: {} },
    { timeout_mins: 1e308 },
    /timeout/i,
  ],
  [
    'an alias bomb',
    'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\nheat_template_version: 2021-04-16\nresources: {}\n',
    {},
    /./,
  ],
];

/** The bad templates whose fault only shows with values or against the property schemas, which template validate (Heat's strict_validate=False) does not check. */
const VALUE_ERRORS = new Set([
  'wrong parameter type',
  'parameter out of range',
  'missing parameter',
  'property of the wrong type',
]);

interface Answer {
  status: number;
  body: any;
}

/** Heat's fault body: explanation, code (the status), title, and error.{message,type}. */
function isHeatFault(answer: Answer): boolean {
  const body = answer.body;
  return (
    typeof body === 'object' &&
    body !== null &&
    body.code === answer.status &&
    typeof body.title === 'string' &&
    typeof body.explanation === 'string' &&
    typeof body.error?.message === 'string' &&
    typeof body.error?.type === 'string'
  );
}

/** Bad templates, random and mutated bodies on every orchestration endpoint: 2xx/3xx or a 4xx in Heat's format, never a 5xx. */
describe(`orchestration fuzzing (seed ${SEED})`, () => {
  let cloud: CloudHandle;
  let root: string;
  let tokens: string[];
  let demoToken: string;
  let project: string;
  let stackPath: string;
  const failures: string[] = [];

  const call = async (
    method: string,
    path: string,
    options: { token?: string; body?: unknown; raw?: string } = {},
  ): Promise<Answer> => {
    const response = await api(root, method, path, { token: options.token ?? demoToken, ...options });
    const wellFormed = response.status < 400 || method === 'HEAD' || isHeatFault(response);
    if (response.status >= 500 || !wellFormed) {
      failures.push(
        `${method} ${path} ${String(JSON.stringify(options.body ?? options.raw)).slice(0, Number(process.env.FUZZ_BODY_CHARS ?? 400))} -> ${response.status} ${String(JSON.stringify(response.body)).slice(0, 400)}`,
      );
    }
    return response;
  };

  beforeAll(async () => {
    cloud = await startCloud({ portBase: 26500 });
    root = cloud.services.orchestration.replace(/\/v1\/.*$/, '');
    const admin = await issueToken(cloud.identityUrl, {
      user: 'admin',
      password: cloud.adminPassword,
      project: 'admin',
    });
    const demo = await issueToken(cloud.identityUrl, {
      user: 'demo',
      password: cloud.demoPassword,
      project: 'demo',
    });
    demoToken = demo.token;
    tokens = [admin.token, demo.token, demo.token];
    project = demo.body.token.project.id;
    const created = await call('POST', `/v1/${project}/stacks`, {
      body: { stack_name: 'fuzz-base', template: VALID_TEMPLATE, files: FILES },
    });
    expect(created.status).toBe(201);
    stackPath = `/v1/${project}/stacks/fuzz-base/${created.body.stack.id}`;
    for (let i = 0; ; i++) {
      const shown = await call('GET', stackPath);
      if (shown.body.stack.stack_status === 'CREATE_COMPLETE') break;
      if (i > 100 || shown.body.stack.stack_status !== 'CREATE_IN_PROGRESS')
        throw new Error(`the base stack did not complete: ${JSON.stringify(shown.body)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }, 120_000);

  afterAll(async () => {
    await cloud?.destroy();
  }, 60_000);

  it('refuses bad templates with a 400 in Heat format that names the problem, on every endpoint taking one', async () => {
    const wrong: string[] = [];
    for (const [label, template, extra, message] of BAD_TEMPLATES) {
      const body = { stack_name: `bad-${label.replace(/\W+/g, '-')}`, template, files: FILES, ...extra };
      const targets: [string, string][] = [
        ['POST', `/v1/${project}/stacks`],
        ['POST', `/v1/${project}/stacks/preview`],
        ['POST', `/v1/${project}/validate`],
        ['PUT', stackPath],
        ['PUT', `${stackPath}/preview`],
      ];
      for (const [method, path] of targets) {
        const answer = await call(method, path, { body });
        const text = String(answer.body?.error?.message);
        // validate checks the template without values (Heat's strict_validate=False): what only values
        // reveal passes there.
        if (path.endsWith('/validate') && VALUE_ERRORS.has(label) && answer.status === 200) continue;
        // Neither validate nor an update's preview takes a timeout.
        const takesTimeout = !path.endsWith('/validate') && !(method === 'PUT' && path.endsWith('/preview'));
        if (label === 'a timeout beyond any clock' && !takesTimeout && answer.status === 200) continue;
        if (answer.status !== 400 || !message.test(text))
          wrong.push(`${label}: ${method} ${path} -> ${answer.status} ${text}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(failures).toEqual([]);
    // The refused updates left the base stack as it was.
    expect((await call('GET', stackPath)).body.stack.stack_status).toBe('CREATE_COMPLETE');
  }, 300_000);

  it('mutated and random bodies on every endpoint that takes one', async () => {
    const rng = new Rng(SEED);
    const stackBody = { stack_name: 'fuzz', template: VALID_TEMPLATE, files: FILES, parameters: { size: 4 } };
    const targets: [string, string, unknown][] = [
      ['POST', `/v1/${project}/stacks`, stackBody],
      ['POST', `/v1/${project}/stacks/preview`, stackBody],
      ['POST', `/v1/${project}/validate`, { template: VALID_TEMPLATE, files: FILES }],
      ['PUT', stackPath, { template: VALID_TEMPLATE, files: FILES, parameters: { label: 'y' } }],
      ['PATCH', stackPath, { parameters: { label: 'z' }, environment: { parameter_defaults: { size: 5 } } }],
      ['PUT', `${stackPath}/preview`, { template: VALID_TEMPLATE, files: FILES }],
      ['PATCH', `${stackPath}/preview`, { parameters: { size: 6 } }],
      ['POST', `${stackPath}/resources/secret/signal`, { data: 'x', status: 'SUCCESS' }],
      ['POST', `${stackPath}/actions`, { suspend: null }],
      [
        'POST',
        `/v1/${project}/stacks`,
        {
          stack_name: 'fuzz-adopt',
          adopt_stack_data: {
            template: VALID_TEMPLATE,
            resources: {},
            environment: { parameters: { size: 4 } },
          },
          files: FILES,
        },
      ],
      ['POST', `${stackPath}/snapshots`, { name: 'fuzz-snapshot' }],
    ];
    await pool(COUNT, 6, async (i) => {
      const [method, path, body] = rng.pick(targets);
      const token = rng.pick(tokens);
      const kind = i % 10;
      if (kind === 0) await call(method, path, { token, raw: randomBytesString(rng) });
      else if (kind === 1) await call(method, path, { token, body: randomValue(rng, 0, HOT_KEYS) });
      else if (kind === 2 && typeof (body as any).template === 'object') {
        // The template as YAML-ish text with a few characters broken.
        const text = JSON.stringify((body as any).template, null, 1).split('');
        for (let n = rng.int(4); n >= 0; n--)
          text[rng.int(text.length)] = rng.pick(['{', '}', ':', '"', '\n', ' ', '[', '&', '*', '!']);
        await call(method, path, { token, body: { ...(body as object), template: text.join('') } });
      } else {
        let mutated: unknown = body;
        for (let n = 1 + rng.int(4); n > 0; n--) mutated = mutate(rng, mutated, HOT_KEYS);
        await call(method, path, { token, body: mutated });
      }
    });
    expect(failures.slice(0, 10)).toEqual([]);
  }, 600_000);

  it('random paths, methods and queries', async () => {
    const rng = new Rng(SEED + 1);
    const segments = [
      'x',
      '%00',
      '..',
      "'",
      '%F0%9F%92%A5',
      'a'.repeat(300),
      '%',
      '%E0%A4%A',
      'fuzz-base',
      stackPath.split('/').pop() as string,
      'secret',
      'OS::Heat::None',
      'heat_template_version.2021-04-16',
      'None',
    ];
    const prefixes = [
      `/v1/${project}/stacks`,
      `/v1/${project}/stacks/fuzz-base`,
      stackPath,
      `${stackPath}/resources`,
      `${stackPath}/resources/secret`,
      `${stackPath}/events`,
      `/v1/${project}/resource_types`,
      `/v1/${project}/template_versions`,
      `/v1/${project}`,
      '/v1/other-project/stacks',
    ];
    const suffixes = [
      '',
      '/resources',
      '/events',
      '/template',
      '/environment',
      '/files',
      '/outputs',
      '/metadata',
      '/functions',
      '/signal',
      '/preview',
      '/actions',
      '/snapshots',
      '/snapshots/x/restore',
      '/export',
      '/abandon',
      '/x',
    ];
    const params = [
      'limit',
      'marker',
      'sort_keys',
      'sort_dir',
      'show_deleted',
      'show_nested',
      'status',
      'name',
      'tags',
      'tags_any',
      'not_tags',
      'nested_depth',
      'resolve_outputs',
      'with_detail',
      'with_description',
      'with_condition_func',
      'resource_action',
      'x',
    ];
    await pool(COUNT, 6, async (i) => {
      const token = rng.pick(tokens);
      const query = Array.from({ length: rng.int(3) }, () => {
        const value = queryValue(randomValue(rng), 80);
        return `${rng.pick(params)}=${value}`;
      }).join('&');
      const path = `${rng.pick(prefixes)}${i % 3 === 0 ? '' : `/${rng.pick(segments)}`}${rng.pick(suffixes)}${query ? `?${query}` : ''}`;
      const method = i % 2 === 0 ? 'GET' : rng.pick(['GET', 'PUT', 'PATCH', 'DELETE', 'POST', 'HEAD']);
      const raw =
        method !== 'GET' && method !== 'HEAD' && rng.next() < 0.5 ? randomBytesString(rng) : undefined;
      // Never delete the base stack: the other tests need it.
      if (method === 'DELETE' && path.includes(stackPath.split('/').pop() as string)) return;
      if (method === 'DELETE' && path.includes('fuzz-base')) return;
      await call(method, path, { token, raw });
    });
    expect(failures.slice(0, 10)).toEqual([]);
    const health = await call('GET', `/v1/${project}/stacks?name=fuzz-base`);
    expect(health.body.stacks).toHaveLength(1);
  }, 600_000);
});
