import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttentionConfig, FULL_ATTENTION, topNOf } from '../../attention/attention-config';
import { KvCacheManager } from '../../memory/kv-cache-manager';
import { emptySequenceBlocks } from '../../memory/sequence-blocks';
import { createRandomModelWeights, syntheticModelConfig } from '../../model/synthetic-models';
import { graphVariantOf } from '../graph-variant';
import { ModelRunner } from '../model-runner';
import { NativeBackend } from './native-backend';

/**
 * The native backend's fusedAttention (exact layers as one MultiHeadAttention node, where every query head
 * has its own KV head) on the CPU provider, against the onnxruntime-node runner: a random model with
 * Hkv = H, prompts prefilled, then batched decode steps whose logits must agree within 1e-4.
 */
const config = { ...syntheticModelConfig('stories260k-shape'), numKvHeads: 8 };
const weights = createRandomModelWeights(config, 11);

async function decodeOnBoth(attention: AttentionConfig, fusedAttention: boolean): Promise<number> {
  const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 8 << 20, hostCapacityBytes: 8 << 20 });
  const options = { blockSize: 16, arenaCapacity: kv.arenaCapacity(), numThreads: 1 };
  const plain = new ModelRunner(weights, options);
  const native = new ModelRunner(weights, { ...options, backend: NativeBackend.create(config, { ...options, provider: 'cpu', currentRowInArena: true, fusedAttention }) });
  const variant = graphVariantOf(attention, config.numLayers);
  const prompts = [19, 33, 40].map((length, s) => Array.from({ length }, (_, i) => (7 * i + 13 * s + 1) % config.vocabSize));
  const steps = 24;
  const seqs = prompts.map((prompt) => {
    const seq = { blocks: emptySequenceBlocks(), attention };
    kv.allocate(seq, prompt.length + steps + 1);
    return { blocks: seq.blocks, prompt };
  });
  for (const { blocks, prompt } of seqs) {
    for (const runner of [plain, native]) await runner.prefill({ tokenIds: prompt, startPosition: 0, numPromptTokens: prompt.length, blocks }, variant, topNOf(attention));
  }
  let worst = 0;
  for (let step = 0; step < steps; step++) {
    const items = seqs.map(({ blocks, prompt }, b) => ({ tokenId: (5 * step + b) % config.vocabSize, position: prompt.length + step, blocks }));
    const expected = await plain.decode(items, variant, topNOf(attention));
    const actual = await native.decode(items, variant, topNOf(attention));
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  }
  await plain.release();
  await native.release();
  return worst;
}

describe('fusedAttention: exact layers as MultiHeadAttention (native backend, CPU provider, Hkv = H)', () => {
  for (const attention of [FULL_ATTENTION, { mode: 'kcache', topN: 8, denseLayers: 2, renormalize: false } as const]) {
    it(`${attention.mode}: decode logits within 1e-4 of the onnxruntime-node runner`, async () => {
      const worst = await decodeOnBoth(attention, true);
      assert.ok(worst <= 1e-4, `logits differ by ${worst}`);
    });
  }

  it('needs the current row in the arena', () => {
    const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 1 << 20, hostCapacityBytes: 1 << 20 });
    assert.throws(
      () => NativeBackend.create(config, { provider: 'cpu', blockSize: 16, arenaCapacity: kv.arenaCapacity(), numThreads: 1, currentRowInArena: false, fusedAttention: true }),
      /fusedAttention needs currentRowInArena/,
    );
  });
});
