/** Test kit for the serving contracts (import from '@kcache-serve/proto/dist/testing'; not loaded by the apps). */
export * from './redis-server';
export * from './serving-cluster';
export * from './test-certificates';
export * from './wait-for';
export * from './readme-commands';
export * from './reflection-client';
export * from './recording-relay';
