import { aggregateExtraSpecsPass, extraSpecMatches, zoneFromMetadata } from './aggregates';

const meta = (entries: Record<string, string[]>) =>
  new Map(Object.entries(entries).map(([k, v]) => [k, new Set(v)]));

describe('aggregate helpers', () => {
  it('reads the zone from aggregate metadata, nova by default', () => {
    expect(zoneFromMetadata(undefined)).toBe('nova');
    expect(zoneFromMetadata(meta({ ssd: ['true'] }))).toBe('nova');
    expect(zoneFromMetadata(meta({ availability_zone: ['az1'] }))).toBe('az1');
  });

  it("matches extra spec operators as Nova's extra_specs_ops", () => {
    expect(extraSpecMatches('true', 'true')).toBe(true);
    expect(extraSpecMatches('false', 'true')).toBe(false);
    expect(extraSpecMatches('4', '>= 2')).toBe(true);
    expect(extraSpecMatches('1', '>= 2')).toBe(false);
    expect(extraSpecMatches('4', '= 4')).toBe(true);
    expect(extraSpecMatches('abc', 's== abc')).toBe(true);
    expect(extraSpecMatches('fast ssd', '<in> ssd')).toBe(true);
    expect(extraSpecMatches('b', '<or> a <or> b')).toBe(true);
    expect(extraSpecMatches('c', '<or> a <or> b')).toBe(false);
    expect(extraSpecMatches('x', '>= 2')).toBe(false);
  });

  it('passes a host only when its aggregates meet every scoped or unscoped spec', () => {
    const specs = { 'aggregate_instance_extra_specs:ssd': 'true', 'novum:driver': 'kvm' };
    expect(aggregateExtraSpecsPass(specs, meta({ ssd: ['true', 'false'] }))).toBe(true);
    expect(aggregateExtraSpecsPass(specs, meta({ ssd: ['false'] }))).toBe(false);
    expect(aggregateExtraSpecsPass(specs, undefined)).toBe(false);
    // Other scopes are not this filter's business.
    expect(aggregateExtraSpecsPass({ 'novum:driver': 'kvm', 'hw:cpu_policy': 'dedicated' }, undefined)).toBe(
      true,
    );
    // Unscoped keys are checked too, as in Nova.
    expect(aggregateExtraSpecsPass({ gpu: 'yes' }, meta({ gpu: ['yes'] }))).toBe(true);
    expect(aggregateExtraSpecsPass({ gpu: 'yes' }, meta({}))).toBe(false);
  });
});
