/**
 * The files of an OpenStack config drive (and of the metadata service, which serves the same tree), as Nova
 * builds them in nova/api/metadata/base.py and nova/virt/netutils.py: field names and layout are Nova's, so
 * that cloud-init's ConfigDrive and OpenStack data sources read them unchanged. Pure: no I/O, no clock.
 */
import { randomBytes } from 'node:crypto';
import type { FixedIp, InjectedFile, InstanceSpec, NetworkInfo, Vif } from './driver';

/** The ISO 9660 volume label cloud-init looks for. */
export const CONFIG_DRIVE_LABEL = 'config-2';

/** The OpenStack metadata versions written, oldest first; `latest` has every field. */
export const OPENSTACK_VERSIONS = ['2012-08-10', '2013-04-04', '2013-10-17', '2015-10-15', '2016-06-30'];

/** What the metadata needs beyond the instance spec. */
export interface ConfigDriveExtra {
  /** Nova's `admin_pass`, written only when the API generated or received one. */
  adminPassword?: string;
  /** Personality files, under openstack/content/ with a `files` list in meta_data.json. */
  injectedFiles?: readonly InjectedFile[];
  /** The key pair's type (`ssh` or `x509`), for `keys`. */
  keyType?: string;
  /** Nova's `dhcp_domain`: appended to the host name in meta_data.json when set. */
  dhcpDomain?: string;
  /** vendor_data.json's content; `{}` by default, as Nova's static vendor data with no file. */
  vendorData?: Record<string, unknown>;
  /** 512 bytes for `random_seed`; random by default (tests pass their own). */
  randomSeed?: Buffer;
}

/** network_data.json, Nova's `get_network_metadata`. */
export interface NetworkData {
  links: { id: string; vif_id: string; type: string; mtu: number | null; ethernet_mac_address: string }[];
  networks: {
    id: string;
    type: string;
    link: string;
    ip_address: string;
    netmask: string;
    routes: { network: string; netmask: string; gateway: string }[];
    network_id: string;
  }[];
  services: { type: 'dns'; address: string }[];
}

const GRIZZLY = '2013-04-04';
const HAVANA = '2013-10-17';
const LIBERTY = '2015-10-15';
const NEWTON_ONE = '2016-06-30';

/**
 * Every file of the config drive by its path inside the drive (`openstack/latest/meta_data.json`, ...). The
 * same meta_data is written under each version, with the fields that version had; user_data only when the
 * server has some. network_data.json is written even without ports (then with empty lists).
 */
export function configDriveFiles(
  instance: InstanceSpec,
  networkInfo: NetworkInfo,
  extra: ConfigDriveExtra = {},
): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  const userData = instance.userData ? Buffer.from(instance.userData, 'base64') : undefined;
  const randomSeed = (extra.randomSeed ?? randomBytes(512)).toString('base64');
  const injected = extra.injectedFiles ?? [];
  injected.forEach((file, index) => {
    files.set(`openstack/content/${contentName(index)}`, Buffer.from(file.contents, 'base64'));
  });

  for (const version of [...OPENSTACK_VERSIONS, 'latest']) {
    const dir = `openstack/${version}`;
    files.set(`${dir}/meta_data.json`, json(metaData(instance, version, randomSeed, extra)));
    if (userData) files.set(`${dir}/user_data`, userData);
    if (atLeast(version, HAVANA)) files.set(`${dir}/vendor_data.json`, json(extra.vendorData ?? {}));
    if (atLeast(version, LIBERTY)) files.set(`${dir}/network_data.json`, json(networkData(networkInfo)));
    if (atLeast(version, NEWTON_ONE)) files.set(`${dir}/vendor_data2.json`, json({}));
  }

  const ec2 = ec2MetaData(instance, networkInfo);
  files.set('ec2/latest/meta-data.json', json(ec2));
  if (userData) files.set('ec2/latest/user-data', userData);
  return files;
}

/** meta_data.json of one metadata version, as Nova's `_metadata_as_json`. */
export function metaData(
  instance: InstanceSpec,
  version: string,
  randomSeed: string,
  extra: ConfigDriveExtra = {},
): Record<string, unknown> {
  const data: Record<string, unknown> = {
    uuid: instance.uuid,
    meta: { ...instance.metadata },
    hostname: extra.dhcpDomain ? `${instance.hostname}.${extra.dhcpDomain}` : instance.hostname,
    name: instance.displayName ?? instance.hostname,
    launch_index: instance.launchIndex ?? 0,
    availability_zone: instance.availabilityZone ?? null,
  };
  if (atLeast(version, GRIZZLY)) data.random_seed = randomSeed;
  if (atLeast(version, LIBERTY)) data.project_id = instance.projectId;
  if (atLeast(version, NEWTON_ONE)) data.devices = [];
  if (instance.keyName) {
    data.public_keys = { [instance.keyName]: instance.keyData ?? '' };
    data.keys = [{ name: instance.keyName, type: extra.keyType ?? 'ssh', data: instance.keyData ?? '' }];
  }
  const injected = extra.injectedFiles ?? [];
  if (injected.length > 0) {
    data.files = injected.map((file, index) => ({
      path: file.path,
      content_path: `/content/${contentName(index)}`,
    }));
  }
  if (extra.adminPassword && atLeast(version, GRIZZLY)) data.admin_pass = extra.adminPassword;
  return data;
}

