import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsDefined,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Max,
  MaxLength,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { BadRequestError } from '@novum/common';

/** The attributes that may be null in a request (each meaning "none"). */
const NULLABLE = new Set([
  'gateway_ip',
  'ipv6_ra_mode',
  'ipv6_address_mode',
  'subnetpool_id',
  'segment_id',
  'protocol',
  'port_range_min',
  'port_range_max',
  'remote_ip_prefix',
  'remote_group_id',
  'remote_address_group_id',
  'external_gateway_info',
  'port_id',
  'fixed_ip_address',
]);

/**
 * Neutron refuses attributes it does not know ("Unrecognized attribute(s) 'foo'"), and null where an
 * attribute has no "none" meaning.
 */
export function onlyKnown(input: object, allowed: readonly string[]): void {
  const unknown = Object.keys(input).filter((key) => !allowed.includes(key));
  if (unknown.length) throw new BadRequestError(`Unrecognized attribute(s) '${unknown.join(', ')}'`);
  for (const [key, value] of Object.entries(input)) {
    if (value === null && !NULLABLE.has(key)) {
      throw new BadRequestError(`Invalid input for ${key}. Reason: 'None' is not a valid value.`);
    }
  }
}

const notNull = (_o: unknown, value: unknown) => value !== null;

/** Neutron's limits on tags (neutron-lib `MAX_TAG_LEN`, `MAX_TAGS`). */
export const MAX_TAG_LENGTH = 255;
export const MAX_TAGS = 50;

class Standard {
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_TAGS)
  @IsString({ each: true })
  @Length(1, MAX_TAG_LENGTH, { each: true })
  tags?: string[];
  @IsOptional() @IsString() @MaxLength(255) name?: string;
  @IsOptional() @IsString() @MaxLength(255) description?: string;
  @IsOptional() @IsString() @MaxLength(64) tenant_id?: string;
  @IsOptional() @IsString() @MaxLength(64) project_id?: string;
}

export class NetworkInput extends Standard {
  @IsOptional() @IsBoolean() admin_state_up?: boolean;
  @IsOptional() @IsBoolean() shared?: boolean;
  @IsOptional() @IsBoolean() 'router:external'?: boolean;
  @IsOptional() @IsBoolean() is_default?: boolean;
  @IsOptional() @IsBoolean() port_security_enabled?: boolean;
  @IsOptional() @IsInt() @Min(68) @Max(9216) mtu?: number;
  @IsOptional() @IsIn(['flat', 'vlan', 'vxlan', 'geneve', 'gre', 'local']) 'provider:network_type'?: string;
  @IsOptional() @IsString() @MaxLength(64) 'provider:physical_network'?: string;
  @IsOptional() @IsInt() @Min(0) @Max(16777215) 'provider:segmentation_id'?: number;
  @IsOptional() @IsArray() @IsString({ each: true }) availability_zone_hints?: string[];
}
export const NETWORK_INPUT = [
  'tags',
  'name',
  'description',
  'tenant_id',
  'project_id',
  'admin_state_up',
  'shared',
  'router:external',
  'is_default',
  'port_security_enabled',
  'mtu',
  'provider:network_type',
  'provider:physical_network',
  'provider:segmentation_id',
  'availability_zone_hints',
];
export class NetworkBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => NetworkInput) network: NetworkInput;
}

export class PoolInput {
  @IsString() @MaxLength(64) start: string;
  @IsString() @MaxLength(64) end: string;
}
export class RouteInput {
  @IsString() @MaxLength(64) destination: string;
  @IsString() @MaxLength(64) nexthop: string;
}

