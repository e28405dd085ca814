import { readFileSync } from 'node:fs';
import { Redis, RedisOptions } from 'ioredis';

/**
 * How gateways and workers reach Redis. Credentials go in the URL (`redis://user:password@host:port`, a
 * password alone as `redis://:password@host`); `rediss://` turns TLS on. The CA and client certificate
 * are files (PEM) for a Redis whose certificate a public CA did not sign, or that wants client certificates.
 */
export interface RedisConnectionOptions {
  readonly url: string;
  /** CA bundle that signed the Redis server's certificate; with a redis:// URL it also turns TLS on. */
  readonly tlsCaPath?: string;
  /** Client certificate and key, both or neither, for a Redis started with tls-auth-clients. */
  readonly tlsCertPath?: string;
  readonly tlsKeyPath?: string;
}

/** The ioredis options for `options` (files read now, so a missing file fails at start-up). */
export function redisOptionsOf(options: RedisConnectionOptions): RedisOptions {
  const isTls = options.url.startsWith('rediss://') || options.tlsCaPath !== undefined || options.tlsCertPath !== undefined;
  const tls = isTls
    ? {
        ...(options.tlsCaPath === undefined ? {} : { ca: readFileSync(options.tlsCaPath) }),
        ...(options.tlsCertPath === undefined ? {} : { cert: readFileSync(options.tlsCertPath) }),
        ...(options.tlsKeyPath === undefined ? {} : { key: readFileSync(options.tlsKeyPath) }),
      }
    : undefined;
  // maxRetriesPerRequest null: commands wait for a reconnect instead of failing (BullMQ requires it).
  return { maxRetriesPerRequest: null, ...(tls === undefined ? {} : { tls }) };
}

export function createRedis(options: RedisConnectionOptions): Redis {
  return new Redis(options.url, redisOptionsOf(options));
}

/** The URL with its password replaced by `***`, for log lines and error messages. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable Redis URL)';
  }
}

/** Redis did not answer PING in time at start-up (unreachable, wrong password, TLS mismatch). */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
}

/** Resolves once `redis` answers PING; rejects with RedisUnavailableError naming the last error after timeoutMs. */
export async function waitForRedis(redis: Redis, url: string, timeoutMs: number): Promise<void> {
  let lastError: unknown = null; // the connection's own error (WRONGPASS, ECONNREFUSED) says more than a timeout
  let lastTimeout: unknown = null;
  const onError = (error: unknown) => (lastError = error);
  redis.on('error', onError);
  try {
    const giveUpAt = Date.now() + timeoutMs;
    for (;;) {
      const remainingMs = giveUpAt - Date.now();
      if (remainingMs <= 0) break;
      try {
        await withTimeout(redis.ping(), Math.min(remainingMs, 1000));
        return;
      } catch (error) {
        if (error instanceof TimeoutError) lastTimeout = error;
        else lastError = error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    const cause = lastError ?? lastTimeout;
    const reason = cause instanceof Error ? cause.message : 'no answer';
    throw new RedisUnavailableError(`Redis at ${redactRedisUrl(url)} did not answer within ${timeoutMs} ms: ${reason}`, { cause });
  } finally {
    redis.off('error', onError);
  }
}

class TimeoutError extends Error {}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new TimeoutError(`no answer in ${timeoutMs} ms`)), timeoutMs);
    promise.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error) => (clearTimeout(timer), reject(error)),
    );
  });
}
