import { checkMtu, maxMtu, randomSegmentationId, requestedSegment } from './segments';

describe('provider segments', () => {
  it('defaults project networks to VXLAN with an id to allocate', () => {
    expect(requestedSegment({})).toEqual({ type: 'vxlan', physicalNetwork: '', segmentationId: undefined });
    const id = randomSegmentationId('vlan');
    expect(id).toBeGreaterThanOrEqual(1);
    expect(id).toBeLessThanOrEqual(4094);
  });

  it('validates each type as ML2 does', () => {
    expect(requestedSegment({ 'provider:network_type': 'flat', 'provider:physical_network': 'p' })).toEqual({
      type: 'flat',
      physicalNetwork: 'p',
      segmentationId: 0,
    });
    expect(() => requestedSegment({ 'provider:network_type': 'flat' })).toThrow('physical_network required');
    expect(() =>
      requestedSegment({
        'provider:network_type': 'flat',
        'provider:physical_network': 'p',
        'provider:segmentation_id': 3,
      }),
    ).toThrow('segmentation_id specified for flat');
    expect(() =>
      requestedSegment({
        'provider:network_type': 'vlan',
        'provider:segmentation_id': 5000,
        'provider:physical_network': 'p',
      }),
    ).toThrow('out of range (1 through 4094)');
    expect(requestedSegment({ 'provider:network_type': 'vlan' })).toMatchObject({
      physicalNetwork: 'physnet1',
    });
    expect(() =>
      requestedSegment({ 'provider:network_type': 'vxlan', 'provider:physical_network': 'p' }),
    ).toThrow('specified for VXLAN network');
    expect(() =>
      requestedSegment({ 'provider:network_type': 'local', 'provider:segmentation_id': 1 }),
    ).toThrow();
  });

  it("gives overlay networks the MTU their encapsulation leaves of the physical network's, and no more", () => {
    expect(maxMtu('vxlan')).toBe(1450);
    expect(maxMtu('geneve')).toBe(1442);
    expect(maxMtu('gre')).toBe(1458);
    expect(maxMtu('flat')).toBe(1500);
    expect(maxMtu('vlan')).toBe(1500);
    expect(() => checkMtu('vxlan', 1450)).not.toThrow();
    expect(() => checkMtu('vxlan', 1451)).toThrow('Requested MTU is too big, maximum is 1450');
    expect(() => checkMtu('flat', 1501)).toThrow('maximum is 1500');
  });
});
