import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttentionConfig, FULL_ATTENTION } from '../attention/attention-config';
import { ModelConfig } from '../model/model-config';
import { KvCacheManager } from './kv-cache-manager';
import { numDenseLayers } from '../attention/attention-config';
import { MemoryConfigError, OutOfBlocksError } from './memory-errors';
import { SeededRandom } from '../sampling/seeded-random';
import { emptySequenceBlocks } from './sequence-blocks';

// kvDim = 8 / 2 · 1 = 4; layer block (blockSize 4) = 4 · 4 · 4 = 64 bytes; K block = 4 layers = 256 bytes.
const MODEL: ModelConfig = {
  dim: 8, hiddenDim: 16, numLayers: 4, numHeads: 2, numKvHeads: 1, vocabSize: 32,
  maxSeqLen: 256, sharedClassifier: true, normEps: 1e-5, ropeTheta: 10000,
};
const LAYER_BLOCK_BYTES = 64;
const kcache = (denseLayers: number): AttentionConfig => ({ mode: 'kcache', topN: 8, denseLayers, renormalize: false });
const seqOf = (attention: AttentionConfig) => ({ blocks: emptySequenceBlocks(), attention });

function manager(deviceCapacityBytes = 1 << 20, hostCapacityBytes = 1 << 20): KvCacheManager {
  return new KvCacheManager({ model: MODEL, blockSize: 4, deviceCapacityBytes, hostCapacityBytes });
}

