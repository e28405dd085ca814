import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { promptTokenIds, samplingSeed } from './prompt-sampler';

describe('promptTokenIds', () => {
  it('depends only on (seed, request index), with ids in [0, vocab)', () => {
    const a = promptTokenIds(1, 5, 64, 512);
    assert.deepEqual(promptTokenIds(1, 5, 64, 512), a);
    assert.notDeepEqual(promptTokenIds(1, 6, 64, 512), a);
    assert.notDeepEqual(promptTokenIds(2, 5, 64, 512), a);
    assert.equal(a.length, 64);
    assert.ok(a.every((id) => Number.isInteger(id) && id >= 0 && id < 512));
  });

  it('covers the vocabulary roughly uniformly', () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 100; i++) for (const id of promptTokenIds(3, i, 80, 8)) counts[id]++;
    for (const n of counts) assert.ok(n > 800 && n < 1200, String(counts));
  });

  it('sampling seeds are uint32 and differ between requests', () => {
    const seeds = new Set(Array.from({ length: 1000 }, (_, i) => samplingSeed(1, i)));
    assert.equal(seeds.size, 1000);
    for (const s of seeds) assert.ok(Number.isInteger(s) && s >= 0 && s < 2 ** 32);
  });
});
