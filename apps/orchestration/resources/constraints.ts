import { Json } from '@novum/hot';
import { CloudError, CloudSession } from '../cloud';
import { findNeutron } from './neutron';
import { findFlavor, findImage } from './nova';

const LOOKUPS: Record<string, (cloud: CloudSession, value: string) => Promise<unknown>> = {
  'nova.flavor': findFlavor,
  'glance.image': findImage,
  'nova.keypair': async (cloud, value) => {
    try {
      return await cloud.request('compute', 'GET', `/os-keypairs/${encodeURIComponent(value)}`);
    } catch (error) {
      if (error instanceof CloudError && error.status === 404) {
        throw new CloudError(404, `The Key (${value}) could not be found.`, 'compute');
      }
      throw error;
    }
  },
  'neutron.network': (cloud, value) => findNeutron(cloud, 'network', value),
  'neutron.subnet': (cloud, value) => findNeutron(cloud, 'subnet', value),
  'neutron.port': (cloud, value) => findNeutron(cloud, 'port', value),
  'neutron.router': (cloud, value) => findNeutron(cloud, 'router', value),
  'neutron.security_group': (cloud, value) => findNeutron(cloud, 'security_group', value),
};

/** Heat's custom constraints: the value must name something the caller can use in the cloud. */
export async function checkCustomConstraint(
  cloud: CloudSession,
  constraint: string,
  value: Json,
): Promise<string | null> {
  const lookup = LOOKUPS[constraint];
  if (!lookup) return `Unknown custom constraint "${constraint}"`;
  try {
    await lookup(cloud, String(value));
    return null;
  } catch (error) {
    if (error instanceof CloudError && error.status < 500) return error.message;
    throw error;
  }
}
