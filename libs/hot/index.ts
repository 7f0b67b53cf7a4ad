export * from './errors';
export * from './functions';
export * from './graph';
export * from './parameters';
export * from './parse';
export * from './template';
export * from './versions';
