import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nftCanCheck, nftCheck } from '../testing/nft';
import {
  buildRuleset,
  FirewallPort,
  MARK_TAG,
  MetadataDevice,
  renderChange,
  renderFull,
  renderRuleset,
  RouterDevice,
  Ruleset,
  ruleMatch,
  SecurityRule,
  TunnelDevice,
} from './firewall';

const GROUP = 'aaaaaaaa-1111-2222-3333-444444444444';
const rule = (overrides: Partial<SecurityRule>): SecurityRule => ({
  direction: 'ingress',
  ethertype: 'IPv4',
  protocol: null,
  portRangeMin: null,
  portRangeMax: null,
  remoteIpPrefix: null,
  remoteGroupId: null,
  ...overrides,
});
const DEFAULT_GROUP_RULES = [
  rule({ direction: 'egress' }),
  rule({ direction: 'egress', ethertype: 'IPv6' }),
  rule({ remoteGroupId: GROUP }),
  rule({ ethertype: 'IPv6', remoteGroupId: GROUP }),
];
const secured: FirewallPort = {
  devname: 'novumv111111111',
  bridge: 'novumbr11111111',
  macAddress: 'fa:16:3e:00:00:01',
  ips: ['10.0.0.5', 'fd00::5'],
  filter: {
    portSecurityEnabled: true,
    allowedAddressPairs: [
      { ipAddress: '10.0.0.16/28' },
      { ipAddress: '10.0.1.9', macAddress: 'fa:16:3e:00:00:99' },
    ],
    rules: [
      ...DEFAULT_GROUP_RULES,
      rule({ protocol: 'tcp', portRangeMin: 22, portRangeMax: 80, remoteIpPrefix: '192.168.7.7/24' }),
      rule({ protocol: 'icmp', portRangeMin: 8, portRangeMax: 0, remoteIpPrefix: '0.0.0.0/0' }),
    ],
    remoteGroupMembers: { [GROUP]: ['10.0.0.5', '10.0.0.6', 'fd00::5', '10.0.0.6'] },
  },
};
const open: FirewallPort = {
  devname: 'novumv222222222',
  bridge: 'novumbr11111111',
  macAddress: 'fa:16:3e:00:00:02',
  ips: ['10.0.0.6'],
  filter: { portSecurityEnabled: false, allowedAddressPairs: [], rules: [], remoteGroupMembers: {} },
};
const unknown: FirewallPort = {
  devname: 'novumt333333333',
  bridge: 'novumbr22222222',
  macAddress: 'fa:16:3e:00:00:03',
  ips: ['10.1.0.3'],
};

/** The lines of one chain of the rendered script. */
function chainOf(script: string, family: 'bridge' | 'inet', name: string): string[] {
  const table = script.slice(script.indexOf(`table ${family} novum_t {`));
  const start = table.indexOf(`  chain ${name} {`);
  if (start < 0) throw new Error(`no chain ${name}`);
  const body = table.slice(start).split('\n');
  return body.slice(1, body.indexOf('  }')).map((line) => line.trim());
}

