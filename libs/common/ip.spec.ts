import { canonicalIp, cidrsOverlap, defaultPools, formatIp, parseCidr, parseIp, rangeSize } from './ip';

describe('ip arithmetic', () => {
  it('parses and formats IPv4 and IPv6 canonically', () => {
    expect(parseIp('10.0.0.1')).toEqual({ version: 4, value: 0x0a000001n });
    expect(canonicalIp('FE80:0:0:0:0:0:0:1')).toBe('fe80::1');
    expect(canonicalIp('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(canonicalIp('::ffff:10.0.0.1')).toBe('::ffff:a00:1');
    expect(canonicalIp('::')).toBe('::');
    expect(formatIp({ version: 6, value: (1n << 128n) - 1n })).toBe(
      'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
    );
    for (const bad of ['10.0.0.256', '10.0.0', '010.0.0.1', 'fe80::1%eth0', '1::2::3', '', 'x', 42, null]) {
      expect(parseIp(bad)).toBeUndefined();
    }
  });

  it('parses CIDRs, strictly or not', () => {
    expect(parseCidr('10.0.0.0/24')).toMatchObject({ prefix: 24, last: 0x0a0000ffn });
    expect(parseCidr('10.0.0.1/24')).toBeUndefined();
    expect(parseCidr('10.0.0.1/24', false)).toMatchObject({ network: 0x0a000000n });
    expect(parseCidr('10.0.0.0/33')).toBeUndefined();
    expect(parseCidr('fd00::/129')).toBeUndefined();
    expect(parseCidr('fd00::/8')).toMatchObject({ version: 6, prefix: 8 });
    expect(parseCidr('10.0.0.0')).toBeUndefined();
  });

  it('detects overlapping blocks of the same family only', () => {
    expect(cidrsOverlap(parseCidr('10.0.0.0/16')!, parseCidr('10.0.5.0/24')!)).toBe(true);
    expect(cidrsOverlap(parseCidr('10.0.0.0/24')!, parseCidr('10.0.1.0/24')!)).toBe(false);
    expect(cidrsOverlap(parseCidr('0.0.0.0/8')!, parseCidr('::/8')!)).toBe(false);
  });

  it('computes Neutron default pools around the gateway', () => {
    const v4 = parseCidr('10.0.0.0/28')!;
    expect(defaultPools(v4, v4.network + 1n)).toEqual([{ first: v4.network + 2n, last: v4.last - 1n }]);
    expect(rangeSize(defaultPools(v4, v4.network + 1n))).toBe(13n);
    expect(defaultPools(v4, v4.network + 5n)).toEqual([
      { first: v4.network + 1n, last: v4.network + 4n },
      { first: v4.network + 6n, last: v4.last - 1n },
    ]);
    expect(rangeSize(defaultPools(v4, undefined))).toBe(14n);
    const v6 = parseCidr('fd00::/64')!;
    expect(defaultPools(v6, v6.network + 1n)).toEqual([{ first: v6.network + 2n, last: v6.last }]);
  });
});
