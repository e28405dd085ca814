import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { HostTierOptions } from '@kcache-serve/kcache';
import { DEFAULT_REDIS_PREFIX, RedisConnectionOptions } from '@kcache-serve/proto';

const optionalInt = (min: number) => z.coerce.number().int().min(min).optional();
const optionalPath = z.string().min(1).optional();

/** The worker's environment, parsed once at start-up. Defaults are documented here and only here. */
const workerEnvSchema = z.object({
  /** Credentials in the URL (redis://user:password@host:port); rediss:// for TLS. */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** PEM files: the CA that signed Redis's certificate (turns TLS on), a client certificate and key. */
  REDIS_TLS_CA_PATH: optionalPath,
  REDIS_TLS_CERT_PATH: optionalPath,
  REDIS_TLS_KEY_PATH: optionalPath,
  /** At start-up, Redis must answer within this long, else the worker exits naming the reason. */
  REDIS_STARTUP_TIMEOUT_MS: z.coerce.number().int().min(100).default(10000),
  /** Mutual TLS to the gateways' Relay: this worker's client certificate and key, and the CA that signed the gateways' certificates. All or none. */
  RELAY_TLS_CERT_PATH: optionalPath,
  RELAY_TLS_KEY_PATH: optionalPath,
  RELAY_TLS_CA_PATH: optionalPath,
  /** Name the gateways' certificates are checked against, when it is not the host in their relay address. */
  RELAY_TLS_SERVER_NAME: z.string().min(1).optional(),
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
  /** Where onnxruntime runs the graphs (docs/gpu.md). A provider that cannot start stops the worker with its reason. */
  EXECUTION_PROVIDER: z.enum(['cpu', 'webgpu', 'cuda']).default('cpu'),
  /** The engine's native backend (onnxruntime's C API, arenas bound in place): on with cuda, off otherwise unless set; cpu + true runs cuda's code path on the CPU. */
  NATIVE_BACKEND: z.enum(['true', 'false']).optional(),
  /** Decode attention as the native backend's PagedDecodeAttention kernel: on with cuda where its CUDA kernels are built, off otherwise unless set. */
  PAGED_ATTENTION: z.enum(['true', 'false']).optional(),
  /** cuda with PAGED_ATTENTION: each decode shape as a CUDA graph, captured once and replayed (off unless set). */
  CUDA_GRAPHS: z.enum(['true', 'false']).optional(),
  /** The engine's decode loop on a thread of its own (on), so a long step never holds up relaying, jobs and heartbeats; or on the main thread (off). */
  ENGINE_THREAD: z.enum(['on', 'off']).default('on'),
  /** Generated tokens of a resumed or preempted request: replayed by decode (bit-exact) or recomputed by prefill (faster). */
  RECOMPUTE: z.enum(['decode', 'prefill']).default('decode'),
  /** Host tier (V of KCache layers): this process's memory, or one tier shared by every worker of the node. */
  HOST_TIER: z.enum(['process', 'shared']).default('process'),
  /** Shared tier only: folder of its file (a tmpfs), its name (workers with the same folder and name share it), its size. */
  HOST_TIER_DIR: z.string().min(1).default('/dev/shm'),
  HOST_TIER_NAME: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected 1-64 of [A-Za-z0-9._-]').default('default'),
  /** Unset: HOST_CAPACITY_BYTES (or the engine's default). Every worker of the node must ask for the same. */
  HOST_TIER_CAPACITY_BYTES: optionalInt(1),
  /** A worker silent this long is dead: the others reclaim its blocks. */
  HOST_TIER_LEASE_MS: z.coerce.number().int().min(50).default(5000),
  /** Requests whose prompts share a block-aligned prefix reuse its V (and K, with HOST_TIER_PREFIX_KEYS=spill). */
  HOST_TIER_PREFIX_SHARING: z.enum(['true', 'false']).default('true'),
  HOST_TIER_PREFIX_KEYS: z.enum(['spill', 'recompute']).default('spill'),
});

