import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { DEFAULT_REDIS_PREFIX } from '@kcache-serve/proto';

const optionalInt = (min: number) => z.coerce.number().int().min(min).optional();

/** The worker's environment, parsed once at start-up. Defaults are documented here and only here. */
const workerEnvSchema = z.object({
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Namespace of every Redis key and BullMQ queue (lets deployments or tests share one Redis). */
  REDIS_PREFIX: z.string().min(1).default(DEFAULT_REDIS_PREFIX),
  /** Model spec: `synthetic:NAME[@SEED]` or a llama2.c model folder / .bin file. Must match the gateways'. Unset: stories260K (../shared/models beside the checkout, the local cache, or a verified download). */
  MODEL: z.string().min(1).optional(),
  WORKER_ID: z.string().min(1).optional(),
  /** HTTP /metrics and /healthz; port 0 picks a free one (logged and put in the heartbeat). */
  METRICS_HOST: z.string().default('0.0.0.0'),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  /** A job whose worker stops renewing its lock for this long is handed to another worker. */
  LOCK_DURATION_MS: z.coerce.number().int().min(500).default(3000),
  STALLED_INTERVAL_MS: z.coerce.number().int().min(250).default(2000),
  /** How many times one job may be recovered from a dead worker before it fails. */
  MAX_STALLED_COUNT: z.coerce.number().int().min(0).default(5),
  HEARTBEAT_INTERVAL_MS: z.coerce.number().int().min(100).default(1000),
  HEARTBEAT_TTL_MS: z.coerce.number().int().min(200).default(5000),
  /** On SIGTERM, running jobs get this long to finish; the rest are resumed by other workers. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(30000),
  /** Per Deliver call to a gateway; a gateway that stays unreachable this long loses its requests. */
  RELAY_TIMEOUT_MS: z.coerce.number().int().min(100).default(5000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Engine sizing; unset means the engine's own defaults.
  DEVICE_CAPACITY_BYTES: optionalInt(1),
  HOST_CAPACITY_BYTES: optionalInt(1),
  BLOCK_SIZE: optionalInt(1),
  MAX_NUM_SEQS: optionalInt(1),
  MAX_NUM_BATCHED_TOKENS: optionalInt(1),
  NUM_THREADS: optionalInt(1),
});

export interface WorkerConfig {
  readonly redisUrl: string;
  readonly redisPrefix: string;
  readonly model: string | undefined;
  readonly workerId: string;
  readonly metricsHost: string;
  readonly metricsPort: number;
  readonly lockDurationMs: number;
  readonly stalledIntervalMs: number;
  readonly maxStalledCount: number;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTtlMs: number;
  readonly shutdownGraceMs: number;
  readonly relayTimeoutMs: number;
  readonly logLevel: string;
  readonly engine: {
    readonly deviceCapacityBytes?: number;
    readonly hostCapacityBytes?: number;
    readonly blockSize?: number;
    readonly maxNumSeqs?: number;
    readonly maxNumBatchedTokens?: number;
    readonly numThreads?: number;
  };
}

/** Throws a ZodError naming every bad variable. */
export function parseWorkerConfig(env: NodeJS.ProcessEnv): WorkerConfig {
  const e = workerEnvSchema.parse(env);
  return {
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    model: e.MODEL,
    workerId: e.WORKER_ID ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    metricsHost: e.METRICS_HOST,
    metricsPort: e.METRICS_PORT,
    lockDurationMs: e.LOCK_DURATION_MS,
    stalledIntervalMs: e.STALLED_INTERVAL_MS,
    maxStalledCount: e.MAX_STALLED_COUNT,
    heartbeatIntervalMs: e.HEARTBEAT_INTERVAL_MS,
    heartbeatTtlMs: e.HEARTBEAT_TTL_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    relayTimeoutMs: e.RELAY_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    engine: {
      deviceCapacityBytes: e.DEVICE_CAPACITY_BYTES,
      hostCapacityBytes: e.HOST_CAPACITY_BYTES,
      blockSize: e.BLOCK_SIZE,
      maxNumSeqs: e.MAX_NUM_SEQS,
      maxNumBatchedTokens: e.MAX_NUM_BATCHED_TOKENS,
      numThreads: e.NUM_THREADS,
    },
  };
}
