import { AttentionConfig, topNOf } from '../../../attention/attention-config';
import { KvCacheManager } from '../../../memory/kv-cache-manager';
import { emptySequenceBlocks } from '../../../memory/sequence-blocks';
import { ModelWeights } from '../../../model/model-weights';
import { argmax } from '../../../sampling/sampler';
import { graphVariantOf } from '../../graph-variant';
import { ModelRunner } from '../../model-runner';
import { NativeBackend, NativeBackendOptions } from '../native-backend';

/** How far a native-backend graph's decode logits stray from the onnxruntime-node runner's. */
export interface DecodeComparison {
  /** Largest |native − plain| over every logit of every step. */
  readonly worstDifference: number;
  /** Every row's greedy token is the same on both. */
  readonly sameGreedyTokens: boolean;
}

/**
 * For tests of the native backend's decode graphs on the CPU provider: prompts of the given lengths prefilled on
 * the onnxruntime-node runner and on a native-backend runner (the graph options in `graph`), then `steps` batched
 * decode steps on both, compared logit by logit.
 */
export async function decodeBesidePlainRunner(
  weights: ModelWeights,
  attention: AttentionConfig,
  graph: Pick<NativeBackendOptions, 'currentRowInArena' | 'fusedAttention' | 'pagedAttention' | 'fixedShapes'>,
  promptLengths: readonly number[],
  steps: number,
): Promise<DecodeComparison> {
  const config = weights.config;
  const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 8 << 20, hostCapacityBytes: 8 << 20 });
  const options = { blockSize: 16, arenaCapacity: kv.arenaCapacity(), numThreads: 1 };
  const plain = new ModelRunner(weights, options);
  const native = new ModelRunner(weights, { ...options, backend: NativeBackend.create(config, { ...options, provider: 'cpu', ...graph }) });
  const variant = graphVariantOf(attention, config.numLayers);
  const topN = topNOf(attention);
  const seqs = promptLengths.map((length, s) => {
    const prompt = Array.from({ length }, (_, i) => (7 * i + 13 * s + 1) % config.vocabSize);
    const seq = { blocks: emptySequenceBlocks(), attention };
    kv.allocate(seq, prompt.length + steps + 1);
    return { blocks: seq.blocks, prompt };
  });
  for (const { blocks, prompt } of seqs) {
    for (const runner of [plain, native]) await runner.prefill({ tokenIds: prompt, startPosition: 0, numPromptTokens: prompt.length, blocks }, variant, topN);
  }
  let worstDifference = 0;
  let sameGreedyTokens = true;
  const vocab = config.vocabSize;
  for (let step = 0; step < steps; step++) {
    const items = seqs.map(({ blocks, prompt }, b) => ({ tokenId: (5 * step + b) % vocab, position: prompt.length + step, blocks }));
    const expected = await plain.decode(items, variant, topN);
    const actual = await native.decode(items, variant, topN);
    for (let i = 0; i < expected.length; i++) worstDifference = Math.max(worstDifference, Math.abs(actual[i] - expected[i]));
    for (let b = 0; b < items.length; b++) {
      if (argmax(expected.subarray(b * vocab, (b + 1) * vocab)) !== argmax(actual.subarray(b * vocab, (b + 1) * vocab))) sameGreedyTokens = false;
    }
  }
  await plain.release();
  await native.release();
  return { worstDifference, sameGreedyTokens };
}
