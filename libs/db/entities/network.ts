import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { booleanTransformer, isoTimestamp } from '../columns';

/** Neutron's standard attributes, which every resource below carries. */
abstract class StandardAttributes {
  @PrimaryColumn({ type: 'varchar', length: 64 }) id: string;
  @Index() @Column({ name: 'project_id', type: 'varchar', length: 64 }) projectId: string;
  @Column({ type: 'varchar', length: 255 }) name: string;
  @Column({ type: 'varchar', length: 255 }) description: string;
  @Column({ name: 'revision_number', type: 'integer' }) revisionNumber: number;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp }) updatedAt: string;
  @Column({ type: 'simple-json' }) tags: string[];
}

/**
 * A network's segment is unique: (type, physical network, segmentation id). Tunnels have no physical
 * network (''), flat networks take segmentation id 0 (one per physical network), local ones null.
 */
@Entity('network')
@Index(['networkType', 'physicalNetwork', 'segmentationId'], { unique: true })
export class NetworkEntity extends StandardAttributes {
  @Column({ name: 'admin_state_up', type: 'boolean', transformer: booleanTransformer }) adminStateUp: boolean;
  @Column({ type: 'boolean', transformer: booleanTransformer }) shared: boolean;
  @Column({ name: 'router_external', type: 'boolean', transformer: booleanTransformer }) external: boolean;
  @Column({ name: 'is_default', type: 'boolean', transformer: booleanTransformer }) isDefault: boolean;
  @Column({ name: 'port_security_enabled', type: 'boolean', transformer: booleanTransformer })
  portSecurityEnabled: boolean;
  @Column({ type: 'integer' }) mtu: number;
  @Column({ name: 'network_type', type: 'varchar', length: 32 }) networkType: string;
  @Column({ name: 'physical_network', type: 'varchar', length: 64, nullable: true }) physicalNetwork:
    string | null;
  @Column({ name: 'segmentation_id', type: 'integer', nullable: true }) segmentationId: number | null;
}

@Entity('subnet')
export class SubnetEntity extends StandardAttributes {
  @Index() @Column({ name: 'network_id', type: 'varchar', length: 64 }) networkId: string;
  @Column({ name: 'ip_version', type: 'integer' }) ipVersion: number;
  @Column({ type: 'varchar', length: 64 }) cidr: string;
  @Column({ name: 'gateway_ip', type: 'varchar', length: 64, nullable: true }) gatewayIp: string | null;
  @Column({ name: 'allocation_pools', type: 'simple-json' }) allocationPools: {
    start: string;
    end: string;
  }[];
  @Column({ name: 'enable_dhcp', type: 'boolean', transformer: booleanTransformer }) enableDhcp: boolean;
  @Column({ name: 'dns_nameservers', type: 'simple-json' }) dnsNameservers: string[];
  @Column({ name: 'host_routes', type: 'simple-json' }) hostRoutes: {
    destination: string;
    nexthop: string;
  }[];
  @Column({ name: 'ipv6_ra_mode', type: 'varchar', length: 16, nullable: true }) ipv6RaMode: string | null;
  @Column({ name: 'ipv6_address_mode', type: 'varchar', length: 16, nullable: true }) ipv6AddressMode:
    string | null;
}

/**
 * One address handed out on a subnet. The primary key (subnet, address) is what makes IPAM safe under
 * concurrency: two requests racing for one address cannot both insert it.
 */
@Entity('ip_allocation')
export class IpAllocationEntity {
  @PrimaryColumn({ name: 'subnet_id', type: 'varchar', length: 64 }) subnetId: string;
  @PrimaryColumn({ name: 'ip_address', type: 'varchar', length: 64 }) ipAddress: string;
  @Column({ name: 'network_id', type: 'varchar', length: 64 }) networkId: string;
  @Index() @Column({ name: 'port_id', type: 'varchar', length: 64 }) portId: string;
}

@Entity('port')
@Index(['networkId', 'macAddress'], { unique: true })
export class PortEntity extends StandardAttributes {
  @Index() @Column({ name: 'network_id', type: 'varchar', length: 64 }) networkId: string;
  @Column({ name: 'mac_address', type: 'varchar', length: 32 }) macAddress: string;
  @Column({ name: 'admin_state_up', type: 'boolean', transformer: booleanTransformer }) adminStateUp: boolean;
  @Column({ type: 'varchar', length: 16 }) status: string;
  @Index() @Column({ name: 'device_id', type: 'varchar', length: 255 }) deviceId: string;
  @Column({ name: 'device_owner', type: 'varchar', length: 255 }) deviceOwner: string;
  @Column({ name: 'binding_host_id', type: 'varchar', length: 255 }) bindingHostId: string;
  @Column({ name: 'binding_vnic_type', type: 'varchar', length: 64 }) bindingVnicType: string;
  @Column({ name: 'binding_profile', type: 'simple-json' }) bindingProfile: Record<string, unknown>;
  @Column({ name: 'port_security_enabled', type: 'boolean', transformer: booleanTransformer })
  portSecurityEnabled: boolean;
  @Column({ name: 'security_groups', type: 'simple-json' }) securityGroups: string[];
  @Column({ name: 'allowed_address_pairs', type: 'simple-json' }) allowedAddressPairs: {
    ip_address: string;
    mac_address: string;
  }[];
}

