import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttentionConfig, FULL_ATTENTION } from '../../attention/attention-config';
import { KvCacheManager } from '../../memory/kv-cache-manager';
import { createRandomModelWeights, syntheticModelConfig } from '../../model/synthetic-models';
import { onnx } from 'onnx-proto';
import { buildDecodeGraph } from '../decode-graph';
import { graphVariantOf } from '../graph-variant';
import { GraphWeights } from '../layer-weights-layout';
import { NativeBackend } from './native-backend';
import { decodeBesidePlainRunner } from './testing/decode-beside-plain-runner';

/**
 * The native backend's pagedAttention (every layer's decode attention as the addon's com.kcache
 * PagedDecodeAttention operator, here its CPU kernel) against the onnxruntime-node runner: a random model with
 * grouped query heads (8 query heads over 4 KV heads, head dim 8), prompts of different lengths prefilled, then
 * batched decode steps whose logits must agree within 1e-4 and whose greedy tokens must be the same.
 */
const config = syntheticModelConfig('stories260k-shape');
const weights = createRandomModelWeights(config, 5);

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
      const { worstDifference, sameGreedyTokens } = await decodeBesidePlainRunner(weights, attention, { pagedAttention: true }, [19, 33, 47, 5], 20);
      assert.ok(worstDifference <= 1e-4, `logits differ by ${worstDifference}`);
      assert.ok(sameGreedyTokens, 'a greedy token differs');
    });
  }

  for (const attention of [FULL_ATTENTION, cases[3]]) {
    it(`fixedShapes (${attention.mode}): a batch of 5 padded to 8 and the past to 8-block steps, the padded rows masked and unwritten: logits within 1e-4, the same greedy tokens`, async () => {
      const { worstDifference, sameGreedyTokens } = await decodeBesidePlainRunner(weights, attention, { pagedAttention: true, fixedShapes: true }, [19, 33, 47, 5, 140], 20);
      assert.ok(worstDifference <= 1e-4, `logits differ by ${worstDifference}`);
      assert.ok(sameGreedyTokens, 'a greedy token differs');
    });
  }

  it('fixedShapes needs the operator, and cudaGraphs the cuda provider', () => {
    const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 1 << 20, hostCapacityBytes: 1 << 20 });
    const options = { provider: 'cpu', blockSize: 16, arenaCapacity: kv.arenaCapacity(), numThreads: 1 } as const;
    assert.throws(() => NativeBackend.create(config, { ...options, fixedShapes: true }), /fixedShapes needs pagedAttention/);
    assert.throws(() => NativeBackend.create(config, { ...options, pagedAttention: true, cudaGraphs: true }), /cudaGraphs needs the cuda provider/);
  });

  it('the decode graph is 8 nodes a layer: QKV, the attention operator, Wo, add+norm, W13, SwiGlu, W2, add+norm', () => {
    for (const attention of [FULL_ATTENTION, cases[3]]) {
      const graph = buildDecodeGraph(new GraphWeights(weights), graphVariantOf(attention, config.numLayers), 16, {
        appendCurrentByCopy: false,
        writeKvInPlace: true,
        layerArenaViews: true,
        pagedAttention: true,
      });
      const count = new Map<string, number>();
      for (const node of onnx.ModelProto.decode(graph).graph!.node!) count.set(node.opType!, (count.get(node.opType!) ?? 0) + 1);
      const L = config.numLayers;
      assert.equal(count.get('PagedDecodeAttention'), L);
      assert.equal(count.get('SwiGlu'), L);
      assert.equal(count.get('MatMul'), 4 * L + 1, 'per layer QKV, Wo, W13, W2; the classifier');
      assert.equal(count.get('SkipSimplifiedLayerNormalization'), 2 * L - 1);
      for (const gone of ['Split', 'ScatterND', 'RotaryEmbedding', 'Sigmoid', 'Gather']) assert.ok((count.get(gone) ?? 0) <= (gone === 'Gather' ? 1 : 0), `${gone}: ${count.get(gone)}`);
    }
  });

  it('is one kernel or the other: fusedAttention with pagedAttention is refused', () => {
    const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 1 << 20, hostCapacityBytes: 1 << 20 });
    assert.throws(
      () => NativeBackend.create(config, { provider: 'cpu', blockSize: 16, arenaCapacity: kv.arenaCapacity(), numThreads: 1, pagedAttention: true, fusedAttention: true }),
      /pick one/,
    );
  });
});
