import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { percentiles } from './latency-summary';

describe('percentiles', () => {
  it('nearest rank over 1..100', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i);
    assert.deepEqual(percentiles(values), { p50: 50, p90: 90, p99: 99 });
  });

  it('one value is every percentile; none gives nulls', () => {
    assert.deepEqual(percentiles([7]), { p50: 7, p90: 7, p99: 7 });
    assert.deepEqual(percentiles([]), { p50: null, p90: null, p99: null });
  });
});