export class SubnetInput extends Standard {
  @IsOptional() @IsString() @MaxLength(64) network_id?: string;
  @IsOptional() @IsIn([4, 6]) ip_version?: 4 | 6;
  @IsOptional() @IsString() @MaxLength(64) cidr?: string;
  @IsOptional() @ValidateIf(notNull) @IsString() @MaxLength(64) gateway_ip?: string | null;
  @IsOptional()
  @IsArray()
  @ValidateNested({ each: true })
  @Type(() => PoolInput)
  allocation_pools?: PoolInput[];
  @IsOptional() @IsBoolean() enable_dhcp?: boolean;
  @IsOptional() @IsArray() @IsString({ each: true }) dns_nameservers?: string[];
  @IsOptional()
  @IsArray()
  @ValidateNested({ each: true })
  @Type(() => RouteInput)
  host_routes?: RouteInput[];
  @IsOptional() @ValidateIf(notNull) @IsIn(['slaac', 'dhcpv6-stateful', 'dhcpv6-stateless']) ipv6_ra_mode?:
    string | null;
  @IsOptional()
  @ValidateIf(notNull)
  @IsIn(['slaac', 'dhcpv6-stateful', 'dhcpv6-stateless'])
  ipv6_address_mode?: string | null;
  @IsOptional() @IsIn([null], { message: 'subnet pools are not supported' }) subnetpool_id?: null;
  @IsOptional()
  @IsIn([false], { message: 'IPv6 prefix delegation is not supported' })
  use_default_subnetpool?: boolean;
  @IsOptional() @IsArray() @IsIn([], { each: true }) service_types?: string[];
  @IsOptional() @IsIn([null]) segment_id?: null;
}
export const SUBNET_INPUT = [
  'tags',
  'name',
  'description',
  'tenant_id',
  'project_id',
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
  'use_default_subnetpool',
  'service_types',
  'segment_id',
];
export class SubnetBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => SubnetInput) subnet: SubnetInput;
}

export class FixedIpInput {
  @IsOptional() @IsString() @MaxLength(64) subnet_id?: string;
  @IsOptional() @IsString() @MaxLength(64) ip_address?: string;
}
export class AddressPairInput {
  @IsString() @MaxLength(64) ip_address: string;
  @IsOptional() @IsString() @MaxLength(32) mac_address?: string;
}

export const VNIC_TYPES = [
  'normal',
  'direct',
  'macvtap',
  'baremetal',
  'direct-physical',
  'virtio-forwarder',
  'smart-nic',
  'vdpa',
  'remote-managed',
];

export class PortInput extends Standard {
  @IsOptional() @IsString() @MaxLength(64) network_id?: string;
  @IsOptional() @IsBoolean() admin_state_up?: boolean;
  @IsOptional() @IsString() @MaxLength(32) mac_address?: string;
  @IsOptional()
  @IsArray()
  @ValidateNested({ each: true })
  @Type(() => FixedIpInput)
  fixed_ips?: FixedIpInput[];
  @IsOptional() @IsString() @MaxLength(255) device_id?: string;
  @IsOptional() @IsString() @MaxLength(255) device_owner?: string;
  @IsOptional() @IsString() @MaxLength(255) 'binding:host_id'?: string;
  @IsOptional() @IsIn(VNIC_TYPES) 'binding:vnic_type'?: string;
  @IsOptional() @IsObject() 'binding:profile'?: Record<string, unknown>;
  @IsOptional() @IsBoolean() port_security_enabled?: boolean;
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  security_groups?: string[];
  @IsOptional()
  @IsArray()
  @ValidateNested({ each: true })
  @Type(() => AddressPairInput)
  allowed_address_pairs?: AddressPairInput[];
  @IsOptional() @IsArray() @IsIn([], { each: true }) extra_dhcp_opts?: unknown[];
}
export const PORT_INPUT = [
  'tags',
  'name',
  'description',
  'tenant_id',
  'project_id',
  'network_id',
  'admin_state_up',
  'mac_address',
  'fixed_ips',
  'device_id',
  'device_owner',
  'binding:host_id',
  'binding:vnic_type',
  'binding:profile',
  'port_security_enabled',
  'security_groups',
  'allowed_address_pairs',
  'extra_dhcp_opts',
];
export class PortBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => PortInput) port: PortInput;
}

export class SecurityGroupInput extends Standard {
  @IsOptional() @IsBoolean() stateful?: boolean;
}
export const SECURITY_GROUP_INPUT = ['tags', 'name', 'description', 'tenant_id', 'project_id', 'stateful'];
export class SecurityGroupBody {
  @IsDefined()
  @IsObject()
  @ValidateNested()
  @Type(() => SecurityGroupInput)
  security_group: SecurityGroupInput;
}

