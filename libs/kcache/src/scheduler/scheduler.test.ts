import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttentionConfig, FULL_ATTENTION } from '../attention/attention-config';
import { KvCacheManager } from '../memory/kv-cache-manager';
import { ModelConfig } from '../model/model-config';
import { SeededRandom } from '../sampling/seeded-random';
import { Scheduler, SchedulerOptions } from './scheduler';
import { DuplicateRequestIdError } from '../request/duplicate-request-id-error';
import { SchedulerConfigError } from './scheduler-errors';
import { SchedulerOutput } from './scheduler-output';
import { Sequence } from './sequence';

// kvDim 4, 2 layers, blockSize 4: a layer block is 64 bytes, a K block 128, a full-mode block 256 of device.
const MODEL: ModelConfig = {
  dim: 8, hiddenDim: 16, numLayers: 2, numHeads: 2, numKvHeads: 1, vocabSize: 32,
  maxSeqLen: 64, sharedClassifier: true, normEps: 1e-5, ropeTheta: 10000,
};
const BLOCK_SIZE = 4;
const FULL_BLOCK_BYTES = 256;
const K_BLOCK_BYTES = 128;
const KCACHE_0: AttentionConfig = { mode: 'kcache', topN: 4, denseLayers: 0, renormalize: false };
const KCACHE_1: AttentionConfig = { ...KCACHE_0, denseLayers: 1 };

interface SeqSpec {
  promptLen?: number;
  maxNewTokens?: number;
  attention?: AttentionConfig;
  priority?: number;
  arrivalIndex?: number;
}

function seq(requestId: string, spec: SeqSpec = {}): Sequence {
  const promptLen = spec.promptLen ?? 3;
  return new Sequence({
    requestId,
    promptTokenIds: Array.from({ length: promptLen }, (_, i) => 1 + (i % 30)),
    maxNewTokens: spec.maxNewTokens ?? 16,
    maxModelLen: MODEL.maxSeqLen,
    attention: spec.attention ?? FULL_ATTENTION,
    priority: spec.priority,
    arrivalIndex: spec.arrivalIndex,
  });
}

function setup(
  opts: Partial<SchedulerOptions> = {},
  deviceCapacityBytes = 1 << 20,
  hostCapacityBytes = 1 << 20,
): { kv: KvCacheManager; scheduler: Scheduler } {
  const kv = new KvCacheManager({ model: MODEL, blockSize: BLOCK_SIZE, deviceCapacityBytes, hostCapacityBytes });
  const scheduler = new Scheduler(
    { maxNumSeqs: opts.maxNumSeqs ?? 8, maxNumBatchedTokens: opts.maxNumBatchedTokens ?? 64, maxModelLen: opts.maxModelLen ?? MODEL.maxSeqLen },
    kv,
  );
  return { kv, scheduler };
}

/** schedule → (pretend) run → commit, sampling token 7 for every last chunk. */
function step(scheduler: Scheduler): SchedulerOutput {
  const output = scheduler.schedule();
  const sampled = new Map<string, number>();
  for (const item of output.scheduled) if (item.isLastChunk) sampled.set(item.sequence.requestId, 7);
  scheduler.commit(output, sampled);
  return output;
}

/** [requestId, startPosition, numNewTokens, isLastChunk] per scheduled chunk. */
function plan(output: SchedulerOutput): Array<[string, number, number, boolean]> {
  return output.scheduled.map((c) => [c.sequence.requestId, c.startPosition, c.numNewTokens, c.isLastChunk]);
}

