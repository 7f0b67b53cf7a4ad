export * from './firewall';
export * from './host-network';
export * from './names';
export * from './router-nat';
export * from './plugin-rpc';