export class SecurityGroupRuleInput {
  @IsOptional() @IsString() @MaxLength(255) description?: string;
  @IsOptional() @IsString() @MaxLength(64) tenant_id?: string;
  @IsOptional() @IsString() @MaxLength(64) project_id?: string;
  @IsOptional() @IsString() @MaxLength(64) security_group_id?: string;
  @IsOptional() @IsString() direction?: string;
  @IsOptional() @IsString() ethertype?: string;
  @IsOptional() @ValidateIf(notNull) @IsString() @MaxLength(40) protocol?: string | null;
  @IsOptional() @ValidateIf(notNull) @IsInt() port_range_min?: number | null;
  @IsOptional() @ValidateIf(notNull) @IsInt() port_range_max?: number | null;
  @IsOptional() @ValidateIf(notNull) @IsString() @MaxLength(64) remote_ip_prefix?: string | null;
  @IsOptional() @ValidateIf(notNull) @IsString() @MaxLength(64) remote_group_id?: string | null;
  @IsOptional() @IsIn([null]) remote_address_group_id?: null;
}
export const SECURITY_GROUP_RULE_INPUT = [
  'description',
  'tenant_id',
  'project_id',
  'security_group_id',
  'direction',
  'ethertype',
  'protocol',
  'port_range_min',
  'port_range_max',
  'remote_ip_prefix',
  'remote_group_id',
  'remote_address_group_id',
];
export class SecurityGroupRuleBody {
  @IsDefined()
  @IsObject()
  @ValidateNested()
  @Type(() => SecurityGroupRuleInput)
  security_group_rule: SecurityGroupRuleInput;
}

export class ExternalFixedIpInput {
  @IsOptional() @IsString() @MaxLength(64) subnet_id?: string;
  @IsOptional() @IsString() @MaxLength(64) ip_address?: string;
}
export class GatewayInput {
  /** Absent (`{}`, as `openstack router unset --external-gateway` sends): the gateway is cleared, as in Neutron. */
  @IsOptional() @IsString() @MaxLength(64) network_id?: string;
  @IsOptional() @IsBoolean() enable_snat?: boolean;
  @IsOptional()
  @IsArray()
  @ValidateNested({ each: true })
  @Type(() => ExternalFixedIpInput)
  external_fixed_ips?: ExternalFixedIpInput[];
}
export class RouterInput extends Standard {
  @IsOptional() @IsBoolean() admin_state_up?: boolean;
  @IsOptional()
  @ValidateIf(notNull)
  @IsObject()
  @ValidateNested()
  @Type(() => GatewayInput)
  external_gateway_info?: GatewayInput | null;
  @IsOptional() @IsArray() @ValidateNested({ each: true }) @Type(() => RouteInput) routes?: RouteInput[];
  @IsOptional() @IsIn([false]) distributed?: boolean;
  @IsOptional() @IsIn([false]) ha?: boolean;
  @IsOptional() @IsArray() @IsString({ each: true }) availability_zone_hints?: string[];
}
export const ROUTER_INPUT = [
  'tags',
  'name',
  'description',
  'tenant_id',
  'project_id',
  'admin_state_up',
  'external_gateway_info',
  'routes',
  'distributed',
  'ha',
  'availability_zone_hints',
];
export class RouterBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => RouterInput) router: RouterInput;
}
export class RouterInterfaceBody {
  @IsOptional() @IsString() @MaxLength(64) subnet_id?: string;
  @IsOptional() @IsString() @MaxLength(64) port_id?: string;
}

export class FloatingIpInput {
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_TAGS)
  @IsString({ each: true })
  @Length(1, MAX_TAG_LENGTH, { each: true })
  tags?: string[];
  @IsOptional() @IsString() @MaxLength(255) description?: string;
  @IsOptional() @IsString() @MaxLength(64) tenant_id?: string;
  @IsOptional() @IsString() @MaxLength(64) project_id?: string;
  @IsOptional() @IsString() @MaxLength(64) floating_network_id?: string;
  @IsOptional() @IsString() @MaxLength(64) floating_ip_address?: string;
  @IsOptional() @IsString() @MaxLength(64) subnet_id?: string;
  @IsOptional() @ValidateIf(notNull) @IsString() @MaxLength(64) port_id?: string | null;
  @IsOptional() @ValidateIf(notNull) @IsString() @MaxLength(64) fixed_ip_address?: string | null;
}
export const FLOATING_IP_INPUT = [
  'tags',
  'description',
  'tenant_id',
  'project_id',
  'floating_network_id',
  'floating_ip_address',
  'subnet_id',
  'port_id',
  'fixed_ip_address',
];
export class FloatingIpBody {
  @IsDefined() @IsObject() @ValidateNested() @Type(() => FloatingIpInput) floatingip: FloatingIpInput;
}

/** Attributes a PUT may change: tags have their own sub-resource there. */
export function updatable(attributes: readonly string[]): string[] {
  return attributes.filter((attribute) => attribute !== 'tags');
}

export class TagsBody {
  @IsDefined()
  @IsArray()
  @ArrayMaxSize(MAX_TAGS)
  @IsString({ each: true })
  @Length(1, MAX_TAG_LENGTH, { each: true })
  tags: string[];
}

export class QuotaBody {
  @IsDefined() @IsObject() quota: Record<string, unknown>;
}
