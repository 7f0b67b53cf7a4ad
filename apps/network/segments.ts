import { randomInt } from 'node:crypto';
import { BadRequestError } from '@novum/common';

/** The physical network VLAN and flat networks land on unless an admin names another. */
export const DEFAULT_PHYSICAL_NETWORK = 'physnet1';
/** Project networks are VXLAN, as Neutron's ML2 `tenant_network_types` default in devstack. */
export const DEFAULT_NETWORK_TYPE = 'vxlan';

const RANGES: Record<string, [number, number]> = {
  vlan: [1, 4094],
  vxlan: [1, 16_777_215],
  geneve: [1, 16_777_215],
  gre: [1, 16_777_215],
};

export interface Segment {
  type: string;
  /** '' for networks without one (tunnels, local). */
  physicalNetwork: string;
  /** Undefined: to be allocated from the type's range. */
  segmentationId: number | null | undefined;
}

function invalid(message: string): BadRequestError {
  return new BadRequestError(`Invalid input for operation: ${message}`, 'InvalidInput');
}

/** Neutron ML2's validation of provider attributes, per network type. */
export function requestedSegment(input: {
  'provider:network_type'?: string;
  'provider:physical_network'?: string;
  'provider:segmentation_id'?: number;
}): Segment {
  const type = input['provider:network_type'] ?? DEFAULT_NETWORK_TYPE;
  const physical = input['provider:physical_network'];
  const id = input['provider:segmentation_id'];
  if (type === 'local') {
    if (physical !== undefined || id !== undefined) {
      throw invalid('provider attributes cannot be set for a local network.');
    }
    return { type, physicalNetwork: '', segmentationId: null };
  }
  if (type === 'flat') {
    if (id !== undefined) throw invalid('segmentation_id specified for flat provider network.');
    if (!physical) throw invalid('physical_network required for flat provider network.');
    return { type, physicalNetwork: physical, segmentationId: 0 };
  }
  const [min, max] = RANGES[type];
  if (id !== undefined && (id < min || id > max)) {
    throw invalid(`segmentation_id out of range (${min} through ${max}).`);
  }
  if (type === 'vlan') {
    if (id !== undefined && !physical) throw invalid('physical_network required for VLAN provider network.');
    return { type, physicalNetwork: physical ?? DEFAULT_PHYSICAL_NETWORK, segmentationId: id };
  }
  if (physical !== undefined)
    throw invalid(`provider:physical_network specified for ${type.toUpperCase()} network.`);
  return { type, physicalNetwork: '', segmentationId: id };
}

/** A candidate segmentation id for allocation: random, so racing creates rarely pick the same. */
export function randomSegmentationId(type: string): number {
  const [min, max] = RANGES[type];
  return randomInt(min, max + 1);
}

/** The MTU of the physical network under every segment (Neutron's `global_physnet_mtu` default). */
export const PHYSICAL_MTU = 1500;
/** What each overlay's encapsulation takes of the physical MTU, IPv4 header included (Neutron's ML2 type drivers). */
const ENCAP_OVERHEAD: Record<string, number> = { vxlan: 50, geneve: 58, gre: 42 };

/** The largest MTU a network of this type carries, and the one it gets by default (1450 for VXLAN, as in Neutron). */
export function maxMtu(type: string): number {
  return PHYSICAL_MTU - (ENCAP_OVERHEAD[type] ?? 0);
}

/** Neutron's check of a requested MTU against the network's segment. */
export function checkMtu(type: string, mtu: number): void {
  const max = maxMtu(type);
  if (mtu > max) throw new BadRequestError(`Requested MTU is too big, maximum is ${max}`, 'InvalidInput');
}
