import { none, randomString, testResource, value } from './core';
import { net, port, securityGroup, subnet } from './neutron';
import { keyPair, server } from './nova';
import { ResourceType } from './types';

/** Every resource type this orchestration service offers, by name. */
export const RESOURCE_TYPES: ReadonlyMap<string, ResourceType> = new Map(
  [randomString, value, none, testResource, keyPair, server, net, subnet, port, securityGroup].map((t) => [
    t.name,
    t,
  ]),
);

export function resourceType(name: string): ResourceType | undefined {
  return RESOURCE_TYPES.get(name);
}
