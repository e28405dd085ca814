import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimitedError } from '../errors/gateway-errors';
import { KeyLimiter } from './key-limiter';
import { TokenWindow } from './token-window';

const alice = { name: 'alice' };
const bob = { name: 'bob' };

describe('KeyLimiter', () => {
  it('limits concurrent streams per key, and a released lease frees its slot once', () => {
    const limiter = new KeyLimiter({ maxConcurrentStreams: 2, maxTokensPerMinute: null });
    const first = limiter.acquire(alice, 5);
    limiter.acquire(alice, 5);
    assert.throws(() => limiter.acquire(alice, 5), (e: unknown) => e instanceof RateLimitedError && e.retryAfterMs > 0);
    limiter.acquire(bob, 5); // another key is not affected
    first.release();
    first.release();
    assert.equal(limiter.numStreamsOf(alice), 1);
    limiter.acquire(alice, 5);
    assert.throws(() => limiter.acquire(alice, 5), RateLimitedError);
  });

  it('counts prompt and generated tokens over a sliding minute, with the wait as retry hint', () => {
    let nowMs = 1_000_000;
    const limiter = new KeyLimiter({ maxConcurrentStreams: null, maxTokensPerMinute: 100 }, () => nowMs);
    const lease = limiter.acquire(alice, 30); // 30 at t=0
    nowMs += 20_000;
    lease.addTokens(70); // 100 at t=20 s
    lease.release();
    assert.throws(
      () => limiter.acquire(alice, 1),
      (e: unknown) => e instanceof RateLimitedError && e.retryAfterMs > 40_000 && e.retryAfterMs <= 41_000 && /retry in \d+ s/.test(e.message),
    );
    limiter.acquire(bob, 1);
    nowMs += 41_000; // the first 30 left the window
    limiter.acquire(alice, 1).release();
  });
});

describe('TokenWindow', () => {
  it('forgets tokens a window later, and says how long until usage drops below a limit', () => {
    const window = new TokenWindow(60_000);
    window.add(10, 0);
    window.add(10, 30_500);
    assert.equal(window.used(59_999), 20);
    assert.equal(window.msUntilBelow(15, 30_500), 30_500);
    assert.equal(window.msUntilBelow(25, 30_500), 0);
    assert.equal(window.used(61_000), 10);
    assert.equal(window.used(91_000), 0);
    assert.equal(window.isEmpty, true);
  });
});