export interface WorkerConfig {
  readonly redis: RedisConnectionOptions;
  readonly redisStartupTimeoutMs: number;
  readonly relayTls: RelayTlsFiles | null;
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
  /** ENGINE_THREAD: the engine runs on a worker thread (ThreadedEngine). */
  readonly isEngineThreaded: boolean;
  readonly engine: {
    readonly deviceCapacityBytes?: number;
    readonly hostCapacityBytes?: number;
    readonly blockSize?: number;
    readonly maxNumSeqs?: number;
    readonly maxNumBatchedTokens?: number;
    readonly numThreads?: number;
    readonly executionProvider: 'cpu' | 'webgpu' | 'cuda';
    readonly nativeBackend?: boolean;
    readonly pagedAttention?: boolean;
    readonly cudaGraphs?: boolean;
    readonly recompute: 'decode' | 'prefill';
    readonly hostTier: HostTierOptions;
  };
}

export interface RelayTlsFiles {
  readonly certPath: string;
  readonly keyPath: string;
  readonly caPath: string;
  readonly serverName: string | null;
}

/** A bad environment: the message names every bad variable (never its value) on one line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Throws ConfigError naming every bad variable. */
export function parseWorkerConfig(env: NodeJS.ProcessEnv): WorkerConfig {
  const parsed = workerEnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(`invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const e = parsed.data;
  if ((e.REDIS_TLS_CERT_PATH === undefined) !== (e.REDIS_TLS_KEY_PATH === undefined)) {
    throw new ConfigError('invalid configuration: REDIS_TLS_CERT_PATH and REDIS_TLS_KEY_PATH go together; set both or neither');
  }
  const relayTlsPaths = [e.RELAY_TLS_CERT_PATH, e.RELAY_TLS_KEY_PATH, e.RELAY_TLS_CA_PATH];
  const numRelayTlsPaths = relayTlsPaths.filter((p) => p !== undefined).length;
  if (numRelayTlsPaths !== 0 && numRelayTlsPaths !== 3) {
    throw new ConfigError('invalid configuration: RELAY_TLS_CERT_PATH, RELAY_TLS_KEY_PATH and RELAY_TLS_CA_PATH go together; set all or none');
  }
  return {
    redis: { url: e.REDIS_URL, tlsCaPath: e.REDIS_TLS_CA_PATH, tlsCertPath: e.REDIS_TLS_CERT_PATH, tlsKeyPath: e.REDIS_TLS_KEY_PATH },
    redisStartupTimeoutMs: e.REDIS_STARTUP_TIMEOUT_MS,
    relayTls:
      numRelayTlsPaths === 0
        ? null
        : { certPath: e.RELAY_TLS_CERT_PATH!, keyPath: e.RELAY_TLS_KEY_PATH!, caPath: e.RELAY_TLS_CA_PATH!, serverName: e.RELAY_TLS_SERVER_NAME ?? null },
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
    isEngineThreaded: e.ENGINE_THREAD === 'on',
    engine: {
      deviceCapacityBytes: e.DEVICE_CAPACITY_BYTES,
      hostCapacityBytes: e.HOST_CAPACITY_BYTES,
      blockSize: e.BLOCK_SIZE,
      maxNumSeqs: e.MAX_NUM_SEQS,
      maxNumBatchedTokens: e.MAX_NUM_BATCHED_TOKENS,
      numThreads: e.NUM_THREADS,
      executionProvider: e.EXECUTION_PROVIDER,
      nativeBackend: optionalBoolean(e.NATIVE_BACKEND),
      pagedAttention: optionalBoolean(e.PAGED_ATTENTION),
      cudaGraphs: optionalBoolean(e.CUDA_GRAPHS),
      recompute: e.RECOMPUTE,
      hostTier:
        e.HOST_TIER === 'process'
          ? { kind: 'process' }
          : {
              kind: 'shared',
              directory: e.HOST_TIER_DIR,
              name: e.HOST_TIER_NAME,
              capacityBytes: e.HOST_TIER_CAPACITY_BYTES,
              leaseMs: e.HOST_TIER_LEASE_MS,
              prefixSharing: e.HOST_TIER_PREFIX_SHARING === 'true',
              prefixKeys: e.HOST_TIER_PREFIX_KEYS,
            },
    },
  };
}

/** An optional 'true' / 'false' variable: unset leaves the choice to the engine. */
function optionalBoolean(value: 'true' | 'false' | undefined): boolean | undefined {
  return value === undefined ? undefined : value === 'true';
}
