import { DependencyGraph } from './graph';
import { HotError } from './errors';
import { HotTemplate } from './template';
import { templateVersions } from './versions';

const stack = { name: 'teststack', id: 'stack-id', projectId: 'project-id' };

function bind(text: string, params: Record<string, unknown> = {}) {
  return HotTemplate.parse(text).bind({ stack, params: params as never });
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(HotError);
    return (error as Error).message;
  }
  throw new Error('expected an error');
}

describe('HOT parsing', () => {
  it('accepts dates and release names, and keeps dates as strings', () => {
    expect(HotTemplate.parse('heat_template_version: 2013-05-23\n').version).toBe('2013-05-23');
    expect(HotTemplate.parse('heat_template_version: wallaby\n').version).toBe('2021-04-16');
    expect(HotTemplate.parse('{"heat_template_version": "2016-10-14"}').version).toBe('2016-10-14');
    expect(templateVersions().find((v) => v.version.endsWith('2018-08-31'))?.aliases).toEqual([
      'heat_template_version.rocky',
    ]);
  });

  it('refuses bad versions, unknown sections and malformed YAML with Heat messages', () => {
    expect(errorOf(() => HotTemplate.parse('heat_template_version: 2012-12-12\n'))).toMatch(
      /^The template version is invalid: "heat_template_version: 2012-12-12". "heat_template_version" should be one of: 2013-05-23, /,
    );
    expect(errorOf(() => HotTemplate.parse('heat_template_version: 2015-04-30\nfoo: {}\n'))).toBe(
      'The template section is invalid: foo',
    );
    expect(errorOf(() => HotTemplate.parse('heat_template_version: 2015-04-30\nconditions: {}\n'))).toBe(
      'The template section is invalid: conditions',
    );
    expect(errorOf(() => HotTemplate.parse('resources: {}\n'))).toBe('Template format version not found.');
    expect(errorOf(() => HotTemplate.parse('heat_template_version: [\n'))).toMatch(
      /^Error parsing template \[root stack\] /,
    );
    expect(errorOf(() => HotTemplate.parse('- a\n- b\n'))).toBe(
      'The template is not a JSON object or YAML mapping.',
    );
  });

  it('checks resource definitions and names their path', () => {
    expect(
      errorOf(() =>
        HotTemplate.parse('heat_template_version: 2015-04-30\nresources:\n  r:\n    properties: {}\n'),
      ),
    ).toBe('resources.r: Resource r is missing "type"');
    // A null type (found by the orchestration fuzzing test: it reached the type registry and a 500).
    expect(
      errorOf(() =>
        HotTemplate.parse('heat_template_version: 2015-04-30\nresources:\n  r:\n    type: null\n'),
      ),
    ).toBe('resources.r: Resource r type type must be string');
    expect(
      errorOf(() =>
        HotTemplate.parse(
          'heat_template_version: 2015-04-30\nresources:\n  r:\n    type: OS::Heat::None\n    bogus: 1\n',
        ),
      ),
    ).toBe('resources.r: Invalid keyword(s) inside a resource definition: bogus');
    expect(
      errorOf(() =>
        HotTemplate.parse('heat_template_version: 2015-04-30\noutputs:\n  o:\n    description: x\n'),
      ),
    ).toBe('Output validation error: outputs.o: Each output definition must contain a value key.');
  });
});

