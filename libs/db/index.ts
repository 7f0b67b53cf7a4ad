export * from './columns';
export * from './data-source';
export * from './db.module';
export * from './entities/identity';
export * from './entities/network';
export * from './transaction';
export * from './entities/image';
export * from './entities/compute';
