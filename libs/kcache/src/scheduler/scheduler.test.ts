import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttentionConfig, FULL_ATTENTION } from '../attention/attention-config';
import { KvCacheManager } from '../memory/kv-cache-manager';
import { DuplicateRequestIdError } from '../request/duplicate-request-id-error';
import { Scheduler } from './scheduler';
import { SchedulerConfigError } from './scheduler-errors';
import { BLOCK_SIZE, deviceBytesOf, FULL_BLOCK_BYTES, K_BLOCK_BYTES, KCACHE_0, KCACHE_1, MODEL, plan, seq, setup, step } from './testing/scheduler-fixtures';

describe('Scheduler', () => {
  it('validates its options', () => {
    const kv = new KvCacheManager({ model: MODEL, blockSize: BLOCK_SIZE, deviceCapacityBytes: 1 << 20, hostCapacityBytes: 1 << 20 });
    assert.throws(() => new Scheduler({ maxNumSeqs: 0, maxNumBatchedTokens: 8, maxModelLen: 8 }, kv), SchedulerConfigError);
    assert.throws(() => new Scheduler({ maxNumSeqs: 1, maxNumBatchedTokens: 1.5, maxModelLen: 8 }, kv), SchedulerConfigError);
    const { scheduler } = setup();
    scheduler.addSequence(seq('a'));
    assert.throws(() => scheduler.addSequence(seq('a')), DuplicateRequestIdError);
  });

  it('batches continuously: sequences join and leave at step boundaries', () => {
    const { kv, scheduler } = setup();
    const a = seq('a', { promptLen: 3 });
    scheduler.addSequence(a);
    assert.equal(scheduler.hasWork(), true);
    assert.deepEqual(plan(step(scheduler)), [['a', 0, 3, true]]);
    assert.deepEqual(a.tokenIds, [1, 2, 3, 7]);
    assert.equal(a.numComputedTokens, 3);

    scheduler.addSequence(seq('b', { promptLen: 5 }));
    const second = step(scheduler);
    assert.deepEqual(plan(second), [['a', 3, 1, true], ['b', 0, 5, true]]);
    assert.equal(second.numBatchedTokens, 6);
    assert.equal(scheduler.numRunning, 2);

    assert.equal(scheduler.finish('a'), a);
    assert.equal(a.status, 'finished');
    assert.equal(a.blocks.kBlockIds.length, 0);
    scheduler.addSequence(seq('c', { promptLen: 2 }));
    assert.deepEqual(plan(step(scheduler)), [['b', 5, 1, true], ['c', 0, 2, true]]);
    scheduler.finish('b');
    scheduler.finish('c');
    assert.equal(scheduler.hasWork(), false);
    assert.equal(kv.usage().device.usedBytes, 0);
  });

  it('chunks a long prompt to the token budget and then decodes one token per step', () => {
    const { scheduler } = setup({ maxNumBatchedTokens: 4 });
    const a = seq('a', { promptLen: 10 });
    scheduler.addSequence(a);
    assert.deepEqual(plan(step(scheduler)), [['a', 0, 4, false]]);
    assert.equal(a.numTokens, 10, 'no token is sampled from a middle chunk');
    scheduler.addSequence(seq('b', { promptLen: 2 }));
    assert.deepEqual(plan(step(scheduler)), [['a', 4, 4, false]]);
    assert.deepEqual(plan(step(scheduler)), [['a', 8, 2, true], ['b', 0, 2, true]]);
    assert.equal(a.numTokens, 11);
    assert.deepEqual(plan(step(scheduler)), [['a', 10, 1, true], ['b', 2, 1, true]]);
    assert.equal(a.blocks.kBlockIds.length, 3);
  });

  it('admits only as many sequences as free device blocks allow, the rest wait', () => {
    const { kv, scheduler } = setup({}, 3 * FULL_BLOCK_BYTES);
    for (const id of ['a', 'b', 'c', 'd']) scheduler.addSequence(seq(id, { promptLen: 4, maxNewTokens: 4 }));
    const output = step(scheduler);
    assert.deepEqual(output.scheduled.map((c) => c.sequence.requestId), ['a', 'b', 'c']);
    assert.equal(scheduler.numWaiting, 1);
    assert.equal(kv.usage().device.usedBytes, 3 * FULL_BLOCK_BYTES);
  });

  it('limits admission by maxNumSeqs', () => {
    const { scheduler } = setup({ maxNumSeqs: 2 });
    for (const id of ['a', 'b', 'c']) scheduler.addSequence(seq(id));
    assert.equal(step(scheduler).scheduled.length, 2);
    assert.equal(step(scheduler).scheduled.length, 2);
    scheduler.finish('a');
    assert.deepEqual(plan(step(scheduler)), [['b', 4, 1, true], ['c', 0, 3, true]]);
  });

  it('admits twice as many kcache sequences as full ones at the same device budget', () => {
    const admitted = (attention: AttentionConfig): number => {
      const { scheduler } = setup({ maxNumSeqs: 100, maxNumBatchedTokens: 10_000 }, 20 * FULL_BLOCK_BYTES, 1 << 20);
      for (let i = 0; i < 100; i++) scheduler.addSequence(seq(`r${i}`, { promptLen: 8, maxNewTokens: 4, attention }));
      return scheduler.schedule().scheduled.length;
    };
    assert.equal(admitted(FULL_ATTENTION), 10);
    assert.equal(admitted(KCACHE_0), 20);
    // One dense layer of two keeps half of V on the device: 4/3 of full.
    assert.equal(admitted(KCACHE_1), 13);
  });

  it('accounts device and host bytes exactly per mode', () => {
    const { kv, scheduler } = setup({ maxNumBatchedTokens: 1000 });
    const seqs = [
      seq('full', { promptLen: 9 }),
      seq('k0', { promptLen: 9, attention: KCACHE_0 }),
      seq('k1', { promptLen: 9, attention: KCACHE_1 }),
    ];
    for (const s of seqs) scheduler.addSequence(s);
    step(scheduler);
    // 9 tokens → 3 blocks each. full: 2 layers K + 2 V; k0: 2 K; k1: 2 K + 1 V on the device.
    const perLayerBlock = K_BLOCK_BYTES / 2;
    assert.equal(kv.usage().device.usedBytes, 3 * perLayerBlock * (4 + 2 + 3));
    assert.equal(kv.usage().host.usedBytes, 3 * perLayerBlock * (0 + 2 + 1));
    assert.equal(kv.usage().device.usedBytes, deviceBytesOf(kv, seqs));
    const full = kv.bytesPerToken(FULL_ATTENTION).deviceBytes;
    assert.equal(kv.bytesPerToken(KCACHE_0).deviceBytes * 2, full);
    assert.equal(kv.bytesPerToken(KCACHE_1).deviceBytes, full / 2 + (1 / 2) * (full / 2));
  });

  it('admits by priority, then first come first served', () => {
    const { scheduler } = setup({ maxNumSeqs: 1 });
    scheduler.addSequence(seq('c', { arrivalIndex: 12 }));
    scheduler.addSequence(seq('a', { arrivalIndex: 10 }));
    scheduler.addSequence(seq('urgent', { priority: 5, arrivalIndex: 13 }));
    scheduler.addSequence(seq('b', { arrivalIndex: 11 }));
    const order: string[] = [];
    while (scheduler.hasWork()) {
      const output = step(scheduler);
      const id = output.scheduled[0].sequence.requestId;
      order.push(id);
      scheduler.finish(id);
    }
    assert.deepEqual(order, ['urgent', 'a', 'b', 'c']);
  });
});