describe('security group rules as nft matches', () => {
  it.each([
    [rule({ direction: 'egress' }), 'meta nfproto ipv4'],
    [rule({ remoteGroupId: GROUP }), `meta nfproto ipv4 ip saddr @rg_aaaaaaaa11112222_4`],
    [
      rule({ direction: 'egress', ethertype: 'IPv6', remoteGroupId: GROUP }),
      'meta nfproto ipv6 ip6 daddr @rg_aaaaaaaa11112222_6',
    ],
    [
      rule({ protocol: 'tcp', portRangeMin: 22, portRangeMax: 22, remoteIpPrefix: '10.2.3.124/24' }),
      'meta nfproto ipv4 ip saddr 10.2.3.0/24 meta l4proto 6 th dport 22',
    ],
    [
      rule({ protocol: 'udp', portRangeMin: 1000, portRangeMax: 2000 }),
      'meta nfproto ipv4 meta l4proto 17 th dport 1000-2000',
    ],
    [rule({ protocol: '6' }), 'meta nfproto ipv4 meta l4proto 6'],
    [
      rule({ protocol: 'icmp', portRangeMin: 8, portRangeMax: 0 }),
      'meta nfproto ipv4 meta l4proto icmp icmp type 8 icmp code 0',
    ],
    [rule({ protocol: 'icmp', portRangeMin: 3 }), 'meta nfproto ipv4 meta l4proto icmp icmp type 3'],
    [rule({ ethertype: 'IPv6', protocol: 'icmp' }), 'meta nfproto ipv6 meta l4proto ipv6-icmp'],
    [
      rule({ ethertype: 'IPv6', protocol: 'ipv6-icmp', portRangeMin: 128 }),
      'meta nfproto ipv6 meta l4proto ipv6-icmp icmpv6 type 128',
    ],
    [rule({ direction: 'egress', remoteIpPrefix: '0.0.0.0/0' }), 'meta nfproto ipv4'],
    [rule({ direction: 'egress', remoteIpPrefix: '8.8.8.8/32' }), 'meta nfproto ipv4 ip daddr 8.8.8.8'],
    [rule({ protocol: 'vrrp' }), 'meta nfproto ipv4 meta l4proto 112'],
  ])('%o → %s', (input, expected) => {
    expect(ruleMatch(input)).toBe(expected);
  });

  it('drops what cannot apply: a prefix of the other family, an unknown protocol', () => {
    expect(ruleMatch(rule({ remoteIpPrefix: 'fd00::/64' }))).toBeUndefined();
    expect(ruleMatch(rule({ protocol: 'bogus' }))).toBeUndefined();
  });
});

/** The elements line of one named set or map of the rendered script. */
function elementsOf(script: string, family: 'bridge' | 'inet', name: string): string {
  const table = script.slice(script.indexOf(`table ${family} novum_t {`));
  const start = table.search(new RegExp(`  (set|map) ${name} \\{`));
  if (start < 0) throw new Error(`no set ${name}`);
  const body = table.slice(start).split('\n');
  const line = body.slice(1, body.indexOf('  }')).find((l) => l.trim().startsWith('elements = '));
  return line?.trim() ?? '';
}

