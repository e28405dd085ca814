import type { Redis } from 'ioredis';
import { RedisKeys } from './redis-keys';

/**
 * Redis contract for crash recovery, used by both sides: workers append what the gateway acknowledged
 * and read it back on a retry; gateways and workers delete it when a request ends or is resubmitted.
 * RedisKeys.deliveredTokens(requestId) is a list whose element i is
 * the token id at generated index i, holding exactly the tokens the owning gateway has acknowledged.
 *
 * APPEND_SCRIPT
 *   KEYS[1]   the request's list
 *   ARGV[1]   index of the first token in ARGV[3..]
 *   ARGV[2]   TTL of the list in ms (refreshed on every append)
 *   ARGV[3..] token ids, consecutive indices
 *   returns   the list's length afterwards
 * Tokens at indices the list already holds are skipped (a resumed attempt re-acknowledging them);
 * a batch starting past the end would leave a gap and appends nothing.
 */
const APPEND_SCRIPT = `
local length = redis.call('LLEN', KEYS[1])
local start = tonumber(ARGV[1])
if start > length then return length end
local first = 3 + length - start
if first <= #ARGV then
  redis.call('RPUSH', KEYS[1], unpack(ARGV, first, #ARGV))
  length = length + #ARGV - first + 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return length
`;

export interface DeliveredRun {
  readonly requestId: string;
  readonly startIndex: number;
  readonly tokenIds: readonly number[];
}

type RedisWithAppend = Redis & {
  kcacheAppendDelivered(key: string, startIndex: number, ttlMs: number, ...tokenIds: number[]): Promise<number>;
};

export class DeliveredTokens {
  private readonly redis: RedisWithAppend;

  /** ttlMs bounds how long a list outlives a job nobody finishes (it is deleted when the job ends). */
  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlMs = 24 * 3600 * 1000,
  ) {
    redis.defineCommand('kcacheAppendDelivered', { numberOfKeys: 1, lua: APPEND_SCRIPT });
    this.redis = redis as RedisWithAppend;
  }

  async read(requestId: string): Promise<number[]> {
    const items = await this.redis.lrange(this.keys.deliveredTokens(requestId), 0, -1);
    return items.map(Number);
  }

  /**
   * Appends several requests' acknowledged runs; the commands leave together and share one round trip.
   * (Direct calls rather than a MULTI-less pipeline: building an ioredis pipeline costs more CPU than the
   * few commands it would carry, and this runs for every relay batch.)
   */
  async append(runs: readonly DeliveredRun[]): Promise<void> {
    await Promise.all(
      runs.map((run) => this.redis.kcacheAppendDelivered(this.keys.deliveredTokens(run.requestId), run.startIndex, this.ttlMs, ...run.tokenIds)),
    );
  }

  async delete(requestId: string): Promise<void> {
    await this.redis.del(this.keys.deliveredTokens(requestId));
  }
}
