export * from './driver';
export * from './states';
export * from './fake/fake.driver';
