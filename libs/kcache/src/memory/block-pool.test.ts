import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BlockPool } from './block-pool';
import { MemoryConfigError, OutOfBlocksError } from './memory-errors';

describe('BlockPool', () => {
  it('rejects a non-positive or non-integer capacity', () => {
    assert.throws(() => new BlockPool({ name: 'p', capacityBytes: 0 }), MemoryConfigError);
    assert.throws(() => new BlockPool({ name: 'p', capacityBytes: 1.5 }), MemoryConfigError);
  });

  it('charges exactly and throws OutOfBlocksError when a charge does not fit', () => {
    const pool = new BlockPool({ name: 'p', capacityBytes: 100 });
    assert.equal(pool.allocateId(40), 0);
    assert.equal(pool.allocateId(60), 1);
    assert.equal(pool.usedBytes, 100);
    assert.equal(pool.freeBytes, 0);
    assert.equal(pool.canAllocate(1), false);
    assert.throws(() => pool.allocateId(1), (err: unknown) => {
      assert.ok(err instanceof OutOfBlocksError);
      assert.equal(err.poolName, 'p');
      assert.equal(err.requestedBytes, 1);
      assert.equal(err.freeBytes, 0);
      return true;
    });
    assert.equal(pool.numIdsInUse, 2);
  });

  it('reuses freed ids lowest first and tracks the live top and high-water mark', () => {
    const pool = new BlockPool({ name: 'p', capacityBytes: 1000 });
    for (let i = 0; i < 5; i++) assert.equal(pool.allocateId(10), i);
    pool.freeId(3, 10);
    pool.freeId(1, 10);
    assert.equal(pool.maxIdInUsePlusOne, 5);
    assert.equal(pool.allocateId(10), 1);
    assert.equal(pool.allocateId(10), 3);
    assert.equal(pool.allocateId(10), 5);
    pool.freeId(5, 10);
    pool.freeId(4, 10);
    assert.equal(pool.maxIdInUsePlusOne, 4);
    assert.equal(pool.maxIdEverUsedPlusOne, 6);
    for (const id of [0, 1, 2, 3]) pool.freeId(id, 10);
    assert.equal(pool.maxIdInUsePlusOne, 0);
    assert.equal(pool.usedBytes, 0);
    assert.equal(pool.numIdsInUse, 0);
  });

  it('asserts on a double free or a charge mismatch', () => {
    const pool = new BlockPool({ name: 'p', capacityBytes: 100 });
    const id = pool.allocateId(10);
    assert.throws(() => pool.freeId(id, 11), assert.AssertionError);
    pool.freeId(id, 10);
    assert.throws(() => pool.freeId(id, 10), assert.AssertionError);
  });
});
