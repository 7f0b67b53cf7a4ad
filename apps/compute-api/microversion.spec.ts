import { BadRequestError, NotAcceptableError } from '@novum/common';
import { ApiVersion, MAX_VERSION, renderView, requestedVersion, ViewStep } from './microversion';

describe('requestedVersion', () => {
  it('defaults to 2.1 and reads "latest" as the maximum', () => {
    expect(String(requestedVersion({}))).toBe('2.1');
    expect(requestedVersion({ 'openstack-api-version': 'compute latest' })).toBe(MAX_VERSION);
    expect(String(requestedVersion({ 'x-openstack-nova-api-version': 'latest' }))).toBe('2.96');
  });

  it('prefers OpenStack-API-Version for compute over the legacy header', () => {
    const headers = {
      'openstack-api-version': 'volume 3.10, compute 2.55',
      'x-openstack-nova-api-version': '2.3',
    };
    expect(String(requestedVersion(headers))).toBe('2.55');
    expect(
      String(
        requestedVersion({ 'openstack-api-version': 'volume 3.10', 'x-openstack-nova-api-version': '2.3' }),
      ),
    ).toBe('2.3');
  });

  it('answers 406 outside 2.1..2.96 and 400 for a malformed version', () => {
    expect(() => requestedVersion({ 'x-openstack-nova-api-version': '2.97' })).toThrow(NotAcceptableError);
    expect(() => requestedVersion({ 'x-openstack-nova-api-version': '2.0' })).toThrow(
      'Version 2.0 is not supported by the API. Minimum is 2.1 and maximum is 2.96.',
    );
    expect(() => requestedVersion({ 'x-openstack-nova-api-version': '3.1' })).toThrow(NotAcceptableError);
    for (const bad of ['2', '2.01', 'two', '2.1.1', '']) {
      expect(() => requestedVersion({ 'openstack-api-version': `compute ${bad}` })).toThrow(BadRequestError);
    }
  });

  it('compares numerically, not as text', () => {
    expect(ApiVersion.parse('2.10').atLeast('2.9')).toBe(true);
    expect(ApiVersion.parse('2.9').atLeast('2.10')).toBe(false);
  });
});

describe('renderView', () => {
  const steps: ViewStep<{ n: number }>[] = [
    { since: '2.1', apply: (v, x) => (v.a = x.n) },
    { since: '2.1', until: '2.75', apply: (v) => (v.old = true) },
    { since: '2.55', apply: (v) => (v.b = 'since 2.55') },
  ];

  it('applies exactly the steps of the version', () => {
    expect(renderView(steps, { n: 1 }, ApiVersion.parse('2.1'))).toEqual({ a: 1, old: true });
    expect(renderView(steps, { n: 1 }, ApiVersion.parse('2.55'))).toEqual({
      a: 1,
      old: true,
      b: 'since 2.55',
    });
    expect(renderView(steps, { n: 1 }, ApiVersion.parse('2.75'))).toEqual({ a: 1, b: 'since 2.55' });
  });
});
