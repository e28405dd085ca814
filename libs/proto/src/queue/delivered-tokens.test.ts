import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startTestRedis, TestRedis } from '../testing';
import { RedisKeys } from './redis-keys';
import { Redis } from 'ioredis';
import { DeliveredTokens } from './delivered-tokens';

let server: TestRedis;
let redis: Redis;
let delivered: DeliveredTokens;
const keys = new RedisKeys(`kcache-test-${randomBytes(4).toString('hex')}`);

before(async () => {
  server = await startTestRedis();
  redis = new Redis(server.url);
  delivered = new DeliveredTokens(redis, keys, 60_000);
});

after(async () => {
  const leftover = await redis.keys(`${keys.prefix}:*`);
  if (leftover.length > 0) await redis.del(...leftover);
  await redis.quit();
  await server.stop();
});

describe('DeliveredTokens', () => {
  it('appends runs in index order, several requests per round trip', async () => {
    await delivered.append([
      { requestId: 'a', startIndex: 0, tokenIds: [5, 6] },
      { requestId: 'b', startIndex: 0, tokenIds: [9] },
    ]);
    await delivered.append([{ requestId: 'a', startIndex: 2, tokenIds: [7] }]);
    assert.deepEqual(await delivered.read('a'), [5, 6, 7]);
    assert.deepEqual(await delivered.read('b'), [9]);
  });

  it('skips indices it already holds (a resumed attempt re-acknowledging them)', async () => {
    await delivered.append([{ requestId: 'c', startIndex: 0, tokenIds: [1, 2, 3] }]);
    await delivered.append([{ requestId: 'c', startIndex: 1, tokenIds: [2, 3, 4, 5] }]);
    assert.deepEqual(await delivered.read('c'), [1, 2, 3, 4, 5]);
  });

  it('refuses a run that would leave a gap', async () => {
    await delivered.append([{ requestId: 'd', startIndex: 0, tokenIds: [1] }]);
    await delivered.append([{ requestId: 'd', startIndex: 3, tokenIds: [4] }]);
    assert.deepEqual(await delivered.read('d'), [1]);
  });

  it('sets a TTL and deletes', async () => {
    await delivered.append([{ requestId: 'e', startIndex: 0, tokenIds: [1] }]);
    const ttlMs = await redis.pttl(keys.deliveredTokens('e'));
    assert.ok(ttlMs > 0 && ttlMs <= 60_000);
    await delivered.delete('e');
    assert.deepEqual(await delivered.read('e'), []);
  });
});
