export * from './auth-context';
export * from './auth.guard';
export * from './auth.module';
export * from './policy';
export * from './token-validator';
