import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nftCanCheck } from '../testing/nft';
import {
  buildRuleset,
  FirewallPort,
  MetadataDevice,
  renderChange,
  renderFull,
  Ruleset,
  RouterDevice,
  SecurityRule,
  TunnelDevice,
} from './firewall';

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
