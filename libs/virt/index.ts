export * from './driver';
export * from './states';
export * from './fake/fake.driver';
export * from './container/container.driver';