function deviceBytesOf(kv: KvCacheManager, seqs: Sequence[]): number {
  return seqs.reduce((sum, s) => sum + s.blocks.kBlockIds.length * BLOCK_SIZE * kv.bytesPerToken(s.attention).deviceBytes, 0);
}

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

  it('preempts the latest running sequence by recompute when blocks run out; it resumes and recomputes every token', () => {
    const { kv, scheduler } = setup({}, 2 * FULL_BLOCK_BYTES);
    const a = seq('a', { promptLen: 4, maxNewTokens: 4 });
    const b = seq('b', { promptLen: 4, maxNewTokens: 4 });
    scheduler.addSequence(a);
    scheduler.addSequence(b);
    assert.deepEqual(plan(step(scheduler)), [['a', 0, 4, true], ['b', 0, 4, true]]);
    // Both now hold 5 tokens and need a second block; only one can get it.
    const output = step(scheduler);
    assert.deepEqual(output.preempted, ['b']);
    assert.deepEqual(plan(output), [['a', 4, 1, true]]);
    assert.equal(b.status, 'waiting');
    assert.equal(b.numComputedTokens, 0);
    assert.equal(b.numPreemptions, 1);
    assert.deepEqual(b.blocks.kBlockIds, []);
    assert.deepEqual(b.tokenIds, [1, 2, 3, 4, 7], 'the sampled token is kept');
    assert.equal(kv.usage().device.usedBytes, 2 * FULL_BLOCK_BYTES);

    scheduler.finish('a');
    assert.deepEqual(plan(step(scheduler)), [['b', 0, 5, true]]);
    assert.deepEqual(b.tokenIds, [1, 2, 3, 4, 7, 7]);
    assert.deepEqual(plan(step(scheduler)), [['b', 5, 1, true]]);
  });

  it('preempts the lowest priority even when it arrived first, and admits nothing in the same step', () => {
    const { scheduler } = setup({}, 2 * FULL_BLOCK_BYTES);
    const low = seq('low', { promptLen: 4, maxNewTokens: 4, priority: 0, arrivalIndex: 0 });
    const high = seq('high', { promptLen: 4, maxNewTokens: 4, priority: 1, arrivalIndex: 1 });
    scheduler.addSequence(low);
    scheduler.addSequence(high);
    step(scheduler);
    scheduler.addSequence(seq('other', { promptLen: 1, maxNewTokens: 3, priority: 9 }));
    const output = step(scheduler);
    assert.deepEqual(output.preempted, ['low'], 'the earlier arrival is preempted because its priority is lower');
    assert.deepEqual(plan(output), [['high', 4, 1, true]]);
    assert.equal(scheduler.numWaiting, 2);
  });

  it('preempts the sequence that needs blocks when it is itself the last in scheduling order', () => {
    const { scheduler } = setup({}, 3 * FULL_BLOCK_BYTES);
    const a = seq('a', { promptLen: 4, maxNewTokens: 4 });
    const b = seq('b', { promptLen: 4, maxNewTokens: 4 });
    scheduler.addSequence(a);
    scheduler.addSequence(b);
    step(scheduler);
    const output = step(scheduler);
    assert.deepEqual(output.preempted, ['b']);
    assert.deepEqual(plan(output), [['a', 4, 1, true]]);
    assert.equal(b.numPreemptions, 1);
    // a's blocks suffice until it finishes; b comes back when a leaves.
    assert.deepEqual(plan(step(scheduler)), [['a', 5, 1, true]]);
    scheduler.finish('a');
    assert.deepEqual(plan(step(scheduler)), [['b', 0, 5, true]]);
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

  it('rejects a sequence that could never fit, once, and keeps serving the others', () => {
    const { kv, scheduler } = setup({ maxModelLen: 32 }, 4 * FULL_BLOCK_BYTES, 4 * K_BLOCK_BYTES);
    scheduler.addSequence(seq('too-long', { promptLen: 33 }));
    scheduler.addSequence(seq('too-big', { promptLen: 8, maxNewTokens: 20 })); // 28 tokens: 7 full blocks
    scheduler.addSequence(seq('host-too-big', { promptLen: 8, maxNewTokens: 20, attention: KCACHE_0 }));
    scheduler.addSequence(seq('ok', { promptLen: 8, maxNewTokens: 8 }));
    const output = step(scheduler);
    assert.deepEqual(output.rejected.map((r) => r.requestId), ['too-long', 'too-big', 'host-too-big']);
    assert.match(output.rejected[0].reason, /maxModelLen/);
    assert.deepEqual(plan(output), [['ok', 0, 8, true]]);
    assert.deepEqual(step(scheduler).rejected, []);
    scheduler.finish('ok');
    assert.equal(scheduler.hasWork(), false);
    assert.equal(kv.usage().device.usedBytes, 0);
  });

  it('aborts running and waiting sequences, freeing their blocks', () => {
    const { kv, scheduler } = setup({ maxNumSeqs: 1 });
    const a = seq('a');
    scheduler.addSequence(a);
    scheduler.addSequence(seq('b'));
    const output = scheduler.schedule();
    assert.ok(kv.usage().device.usedBytes > 0);
    assert.equal(scheduler.abort('a'), a);
    assert.equal(a.status, 'finished');
    assert.equal(kv.usage().device.usedBytes, 0);
    scheduler.commit(output, new Map([['a', 7]])); // a commit after the abort changes nothing
    assert.equal(a.numComputedTokens, 0);
    assert.equal(a.numTokens, 3);
    assert.equal(scheduler.abort('b')?.requestId, 'b');
    assert.equal(scheduler.abort('b'), null);
    assert.equal(scheduler.hasWork(), false);
  });

  it('leaves a sequence whose sampled token was omitted unscheduled until the engine finishes it', () => {
    const { scheduler } = setup();
    scheduler.addSequence(seq('a'));
    scheduler.commit(scheduler.schedule(), new Map());
    assert.deepEqual(plan(scheduler.schedule()), []);
    scheduler.finish('a');
    assert.equal(scheduler.hasWork(), false);
  });

  it('does not leak blocks over many random add / abort / finish cycles', () => {
    const random = new SeededRandom(2024);
    const { kv, scheduler } = setup({ maxNumSeqs: 6, maxNumBatchedTokens: 24 }, 12 * FULL_BLOCK_BYTES, 12 * K_BLOCK_BYTES);
    const attentions = [FULL_ATTENTION, KCACHE_0, KCACHE_1];
    const live = new Map<string, Sequence>();
    let nextId = 0;
    let numFinished = 0;
    let numPreempted = 0;
    for (let iteration = 0; iteration < 3000; iteration++) {
      const action = random.next();
      if (action < 0.25) {
        const s = seq(`r${nextId++}`, {
          promptLen: 1 + random.nextInt(20),
          maxNewTokens: 1 + random.nextInt(12),
          attention: attentions[random.nextInt(attentions.length)],
          priority: random.nextInt(3),
        });
        scheduler.addSequence(s);
        live.set(s.requestId, s);
      } else if (action < 0.32 && live.size > 0) {
        const ids = [...live.keys()];
        const id = ids[random.nextInt(ids.length)];
        scheduler.abort(id);
        live.delete(id);
      } else {
        const output = step(scheduler);
        numPreempted += output.preempted.length;
        assert.ok(output.numBatchedTokens <= 24);
        assert.ok(scheduler.numRunning <= 6);
        for (const r of output.rejected) live.delete(r.requestId);
        for (const item of output.scheduled) {
          const s = item.sequence;
          if (s.numTokens >= s.maxTotalTokens) {
            scheduler.finish(s.requestId);
            live.delete(s.requestId);
            numFinished++;
          }
        }
      }
      const seqs = [...live.values()];
      assert.equal(kv.usage().device.usedBytes, deviceBytesOf(kv, seqs));
      for (const s of seqs) {
        if (s.status === 'waiting') assert.equal(s.blocks.kBlockIds.length, 0);
        assert.ok(s.blocks.kBlockIds.length * BLOCK_SIZE >= s.numComputedTokens);
      }
      assert.equal(scheduler.numWaiting + scheduler.numRunning, live.size);
    }
    assert.ok(numFinished > 100, `only ${numFinished} finished`);
    assert.ok(numPreempted > 0, 'the loop should exercise preemption');
    for (const id of [...live.keys()]) scheduler.abort(id);
    const usage = kv.usage();
    assert.equal(usage.device.usedBytes, 0);
    assert.equal(usage.host.usedBytes, 0);
    assert.equal(usage.numKBlockIds + usage.numDeviceVBlockIds + usage.numHostVBlockIds, 0);
    assert.deepEqual(kv.maxIdsInUsePlusOne(), { kIds: 0, deviceVIds: 0, hostVIds: 0 });
  });
});