describe('renderRuleset', () => {
  const script = renderRuleset('novum_t', [unknown, open, secured]);

  it('replaces both tables in one transaction, and with no ports only removes them', () => {
    expect(script.split('\n').slice(0, 4)).toEqual([
      'table bridge novum_t',
      'delete table bridge novum_t',
      'table inet novum_t',
      'delete table inet novum_t',
    ]);
    expect(renderRuleset('novum_t', [])).toBe(
      'table bridge novum_t\ndelete table bridge novum_t\ntable inet novum_t\ndelete table inet novum_t\n',
    );
  });

  it('numbers the ports by device name and marks their traffic both ways', () => {
    // novumt333.. < novumv111.. < novumv222..
    expect(chainOf(script, 'bridge', 'prerouting')[1]).toBe('iifname vmap @from_devices');
    expect(elementsOf(script, 'bridge', 'from_devices')).toBe(
      'elements = { "novumt333333333" : goto from_1, "novumv111111111" : goto from_2, "novumv222222222" : goto from_3 }',
    );
    expect(chainOf(script, 'bridge', 'from_2')[0]).toBe(
      `meta mark set 0x${((MARK_TAG | (2 << 12)) >>> 0).toString(16)}`,
    );
    expect(chainOf(script, 'bridge', 'to_3')).toEqual(['meta mark set meta mark | 0x00000003']);
    expect(chainOf(script, 'bridge', 'input')).toContain('iifname @host_closed drop');
    expect(elementsOf(script, 'bridge', 'host_closed')).toBe(
      'elements = { "novumt333333333", "novumv111111111", "novumv222222222" }',
    );
  });

  it('lets only the port’s own MAC and addresses (and its allowed address pairs) out', () => {
    const from = chainOf(script, 'bridge', 'from_2');
    expect(from).toContain('ether saddr != { fa:16:3e:00:00:01, fa:16:3e:00:00:99 } drop');
    expect(from).toContain('ip saddr != { 10.0.0.16/28, 10.0.0.5, 10.0.1.9 } drop');
    expect(from).toContain('arp saddr ip != { 10.0.0.16/28, 10.0.0.5, 10.0.1.9 } drop');
    expect(from).toContain('ip6 saddr != { fd00::5, fe80::f816:3eff:fe00:1 } drop');
    expect(from.at(-1)).toBe('accept');
  });

  it('does not filter a port without port security, and fails closed for a port it knows nothing of', () => {
    expect(chainOf(script, 'bridge', 'from_3')).toEqual(['meta mark set 0xa5003000', 'accept']);
    expect(chainOf(script, 'inet', 'egress_3')).toEqual(['return']);
    expect(chainOf(script, 'inet', 'ingress_3')).toEqual(['accept']);
    expect(chainOf(script, 'inet', 'egress_1').at(-1)).toBe('drop');
    expect(chainOf(script, 'inet', 'ingress_1').filter((line) => line.endsWith('accept'))).toHaveLength(1);
  });

  it('turns the rules into egress (return to the base chain) and ingress (accept) rules', () => {
    expect(chainOf(script, 'inet', 'egress_2')).toEqual([
      expect.stringContaining('icmpv6 type { nd-neighbor-solicit'),
      'meta nfproto ipv4 udp sport 68 udp dport 67 return',
      'meta nfproto ipv4 return',
      'meta nfproto ipv6 return',
      'drop',
    ]);
    expect(chainOf(script, 'inet', 'ingress_2')).toEqual([
      expect.stringContaining('nd-router-advert } accept'),
      'meta nfproto ipv4 ip saddr @rg_aaaaaaaa11112222_4 accept',
      'meta nfproto ipv6 ip6 saddr @rg_aaaaaaaa11112222_6 accept',
      'meta nfproto ipv4 ip saddr 192.168.7.0/24 meta l4proto 6 th dport 22-80 accept',
      'meta nfproto ipv4 meta l4proto icmp icmp type 8 icmp code 0 accept',
      'drop',
    ]);
  });

  it('keeps the remote groups’ members in sets, and conntrack before the port chains', () => {
    expect(script).toContain('elements = { 10.0.0.5, 10.0.0.6 }');
    expect(script).toContain('elements = { fd00::5 }');
    const forward = chainOf(script, 'inet', 'forward');
    expect(forward.slice(1, 5)).toEqual([
      'iifname != @bridges return',
      'meta mark & 0xff000000 != 0xa5000000 drop',
      'ct state invalid drop',
      'ct state established,related accept',
    ]);
    expect(forward.at(-1)).toBe('drop');
    expect(forward.slice(-3, -1)).toEqual([
      'meta mark & 0x00fff000 vmap @egress_marks',
      'meta mark & 0x00000fff vmap @ingress_marks',
    ]);
    expect(elementsOf(script, 'inet', 'egress_marks')).toBe(
      'elements = { 0x00001000 : jump egress_1, 0x00002000 : jump egress_2, 0x00003000 : jump egress_3 }',
    );
    expect(script).toContain('elements = { "novumbr11111111", "novumbr22222222" }');
  });

  it('lets guests reach only TCP port 80 of the metadata address through a metadata device', () => {
    const withMetadata = renderRuleset(
      'novum_t',
      [unknown, open, secured],
      [{ devname: 'novumm111111111', bridge: 'novumbr11111111' }],
    );
    expect(elementsOf(withMetadata, 'bridge', 'from_devices')).toContain(
      '"novumm111111111" : goto from_metadata',
    );
    expect(chainOf(withMetadata, 'bridge', 'from_metadata')).toEqual([
      'meta mark set 0xa5fff000',
      'arp saddr ip 169.254.169.254 accept',
      'ip saddr 169.254.169.254 tcp sport 80 accept',
      'drop',
    ]);
    expect(chainOf(withMetadata, 'bridge', 'to_metadata')).toEqual(['meta mark set meta mark | 0x00000fff']);
    expect(elementsOf(withMetadata, 'bridge', 'host_closed')).toContain('"novumm111111111" }');
    const forward = chainOf(withMetadata, 'inet', 'forward');
    // Replies pass by conntrack; the namespace opens nothing itself; a guest's egress rules apply first.
    expect(forward.indexOf('meta mark & 0x00fff000 0x00fff000 drop')).toBe(
      forward.indexOf('ct state established,related accept') + 1,
    );
    expect(elementsOf(withMetadata, 'inet', 'ingress_marks')).toContain('0x00000fff : jump metadata_in');
    expect(chainOf(withMetadata, 'inet', 'metadata_in')).toEqual([
      'meta nfproto ipv4 ip daddr 169.254.169.254 tcp dport 80 accept',
      'drop',
    ]);
    expect(script).not.toContain('metadata_in');
    expect(script).not.toContain('novumm');
  });

  it("hands a tunnel's traffic to the local ports' ingress rules, sends the ports' traffic into it after their egress, and keeps it from the metadata devices", () => {
    const metadata = [{ devname: 'novumm111111111', bridge: 'novumbr11111111' }];
    const tunnels = [{ devname: 'novumx111111111', bridge: 'novumbr11111111' }];
    const withTunnel = renderRuleset('novum_t', [unknown, open, secured], metadata, tunnels);
    expect(elementsOf(withTunnel, 'bridge', 'from_devices')).toContain(
      '"novumx111111111" : goto from_tunnel',
    );
    expect(chainOf(withTunnel, 'bridge', 'from_tunnel')).toEqual(['meta mark set 0xa5ffe000', 'accept']);
    expect(chainOf(withTunnel, 'bridge', 'to_tunnel')).toEqual(['meta mark set meta mark | 0x00000ffe']);
    expect(chainOf(withTunnel, 'bridge', 'forward').slice(1)).toEqual([
      'jump crossing',
      'oifname vmap @to_devices',
    ]);
    expect(chainOf(withTunnel, 'bridge', 'crossing')).toEqual([
      'iifname { "novumx111111111" } oifname { "novumm111111111" } drop',
      'iifname { "novumm111111111" } oifname { "novumx111111111" } drop',
    ]);
    expect(elementsOf(withTunnel, 'bridge', 'to_devices')).toContain('"novumx111111111" : goto to_tunnel');
    expect(elementsOf(withTunnel, 'bridge', 'host_closed')).toContain('"novumx111111111"');
    // No egress chain for the tunnel's source index (its host applied it); the destination's ingress applies.
    expect(elementsOf(withTunnel, 'inet', 'egress_marks')).not.toContain('0x00ffe000');
    expect(elementsOf(withTunnel, 'inet', 'ingress_marks')).toContain('0x00000ffe : accept');
    expect(elementsOf(withTunnel, 'inet', 'ingress_marks')).toContain('0x00000001 : jump ingress_1');
    expect(renderRuleset('novum_t', [unknown, open, secured], metadata)).not.toContain('tunnel');
    expect(
      chainOf(renderRuleset('novum_t', [unknown, open, secured], metadata), 'bridge', 'crossing'),
    ).toEqual([]);
  });

  it("hands what a router forwards to the destination port's ingress rules, like a tunnel, and keeps it from the metadata devices", () => {
    const metadata = [{ devname: 'novumm111111111', bridge: 'novumbr11111111' }];
    const routers = [{ devname: 'novumr111111111', bridge: 'novumbr11111111' }];
    const withRouter = renderRuleset('novum_t', [unknown, open, secured], metadata, [], routers);
    expect(elementsOf(withRouter, 'bridge', 'from_devices')).toContain(
      '"novumr111111111" : goto from_router',
    );
    expect(chainOf(withRouter, 'bridge', 'from_router')).toEqual(['meta mark set 0xa5ffd000', 'accept']);
    expect(chainOf(withRouter, 'bridge', 'to_router')).toEqual(['meta mark set meta mark | 0x00000ffd']);
    expect(chainOf(withRouter, 'bridge', 'crossing')).toEqual([
      'iifname { "novumr111111111" } oifname { "novumm111111111" } drop',
      'iifname { "novumm111111111" } oifname { "novumr111111111" } drop',
    ]);
    expect(elementsOf(withRouter, 'inet', 'ingress_marks')).toContain('0x00000ffd : accept');
    expect(elementsOf(withRouter, 'inet', 'egress_marks')).not.toContain('0x00ffd000');
  });

  // The kernel's own parser, where this runs as root with nft (ops/test.sh installs it): a check, not a load.
  (nftCanCheck ? it : it.skip)('is a script nft accepts', () => {
    expect(() =>
      nftCheck(
        renderRuleset(
          'novum_t',
          [unknown, open, secured],
          [{ devname: 'novumm111111111', bridge: 'novumbr11111111' }],
          [{ devname: 'novumx111111111', bridge: 'novumbr11111111' }],
          [{ devname: 'novumr111111111', bridge: 'novumbr11111111' }],
        ),
      ),
    ).not.toThrow();
  });
});

