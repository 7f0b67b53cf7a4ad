export * from './config';
export * from './faults';
export * from './fault.filter';
export * from './http-app';
export * from './logger';
export * from './request-context';
export * from './validation';
export * from './run-service';