@Entity('security_group')
export class SecurityGroupEntity extends StandardAttributes {
  @Column({ type: 'boolean', transformer: booleanTransformer }) stateful: boolean;
}

/** Which group is a project's `default`: the primary key makes its lazy creation race-free. */
@Entity('default_security_group')
export class DefaultSecurityGroupEntity {
  @PrimaryColumn({ name: 'project_id', type: 'varchar', length: 64 }) projectId: string;
  @Column({ name: 'security_group_id', type: 'varchar', length: 64 }) securityGroupId: string;
}

@Entity('security_group_rule')
export class SecurityGroupRuleEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 }) id: string;
  @Index() @Column({ name: 'project_id', type: 'varchar', length: 64 }) projectId: string;
  @Index() @Column({ name: 'security_group_id', type: 'varchar', length: 64 }) securityGroupId: string;
  @Column({ type: 'varchar', length: 8 }) direction: string;
  @Column({ type: 'varchar', length: 8 }) ethertype: string;
  @Column({ type: 'varchar', length: 40, nullable: true }) protocol: string | null;
  @Column({ name: 'port_range_min', type: 'integer', nullable: true }) portRangeMin: number | null;
  @Column({ name: 'port_range_max', type: 'integer', nullable: true }) portRangeMax: number | null;
  @Column({ name: 'remote_ip_prefix', type: 'varchar', length: 64, nullable: true }) remoteIpPrefix:
    string | null;
  @Column({ name: 'remote_group_id', type: 'varchar', length: 64, nullable: true }) remoteGroupId:
    string | null;
  @Column({ type: 'varchar', length: 255 }) description: string;
  @Column({ name: 'revision_number', type: 'integer' }) revisionNumber: number;
  @Column({ name: 'created_at', ...isoTimestamp }) createdAt: string;
  @Column({ name: 'updated_at', ...isoTimestamp }) updatedAt: string;
}

@Entity('router')
export class RouterEntity extends StandardAttributes {
  @Column({ name: 'admin_state_up', type: 'boolean', transformer: booleanTransformer }) adminStateUp: boolean;
  @Column({ type: 'varchar', length: 16 }) status: string;
  @Column({ name: 'gateway_network_id', type: 'varchar', length: 64, nullable: true }) gatewayNetworkId:
    string | null;
  @Column({ name: 'gateway_port_id', type: 'varchar', length: 64, nullable: true }) gatewayPortId:
    string | null;
  @Column({ name: 'enable_snat', type: 'boolean', transformer: booleanTransformer }) enableSnat: boolean;
  @Column({ type: 'simple-json' }) routes: { destination: string; nexthop: string }[];
}

@Entity('floating_ip')
export class FloatingIpEntity extends StandardAttributes {
  @Column({ name: 'floating_network_id', type: 'varchar', length: 64 }) floatingNetworkId: string;
  @Column({ name: 'floating_ip_address', type: 'varchar', length: 64 }) floatingIpAddress: string;
  @Column({ name: 'floating_port_id', type: 'varchar', length: 64 }) floatingPortId: string;
  @Index() @Column({ name: 'port_id', type: 'varchar', length: 64, nullable: true }) portId: string | null;
  @Column({ name: 'fixed_ip_address', type: 'varchar', length: 64, nullable: true }) fixedIpAddress:
    string | null;
  @Column({ name: 'router_id', type: 'varchar', length: 64, nullable: true }) routerId: string | null;
  @Column({ type: 'varchar', length: 16 }) status: string;
}

/** A project's limit on one resource where it differs from the default (-1: unlimited). */
@Entity('network_quota')
export class NetworkQuotaEntity {
  @PrimaryColumn({ name: 'project_id', type: 'varchar', length: 64 }) projectId: string;
  @PrimaryColumn({ type: 'varchar', length: 64 }) resource: string;
  @Column({ name: 'hard_limit', type: 'integer' }) limit: number;
}

export const NETWORK_ENTITIES = [
  NetworkEntity,
  SubnetEntity,
  IpAllocationEntity,
  PortEntity,
  SecurityGroupEntity,
  DefaultSecurityGroupEntity,
  SecurityGroupRuleEntity,
  RouterEntity,
  FloatingIpEntity,
  NetworkQuotaEntity,
];
