import {
  FloatingIpEntity,
  IpAllocationEntity,
  NetworkEntity,
  PortEntity,
  RouterEntity,
  SecurityGroupEntity,
  SecurityGroupRuleEntity,
  SubnetEntity,
} from '@novum/db';
import { normalizeCidr } from '@novum/common';
import { bridgeName } from '@novum/virt';
import { Resource } from './listing';

/** The public URL of the service root (`http://host:9696/network`), for links. */
export const NETWORK_BASE_URL = 'NETWORK_BASE_URL';

/** Neutron spells times without fractions: `2026-11-28T07:30:00Z`. */
export function neutronTime(iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z');
}

function standard(entity: {
  id: string;
  projectId: string;
  name: string;
  description: string;
  createdAt: string;
  updatedAt: string;
  revisionNumber: number;
  tags: string[];
}) {
  return {
    id: entity.id,
    name: entity.name,
    tenant_id: entity.projectId,
    project_id: entity.projectId,
    description: entity.description,
    tags: entity.tags,
    created_at: neutronTime(entity.createdAt),
    updated_at: neutronTime(entity.updatedAt),
    revision_number: entity.revisionNumber,
  };
}

export const NETWORK_ATTRIBUTES = [
  'id',
  'name',
  'tenant_id',
  'project_id',
  'description',
  'tags',
  'created_at',
  'updated_at',
  'revision_number',
  'admin_state_up',
  'status',
  'subnets',
  'shared',
  'router:external',
  'is_default',
  'mtu',
  'port_security_enabled',
  'availability_zone_hints',
  'availability_zones',
  'ipv4_address_scope',
  'ipv6_address_scope',
  'l2_adjacency',
  'provider:network_type',
  'provider:physical_network',
  'provider:segmentation_id',
];

export function networkView(network: NetworkEntity, subnetIds: string[], admin: boolean): Resource {
  return {
    ...standard(network),
    admin_state_up: network.adminStateUp,
    status: 'ACTIVE',
    subnets: subnetIds,
    shared: network.shared,
    'router:external': network.external,
    is_default: network.isDefault,
    mtu: network.mtu,
    port_security_enabled: network.portSecurityEnabled,
    availability_zone_hints: [],
    availability_zones: ['nova'],
    ipv4_address_scope: null,
    ipv6_address_scope: null,
    l2_adjacency: true,
    // Provider attributes are for admins only, as in Neutron's default policy.
    ...(admin
      ? {
          'provider:network_type': network.networkType,
          'provider:physical_network': network.physicalNetwork || null,
          'provider:segmentation_id': network.networkType === 'flat' ? null : network.segmentationId,
        }
      : {}),
  };
}

export const SUBNET_ATTRIBUTES = [
  'id',
  'name',
  'tenant_id',
  'project_id',
  'description',
  'tags',
  'created_at',
  'updated_at',
  'revision_number',
  'network_id',
  'ip_version',
  'cidr',
  'gateway_ip',
  'allocation_pools',
  'enable_dhcp',
  'dns_nameservers',
  'host_routes',
  'ipv6_ra_mode',
  'ipv6_address_mode',
  'subnetpool_id',
  'service_types',
  'segment_id',
  'dns_publish_fixed_ip',
];

export function subnetView(subnet: SubnetEntity): Resource {
  return {
    ...standard(subnet),
    network_id: subnet.networkId,
    ip_version: subnet.ipVersion,
    cidr: subnet.cidr,
    gateway_ip: subnet.gatewayIp,
    allocation_pools: subnet.allocationPools,
    enable_dhcp: subnet.enableDhcp,
    dns_nameservers: subnet.dnsNameservers,
    host_routes: subnet.hostRoutes,
    ipv6_ra_mode: subnet.ipv6RaMode,
    ipv6_address_mode: subnet.ipv6AddressMode,
    subnetpool_id: null,
    service_types: [],
    segment_id: null,
    dns_publish_fixed_ip: false,
  };
}

export const PORT_ATTRIBUTES = [
  'id',
  'name',
  'tenant_id',
  'project_id',
  'description',
  'tags',
  'created_at',
  'updated_at',
  'revision_number',
  'network_id',
  'mac_address',
  'admin_state_up',
  'status',
  'device_id',
  'device_owner',
  'fixed_ips',
  'allowed_address_pairs',
  'extra_dhcp_opts',
  'security_groups',
  'port_security_enabled',
  'binding:vnic_type',
  'binding:host_id',
  'binding:profile',
  'binding:vif_type',
  'binding:vif_details',
];

