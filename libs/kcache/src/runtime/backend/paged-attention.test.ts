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
 * The native backend's pagedAttention (every layer's decode attention as the addon's com.kcache
 * PagedDecodeAttention operator, here its CPU kernel) against the onnxruntime-node runner: a random model with
 * grouped query heads (8 query heads over 4 KV heads, head dim 8), prompts of different lengths prefilled, then
 * batched decode steps whose logits must agree within 1e-4 and whose greedy tokens must be the same.
 */
const config = syntheticModelConfig('stories260k-shape');
const weights = createRandomModelWeights(config, 5);

async function decodeOnBoth(attention: AttentionConfig): Promise<{ worst: number; sameArgmax: boolean }> {
  const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 8 << 20, hostCapacityBytes: 8 << 20 });
  const options = { blockSize: 16, arenaCapacity: kv.arenaCapacity(), numThreads: 1 };
  const plain = new ModelRunner(weights, options);
  const native = new ModelRunner(weights, { ...options, backend: NativeBackend.create(config, { ...options, provider: 'cpu', pagedAttention: true }) });
  const variant = graphVariantOf(attention, config.numLayers);
  const prompts = [19, 33, 47, 5].map((length, s) => Array.from({ length }, (_, i) => (7 * i + 13 * s + 1) % config.vocabSize));
  const steps = 20;
  const seqs = prompts.map((prompt) => {
    const seq = { blocks: emptySequenceBlocks(), attention };
    kv.allocate(seq, prompt.length + steps + 1);
    return { blocks: seq.blocks, prompt };
  });
  for (const { blocks, prompt } of seqs) {
    for (const runner of [plain, native]) await runner.prefill({ tokenIds: prompt, startPosition: 0, numPromptTokens: prompt.length, blocks }, variant, topNOf(attention));
  }
  let worst = 0;
  let sameArgmax = true;
  for (let step = 0; step < steps; step++) {
    const items = seqs.map(({ blocks, prompt }, b) => ({ tokenId: (5 * step + b) % config.vocabSize, position: prompt.length + step, blocks }));
    const expected = await plain.decode(items, variant, topNOf(attention));
    const actual = await native.decode(items, variant, topNOf(attention));
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
    for (let b = 0; b < items.length; b++) {
      const row = (x: Float32Array) => x.subarray(b * config.vocabSize, (b + 1) * config.vocabSize);
      if (argmax(row(expected)) !== argmax(row(actual))) sameArgmax = false;
    }
  }
  await plain.release();
  await native.release();
  return { worst, sameArgmax };
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

describe('pagedAttention: decode attention as the PagedDecodeAttention operator (native backend, CPU provider)', () => {
  const cases: AttentionConfig[] = [
    FULL_ATTENTION,
    { mode: 'kcache', topN: 8, denseLayers: 0, renormalize: false },
    { mode: 'kcache', topN: 8, denseLayers: 0, renormalize: true },
    { mode: 'kcache', topN: 16, denseLayers: 2, renormalize: false },
    { mode: 'kcache', topN: 512, denseLayers: 0, renormalize: false }, // N past every context: every position
  ];
  for (const attention of cases) {
    const name = attention.mode === 'full' ? 'full' : `kcache N=${attention.topN}, ${attention.denseLayers} exact layers${attention.renormalize ? ', renormalised' : ''}`;
    it(`${name}: decode logits within 1e-4 of the onnxruntime-node runner, the same greedy tokens`, async () => {
      const { worst, sameArgmax } = await decodeOnBoth(attention);
      assert.ok(worst <= 1e-4, `logits differ by ${worst}`);
      assert.ok(sameArgmax, 'a greedy token differs');
    });
  }

  it('is one kernel or the other: fusedAttention with pagedAttention is refused', () => {
    const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 1 << 20, hostCapacityBytes: 1 << 20 });
    assert.throws(
      () => NativeBackend.create(config, { provider: 'cpu', blockSize: 16, arenaCapacity: kv.arenaCapacity(), numThreads: 1, pagedAttention: true, fusedAttention: true }),
      /pick one/,
    );
  });
});
