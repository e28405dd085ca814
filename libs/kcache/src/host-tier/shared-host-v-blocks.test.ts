import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { AttentionConfig } from '../attention/attention-config';
import { KvCacheManager } from '../memory/kv-cache-manager';
import { OutOfBlocksError } from '../memory/memory-errors';
import { emptySequenceBlocks } from '../memory/sequence-blocks';
import { ModelConfig } from '../model/model-config';
import { KvArenas } from '../runtime/kv-arenas';
import { Scheduler } from '../scheduler/scheduler';
import { Sequence } from '../scheduler/sequence';
import { resolveSharedHostTierOptions } from './host-tier-options';
import { SharedHostTier } from './shared-host-tier';
import { SharedHostVBlocks } from './shared-host-v-blocks';

// headDim 4, one KV head: a layer block (blockSize 4) is 64 bytes; a tier block (2 layers, V and K) 256 bytes.
const MODEL: ModelConfig = { dim: 8, hiddenDim: 16, numLayers: 2, numHeads: 2, numKvHeads: 1, vocabSize: 32, maxSeqLen: 64, sharedClassifier: true, normEps: 1e-5, ropeTheta: 10000 };
const KCACHE: AttentionConfig = { mode: 'kcache', topN: 8, denseLayers: 0, renormalize: false };
const FLOATS = 16;

let directory: string;
let tiers: SharedHostTier[] = [];

function setup(numBlocks = 10): { kv: KvCacheManager; host: SharedHostVBlocks; arenas: KvArenas } {
  const tier = SharedHostTier.open(
    resolveSharedHostTierOptions({ kind: 'shared', directory, name: 't', capacityBytes: numBlocks * 256, leaseMs: 1000, prefixKeys: 'spill' }, 0),
    { blockSize: 4, numLayers: 2, numKvHeads: 1, headDim: 4 },
  );
  tiers.push(tier);
  const host = new SharedHostVBlocks(tier, { blockSize: 4, numLayers: 2, prefixSharing: true, modelFingerprint: 'test-model' });
  const kv = new KvCacheManager({ model: MODEL, blockSize: 4, deviceCapacityBytes: 1 << 16, hostCapacityBytes: 1, externalHostTier: host });
  return { kv, host, arenas: new KvArenas(MODEL, 4, kv.arenaCapacity(), tier.v) };
}

/** A sequence as the scheduler makes them: prompt, tokens, worst-case length. */
function sequence(promptTokenIds: number[], maxNewTokens: number) {
  return { blocks: emptySequenceBlocks(), attention: KCACHE, tokenIds: [...promptTokenIds], numPromptTokens: promptTokenIds.length, maxTotalTokens: promptTokenIds.length + maxNewTokens };
}

