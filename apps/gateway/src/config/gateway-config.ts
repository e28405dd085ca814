import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { DEFAULT_REDIS_PREFIX } from '@kcache-serve/proto';

/** The gateway's environment, parsed once at start-up. Defaults are documented here and only here. */
const gatewayEnvSchema = z.object({
  /** Public gRPC (Generation, grpc.health.v1.Health, server reflection). */
  PORT: z.coerce.number().int().min(0).max(65535).default(50051),
  GRPC_HOST: z.string().default('0.0.0.0'),
  /** HTTP: /healthz, /readyz, /metrics, POST /v1/completions. */
  HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HTTP_HOST: z.string().default('0.0.0.0'),
  /** Internal gRPC Relay that workers deliver tokens to. */
  RELAY_PORT: z.coerce.number().int().min(0).max(65535).default(50052),
  RELAY_HOST: z.string().default('0.0.0.0'),
  /** Host workers use to reach this gateway's relay (put in each job); must be routable from workers. */
  RELAY_ADVERTISE_HOST: z.string().default('127.0.0.1'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Namespace of every Redis key and BullMQ queue; must match the workers'. */
  REDIS_PREFIX: z.string().min(1).default(DEFAULT_REDIS_PREFIX),
  /** Model spec (`synthetic:NAME[@SEED]` or llama2.c folder / .bin): its tokenizer and limits validate requests. Unset: stories260K (../shared/models beside the checkout, the local cache, or a verified download). */
  MODEL: z.string().min(1).optional(),
  GATEWAY_ID: z.string().min(1).optional(),
  /** Requests waiting for a worker (all gateways together); beyond it new requests get RESOURCE_EXHAUSTED. */
  MAX_QUEUED_REQUESTS: z.coerce.number().int().min(1).default(1024),
  /** Largest request accepted, gRPC message or HTTP body. */
  MAX_REQUEST_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  DEFAULT_MAX_NEW_TOKENS: z.coerce.number().int().min(1).default(256),
  DEFAULT_TEMPERATURE: z.coerce.number().min(0).default(1),
  DEFAULT_ATTENTION_MODE: z.enum(['full', 'kcache']).default('full'),
  DEFAULT_TOP_N: z.coerce.number().int().min(1).default(64),
  DEFAULT_DENSE_LAYERS: z.coerce.number().int().min(0).default(0),
  DEFAULT_RENORMALIZE: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** On SIGTERM, open streams get this long to finish before the servers close. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(30000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface GatewayConfig {
  readonly gatewayId: string;
  readonly grpcHost: string;
  readonly grpcPort: number;
  readonly httpHost: string;
  readonly httpPort: number;
  readonly relayHost: string;
  readonly relayPort: number;
  readonly relayAdvertiseHost: string;
  readonly redisUrl: string;
  readonly redisPrefix: string;
  readonly model: string | undefined;
  readonly maxQueuedRequests: number;
  readonly maxRequestBytes: number;
  readonly defaults: RequestDefaults;
  readonly shutdownGraceMs: number;
  readonly logLevel: string;
}

/** What a request gets for fields it leaves unset. */
export interface RequestDefaults {
  readonly maxNewTokens: number;
  readonly temperature: number;
  readonly attention: { readonly mode: 'full' | 'kcache'; readonly topN: number; readonly denseLayers: number; readonly renormalize: boolean };
}

/** Throws a ZodError naming every bad variable. */
export function parseGatewayConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  const e = gatewayEnvSchema.parse(env);
  return {
    gatewayId: e.GATEWAY_ID ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    grpcHost: e.GRPC_HOST,
    grpcPort: e.PORT,
    httpHost: e.HTTP_HOST,
    httpPort: e.HTTP_PORT,
    relayHost: e.RELAY_HOST,
    relayPort: e.RELAY_PORT,
    relayAdvertiseHost: e.RELAY_ADVERTISE_HOST,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    model: e.MODEL,
    maxQueuedRequests: e.MAX_QUEUED_REQUESTS,
    maxRequestBytes: e.MAX_REQUEST_BYTES,
    defaults: {
      maxNewTokens: e.DEFAULT_MAX_NEW_TOKENS,
      temperature: e.DEFAULT_TEMPERATURE,
      attention: { mode: e.DEFAULT_ATTENTION_MODE, topN: e.DEFAULT_TOP_N, denseLayers: e.DEFAULT_DENSE_LAYERS, renormalize: e.DEFAULT_RENORMALIZE },
    },
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    logLevel: e.LOG_LEVEL,
  };
}

/** Nest injection token for GatewayConfig. */
export const GATEWAY_CONFIG = Symbol('GatewayConfig');
