import { nftCanCheck, nftCheck } from '../testing/nft';
import { renderRouterNat, RouterSpec } from './router-nat';

const router = (overrides: Partial<RouterSpec> = {}): RouterSpec => ({
  id: 'r1',
  interfaces: [
    {
      portId: 'p1',
      networkId: 'n1',
      macAddress: 'fa:16:3e:00:00:01',
      addresses: ['10.0.0.1/24', 'fd00::1/64'],
    },
    { portId: 'p2', networkId: 'n2', macAddress: 'fa:16:3e:00:00:02', addresses: ['10.1.0.1/24'] },
  ],
  gateway: {
    portId: 'g1',
    networkId: 'ext',
    macAddress: 'fa:16:3e:00:00:03',
    addresses: ['172.24.4.3/24'],
    nexthop: '172.24.4.1',
  },
  snat: true,
  floatingIps: [{ floating: '172.24.4.10', fixed: '10.0.0.5' }],
  routes: [],
  ...overrides,
});

describe('renderRouterNat', () => {
  it('sends a floating IP to its fixed address and its fixed address out as it, and NATs the IPv4 subnets to the gateway', () => {
    expect(renderRouterNat(router(), 'qg-g1')).toBe(
      [
        'table ip novum_router',
        'delete table ip novum_router',
        'table ip novum_router {',
        '  chain prerouting {',
        '    type nat hook prerouting priority dstnat; policy accept;',
        '    ip daddr 172.24.4.10 dnat to 10.0.0.5',
        '  }',
        '  chain postrouting {',
        '    type nat hook postrouting priority srcnat; policy accept;',
        '    oifname "qg-g1" ip saddr 10.0.0.5 snat to 172.24.4.10',
        '    oifname "qg-g1" ip saddr { 10.0.0.0/24, 10.1.0.0/24 } snat to 172.24.4.3',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('has no source NAT without enable_snat, and no NAT at all without a gateway', () => {
    expect(renderRouterNat(router({ snat: false }), 'qg-g1')).not.toContain('snat to 172.24.4.3');
    expect(renderRouterNat(router({ snat: false }), 'qg-g1')).toContain('snat to 172.24.4.10');
    const inside = renderRouterNat(router({ gateway: undefined }), 'none');
    expect(inside).not.toContain('dnat');
    expect(inside).not.toContain('snat');
  });

  // The kernel's own parser, where this runs as root with nft: a check, not a load.
  (nftCanCheck ? it : it.skip)('is a script nft accepts', () => {
    expect(() => nftCheck(renderRouterNat(router(), 'qg-g1'))).not.toThrow();
  });
});