describe('SharedHostVBlocks under the KV cache manager', () => {
  beforeEach(() => {
    directory = mkdtempSync('/dev/shm/kcache-vblocks-test-');
  });
  afterEach(() => {
    for (const tier of tiers) tier.close();
    tiers = [];
    rmSync(directory, { recursive: true, force: true });
  });

  it('admission reserves the worst case, so a running sequence always grows; the next waits for room', () => {
    const { kv, host } = setup();
    const a = sequence([1, 2, 3, 4, 5, 6], 18); // up to 24 tokens: 6 blocks
    assert.equal(kv.canAllocate(a, 6), true);
    kv.allocate(a, 6);
    assert.equal(a.blocks.hostVBlockIds.length, 2);
    assert.deepEqual(host.tier.stats().reservedBytes, 4 * 256);
    const b = sequence([9, 9, 9, 9, 9], 19);
    assert.equal(kv.canAllocate(b, 5), false, '2 used + 4 reserved + 6 > 10');
    assert.equal(kv.canAllocate(a, 24), true, 'growth within the reservation');
    kv.allocate(a, 24);
    assert.equal(kv.usage().host.usedBytes, 6 * 256);
    kv.free(a);
    assert.equal(kv.canAllocate(b, 5), true);
    kv.allocate(b, 5);
    kv.free(b);
    assert.deepEqual(host.tier.stats().usedBytes + host.tier.stats().reservedBytes, 0);
  });

  it('a host grow that does not fit is all or nothing: the device blocks taken for it go back', () => {
    const { kv } = setup(2);
    const a = sequence([1, 2, 3, 4, 5, 6, 7, 8], 0);
    kv.allocate(a, 8);
    const device = kv.usage().device.usedBytes;
    const b = { blocks: emptySequenceBlocks(), attention: KCACHE };
    assert.throws(() => kv.allocate(b, 4), OutOfBlocksError);
    assert.equal(kv.usage().device.usedBytes, device);
    assert.deepEqual(b.blocks, emptySequenceBlocks());
  });

  it('a published prompt block is hit by the next sequence with that prefix; K comes back from the tier', () => {
    const { kv, host, arenas } = setup();
    const prompt = [1, 5, 6, 7, 8, 9, 10, 11, 12, 13];
    const a = sequence(prompt, 2);
    kv.allocate(a, prompt.length);
    arenas.k[1].fill(4.25, a.blocks.kBlockIds[1] * FLOATS, (a.blocks.kBlockIds[1] + 1) * FLOATS);
    host.publishPrefix(a.blocks, KCACHE, prompt.length, prompt.length, arenas);
    assert.equal(host.tier.stats().numCachedBlocks, 2, 'two full prompt blocks');

    const b = sequence([...prompt.slice(0, 8), 40, 41, 42], 2);
    kv.allocate(b, 11);
    assert.deepEqual(b.blocks.hostVBlockIds.slice(0, 2), a.blocks.hostVBlockIds.slice(0, 2), 'the prefix blocks are shared');
    assert.notEqual(b.blocks.hostVBlockIds[2], a.blocks.hostVBlockIds[2]);
    assert.equal(host.restorePrefix(b.blocks, KCACHE, 0, 11, arenas), 8, 'prefill starts after the prefix');
    assert.equal(arenas.k[1][b.blocks.kBlockIds[1] * FLOATS + 3], 4.25);
    const again = sequence(prompt, 2);
    kv.allocate(again, 10);
    assert.equal(host.restorePrefix(again.blocks, KCACHE, 0, 10, arenas), 8, 'the last prompt token is always computed');
    const otherAttention = { ...sequence(prompt, 2), attention: { ...KCACHE, topN: 16 } };
    kv.allocate(otherAttention, 10);
    assert.equal(host.restorePrefix(otherAttention.blocks, otherAttention.attention, 0, 10, arenas), 0, 'other attention parameters: other hashes, no hit');
    for (const s of [a, b, again, otherAttention]) kv.free(s);
    assert.equal(host.tier.stats().usedBytes, 0);
  });

  it('through the scheduler (vLLM-style prefix cache): admission counts the hit blocks computed, allocation restores their K, commit publishes', () => {
    const { kv, host, arenas } = setup(12);
    const restored: Array<[number, number]> = [];
    host.attachStorage({ arenas, rowsRestored: (_blocks, _attention, from, to) => restored.push([from, to]) });
    const scheduler = new Scheduler({ maxNumSeqs: 4, maxNumBatchedTokens: 64, maxModelLen: 64 }, kv);
    const prompt = [1, 5, 6, 7, 8, 9, 10, 11, 12, 13];
    const a = new Sequence({ requestId: 'a', promptTokenIds: prompt, maxNewTokens: 4, maxModelLen: 64, attention: KCACHE });
    scheduler.addSequence(a);
    const first = scheduler.schedule();
    assert.deepEqual(first.scheduled.map((c) => [c.startPosition, c.numNewTokens]), [[0, 10]], 'nothing cached: the whole prompt is computed');
    arenas.k[1].fill(4.25, a.blocks.kBlockIds[1] * FLOATS, (a.blocks.kBlockIds[1] + 1) * FLOATS);
    scheduler.commit(first, new Map([['a', 20]]));
    assert.equal(host.tier.stats().numCachedBlocks, 2, 'commit published the two full prompt blocks');

    // Same first 8 tokens: 2 blocks hit; the first chunk starts after them.
    const b = new Sequence({ requestId: 'b', promptTokenIds: [...prompt.slice(0, 8), 40, 41, 42], maxNewTokens: 4, maxModelLen: 64, attention: KCACHE });
    scheduler.addSequence(b);
    const second = scheduler.schedule();
    const chunkOfB = second.scheduled.find((c) => c.sequence === b)!;
    assert.deepEqual([chunkOfB.startPosition, chunkOfB.numNewTokens, b.numComputedTokens], [8, 3, 8]);
    assert.equal(arenas.k[1][b.blocks.kBlockIds[1] * FLOATS + 3], 4.25, 'K came back from the tier');
    assert.deepEqual(restored, [[0, 8]]);
    assert.equal(host.stats().numRestoredTokens, 8);

    // The whole prompt hits (8 tokens, 2 full blocks): the last prompt token is still computed.
    const c = new Sequence({ requestId: 'c', promptTokenIds: prompt.slice(0, 8), maxNewTokens: 4, maxModelLen: 64, attention: KCACHE });
    scheduler.addSequence(c);
    const third = scheduler.schedule();
    const chunkOfC = third.scheduled.find((chunk) => chunk.sequence === c)!;
    assert.deepEqual([chunkOfC.startPosition, chunkOfC.numNewTokens, chunkOfC.isLastChunk], [7, 1, true]);
    assert.deepEqual(c.blocks.hostVBlockIds, a.blocks.hostVBlockIds.slice(0, 2));
    for (const id of ['a', 'b', 'c']) scheduler.finish(id);
    assert.equal(host.tier.stats().usedBytes, 0);
  });
});
