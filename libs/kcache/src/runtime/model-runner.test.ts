import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { AttentionConfig, FULL_ATTENTION, topNOf } from '../attention/attention-config';
import { KvCacheManager } from '../memory/kv-cache-manager';
import { emptySequenceBlocks } from '../memory/sequence-blocks';
import { loadModel, LoadedModel } from '../formats/model-source';
import { argmax } from '../sampling/sampler';
import { loadGreedyOracle, stories260kDir } from '../testing/reference-data';
import { graphVariantOf } from './graph-variant';
import { KvArenas } from './kv-arenas';
import { ModelRunner } from './model-runner';

const oracle = loadGreedyOracle();
let model: LoadedModel;

/** Teacher-forced over the oracle's own tokens: prefill the prompt, then decode each reference token. */
async function maxTop5Error(attention: AttentionConfig, options: { appendCurrentByCopy?: boolean } = {}): Promise<number> {
  const config = model.weights.config;
  const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 64 << 20, hostCapacityBytes: 64 << 20 });
  const runner = new ModelRunner(model.weights, { blockSize: 16, arenaCapacity: kv.arenaCapacity(), numThreads: 1, ...options });
  const variant = graphVariantOf(attention, config.numLayers);
  let maxError = 0;
  for (const record of oracle) {
    const seq = { blocks: emptySequenceBlocks(), attention };
    kv.allocate(seq, config.maxSeqLen);
    const prompt = record.prompt_token_ids;
    let logits = await runner.prefill({ tokenIds: prompt, startPosition: 0, numPromptTokens: prompt.length, blocks: seq.blocks }, variant, topNOf(attention));
    for (const step of record.steps) {
      for (const [id, expected] of step.top5) maxError = Math.max(maxError, Math.abs(logits[id] - expected));
      if (!record.near_ties.includes(step.pos)) assert.equal(argmax(logits), step.token, `${record.id} pos ${step.pos}`);
      if (step.pos + 1 >= config.maxSeqLen || step.token === 1) break;
      logits = await runner.decode([{ tokenId: step.token, position: step.pos + 1, blocks: seq.blocks }], variant, topNOf(attention));
    }
    kv.free(seq);
  }
  await runner.release();
  return maxError;
}

describe('model runner logits against the reference top-5', () => {
  before(() => {
    model = loadModel(stories260kDir());
  });

  it('full attention: every step within 1e-3 of the reference logits', async () => {
    assert.ok((await maxTop5Error(FULL_ATTENTION)) < 1e-3);
  });

  it('kcache with N = context: every step within 1e-3', async () => {
    assert.ok((await maxTop5Error({ mode: 'kcache', topN: 512, denseLayers: 0, renormalize: false })) < 1e-3);
  });

  it('both ways of joining the current token to the past give the reference logits', async () => {
    assert.ok((await maxTop5Error(FULL_ATTENTION, { appendCurrentByCopy: true })) < 1e-3);
    assert.ok((await maxTop5Error({ mode: 'kcache', topN: 512, denseLayers: 1, renormalize: false }, { appendCurrentByCopy: true })) < 1e-3);
  });

  it('decode gives the same logits whether the K and device-V arenas of all layers share one buffer or several', async () => {
    const config = model.weights.config;
    const attention = { mode: 'kcache', topN: 16, denseLayers: 2, renormalize: false } as const;
    const variant = graphVariantOf(attention, config.numLayers);
    const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 4 << 20, hostCapacityBytes: 4 << 20 });
    const capacity = kv.arenaCapacity();
    const floatsPerLayerBlock = 16 * config.numKvHeads * (config.dim / config.numHeads);
    // Groups of two layers (5 layers: 2 + 2 + 1) against one group of all.
    const split = new KvArenas(config, 16, capacity, undefined, 2 * Math.max(capacity.kIds, capacity.deviceVIds) * floatsPerLayerBlock);
    assert.ok(split.kGroups.length === 3 && split.deviceVGroups.length === 3);
    const runners = [
      new ModelRunner(model.weights, { blockSize: 16, arenaCapacity: capacity, numThreads: 1 }),
      new ModelRunner(model.weights, { blockSize: 16, arenaCapacity: capacity, numThreads: 1, arenas: split }),
    ];
    assert.equal(runners[0].arenas.kGroups.length, 1);
    const record = oracle[0];
    const seq = { blocks: emptySequenceBlocks(), attention };
    kv.allocate(seq, 80);
    const prompt = record.prompt_token_ids;
    const logits = await Promise.all(runners.map((r) => r.prefill({ tokenIds: prompt, startPosition: 0, numPromptTokens: prompt.length, blocks: seq.blocks }, variant, topNOf(attention))));
    let token = argmax(logits[0]);
    for (let position = prompt.length; position < 60; position++) {
      const [a, b] = [await runners[0].decode([{ tokenId: token, position, blocks: seq.blocks }], variant, topNOf(attention)), await runners[1].decode([{ tokenId: token, position, blocks: seq.blocks }], variant, topNOf(attention))];
      assert.deepEqual(Array.from(b), Array.from(a), `position ${position}`);
      token = argmax(a);
    }
    for (const r of runners) await r.release();
  });

  it('a sequence gets bit-identical logits alone and in a large batch of longer sequences', async () => {
    const config = model.weights.config;
    for (const attention of [FULL_ATTENTION, { mode: 'kcache', topN: 32, denseLayers: 1, renormalize: true } as const]) {
      const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 256 << 20, hostCapacityBytes: 256 << 20 });
      const runner = new ModelRunner(model.weights, { blockSize: 16, arenaCapacity: kv.arenaCapacity(), numThreads: 1 });
      const variant = graphVariantOf(attention, config.numLayers);
      // 40 sequences with prompts of 20..410 tokens (the oracle prompts, repeated and extended).
      const seqs = Array.from({ length: 40 }, (_, i) => {
        const base = oracle[i % oracle.length];
        const tokens = [...base.prompt_token_ids, ...base.generated_token_ids].slice(0, 20 + i * 10);
        const seq = { blocks: emptySequenceBlocks(), attention };
        kv.allocate(seq, tokens.length + 1);
        return { seq, tokens };
      });
      for (const { seq, tokens } of seqs) {
        const prompt = tokens.slice(0, -1);
        await runner.prefill({ tokenIds: prompt, startPosition: 0, numPromptTokens: prompt.length, blocks: seq.blocks }, variant, topNOf(attention));
      }
      const items = seqs.map(({ seq, tokens }) => ({ tokenId: tokens.at(-1)!, position: tokens.length - 1, blocks: seq.blocks }));
      const vocab = config.vocabSize;
      const batched = await runner.decode(items, variant, topNOf(attention));
      for (const i of [0, 7, 39]) {
        const alone = await runner.decode([items[i]], variant, topNOf(attention));
        assert.deepEqual(Array.from(alone), Array.from(batched.subarray(i * vocab, (i + 1) * vocab)), `${attention.mode}: sequence ${i}`);
      }
      await runner.release();
    }
  });
});
