import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { paddedBatch, paddedBlocks } from './decode-shapes';

describe('decode shapes in steps (fixedShapes)', () => {
  it('batches: powers of two to 8, then multiples of 8 to 64, then of 32; never smaller than the batch', () => {
    assert.deepEqual([1, 2, 3, 5, 8, 9, 17, 64, 65, 100, 256].map(paddedBatch), [1, 2, 4, 8, 8, 16, 24, 64, 96, 128, 256]);
    for (let b = 1; b <= 300; b++) assert.ok(paddedBatch(b) >= b && paddedBatch(paddedBatch(b)) === paddedBatch(b), `batch ${b}`);
  });

  it('past blocks: multiples of 8 to 64, then eight steps per doubling (at most 7 more blocks, or an eighth more); tens of shapes to 32768 positions', () => {
    assert.deepEqual([1, 8, 9, 32, 33, 64, 65, 129, 2047, 2048].map(paddedBlocks), [8, 8, 16, 32, 40, 64, 72, 144, 2048, 2048]);
    const shapes = new Set<number>();
    for (let b = 1; b <= 2048; b++) {
      const padded = paddedBlocks(b);
      assert.ok(padded >= b && padded <= Math.max(b + 7, b * 1.125) && paddedBlocks(padded) === padded, `blocks ${b} -> ${padded}`);
      shapes.add(padded);
    }
    assert.ok(shapes.size <= 64, `${shapes.size} shapes`);
  });
});
