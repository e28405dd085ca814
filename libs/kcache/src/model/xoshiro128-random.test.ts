import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Xoshiro128Random } from './xoshiro128-random';

describe('Xoshiro128Random', () => {
  it('repeats its stream for a seed and differs across seeds', () => {
    const draw = (seed: number) => Array.from({ length: 8 }, ((random) => () => random.nextUint32())(new Xoshiro128Random(seed)));
    assert.deepEqual(draw(7), draw(7));
    assert.notDeepEqual(draw(7), draw(8));
    for (const value of draw(0)) assert.ok(Number.isInteger(value) && value >= 0 && value < 2 ** 32);
  });

  it('fills with mean ~0 and the requested std', () => {
    const values = new Float32Array(200_000);
    new Xoshiro128Random(1).fillTriangular(values, 0.5);
    const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
    const std = Math.sqrt(values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length);
    assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
    assert.ok(Math.abs(std - 0.5) < 0.01, `std ${std}`);
  });

  it('gives floats in [0, 1)', () => {
    const random = new Xoshiro128Random(2);
    for (let i = 0; i < 1000; i++) {
      const value = random.nextFloat();
      assert.ok(value >= 0 && value < 1);
    }
  });
});