describe('parameters', () => {
  const template = `
heat_template_version: 2018-08-31
parameters:
  name:
    type: string
    default: abc
    constraints:
      - length: {min: 2, max: 5}
      - allowed_pattern: "[a-z]+"
  count:
    type: number
    default: 3
    constraints:
      - range: {min: 1, max: 10}
        description: count must be between 1 and 10
  flag: {type: boolean, default: "yes"}
  items: {type: comma_delimited_list, default: "a,b,c"}
  data: {type: json, default: {"k": [1, 2]}}
  size:
    type: string
    constraints:
      - allowed_values: [small, large]
`;

  it('converts values to their types and applies defaults', () => {
    const bound = bind(template, { size: 'small', count: '7' });
    expect(bound.values).toEqual({
      name: 'abc',
      count: 7,
      flag: true,
      items: ['a', 'b', 'c'],
      data: { k: [1, 2] },
      size: 'small',
    });
  });

  it('reports constraint violations as Heat does', () => {
    expect(errorOf(() => bind(template, { size: 'small', name: 'abcdefg' }))).toBe(
      "Parameter 'name' is invalid: length (7) is out of range (min: 2, max: 5)",
    );
    expect(errorOf(() => bind(template, { size: 'small', name: 'AB' }))).toBe(
      `Parameter 'name' is invalid: "AB" does not match pattern "[a-z]+"`,
    );
    expect(errorOf(() => bind(template, { size: 'small', count: 11 }))).toBe(
      "Parameter 'count' is invalid: count must be between 1 and 10",
    );
    expect(errorOf(() => bind(template, { size: 'medium' }))).toBe(
      `Parameter 'size' is invalid: "medium" is not an allowed value ["small", "large"]`,
    );
    expect(errorOf(() => bind(template, { size: 'small', count: 'x' }))).toBe(
      `Parameter 'count' is invalid: Value "x" is invalid for data type "number".`,
    );
    expect(errorOf(() => bind(template))).toBe('The Parameter (size) was not provided.');
    expect(errorOf(() => bind(template, { size: 'small', nope: 1 }))).toBe(
      'The Parameter (nope) was not defined in template.',
    );
  });

  it('refuses bad schemas', () => {
    expect(
      errorOf(() => HotTemplate.parse('heat_template_version: 2015-04-30\nparameters:\n  p: {type: str}\n')),
    ).toBe('parameters.p: Invalid type (str)');
    expect(
      errorOf(() => HotTemplate.parse('heat_template_version: 2015-04-30\nparameters:\n  p: {default: 1}\n')),
    ).toBe('parameters.p: Missing parameter type for parameter: p');
  });
});

