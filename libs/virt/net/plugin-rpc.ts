/**
 * What compute agents and the network service say to each other about ports on the bus, after Neutron's
 * plugin RPC (an L2 agent reports `update_device_up` / `update_device_down`, and the port becomes ACTIVE
 * or DOWN) and its notifications (`port.update.end`, ...), which tell agents to filter anew.
 */
export const NETWORK_PLUGIN_QUEUE = 'network.plugin';

export const PluginMethod = {
  DEVICE_UP: 'update_device_up',
  DEVICE_DOWN: 'update_device_down',
} as const;

export interface DeviceStatusRequest {
  portIds: string[];
  host: string;
}

/** The notifications topic (shared with identity's) and the network events that change a host's filters. */
export const NOTIFICATIONS_TOPIC = 'notifications';
export const FILTER_EVENTS = [
  'port.create.end',
  'port.update.end',
  'port.delete.end',
  'security_group.delete.end',
  'security_group_rule.create.end',
  'security_group_rule.delete.end',
] as const;
export type FilterEvent = (typeof FILTER_EVENTS)[number];
