import { NotFoundError } from '@novum/common';
import { list } from './listing';

const items = [
  {
    id: 'a',
    name: 'x',
    shared: true,
    created_at: '1',
    fixed_ips: [{ subnet_id: 's', ip_address: '10.0.0.2' }],
  },
  { id: 'b', name: 'y', shared: false, created_at: '2', fixed_ips: [] },
  {
    id: 'c',
    name: 'x',
    shared: false,
    created_at: '3',
    fixed_ips: [{ subnet_id: 't', ip_address: '10.0.0.3' }],
  },
];
const options = {
  collection: 'things',
  url: 'http://h/v2.0/things',
  attributes: ['id', 'name', 'shared', 'created_at', 'fixed_ips'],
  notFound: (id: string) => new NotFoundError(`Thing ${id} could not be found.`),
};
const ids = (body: any) => body.things.map((t: any) => t.id);

describe('Neutron list semantics', () => {
  it('filters by attribute, with repeated values as alternatives and booleans in any case', () => {
    expect(ids(list(items, { name: 'x' }, options))).toEqual(['a', 'c']);
    expect(ids(list(items, { id: ['a', 'b'] }, options))).toEqual(['a', 'b']);
    expect(ids(list(items, { shared: 'True' }, options))).toEqual(['a']);
    expect(ids(list(items, { fixed_ips: 'ip_address=10.0.0.3' }, options))).toEqual(['c']);
    expect(ids(list(items, { 'not-tags': 'x' }, options))).toEqual(['a', 'b', 'c']);
    expect(ids(list(items, { tags: 'x' }, options))).toEqual([]);
    expect(() => list(items, { colour: 'red' }, options)).toThrow(
      '[colour] is invalid attribute for filtering',
    );
  });

  it('sorts, picks fields and pages with links', () => {
    expect(ids(list(items, { sort_key: 'name', sort_dir: 'desc' }, options))).toEqual(['b', 'a', 'c']);
    expect(list(items, { fields: ['id', 'name'], limit: '1' }, options).things).toEqual([
      { id: 'a', name: 'x' },
    ]);
    const page = list(items, { limit: '2', marker: 'a' }, options);
    expect(ids(page)).toEqual(['b', 'c']);
    expect(page.things_links).toEqual([
      { rel: 'previous', href: 'http://h/v2.0/things?limit=2&marker=b&page_reverse=True' },
    ]);
    const back = list(items, { limit: '1', marker: 'c', page_reverse: 'True' }, options);
    expect(ids(back)).toEqual(['b']);
    expect(() => list(items, { marker: 'zz' }, options)).toThrow('Thing zz could not be found.');
    expect(() => list(items, { limit: 'x' }, options)).toThrow('Limit must be an integer');
    expect(() => list(items, { sort_dir: 'up', sort_key: 'id' }, options)).toThrow(
      'invalid value for sort_dir',
    );
  });
});
