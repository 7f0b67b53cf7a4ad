import { Controller, Get, Inject, Param, Query } from '@nestjs/common';
import { Public } from '@novum/auth';
import { NotFoundError } from '@novum/common';
import { list } from '../listing';
import { NETWORK_BASE_URL } from '../serializers';

/** The API extensions Novum implements, by Neutron alias. */
export const EXTENSIONS = [
  ['external-net', 'Neutron external network', 'Adds external network attribute to network resource.'],
  [
    'router',
    'Neutron L3 Router',
    'Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.',
  ],
  [
    'ext-gw-mode',
    'Neutron L3 Configurable external gateway mode',
    'Extension of the router abstraction for specifying whether SNAT should occur on the external gateway',
  ],
  ['extraroute', 'Neutron Extra Route', 'Extra routes configuration for L3 router'],
  ['security-group', 'security-group', 'The security groups extension.'],
  [
    'stateful-security-group',
    'Stateful security group',
    'Indicates if the security group is stateful or not',
  ],
  ['quotas', 'Quota management support', 'Expose functions for quotas management per project'],
  [
    'quota_details',
    'Quota details management support',
    'Expose functions for quotas usage statistics per project',
  ],
  ['binding', 'Port Binding', 'Expose port bindings of a virtual port to external application'],
  ['provider', 'Provider Network', 'Expose mapping of virtual networks to physical networks'],
  ['port-security', 'Port Security', 'Provides port security'],
  ['allowed-address-pairs', 'Allowed Address Pairs', 'Provides allowed address pairs'],
  ['net-mtu', 'Network MTU', 'Provides MTU attribute for a network resource.'],
  [
    'fip-port-details',
    'Floating IP Port Details Extension',
    'Add port_details attribute to Floating IP resource',
  ],
  [
    'standard-attr-description',
    'standard-attr-description',
    'Extension to add descriptions to standard attributes',
  ],
  [
    'standard-attr-timestamp',
    'Resource timestamps',
    'Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.',
  ],
  [
    'standard-attr-revisions',
    'Resource revision numbers',
    'This extension will display the revision number of neutron resources.',
  ],
  ['project-id', 'project_id field enabled', 'Extension that indicates that project_id field is enabled.'],
  ['pagination', 'Pagination support', 'Extension that indicates that pagination is enabled.'],
  ['sorting', 'Sorting support', 'Extension that indicates that sorting is enabled.'],
  [
    'standard-attr-tag',
    'Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip',
    'Enables to set tag on resources with standard attribute.',
  ],
  ['filter-validation', 'Filter parameters validation', 'Provides validation on filter parameters.'],
].map(([alias, name, description]) => ({
  alias,
  name,
  description,
  updated: '2026-11-28T00:00:00-00:00',
  links: [],
}));

const RESOURCES = [
  ['network', 'networks'],
  ['subnet', 'subnets'],
  ['port', 'ports'],
  ['security_group', 'security-groups'],
  ['security_group_rule', 'security-group-rules'],
  ['router', 'routers'],
  ['floatingip', 'floatingips'],
  ['quota', 'quotas'],
];

/** Version discovery and the extension list, which clients read before anything else. */
@Controller()
export class VersionsController {
  constructor(@Inject(NETWORK_BASE_URL) private readonly base: string) {}

  @Get()
  @Public()
  versions() {
    return {
      versions: [{ id: 'v2.0', status: 'CURRENT', links: [{ href: `${this.base}/v2.0/`, rel: 'self' }] }],
    };
  }

  @Get('v2.0')
  resources() {
    return {
      resources: RESOURCES.map(([name, collection]) => ({
        name,
        collection,
        links: [{ href: `${this.base}/v2.0/${collection}`, rel: 'self' }],
      })),
    };
  }

  @Get('v2.0/extensions')
  extensions(@Query() query: Record<string, unknown>) {
    return list(EXTENSIONS, query, {
      collection: 'extensions',
      url: `${this.base}/v2.0/extensions`,
      attributes: ['alias', 'name', 'description', 'updated', 'links'],
      notFound: (alias) => new NotFoundError(`Extension with alias ${alias} does not exist`),
    });
  }

  @Get('v2.0/extensions/:alias')
  extension(@Param('alias') alias: string) {
    const extension = EXTENSIONS.find((e) => e.alias === alias);
    if (!extension) throw new NotFoundError(`Extension with alias ${alias} does not exist`);
    return { extension };
  }
}