/** A small deterministic generator, so that a failure names a sequence that can be run again. */
function generator(seed: number) {
  let state = seed >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x100000000;
  };
  return {
    below: (n: number) => Math.floor(next() * n),
    chance: (p: number) => next() < p,
  };
}

const GROUPS = ['aaaaaaaa-1111-2222-3333-444444444444', 'bbbbbbbb-1111-2222-3333-444444444444'];

interface Host {
  ports: FirewallPort[];
  metadata: MetadataDevice[];
  tunnels: TunnelDevice[];
  routers: RouterDevice[];
}

/** A host's next state: ports come and go, filters and their groups' members change, devices appear. */
function step(random: ReturnType<typeof generator>, host: Host, serial: { n: number }): Host {
  let ports = [...host.ports];
  const removals = random.below(3);
  for (let i = 0; i < removals && ports.length; i++) ports.splice(random.below(ports.length), 1);
  const additions = random.below(4);
  for (let i = 0; i < additions; i++) {
    const n = ++serial.n;
    const group = GROUPS[random.below(GROUPS.length)];
    ports.push({
      devname: `novumv${String(n).padStart(9, '0')}`,
      bridge: `novumbr${random.below(2)}`,
      macAddress: `fa:16:3e:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`,
      ips: [`10.0.${n >> 8}.${n & 255}`],
      filter: random.chance(0.1)
        ? undefined
        : {
            portSecurityEnabled: !random.chance(0.1),
            allowedAddressPairs: random.chance(0.2) ? [{ ipAddress: `10.9.${n & 255}.0/28` }] : [],
            rules: [
              rule({ direction: 'egress' }),
              rule({ remoteGroupId: group }),
              ...(random.chance(0.5) ? [rule({ protocol: 'tcp', portRangeMin: 22, portRangeMax: 22 })] : []),
            ],
            remoteGroupMembers: {},
          },
    });
  }
  // Each group's members: the addresses of the ports in it, as the network service would send them.
  const members: Record<string, string[]> = {};
  for (const port of ports) {
    const group = port.filter?.rules.find((r) => r.remoteGroupId)?.remoteGroupId;
    if (group) (members[group] ??= []).push(...port.ips);
  }
  ports = ports.map((port) =>
    port.filter ? { ...port, filter: { ...port.filter, remoteGroupMembers: members } } : port,
  );
  const bridges = [...new Set(ports.map((port) => port.bridge))];
  return {
    ports,
    metadata: random.chance(0.7) ? bridges.map((bridge) => ({ devname: `novumm${bridge}`, bridge })) : [],
    tunnels: random.chance(0.3) ? bridges.map((bridge) => ({ devname: `novumx${bridge}`, bridge })) : [],
    routers: random.chance(0.3) ? [{ devname: 'novumr000000001', bridge: 'novumbr0' }] : [],
  };
}

