import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttentionConfig, FULL_ATTENTION } from '../attention/attention-config';
import { ScheduledChunk, SchedulerOutput } from '../scheduler/scheduler-output';
import { Sequence } from '../scheduler/sequence';
import { planBatches } from './plan-batches';

const NUM_LAYERS = 4;
const KCACHE_A: AttentionConfig = { mode: 'kcache', topN: 16, denseLayers: 1, renormalize: false };

function sequence(requestId: string, numPrompt: number, numOutput: number, attention: AttentionConfig): Sequence {
  const prompt = Array.from({ length: numPrompt }, (_, i) => 100 + i);
  const output = Array.from({ length: numOutput }, (_, i) => 200 + i);
  return new Sequence({ requestId, promptTokenIds: prompt, outputTokenIds: output, maxNewTokens: 50, maxModelLen: 512, attention });
}

function chunk(sequence: Sequence, startPosition: number, numNewTokens: number): ScheduledChunk {
  return { sequence, startPosition, numNewTokens, isLastChunk: startPosition + numNewTokens === sequence.numTokens };
}

function output(scheduled: ScheduledChunk[]): SchedulerOutput {
  return { scheduled, preempted: [], rejected: [], numBatchedTokens: scheduled.reduce((n, c) => n + c.numNewTokens, 0) };
}

describe('planBatches', () => {
  it('groups decodes by graph variant and topN, in scheduled order, and runs each prefill chunk alone', () => {
    const full1 = sequence('full-1', 5, 2, FULL_ATTENTION);
    const kc1 = sequence('kc-1', 7, 1, KCACHE_A);
    const kc2 = sequence('kc-2', 3, 4, { ...KCACHE_A });
    const kcOtherTopN = sequence('kc-n32', 3, 4, { ...KCACHE_A, topN: 32 });
    const full2 = sequence('full-2', 9, 3, FULL_ATTENTION);
    const prompt = sequence('prompt', 40, 0, KCACHE_A);
    const plan = planBatches(
      output([chunk(full1, 6, 1), chunk(kc1, 7, 1), chunk(prompt, 0, 16), chunk(kc2, 6, 1), chunk(kcOtherTopN, 6, 1), chunk(full2, 11, 1)]),
      NUM_LAYERS,
    );
    assert.deepEqual(
      plan.decodeGroups.map((g) => ({ key: g.variant.key, topN: g.topN, ids: g.requestIds })),
      [
        { key: 'full', topN: 0, ids: ['full-1', 'full-2'] },
        { key: 'kcache:d1:r0', topN: 16, ids: ['kc-1', 'kc-2'] },
        { key: 'kcache:d1:r0', topN: 32, ids: ['kc-n32'] },
      ],
    );
    assert.deepEqual(plan.decodeGroups[1].variant.isDenseLayer, [true, false, false, false]);
    assert.deepEqual(
      plan.decodeGroups[0].items.map((i) => ({ tokenId: i.tokenId, position: i.position, blocks: i.blocks })),
      [
        { tokenId: 201, position: 6, blocks: full1.blocks },
        { tokenId: 202, position: 11, blocks: full2.blocks },
      ],
    );
    assert.equal(plan.prefills.length, 1);
    const prefill = plan.prefills[0];
    assert.deepEqual({ id: prefill.requestId, sample: prefill.sample, key: prefill.variant.key, topN: prefill.topN }, { id: 'prompt', sample: false, key: 'kcache:d1:r0', topN: 16 });
    assert.deepEqual(prefill.item, { tokenIds: Array.from({ length: 16 }, (_, i) => 100 + i), startPosition: 0, numPromptTokens: 40, blocks: prompt.blocks });
  });

  it('samples only last chunks: a replayed generated token and a non-final prompt chunk fill the cache only', () => {
    const replay = sequence('replay', 4, 3, FULL_ATTENTION);
    const last = sequence('last', 4, 0, FULL_ATTENTION);
    const plan = planBatches(output([chunk(replay, 5, 1), chunk(last, 2, 2)]), NUM_LAYERS);
    assert.deepEqual(plan.decodeGroups[0].sample, [false]);
    assert.deepEqual(plan.decodeGroups[0].items[0].tokenId, 201);
    // A chunk that ends the prompt is a prefill (not a single position after it) and is sampled.
    assert.deepEqual(plan.prefills.map((p) => [p.requestId, p.sample, p.item.tokenIds]), [['last', true, [102, 103]]]);
  });

  it('a single new position inside the prompt is a prefill, not a decode', () => {
    const seq = sequence('one', 4, 0, FULL_ATTENTION);
    const plan = planBatches(output([chunk(seq, 3, 1)]), NUM_LAYERS);
    assert.equal(plan.decodeGroups.length, 0);
    assert.deepEqual(plan.prefills.map((p) => p.item.startPosition), [3]);
  });

  it('an empty step plans nothing', () => {
    assert.deepEqual(planBatches(output([]), NUM_LAYERS), { prefills: [], decodeGroups: [] });
  });
});
