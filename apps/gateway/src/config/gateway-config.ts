import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { MAX_STOP_STRING_LENGTH, MAX_STOP_STRINGS } from '@kcache-serve/kcache/light';
import { DEFAULT_REDIS_PREFIX, JOB_LIMITS, RedisConnectionOptions } from '@kcache-serve/proto';
import { ApiKey, parseApiKeyHashes } from '../auth/api-key';
import { AuthConfig } from '../auth/auth-config';

const optionalInt = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max).optional();
const optionalPath = z.string().min(1).optional();
const openOrProtected = z.enum(['open', 'protected']).default('open');
const booleanText = (fallback: 'true' | 'false') => z.enum(['true', 'false']).default(fallback).transform((v) => v === 'true');

/** The gateway's environment, parsed once at start-up. Defaults are documented here and only here. */
const gatewayEnvSchema = z.object({
  /** Public gRPC (Generation, grpc.health.v1.Health, server reflection). */
  PORT: z.coerce.number().int().min(0).max(65535).default(50051),
  GRPC_HOST: z.string().default('0.0.0.0'),
  /** HTTP: /healthz, /readyz, /metrics, POST /v1/completions, POST /v1/chat/completions. */
  HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HTTP_HOST: z.string().default('0.0.0.0'),
  /** Internal gRPC Relay that workers deliver tokens to. Unset RELAY_HOST: bind RELAY_ADVERTISE_HOST only, not every interface. */
  RELAY_PORT: z.coerce.number().int().min(0).max(65535).default(50052),
  RELAY_HOST: z.string().min(1).optional(),
  /** Host workers use to reach this gateway's relay (put in each job); must be routable from workers. */
  RELAY_ADVERTISE_HOST: z.string().default('127.0.0.1'),
  /** Credentials in the URL (redis://user:password@host:port); rediss:// for TLS. */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** PEM files: the CA that signed Redis's certificate (turns TLS on), a client certificate and key. */
  REDIS_TLS_CA_PATH: optionalPath,
  REDIS_TLS_CERT_PATH: optionalPath,
  REDIS_TLS_KEY_PATH: optionalPath,
  /** At start-up, Redis must answer within this long, else the gateway exits naming the reason. */
  REDIS_STARTUP_TIMEOUT_MS: z.coerce.number().int().min(100).default(10000),
  /** Namespace of every Redis key and BullMQ queue; must match the workers'. */
  REDIS_PREFIX: z.string().min(1).default(DEFAULT_REDIS_PREFIX),
  /** Model spec (`synthetic:NAME[@SEED]`, llama2.c folder / .bin, Hugging Face folder, .gguf): its tokenizer, chat template and limits validate requests. Unset: stories260K (../shared/models beside the checkout, the local cache, or a verified download). */
  MODEL: z.string().min(1).optional(),
  GATEWAY_ID: z.string().min(1).optional(),
  /** Requests waiting for a worker (all gateways together); beyond it new requests get RESOURCE_EXHAUSTED. */
  MAX_QUEUED_REQUESTS: z.coerce.number().int().min(1).default(1024),
  /** Largest request accepted, gRPC message or HTTP body. */
  MAX_REQUEST_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  /** `api-key`: every call needs `authorization: Bearer <key>` of a key in API_KEY_HASHES. `off`: no check (a warning is logged). */
  AUTH_MODE: z.enum(['api-key', 'off']).default('api-key'),
  /** Comma-separated `[name:]sha256hex` of the accepted keys (sha256 of the key's UTF-8 bytes, hex). */
  API_KEY_HASHES: z.string().optional(),
  /** Whether /healthz, /readyz and grpc.health.v1.Health need a key (`protected`) or not (`open`). */
  HEALTH_AUTH: openOrProtected,
  /** Whether GET /metrics needs a key. */
  METRICS_AUTH: openOrProtected,
  /** Per API key (per gateway): open streams, and prompt + generated tokens in any 60 s. Unset: no limit. */
  KEY_MAX_CONCURRENT_STREAMS: optionalInt(1),
  KEY_MAX_TOKENS_PER_MINUTE: optionalInt(1),
  /** Input limits checked before anything is queued. Unset token limits: the model's context. */
  MAX_PROMPT_BYTES: z.coerce.number().int().min(1).default(256 * 1024),
  MAX_PROMPT_TOKENS: optionalInt(1, JOB_LIMITS.maxTokenIds),
  MAX_NEW_TOKENS_LIMIT: optionalInt(1, JOB_LIMITS.maxNewTokens),
  /** Chat requests: messages per conversation, and content bytes per message (unset: MAX_PROMPT_BYTES, which also bounds the whole conversation's content). */
  MAX_CHAT_MESSAGES: z.coerce.number().int().min(1).default(256),
  MAX_CHAT_MESSAGE_BYTES: optionalInt(1),
  MAX_STOP_STRINGS: z.coerce.number().int().min(0).max(MAX_STOP_STRINGS).default(MAX_STOP_STRINGS),
  MAX_STOP_STRING_BYTES: z.coerce.number().int().min(1).max(MAX_STOP_STRING_LENGTH * 4).default(MAX_STOP_STRING_LENGTH),
  MAX_STOP_TOKEN_IDS: z.coerce.number().int().min(0).max(JOB_LIMITS.maxTokenIds).default(64),
  /** PEM certificate and key: the public gRPC and HTTP ports serve TLS. Both or neither. */
  TLS_CERT_PATH: optionalPath,
  TLS_KEY_PATH: optionalPath,
  /** Mutual TLS on the internal Relay: this server's certificate and key, and the CA that signed the workers' client certificates. All or none. */
  RELAY_TLS_CERT_PATH: optionalPath,
  RELAY_TLS_KEY_PATH: optionalPath,
  RELAY_TLS_CA_PATH: optionalPath,
  /** A client that reads nothing: its stream is cut (RESOURCE_EXHAUSTED) once this many events wait for it, or once it has not drained for this long. */
  SLOW_CLIENT_MAX_BUFFERED_EVENTS: z.coerce.number().int().min(1).default(1024),
  SLOW_CLIENT_TIMEOUT_MS: z.coerce.number().int().min(100).default(30000),
  /** Streams with no event for this long are checked against the queue; one whose job is gone ends UNAVAILABLE. */
  STREAM_CHECK_INTERVAL_MS: z.coerce.number().int().min(100).default(5000),
  DEFAULT_MAX_NEW_TOKENS: z.coerce.number().int().min(1).default(256),
  DEFAULT_TEMPERATURE: z.coerce.number().min(0).default(1),
  DEFAULT_ATTENTION_MODE: z.enum(['full', 'kcache']).default('full'),
  DEFAULT_TOP_N: z.coerce.number().int().min(1).default(64),
  DEFAULT_DENSE_LAYERS: z.coerce.number().int().min(0).default(0),
  DEFAULT_RENORMALIZE: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** On SIGTERM, open streams get this long to finish before the servers close. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(30000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Debug aid: log each accepted request's prompt and stop strings at debug level. Keys are never logged. */
  LOG_REQUEST_CONTENT: booleanText('false'),
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
  readonly redis: RedisConnectionOptions;
  readonly redisStartupTimeoutMs: number;
  readonly redisPrefix: string;
  readonly model: string | undefined;
  readonly maxQueuedRequests: number;
  readonly maxRequestBytes: number;
  readonly auth: AuthConfig;
  readonly keyLimits: KeyLimits;
  readonly limits: InputLimits;
  readonly tls: TlsFiles | null;
  readonly relayTls: MutualTlsFiles | null;
  readonly slowClient: { readonly maxBufferedEvents: number; readonly timeoutMs: number };
  readonly streamCheckIntervalMs: number;
  readonly defaults: RequestDefaults;
  readonly shutdownGraceMs: number;
  readonly logLevel: string;
  readonly isRequestContentLogged: boolean;
}

/** null: no limit. */
export interface KeyLimits {
  readonly maxConcurrentStreams: number | null;
  readonly maxTokensPerMinute: number | null;
}

/** Checked at the edge, before tokenizing where possible; null token limits mean the model's context. */
export interface InputLimits {
  /** UTF-8 bytes of a text prompt, or of all message contents of a conversation together. */
  readonly maxPromptBytes: number;
  readonly maxPromptTokens: number | null;
  readonly maxChatMessages: number;
  readonly maxChatMessageBytes: number;
  readonly maxNewTokens: number | null;
  readonly maxStopStrings: number;
  readonly maxStopStringBytes: number;
  readonly maxStopTokenIds: number;
}

export interface TlsFiles {
  readonly certPath: string;
  readonly keyPath: string;
}

export interface MutualTlsFiles extends TlsFiles {
  /** CA that signed the peers' certificates. */
  readonly caPath: string;
}

/** A bad environment: the message names every bad variable (never its value) on one line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** What a request gets for fields it leaves unset. */
export interface RequestDefaults {
  readonly maxNewTokens: number;
  readonly temperature: number;
  readonly attention: { readonly mode: 'full' | 'kcache'; readonly topN: number; readonly denseLayers: number; readonly renormalize: boolean };
}

/** Throws ConfigError naming every bad variable. */
export function parseGatewayConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  const parsed = gatewayEnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(`invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const e = parsed.data;
  return {
    gatewayId: e.GATEWAY_ID ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    grpcHost: e.GRPC_HOST,
    grpcPort: e.PORT,
    httpHost: e.HTTP_HOST,
    httpPort: e.HTTP_PORT,
    relayHost: e.RELAY_HOST ?? e.RELAY_ADVERTISE_HOST,
    relayPort: e.RELAY_PORT,
    relayAdvertiseHost: e.RELAY_ADVERTISE_HOST,
    redis: { url: e.REDIS_URL, tlsCaPath: e.REDIS_TLS_CA_PATH, ...pairOf('REDIS_TLS_CERT_PATH', e.REDIS_TLS_CERT_PATH, 'REDIS_TLS_KEY_PATH', e.REDIS_TLS_KEY_PATH, (certPath, keyPath) => ({ tlsCertPath: certPath, tlsKeyPath: keyPath })) },
    redisStartupTimeoutMs: e.REDIS_STARTUP_TIMEOUT_MS,
    redisPrefix: e.REDIS_PREFIX,
    model: e.MODEL,
    maxQueuedRequests: e.MAX_QUEUED_REQUESTS,
    maxRequestBytes: e.MAX_REQUEST_BYTES,
    auth: authConfigOf(e.AUTH_MODE, e.API_KEY_HASHES, e.HEALTH_AUTH, e.METRICS_AUTH),
    keyLimits: { maxConcurrentStreams: e.KEY_MAX_CONCURRENT_STREAMS ?? null, maxTokensPerMinute: e.KEY_MAX_TOKENS_PER_MINUTE ?? null },
    limits: {
      maxPromptBytes: e.MAX_PROMPT_BYTES,
      maxPromptTokens: e.MAX_PROMPT_TOKENS ?? null,
      maxChatMessages: e.MAX_CHAT_MESSAGES,
      maxChatMessageBytes: e.MAX_CHAT_MESSAGE_BYTES ?? e.MAX_PROMPT_BYTES,
      maxNewTokens: e.MAX_NEW_TOKENS_LIMIT ?? null,
      maxStopStrings: e.MAX_STOP_STRINGS,
      maxStopStringBytes: e.MAX_STOP_STRING_BYTES,
      maxStopTokenIds: e.MAX_STOP_TOKEN_IDS,
    },
    tls: pairOf('TLS_CERT_PATH', e.TLS_CERT_PATH, 'TLS_KEY_PATH', e.TLS_KEY_PATH, (certPath, keyPath) => ({ certPath, keyPath })) ?? null,
    relayTls: mutualTlsOf(e.RELAY_TLS_CERT_PATH, e.RELAY_TLS_KEY_PATH, e.RELAY_TLS_CA_PATH),
    slowClient: { maxBufferedEvents: e.SLOW_CLIENT_MAX_BUFFERED_EVENTS, timeoutMs: e.SLOW_CLIENT_TIMEOUT_MS },
    streamCheckIntervalMs: e.STREAM_CHECK_INTERVAL_MS,
    defaults: {
      maxNewTokens: e.DEFAULT_MAX_NEW_TOKENS,
      temperature: e.DEFAULT_TEMPERATURE,
      attention: { mode: e.DEFAULT_ATTENTION_MODE, topN: e.DEFAULT_TOP_N, denseLayers: e.DEFAULT_DENSE_LAYERS, renormalize: e.DEFAULT_RENORMALIZE },
    },
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    logLevel: e.LOG_LEVEL,
    isRequestContentLogged: e.LOG_REQUEST_CONTENT,
  };
}

function authConfigOf(mode: 'api-key' | 'off', hashes: string | undefined, health: 'open' | 'protected', metrics: 'open' | 'protected'): AuthConfig {
  const isEnabled = mode === 'api-key';
  let apiKeys: ApiKey[] = [];
  if (isEnabled) {
    if (hashes === undefined || hashes.trim() === '') {
      throw new ConfigError('invalid configuration: API_KEY_HASHES: required when AUTH_MODE=api-key (the default); set AUTH_MODE=off to serve without authentication');
    }
    try {
      apiKeys = parseApiKeyHashes(hashes);
    } catch (error) {
      throw new ConfigError(`invalid configuration: API_KEY_HASHES: ${(error as Error).message}`, { cause: error });
    }
  }
  return { apiKeys, isEnabled, isHealthProtected: isEnabled && health === 'protected', isMetricsProtected: isEnabled && metrics === 'protected' };
}

/** Both variables set: `make(a, b)`; neither: undefined; one: ConfigError. */
function pairOf<T>(nameA: string, a: string | undefined, nameB: string, b: string | undefined, make: (a: string, b: string) => T): T | undefined {
  if (a === undefined && b === undefined) return undefined;
  if (a === undefined || b === undefined) throw new ConfigError(`invalid configuration: ${nameA} and ${nameB} go together; set both or neither`);
  return make(a, b);
}

function mutualTlsOf(certPath: string | undefined, keyPath: string | undefined, caPath: string | undefined): MutualTlsFiles | null {
  const set = [certPath, keyPath, caPath].filter((p) => p !== undefined).length;
  if (set === 0) return null;
  if (set !== 3) throw new ConfigError('invalid configuration: RELAY_TLS_CERT_PATH, RELAY_TLS_KEY_PATH and RELAY_TLS_CA_PATH go together; set all or none');
  return { certPath: certPath!, keyPath: keyPath!, caPath: caPath! };
}

/** Nest injection token for GatewayConfig. */
export const GATEWAY_CONFIG = Symbol('GatewayConfig');