/** Both tables as nft lists them, as JSON with every set's elements sorted (the kernel's order is its own). */
function listed(table: string): unknown[] {
  const out: unknown[] = [];
  for (const family of ['bridge', 'inet']) {
    const text = execFileSync('nft', ['-j', 'list', 'table', family, table], { encoding: 'utf8' });
    const items = (JSON.parse(text) as { nftables: Record<string, Record<string, unknown>>[] }).nftables;
    for (const item of items) {
      const [kind, body] = Object.entries(item)[0];
      if (kind === 'metainfo') continue;
      const copy: Record<string, unknown> = { ...body, table: 'T' };
      if (kind === 'table') copy.name = 'T';
      delete copy.handle;
      if (Array.isArray(copy.elem)) copy.elem = copy.elem.map((e) => JSON.stringify(e)).sort();
      out.push({ [kind]: copy });
    }
  }
  return out.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

// Loads real tables (named novum_spec_<pid>) into this host's kernel: root with nft only.
(nftCanCheck ? describe : describe.skip)('renderChange, loaded into the kernel', () => {
  const table = `novum_spec_${process.pid}`;
  const reference = `novum_ref_${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'novum-nft-'));
  const load = (script: string) => {
    writeFileSync(join(dir, 'rules.nft'), script);
    execFileSync('nft', ['-f', join(dir, 'rules.nft')], { stdio: 'pipe' });
  };
  afterAll(() => {
    for (const name of [table, reference]) {
      for (const family of ['bridge', 'inet']) {
        try {
          execFileSync('nft', ['delete', 'table', family, name], { stdio: 'ignore' });
        } catch {
          // not there
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([1, 2, 3])(
    'gives, step after step, the tables a whole load would (seed %i)',
    (seed) => {
      const random = generator(seed * 7919);
      const serial = { n: 0 };
      let host: Host = { ports: [], metadata: [], tunnels: [], routers: [] };
      let loaded: Ruleset | undefined;
      load(renderFull(buildRuleset(table, [])));
      let changes = 0;
      for (let i = 0; i < 40; i++) {
        host = step(random, host, serial);
        const next = buildRuleset(table, host.ports, host.metadata, host.tunnels, host.routers, loaded);
        const change = renderChange(loaded, next);
        if (change && loaded?.indices.size && next.indices.size) changes++;
        if (change) load(change);
        loaded = next;
        if (!next.indices.size) continue;
        // The same ports and indices loaded whole, under another name.
        const whole = renderFull({ ...next, table: reference });
        load(whole);
        expect(listed(table)).toEqual(listed(reference));
        expect(
          renderChange(
            next,
            buildRuleset(table, host.ports, host.metadata, host.tunnels, host.routers, next),
          ),
        ).toBe('');
      }
      expect(changes).toBeGreaterThan(20);
    },
    60_000,
  );

  it('keeps a port its index while it stays, and gives a new port the lowest free one', () => {
    const port = (n: number): FirewallPort => ({
      devname: `novumv${n}`,
      bridge: 'novumbr0',
      macAddress: `fa:16:3e:00:00:0${n}`,
      ips: [`10.0.0.${n}`],
    });
    const first = buildRuleset(table, [port(1), port(2), port(3)]);
    expect([...first.indices]).toEqual([
      ['novumv1', 1],
      ['novumv2', 2],
      ['novumv3', 3],
    ]);
    const second = buildRuleset(table, [port(3), port(4)], [], [], [], first);
    expect(second.indices.get('novumv3')).toBe(3);
    expect(second.indices.get('novumv4')).toBe(1);
    const change = renderChange(first, second);
    expect(change).not.toContain('delete table');
    expect(change).toContain(`delete chain bridge ${table} from_2`);
    expect(change).toContain(`flush chain bridge ${table} from_1`);
  });
});
