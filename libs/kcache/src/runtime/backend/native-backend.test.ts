import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { AttentionConfig, FULL_ATTENTION, topNOf } from '../../attention/attention-config';
import { KvCacheManager } from '../../memory/kv-cache-manager';
import { emptySequenceBlocks, SequenceBlocks } from '../../memory/sequence-blocks';
import { loadModel, LoadedModel } from '../../formats/model-source';
import { loadGreedyOracle, stories260kDir } from '../../testing/reference-data';
import { generateOnBoth as generateOnBothRunners, groupedArenas } from '../../testing/runner-pair';
import { graphVariantOf } from '../graph-variant';
import { KvArenas } from '../kv-arenas';
import { ModelRunner } from '../model-runner';
import { NativeBackend } from './native-backend';

/**
 * The native backend (onnxruntime's C API, IO binding over the arenas, new rows written by the decode
 * graph itself) on the CPU provider, against the onnxruntime-node runner: the same fp32 operations on
 * the same values, so bit-identical logits, and the arenas it leaves hold the same rows.
 */
const oracle = loadGreedyOracle();
let model: LoadedModel;

interface Pair {
  readonly plain: ModelRunner;
  readonly native: ModelRunner;
  readonly kv: KvCacheManager;
}

/**
 * layersPerGroup: K and device-V arenas in buffers of that many layers each (default: all layers in one).
 * deviceCopyOnHost: the native backend keeps K and device V apart from its host view, as on a GPU.
 */
function runners(layersPerGroup?: number, deviceCopyOnHost = false, currentRowInArena?: boolean): Pair {
  const config = model.weights.config;
  const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 8 << 20, hostCapacityBytes: 8 << 20 });
  const capacity = kv.arenaCapacity();
  const options = { blockSize: 16, arenaCapacity: capacity, numThreads: 1 };
  const grouped = () => groupedArenas(config, capacity, layersPerGroup);
  const own = deviceCopyOnHost || currentRowInArena !== undefined;
  const backend = own ? { backend: NativeBackend.create(config, { ...options, ...grouped(), provider: 'cpu', deviceCopyOnHost, ...(currentRowInArena !== undefined ? { currentRowInArena } : {}) }) } : {};
  return { kv, plain: new ModelRunner(model.weights, { ...options, ...grouped() }), native: new ModelRunner(model.weights, { ...options, ...grouped(), nativeBackend: true, ...backend }) };
}

/** Three oracle prompts prefilled and decoded on both runners (testing/runner-pair.ts's generateOnBoth). */
function generateOnBoth(pair: Pair, attention: AttentionConfig, steps: number, afterFirstStep?: (blocks: SequenceBlocks[]) => void, tolerance = 0): Promise<SequenceBlocks[]> {
  return generateOnBothRunners({ plain: pair.plain, other: pair.native, kv: pair.kv }, oracle.slice(0, 3), attention, steps, { afterFirstStep, tolerance });
}

function same(a: readonly Float32Array[], b: readonly Float32Array[], what: string): void {
  a.forEach((arena, layer) => assert.ok(Buffer.compare(bytes(arena), bytes(b[layer])) === 0, `${what} of layer ${layer}`));
}

function assertSameArenas(actual: KvArenas, expected: KvArenas): void {
  same(actual.k, expected.k, 'K');
  same(actual.deviceV, expected.deviceV, 'device V');
  same(actual.hostV, expected.hostV, 'host V');
}