describe('KvCacheManager', () => {
  it('validates its budgets at construction', () => {
    assert.throws(() => manager(0), MemoryConfigError);
    assert.throws(() => manager(4 * LAYER_BLOCK_BYTES - 1), MemoryConfigError);
    assert.throws(() => manager(1 << 20, 0), MemoryConfigError);
    assert.throws(() => manager(1 << 20, LAYER_BLOCK_BYTES - 1), MemoryConfigError);
    assert.throws(() => new KvCacheManager({ model: MODEL, blockSize: 0, deviceCapacityBytes: 1 << 20, hostCapacityBytes: 1 << 20 }), MemoryConfigError);
    assert.equal(new KvCacheManager({ model: MODEL, deviceCapacityBytes: 1 << 20, hostCapacityBytes: 1 << 20 }).blockSize, 16);
  });

  it('counts dense layers per mode, clamped to numLayers', () => {
    assert.equal(numDenseLayers(FULL_ATTENTION, 4), 4);
    assert.equal(numDenseLayers(kcache(0), 4), 0);
    assert.equal(numDenseLayers(kcache(2), 4), 2);
    assert.equal(numDenseLayers(kcache(9), 4), 4);
  });

  it('device bytes per token: kcache with 0 dense layers is half of full; k dense layers add k/numLayers of V', () => {
    const kv = manager();
    const full = kv.bytesPerToken(FULL_ATTENTION);
    const perLayerToken = 4 * 4; // kvDim · fp32
    assert.deepEqual(full, { deviceBytes: 2 * 4 * perLayerToken, hostBytes: 0 });
    assert.deepEqual(kv.bytesPerToken(kcache(0)), { deviceBytes: full.deviceBytes / 2, hostBytes: 4 * perLayerToken });
    for (let k = 0; k <= 4; k++) {
      const { deviceBytes, hostBytes } = kv.bytesPerToken(kcache(k));
      assert.equal(deviceBytes, full.deviceBytes / 2 + (k / 4) * (full.deviceBytes / 2));
      assert.equal(deviceBytes + hostBytes, full.deviceBytes);
    }
  });

  it('allocates per block one K id, one device-V id for dense layers and one host-V id for the rest', () => {
    const kv = manager();
    const seq = seqOf(kcache(1));
    kv.allocate(seq, 5); // 2 blocks
    assert.deepEqual(seq.blocks, { kBlockIds: [0, 1], deviceVBlockIds: [0, 1], hostVBlockIds: [0, 1] });
    const usage = kv.usage();
    assert.equal(usage.device.usedBytes, 2 * (4 + 1) * LAYER_BLOCK_BYTES);
    assert.equal(usage.host.usedBytes, 2 * 3 * LAYER_BLOCK_BYTES);
    assert.equal(usage.numKBlockIds, 2);
    kv.allocate(seq, 8); // still 2 blocks
    assert.equal(seq.blocks.kBlockIds.length, 2);
    kv.allocate(seq, 9);
    assert.equal(seq.blocks.kBlockIds.length, 3);

    const full = seqOf(FULL_ATTENTION);
    kv.allocate(full, 1);
    assert.deepEqual(full.blocks, { kBlockIds: [3], deviceVBlockIds: [3], hostVBlockIds: [] });
    const kOnly = seqOf(kcache(0));
    kv.allocate(kOnly, 1);
    assert.deepEqual(kOnly.blocks, { kBlockIds: [4], deviceVBlockIds: [], hostVBlockIds: [3] });

    kv.free(seq);
    kv.free(full);
    kv.free(kOnly);
    assert.deepEqual(seq.blocks, emptySequenceBlocks());
    const empty = kv.usage();
    assert.equal(empty.device.usedBytes, 0);
    assert.equal(empty.host.usedBytes, 0);
    assert.equal(empty.numKBlockIds + empty.numDeviceVBlockIds + empty.numHostVBlockIds, 0);
  });

  it('shares the device budget between K and device-V, all or nothing', () => {
    // 12 layer blocks: a full-mode block costs 8 (4 K + 4 V), so one fits, not two.
    const kv = manager(12 * LAYER_BLOCK_BYTES, 1 << 20);
    const a = seqOf(FULL_ATTENTION);
    assert.equal(kv.canAllocate(a, 4), true);
    assert.equal(kv.canAllocate(a, 5), false);
    assert.throws(() => kv.allocate(a, 5), OutOfBlocksError);
    assert.deepEqual(a.blocks, emptySequenceBlocks());
    assert.equal(kv.usage().device.usedBytes, 0);
    kv.allocate(a, 4);
    const b = seqOf(kcache(0)); // 4 layer blocks per block of device
    assert.equal(kv.canAllocate(b, 4), true);
    assert.equal(kv.canAllocate(b, 5), false);
    assert.equal(kv.fitsCapacity(FULL_ATTENTION, 5), false);
    assert.equal(kv.fitsCapacity(kcache(0), 12), true);
    assert.equal(kv.fitsCapacity(kcache(0), 13), false);
  });

  it('limits host-V by the host budget', () => {
    const kv = manager(1 << 20, 3 * LAYER_BLOCK_BYTES);
    const seq = seqOf(kcache(1)); // 3 host layers per block
    kv.allocate(seq, 4);
    assert.equal(kv.canAllocate(seq, 5), false);
    assert.throws(() => kv.allocate(seq, 5), (err: unknown) => err instanceof OutOfBlocksError && err.poolName === 'host');
    assert.equal(seq.blocks.kBlockIds.length, 1);
  });

  it('sizes the id arenas so that ids never exceed them', () => {
    const deviceCapacityBytes = 21 * LAYER_BLOCK_BYTES;
    const hostCapacityBytes = 7 * LAYER_BLOCK_BYTES;
    const kv = manager(deviceCapacityBytes, hostCapacityBytes);
    const cap = kv.arenaCapacity();
    assert.deepEqual(cap, { kIds: 5, deviceVIds: 4, hostVIds: 5 });
    // Random mixes of modes, grown until full, never push an id past the arena.
    const random = new SeededRandom(7);
    const attentions = [FULL_ATTENTION, kcache(0), kcache(1), kcache(3)];
    for (let round = 0; round < 200; round++) {
      const seqs = [];
      for (let attempt = 0; attempt < 40; attempt++) {
        const seq = seqOf(attentions[random.nextInt(attentions.length)]);
        const numTokens = 1 + random.nextInt(12);
        if (kv.canAllocate(seq, numTokens)) {
          kv.allocate(seq, numTokens);
          seqs.push(seq);
        }
        const maxIds = kv.maxIdsInUsePlusOne();
        assert.ok(maxIds.kIds <= cap.kIds && maxIds.deviceVIds <= cap.deviceVIds && maxIds.hostVIds <= cap.hostVIds);
        if (seqs.length > 0 && random.next() < 0.3) kv.free(seqs.splice(random.nextInt(seqs.length), 1)[0]);
      }
      for (const seq of seqs) kv.free(seq);
    }
    assert.equal(kv.usage().device.usedBytes, 0);

    // The K and device-V bounds are reached with a large host tier (the host bound is min(kIds, host / layer)).
    const roomy = manager(deviceCapacityBytes, 1 << 20);
    const fill = (attention: AttentionConfig): number => {
      const seqs = [];
      for (let seq = seqOf(attention); roomy.canAllocate(seq, 1); seq = seqOf(attention)) {
        roomy.allocate(seq, 1);
        seqs.push(seq);
      }
      for (const seq of seqs) roomy.free(seq);
      return seqs.length;
    };
    assert.equal(fill(kcache(0)), roomy.arenaCapacity().kIds);
    assert.equal(fill(kcache(0)), roomy.arenaCapacity().hostVIds);
    assert.equal(fill(kcache(1)), roomy.arenaCapacity().deviceVIds);
  });
});
