import { projectCatalog } from './token.service';

describe('projectCatalog', () => {
  const catalog = [
    { type: 'compute', endpoints: [{ interface: 'public', url: 'http://h:8774/compute/v2.1' }] },
    {
      type: 'orchestration',
      endpoints: [
        { interface: 'public', url: 'http://h:8004/heat-api/v1/$(project_id)s' },
        { interface: 'admin', url: 'http://h:8004/heat-api/v1/$(tenant_id)s' },
      ],
    },
  ];

  it("puts the token's project into endpoint URLs, as Keystone does", () => {
    const urls = projectCatalog(catalog, 'p1').flatMap((s) => s.endpoints.map((e) => e.url));
    expect(urls).toEqual([
      'http://h:8774/compute/v2.1',
      'http://h:8004/heat-api/v1/p1',
      'http://h:8004/heat-api/v1/p1',
    ]);
  });

  it('leaves out the endpoints that need a project from a token without one', () => {
    const services = projectCatalog(catalog, undefined);
    expect(services.find((s) => s.type === 'orchestration')?.endpoints).toEqual([]);
    expect(services.find((s) => s.type === 'compute')?.endpoints).toHaveLength(1);
  });
});
