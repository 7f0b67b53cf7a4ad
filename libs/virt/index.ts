export * from './driver';
export * from './states';
export * from './config-drive';
export * from './fake/fake.driver';
export * from './container/container.driver';
export * from './kvm/kvm.driver';
export * from './net';
export * from './metadata';