/** network_data.json: one link per port, one network per port and IP version (its first address). */
export function networkData(networkInfo: NetworkInfo): NetworkData {
  const data: NetworkData = { links: [], networks: [], services: [] };
  for (const vif of networkInfo) {
    const v4 = vif.fixedIps.find((ip) => ip.version === 4);
    const v6 = vif.fixedIps.find((ip) => ip.version === 6);
    // Nova counts only the ports that have subnets when it numbers the links it cannot name.
    if (!v4 && !v6) continue;
    const linkId = vif.devname || `interface${data.links.length}`;
    data.links.push({
      id: linkId,
      vif_id: vif.id,
      type: vif.bridge ? 'bridge' : 'phy',
      mtu: vif.mtu ?? null,
      ethernet_mac_address: vif.macAddress,
    });
    for (const ip of [v4, v6]) {
      if (!ip) continue;
      data.networks.push(networkEntry(vif, ip, `network${data.networks.length}`, linkId));
      for (const address of ip.dnsNameservers) {
        if (!data.services.some((service) => service.address === address)) {
          data.services.push({ type: 'dns', address });
        }
      }
    }
  }
  return data;
}

function networkEntry(vif: Vif, ip: FixedIp, id: string, link: string): NetworkData['networks'][number] {
  const any = ip.version === 4 ? '0.0.0.0' : '::';
  return {
    id,
    type: `ipv${ip.version}`,
    link,
    ip_address: ip.address,
    netmask: netmask(ip.cidr, ip.version),
    routes: [
      ...(ip.gateway ? [{ network: any, netmask: any, gateway: ip.gateway }] : []),
      ...(ip.hostRoutes ?? []).map((route) => ({
        network: route.destination.split('/')[0],
        netmask: netmask(route.destination, ip.version),
        gateway: route.nexthop,
      })),
    ],
    network_id: vif.networkId,
  };
}

/**
 * The EC2-style meta-data (Nova's `get_ec2_metadata`, the fields it can fill), written to the config drive
 * as meta-data.json and served by the metadata service as `/<version>/meta-data/...`.
 */
function ec2MetaData(instance: InstanceSpec, networkInfo: NetworkInfo): Record<string, unknown> {
  const fixed = networkInfo.flatMap((vif) => vif.fixedIps).find((ip) => ip.version === 4);
  const data: Record<string, unknown> = {
    'ami-launch-index': instance.launchIndex ?? 0,
    hostname: instance.hostname,
    'instance-action': 'none',
    // Nova's EC2 id is `i-` + the instance's database id in 8 hex digits; Novum's ids are uuids.
    'instance-id': `i-${instance.uuid.replace(/-/g, '').slice(0, 8)}`,
    'local-hostname': instance.hostname,
    'local-ipv4': fixed?.address ?? null,
    placement: { 'availability-zone': instance.availabilityZone ?? null },
    'public-hostname': instance.hostname,
  };
  if (instance.reservationId) data['reservation-id'] = instance.reservationId;
  if (instance.keyName) {
    data['public-keys'] = { '0': { 'openssh-key': instance.keyData ?? '' } };
  }
  return data;
}

/** The dotted netmask of a prefix (`10.0.0.0/24` → `255.255.255.0`; IPv6 in full hexadecimal groups). */
export function netmask(cidr: string, version: 4 | 6): string {
  const prefix = Number(cidr.split('/')[1] ?? (version === 4 ? 32 : 128));
  if (version === 4) {
    const octets = [0, 1, 2, 3].map((i) => {
      const bits = Math.min(8, Math.max(0, prefix - i * 8));
      return (0xff << (8 - bits)) & 0xff;
    });
    return octets.join('.');
  }
  const groups = [...Array(8).keys()].map((i) => {
    const bits = Math.min(16, Math.max(0, prefix - i * 16));
    return ((0xffff << (16 - bits)) & 0xffff).toString(16);
  });
  return compressIpv6(groups);
}

function compressIpv6(groups: string[]): string {
  const zeros = groups.findIndex((group) => group === '0');
  if (zeros < 0) return groups.join(':');
  const head = groups.slice(0, zeros).join(':');
  return `${head}::`;
}

function contentName(index: number): string {
  return index.toString().padStart(4, '0');
}

function atLeast(version: string, since: string): boolean {
  return version === 'latest' || version >= since;
}
