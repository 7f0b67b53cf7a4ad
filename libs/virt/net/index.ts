export * from './firewall';
export * from './host-network';
export * from './names';
export * from './plugin-rpc';