export function portView(port: PortEntity, allocations: IpAllocationEntity[], admin: boolean): Resource {
  return {
    ...standard(port),
    network_id: port.networkId,
    mac_address: port.macAddress,
    admin_state_up: port.adminStateUp,
    status: port.status,
    device_id: port.deviceId,
    device_owner: port.deviceOwner,
    fixed_ips: allocations.map((a) => ({ subnet_id: a.subnetId, ip_address: a.ipAddress })),
    // A pair without a MAC address stands for the port's own.
    allowed_address_pairs: port.allowedAddressPairs.map((pair) => ({
      ip_address: pair.ip_address,
      mac_address: pair.mac_address || port.macAddress,
    })),
    extra_dhcp_opts: [],
    security_groups: port.securityGroups,
    port_security_enabled: port.portSecurityEnabled,
    'binding:vnic_type': port.bindingVnicType,
    // Where a port is bound is an operator's business, as in Neutron's default policy.
    ...(admin
      ? {
          'binding:host_id': port.bindingHostId,
          'binding:profile': port.bindingProfile,
          'binding:vif_type': port.bindingHostId ? 'bridge' : 'unbound',
          // As Neutron's linuxbridge driver: the host plugs the port into this bridge and filters it.
          'binding:vif_details': port.bindingHostId
            ? { bridge_name: bridgeName(port.networkId), port_filter: true, connectivity: 'l2' }
            : {},
        }
      : {}),
  };
}

export const SECURITY_GROUP_RULE_ATTRIBUTES = [
  'id',
  'tenant_id',
  'project_id',
  'description',
  'created_at',
  'updated_at',
  'revision_number',
  'security_group_id',
  'direction',
  'ethertype',
  'protocol',
  'port_range_min',
  'port_range_max',
  'remote_ip_prefix',
  'remote_group_id',
  'remote_address_group_id',
  'normalized_cidr',
];

export function securityGroupRuleView(rule: SecurityGroupRuleEntity): Resource {
  return {
    id: rule.id,
    tenant_id: rule.projectId,
    project_id: rule.projectId,
    security_group_id: rule.securityGroupId,
    direction: rule.direction,
    ethertype: rule.ethertype,
    protocol: rule.protocol,
    port_range_min: rule.portRangeMin,
    port_range_max: rule.portRangeMax,
    remote_ip_prefix: rule.remoteIpPrefix,
    remote_group_id: rule.remoteGroupId,
    remote_address_group_id: null,
    normalized_cidr: normalizeCidr(rule.remoteIpPrefix),
    description: rule.description,
    created_at: neutronTime(rule.createdAt),
    updated_at: neutronTime(rule.updatedAt),
    revision_number: rule.revisionNumber,
  };
}

export const SECURITY_GROUP_ATTRIBUTES = [
  'id',
  'name',
  'tenant_id',
  'project_id',
  'description',
  'tags',
  'created_at',
  'updated_at',
  'revision_number',
  'stateful',
  'shared',
  'security_group_rules',
];

export function securityGroupView(group: SecurityGroupEntity, rules: SecurityGroupRuleEntity[]): Resource {
  return {
    ...standard(group),
    stateful: group.stateful,
    shared: false,
    security_group_rules: rules.map(securityGroupRuleView),
  };
}

export const ROUTER_ATTRIBUTES = [
  'id',
  'name',
  'tenant_id',
  'project_id',
  'description',
  'tags',
  'created_at',
  'updated_at',
  'revision_number',
  'admin_state_up',
  'status',
  'external_gateway_info',
  'routes',
  'availability_zone_hints',
  'availability_zones',
  'distributed',
  'ha',
  'flavor_id',
];

export function routerView(router: RouterEntity, gatewayIps: IpAllocationEntity[], admin: boolean): Resource {
  return {
    ...standard(router),
    admin_state_up: router.adminStateUp,
    status: router.status,
    external_gateway_info: router.gatewayNetworkId
      ? {
          network_id: router.gatewayNetworkId,
          enable_snat: router.enableSnat,
          external_fixed_ips: gatewayIps.map((a) => ({ subnet_id: a.subnetId, ip_address: a.ipAddress })),
        }
      : null,
    routes: router.routes,
    availability_zone_hints: [],
    availability_zones: ['nova'],
    flavor_id: null,
    ...(admin ? { distributed: false, ha: false } : {}),
  };
}

export const FLOATING_IP_ATTRIBUTES = [
  'id',
  'tenant_id',
  'project_id',
  'description',
  'tags',
  'created_at',
  'updated_at',
  'revision_number',
  'floating_network_id',
  'floating_ip_address',
  'router_id',
  'port_id',
  'fixed_ip_address',
  'status',
  'port_details',
];

export function floatingIpView(fip: FloatingIpEntity, port: PortEntity | null): Resource {
  const { name: _name, ...rest } = standard(fip);
  return {
    ...rest,
    floating_network_id: fip.floatingNetworkId,
    floating_ip_address: fip.floatingIpAddress,
    router_id: fip.routerId,
    port_id: fip.portId,
    fixed_ip_address: fip.fixedIpAddress,
    status: fip.status,
    port_details: port
      ? {
          name: port.name,
          network_id: port.networkId,
          mac_address: port.macAddress,
          admin_state_up: port.adminStateUp,
          status: port.status,
          device_id: port.deviceId,
          device_owner: port.deviceOwner,
        }
      : null,
  };
}
