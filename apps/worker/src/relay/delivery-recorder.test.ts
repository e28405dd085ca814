import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DeliveredTokens, RedisKeys } from '@kcache-serve/proto';
import { startTestRedis, TestRedis } from '@kcache-serve/proto/dist/testing';
import { Redis } from 'ioredis';
import pino from 'pino';
import { DeliveryRecorder } from './delivery-recorder';

let server: TestRedis;
let redis: Redis;
let delivered: DeliveredTokens;
const keys = new RedisKeys(`kcache-test-${randomBytes(4).toString('hex')}`);

before(async () => {
  // Its own Redis (append-only), to freeze.
  server = await startTestRedis({ isAppendOnly: true });
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
  delivered = new DeliveredTokens(redis, keys, 60_000);
});

after(async () => {
  await redis.quit();
  await server.stop();
});

describe('DeliveryRecorder', () => {
  it('writes runs in index order, merging those that wait; overlaps skipped, gaps refused', async () => {
    const recorder = new DeliveryRecorder(delivered, pino({ level: 'silent' }));
    recorder.record([{ requestId: 'a', startIndex: 0, tokenIds: [1, 2] }]);
    recorder.record([{ requestId: 'a', startIndex: 2, tokenIds: [3] }, { requestId: 'b', startIndex: 0, tokenIds: [9] }]);
    recorder.record([{ requestId: 'a', startIndex: 1, tokenIds: [2, 3, 4] }]);
    recorder.record([{ requestId: 'a', startIndex: 9, tokenIds: [99] }]);
    await recorder.flushed();
    assert.deepEqual(await delivered.read('a'), [1, 2, 3, 4]);
    assert.deepEqual(await delivered.read('b'), [9]);
  });

  it('never waits for Redis: while it is frozen runs keep merging, and one write catches up after', async () => {
    const recorder = new DeliveryRecorder(delivered, pino({ level: 'silent' }));
    process.kill(server.pid()!, 'SIGSTOP');
    try {
      const startedAt = Date.now();
      for (let i = 0; i < 100; i++) recorder.record([{ requestId: 'frozen', startIndex: i, tokenIds: [i] }]);
      assert.ok(Date.now() - startedAt < 100, 'record returned at once');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.ok(recorder.numWaitingTokens >= 99, `${recorder.numWaitingTokens} tokens waiting`);
    } finally {
      process.kill(server.pid()!, 'SIGCONT');
    }
    await recorder.flushed();
    assert.equal(recorder.numWaitingTokens, 0);
    assert.deepEqual(await delivered.read('frozen'), Array.from({ length: 100 }, (_, i) => i));
  });

  it('delete drops what waits and removes the list after the write in flight', async () => {
    const recorder = new DeliveryRecorder(delivered, pino({ level: 'silent' }));
    recorder.record([{ requestId: 'gone', startIndex: 0, tokenIds: [1] }]);
    recorder.record([{ requestId: 'gone', startIndex: 1, tokenIds: [2] }]);
    await recorder.delete('gone');
    await recorder.flushed();
    assert.deepEqual(await delivered.read('gone'), []);
  });
});
