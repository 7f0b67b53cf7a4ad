export * from './claims';
export * from './contract';
export * from './instance-records';
export * from './rpc-client';
export * from './service-state';
export * from './aggregates';
export * from './instance-name';
export * from './migration-records';