describe('intrinsic functions', () => {
  const evalIn = (version: string, snippet: string, params = '') => {
    const bound = bind(
      `heat_template_version: ${version}\n${params}resources:\n  r:\n    type: OS::Heat::Value\n    properties:\n      value: ${snippet}\n`,
    );
    return bound.properties('r').value;
  };

  it('evaluates the string and list functions', () => {
    expect(
      evalIn(
        '2021-04-16',
        '{str_replace: {template: "a $x b", params: {"$x": {get_param: "OS::stack_name"}}}}',
      ),
    ).toBe('a teststack b');
    expect(evalIn('2021-04-16', '{list_join: [",", [a, b], [c]]}')).toBe('a,b,c');
    expect(evalIn('2021-04-16', '{list_concat_unique: [[a, b], [b, c]]}')).toEqual(['a', 'b', 'c']);
    expect(evalIn('2021-04-16', '{list_concat: [[a, b], [b, c]]}')).toEqual(['a', 'b', 'b', 'c']);
    expect(evalIn('2021-04-16', '{map_merge: [{a: 1}, {b: 2}, {a: 3}]}')).toEqual({ a: 3, b: 2 });
    expect(
      evalIn('2021-04-16', '{map_replace: [{k1: v1, k2: v2}, {keys: {k1: K1}, values: {v2: V2}}]}'),
    ).toEqual({
      K1: 'v1',
      k2: 'V2',
    });
    expect(evalIn('2021-04-16', '{str_split: [",", "a,b,c", 1]}')).toBe('b');
    expect(evalIn('2021-04-16', '{digest: [sha256, abc]}')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(evalIn('2021-04-16', '{filter: [[b], [a, b, c]]}')).toEqual(['a', 'c']);
    expect(evalIn('2021-04-16', '{repeat: {for_each: {"%x%": [1, 2]}, template: "n-%x%"}}')).toEqual([
      'n-1',
      'n-2',
    ]);
    expect(
      evalIn(
        '2021-04-16',
        '{repeat: {for_each: {"%a%": [x, y], "%b%": [1, 2]}, template: "%a%%b%", permutations: false}}',
      ),
    ).toEqual(['x1', 'y2']);
    expect(
      evalIn('2021-04-16', '{make_url: {scheme: http, host: h, port: 80, path: "/p", query: {a: b}}}'),
    ).toBe('http://h:80/p?a=b');
    expect(evalIn('2021-04-16', '{contains: [a, [a, b]]}')).toBe(true);
  });

  it('follows get_param paths', () => {
    const params = 'parameters:\n  p: {type: json, default: {"a": [10, 20]}}\n';
    expect(evalIn('2021-04-16', '{get_param: [p, a, 1]}', params)).toBe(20);
    expect(evalIn('2021-04-16', '{get_param: [p, missing]}', params)).toBe('');
  });

  it('applies the strict str_replace variants', () => {
    expect(() => evalIn('2021-04-16', '{str_replace_strict: {template: "abc", params: {zz: 1}}}')).toThrow(
      'resources.r.properties.value: The following params were not found in the template: zz',
    );
    expect(() => evalIn('2021-04-16', '{str_replace_vstrict: {template: "abc", params: {a: ""}}}')).toThrow(
      'str_replace_vstrict has an undefined or empty value for param a',
    );
  });

  it("refuses functions outside their template's version", () => {
    expect(() => evalIn('2015-04-30', '{map_merge: [{a: 1}]}')).toThrow(
      'resources.r.properties.value: The function "map_merge" is not supported in this version of HOT.',
    );
    expect(() => evalIn('2016-10-14', '{list_concat: [[a]]}')).toThrow(/list_concat" is not supported/);
  });

  it('evaluates conditions and if', () => {
    const bound = bind(`
heat_template_version: 2018-08-31
parameters:
  env: {type: string, default: prod}
conditions:
  is_prod: {equals: [{get_param: env}, prod]}
  not_prod: {not: is_prod}
  both: {and: [is_prod, {not: not_prod}]}
resources:
  a:
    type: OS::Heat::Value
    condition: not_prod
    properties: {value: 1}
  b:
    type: OS::Heat::Value
    properties:
      value: {if: [both, yes, no]}
`);
    expect(bound.resources().map((r) => r.name)).toEqual(['b']);
    expect(bound.properties('b').value).toBe('yes');
  });

  it('resolves resources through the bound state and checks attributes', () => {
    const t = HotTemplate.parse(`
heat_template_version: 2018-08-31
resources:
  a: {type: OS::Heat::RandomString}
  b:
    type: OS::Heat::Value
    properties:
      value: {list_join: ["-", [{get_resource: a}, {get_attr: [a, value]}, {get_attr: [a, info, x, 0]}]]}
outputs:
  out: {value: {get_attr: [b, value]}}
  broken: {value: {get_attr: [a, nope]}}
`);
    const bound = t.bind({
      stack,
      resource: (name) => ({
        ref: `${name}-id`,
        attribute: (attr) => (attr === 'info' ? { x: ['deep'] } : `${name}.${attr}`),
        allAttributes: () => ({}),
      }),
      checkAttribute: (_name, _type, attr) => {
        if (attr === 'nope') throw new Error('no');
      },
    });
    expect(bound.properties('b').value).toBe('a-id-a.value-deep');
    expect(bound.output(bound.outputs()[0])).toEqual({ value: 'b.value' });
    expect(bound.output(bound.outputs()[1]).error).toBe('The Referenced Attribute (a nope) is incorrect.');
  });

  it('refuses references to unknown resources with their path', () => {
    const bound = bind(
      'heat_template_version: 2018-08-31\nresources:\n  a:\n    type: OS::Heat::Value\n    properties: {value: {get_resource: zz}}\n',
    );
    expect(errorOf(() => bound.graph())).toBe(
      'resources.a.properties: The specified reference "zz" (in a) is incorrect.',
    );
  });
});

describe('dependency graph', () => {
  it('orders requirements first and groups independent resources into waves', () => {
    const graph = new DependencyGraph(
      new Map([
        ['server', ['port', 'key']],
        ['port', ['subnet']],
        ['subnet', ['net']],
        ['net', []],
        ['key', []],
      ]),
    );
    const order = graph.creationOrder();
    expect(order.indexOf('net')).toBeLessThan(order.indexOf('subnet'));
    expect(order.indexOf('port')).toBeLessThan(order.indexOf('server'));
    expect(graph.waves()).toEqual([['net', 'key'], ['subnet'], ['port'], ['server']]);
    expect(graph.dependents('port')).toEqual(['server']);
  });

  it('finds cycles, through depends_on too', () => {
    expect(
      () =>
        new DependencyGraph(
          new Map([
            ['a', ['b']],
            ['b', ['c']],
            ['c', ['a']],
          ]),
        ),
    ).toThrow('Circular Dependency Found: a -> b -> c -> a');
    const bound = bind(`
heat_template_version: 2018-08-31
resources:
  a: {type: OS::Heat::None, depends_on: b}
  b: {type: OS::Heat::Value, properties: {value: {get_resource: a}}}
`);
    expect(errorOf(() => bound.graph())).toMatch(/^Circular Dependency Found: /);
  });
});
