import { none, randomString, testResource, value } from './core';
import { net, port, securityGroup, subnet } from './neutron';
import { floatingIp, floatingIpAssociation, router, routerInterface } from './neutron';
import { cloudConfig, multipartMime, softwareConfig } from './software-config';
import { keyPair, server } from './nova';
import { dockerContainer, zunContainer } from './containers';
import { flavor, serverGroup } from './nova-placement';
import { heatStack, resourceGroup } from './nested';
import { ResourceType } from './types';
import { waitCondition, waitConditionHandle } from './wait-condition';

/** Every resource type this orchestration service offers, by name. */
export const RESOURCE_TYPES: ReadonlyMap<string, ResourceType> = new Map(
  [
    randomString,
    value,
    none,
    testResource,
    keyPair,
    server,
    net,
    subnet,
    port,
    securityGroup,
    dockerContainer,
    zunContainer,
    flavor,
    serverGroup,
    heatStack,
    resourceGroup,
    waitConditionHandle,
    waitCondition,
    router,
    routerInterface,
    floatingIp,
    floatingIpAssociation,
    softwareConfig,
    cloudConfig,
    multipartMime,
  ].map((t) => [t.name, t]),
);

export function resourceType(name: string): ResourceType | undefined {
  return RESOURCE_TYPES.get(name);
}