function bytes(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

async function releaseBoth(pair: Pair): Promise<void> {
  await pair.plain.release();
  await pair.native.release();
}

describe('native backend on the CPU provider (the CUDA path, checked without a GPU)', () => {
  it('is what nativeBackend picks, and its decode graph writes the rows itself', async () => {
    const pair = runners();
    assert.ok(pair.native.backend instanceof NativeBackend && pair.native.hasResidentDeviceTier);
    assert.equal(pair.native.backend.graphOptions.writeKvInPlace, true);
    assert.equal(pair.native.backend.graphOptions.currentRowInArena, false, 'bit-identical with the onnxruntime-node runner on cpu');
    await releaseBoth(pair);
  });

  before(() => {
    model = loadModel(stories260kDir());
  });

  for (const attention of [FULL_ATTENTION, { mode: 'kcache', topN: 16, denseLayers: 2, renormalize: false } as const, { mode: 'kcache', topN: 8, denseLayers: 0, renormalize: true } as const]) {
    it(`${attention.mode} (dense layers ${attention.mode === 'kcache' ? attention.denseLayers : 'all'}): bit-identical prefill and batched decode logits, and the same arena rows written by the graph itself`, async () => {
      const pair = runners();
      await generateOnBoth(pair, attention, 40);
      assertSameArenas(pair.native.arenas, pair.plain.arenas);
      await releaseBoth(pair);
    });

    it(`${attention.mode}, the current row written into the arena before the past is read (currentRowInArena, cuda's default): logits within 1e-4, host V rows the same`, async () => {
      const pair = runners(undefined, true, true);
      assert.equal(pair.native.backend.graphOptions.currentRowInArena, true);
      await generateOnBoth(pair, attention, 40, undefined, 1e-4);
      // Host V of layer 0 comes from the embedding alone: bit-identical rows.
      same(pair.native.arenas.hostV.slice(0, 1), pair.plain.arenas.hostV.slice(0, 1), 'host V');
      await releaseBoth(pair);
    });

    it(`${attention.mode}, with K and device V apart from the host view (as in GPU memory): the same logits; prefill rows are uploaded, decode rows stay on the device`, async () => {
      const pair = runners(undefined, true);
      const blocks = await generateOnBoth(pair, attention, 24);
      // The host view holds host V and prefill's K; decode's K rows (and exact V) were written only where the graph reads them.
      const a = pair.native.arenas;
      same(a.hostV, pair.plain.arenas.hostV, 'host V');
      const row = a.rowOf(blocks[0].kBlockIds, oracle[0].prompt_token_ids.length + 3);
      assert.ok(a.k[0].subarray(row * a.headDim, (row + 1) * a.headDim).every((x) => x === 0), 'a decode row of K is not in the host view');
      await releaseBoth(pair);
    });
  }

  it('K rows written into the host view by someone else (a restored shared prefix) reach the device copy once noted, and not before', async () => {
    const attention = { mode: 'kcache', topN: 16, denseLayers: 2, renormalize: false } as const;
    const variant = graphVariantOf(attention, model.weights.config.numLayers);
    const overwrite = (pair: Pair, blocks: SequenceBlocks[], note: boolean) => {
      for (const runner of [pair.plain, pair.native]) {
        const a = runner.arenas;
        for (const seqBlocks of blocks) {
          for (let layer = 0; layer < a.k.length; layer++) {
            const row = a.rowOf(seqBlocks.kBlockIds, 3);
            a.k[layer].fill(0.25, row * a.headDim, (row + 1) * a.headDim);
          }
        }
      }
      if (note) for (const seqBlocks of blocks) pair.native.noteCachedRowsWritten(seqBlocks, variant, 3, 4);
    };
    const noted = runners(undefined, true);
    await generateOnBoth(noted, attention, 6, (blocks) => overwrite(noted, blocks, true));
    const unnoted = runners(undefined, true);
    await assert.rejects(generateOnBoth(unnoted, attention, 6, (blocks) => overwrite(unnoted, blocks, false)), /step 1/);
    await releaseBoth(noted);
    await releaseBoth(unnoted);
  });

  it('reloadDeviceTier copies a host view rewritten wholesale (as benchmarks fill it)', async () => {
    const pair = runners(undefined, true);
    const attention = FULL_ATTENTION;
    const blocks = await generateOnBoth(pair, attention, 2);
    for (const runner of [pair.plain, pair.native]) {
      const a = runner.arenas;
      [...a.k, ...a.deviceV, ...a.hostV].forEach((arena, i) => arena.fill(0.01 * (i + 1)));
    }
    await pair.native.reloadDeviceTier();
    const variant = graphVariantOf(attention, model.weights.config.numLayers);
    const items = blocks.map((b, i) => ({ tokenId: 7, position: oracle[i].prompt_token_ids.length + 2, blocks: b }));
    assert.deepEqual(Array.from(await pair.native.decode(items, variant, 0)), Array.from(await pair.plain.decode(items, variant, 0)));
    await releaseBoth(pair);
  });

  it('arenas in several buffers (groups of two layers): rows land in the right group and place', async () => {
    const pair = runners(2);
    assert.equal(pair.native.arenas.kGroups.length, 3);
    await generateOnBoth(pair, { mode: 'kcache', topN: 16, denseLayers: 3, renormalize: false }, 20);
    assertSameArenas(pair.native.arenas, pair.plain.arenas);
    await releaseBoth(pair);
  });

  it('the current row in the arena, over the host arenas themselves and with arenas in groups of two layers: logits within 1e-4', async () => {
    for (const layersPerGroup of [undefined, 2]) {
      const pair = runners(layersPerGroup, false, true);
      await generateOnBoth(pair, { mode: 'kcache', topN: 16, denseLayers: 3, renormalize: false }, 20, undefined, 1e-4);
      await releaseBoth(pair);
    }
  });

  it('scores a whole text as the onnxruntime-node runner does (teacher-forced logits, kcache on every position)', async () => {
    const pair = runners();
    const tokens = [...oracle[0].prompt_token_ids, ...oracle[0].generated_token_ids].slice(0, 120);
    for (const attention of [FULL_ATTENTION, { mode: 'kcache', topN: 8, denseLayers: 1, renormalize: false } as const]) {
      const variant = graphVariantOf(attention, model.weights.config.numLayers);
      const expected = await pair.plain.score(tokens, variant, topNOf(attention), 10);
      assert.deepEqual(Array.from(await pair.native.score(tokens, variant, topNOf(attention), 10)), Array.from(expected), attention.mode);
    }
    await releaseBoth(pair);
  });

  it('a decode that would write into a sealed (read-only) host-V block is refused, not written', async () => {
    const config = model.weights.config;
    const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 8 << 20, hostCapacityBytes: 8 << 20 });
    const attention = { mode: 'kcache', topN: 8, denseLayers: 0, renormalize: false } as const;
    const seq = { blocks: emptySequenceBlocks(), attention };
    kv.allocate(seq, 20);
    const sealed = seq.blocks.hostVBlockIds[1];
    const runner = new ModelRunner(model.weights, { blockSize: 16, arenaCapacity: kv.arenaCapacity(), numThreads: 1, nativeBackend: true, isHostVBlockReadOnly: (id) => id === sealed });
    assert.ok(runner.backend instanceof NativeBackend);
    const variant = graphVariantOf(attention, config.numLayers);
    await runner.prefill({ tokenIds: oracle[0].prompt_token_ids.slice(0, 17), startPosition: 0, numPromptTokens: 17, blocks: seq.blocks }, variant, 8);
    const before = Buffer.from(bytes(runner.arenas.hostV[0]));
    await assert.rejects(runner.decode([{ tokenId: 5, position: 17, blocks: seq.blocks }], variant, 8), /read-only host-V block/);
    assert.ok(Buffer.compare(bytes(runner.arenas.hostV[0]), before) === 0);
    await runner.release();
  });

  it("a batch's logits: untilNextDecode hands over the backend's own buffer (the same values), the default a copy that the next decode leaves alone", async () => {
    const config = model.weights.config;
    const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 8 << 20, hostCapacityBytes: 8 << 20 });
    const runner = new ModelRunner(model.weights, { blockSize: 16, arenaCapacity: kv.arenaCapacity(), numThreads: 1, nativeBackend: true });
    const variant = graphVariantOf(FULL_ATTENTION, config.numLayers);
    const items = [3, 9].map((tokenId, b) => {
      const seq = { blocks: emptySequenceBlocks(), attention: FULL_ATTENTION };
      kv.allocate(seq, 8);
      return { tokenId, position: b, blocks: seq.blocks };
    });
    const copied = await runner.decode(items, variant, 0);
    const kept = Float32Array.from(copied);
    const view = await runner.decode(items, variant, 0, { untilNextDecode: true });
    assert.deepEqual(Array.from(view), Array.from(kept));
    await runner.decode([{ ...items[0], tokenId: 20 }, { ...items[1], tokenId: 30 }], variant, 0, { untilNextDecode: true });
    assert.notDeepEqual(Array.from(view), Array.from(kept), 'the view is the next decode\'s buffer');
    assert.deepEqual(Array.from(copied), Array.from(kept), 'the copy stays');
    await runner.release();
  });
});
