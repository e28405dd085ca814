import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeededRandom, randomBitsAt, uniformAt } from './seeded-random';

describe('seeded random', () => {
  it('is splitmix64: the stream of seed 0 starts with its published first output', () => {
    assert.equal(randomBitsAt(0, 0), 0xe220a8397b1dcdafn);
    assert.equal(randomBitsAt(0, 1), 0x6e789e6aa1b965f4n);
  });

  it('is a pure function of (seed, index) in [0, 1)', () => {
    const random = new SeededRandom(42);
    for (let index = 0; index < 1000; index++) {
      const u = uniformAt(42, index);
      assert.ok(u >= 0 && u < 1);
      assert.equal(random.next(), u);
    }
    assert.equal(uniformAt(42, 500), uniformAt(42, 500));
    assert.notEqual(uniformAt(42, 0), uniformAt(43, 0));
    assert.notEqual(uniformAt(-1, 0), uniformAt(1, 0));
    assert.equal(uniformAt(Number.MAX_SAFE_INTEGER, 7), uniformAt(Number.MAX_SAFE_INTEGER, 7));
  });

  it('is roughly uniform', () => {
    const numBins = 10;
    const counts = new Array<number>(numBins).fill(0);
    const numDraws = 20_000;
    for (let index = 0; index < numDraws; index++) counts[Math.floor(uniformAt(7, index) * numBins)]++;
    const expected = numDraws / numBins;
    const chiSquare = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    assert.ok(chiSquare < 27.9, `chi-square ${chiSquare} (9 dof, p = 0.001)`);
  });

  it('rejects a seed or index it cannot represent', () => {
    assert.throws(() => uniformAt(0.5, 0), RangeError);
    assert.throws(() => uniformAt(0, -1), RangeError);
    assert.throws(() => new SeededRandom(NaN), RangeError);
  });
});
