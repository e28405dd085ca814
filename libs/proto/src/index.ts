import { join } from 'node:path';

export * from './gen/kcache/v1/generation';
export * as relay from './gen/kcache/internal/v1/relay';
export * from './queue/delivered-tokens';
export * from './queue/generation-job';
export * from './queue/generation-job-schema';
export * from './queue/redis-connection';
export * from './queue/redis-keys';
export * from './queue/relay-capability';
export * from './metadata';

/** Folder holding the .proto sources (for server reflection and other runtime loaders). */
export const PROTO_DIR = join(__dirname, '..', 'proto');
export const PUBLIC_PROTO_FILE = 'kcache/v1/generation.proto';
export const RELAY_PROTO_FILE = 'kcache/internal/v1/relay.proto';

export * from './process/startup-failure';
