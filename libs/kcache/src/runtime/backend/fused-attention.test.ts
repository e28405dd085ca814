import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FULL_ATTENTION } from '../../attention/attention-config';
import { KvCacheManager } from '../../memory/kv-cache-manager';
import { createRandomModelWeights, syntheticModelConfig } from '../../model/synthetic-models';
import { NativeBackend } from './native-backend';
import { decodeBesidePlainRunner } from './testing/decode-beside-plain-runner';

/**
 * The native backend's fusedAttention (exact layers as one MultiHeadAttention node, where every query head
 * has its own KV head) on the CPU provider, against the onnxruntime-node runner: a random model with
 * Hkv = H, prompts prefilled, then batched decode steps whose logits must agree within 1e-4.
 */
const config = { ...syntheticModelConfig('stories260k-shape'), numKvHeads: 8 };
const weights = createRandomModelWeights(config, 11);

describe('fusedAttention: exact layers as MultiHeadAttention (native backend, CPU provider, Hkv = H)', () => {
  for (const attention of [FULL_ATTENTION, { mode: 'kcache', topN: 8, denseLayers: 2, renormalize: false } as const]) {
    it(`${attention.mode}: decode logits within 1e-4 of the onnxruntime-node runner`, async () => {
      const { worstDifference } = await decodeBesidePlainRunner(weights, attention, { currentRowInArena: true, fusedAttention: true }, [19, 33, 40], 24);
      assert.ok(worstDifference <= 1e-4, `logits differ by ${worstDifference}`);
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
