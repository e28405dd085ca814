import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FULL_ATTENTION } from '../attention/attention-config';
import { SeededRandom } from '../sampling/seeded-random';
import { Sequence } from './sequence';
import { BLOCK_SIZE, deviceBytesOf, FULL_BLOCK_BYTES, K_BLOCK_BYTES, KCACHE_0, KCACHE_1, plan, seq, setup, step } from './testing/scheduler-fixtures';

describe('Scheduler: preemption, rejection, abort', () => {
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
