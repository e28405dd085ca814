import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { AttentionConfig, FULL_ATTENTION } from '../attention/attention-config';
import { KvCacheManager } from '../memory/kv-cache-manager';
import { emptySequenceBlocks, SequenceBlocks } from '../memory/sequence-blocks';
import { loadModel, LoadedModel } from '../formats/model-source';
import { createRandomModelWeights, syntheticModelConfig } from '../model/synthetic-models';
import { loadGreedyOracle, stories260kDir } from '../testing/reference-data';
import { generateOnBoth as generateOnBothRunners, groupedArenas } from '../testing/runner-pair';
import { float32FromHalves } from './float32-from-halves';
import { GraphBuilder } from './graph-builder';
import { graphVariantOf } from './graph-variant';
import { ModelRunner } from './model-runner';

/**
 * The GPU path of the runner (residentDeviceTier: device tier copied to the provider and updated a
 * row at a time, host-tier V read as uint16 halves and rebuilt exactly, prefill fed only its own past) run on the CPU
 * provider, where the copy is a second host buffer: it must give bit-identical logits to the plain
 * path, and a row the copy misses must show.
 */
const oracle = loadGreedyOracle();
let model: LoadedModel;

interface Pair {
  readonly plain: ModelRunner;
  readonly resident: ModelRunner;
  readonly kv: KvCacheManager;
}

/** layersPerGroup: K and device-V arenas in buffers of that many layers each (default: all layers in one). */
function runners(layersPerGroup?: number): Pair {
  const config = model.weights.config;
  const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 8 << 20, hostCapacityBytes: 8 << 20 });
  const capacity = kv.arenaCapacity();
  const options = { blockSize: 16, arenaCapacity: capacity, numThreads: 1 };
  const grouped = () => groupedArenas(config, capacity, layersPerGroup);
  return { kv, plain: new ModelRunner(model.weights, { ...options, ...grouped() }), resident: new ModelRunner(model.weights, { ...options, ...grouped(), residentDeviceTier: true }) };
}

/**
 * Three oracle prompts prefilled and decoded on both runners (testing/runner-pair.ts's generateOnBoth): the
 * resident path runs the same fp32 operations on the same values, so bit-identical logits. afterFirstStep runs
 * once the copy has taken every row so far.
 */
async function generateOnBoth(pair: Pair, attention: AttentionConfig, steps: number, afterFirstStep?: (blocks: SequenceBlocks[]) => void): Promise<void> {
  await generateOnBothRunners({ plain: pair.plain, other: pair.resident, kv: pair.kv }, oracle.slice(0, 3), attention, steps, { afterFirstStep });
}

describe('resident device tier (the GPU path, checked on the CPU provider)', () => {
  before(() => {
    model = loadModel(stories260kDir());
  });

  for (const attention of [FULL_ATTENTION, { mode: 'kcache', topN: 16, denseLayers: 2, renormalize: false } as const, { mode: 'kcache', topN: 8, denseLayers: 0, renormalize: true } as const]) {
    it(`${attention.mode} (dense layers ${attention.mode === 'kcache' ? attention.denseLayers : 'all'}): bit-identical prefill and batched decode logits`, async () => {
      const pair = runners();
      assert.ok(pair.resident.hasResidentDeviceTier && !pair.plain.hasResidentDeviceTier);
      await generateOnBoth(pair, attention, 40);
      await pair.plain.release();
      await pair.resident.release();
    });
  }

  it('arenas in several buffers (groups of two layers): rows land in the right group and place', async () => {
    const pair = runners(2);
    assert.equal(pair.resident.arenas.kGroups.length, 3);
    await generateOnBoth(pair, { mode: 'kcache', topN: 16, denseLayers: 3, renormalize: false }, 20);
    await pair.plain.release();
    await pair.resident.release();
  });

  it('K rows written into the host arenas by someone else reach the copy once noted, and not before', async () => {
    const attention = { mode: 'kcache', topN: 16, denseLayers: 2, renormalize: false } as const;
    const variant = graphVariantOf(attention, model.weights.config.numLayers);
    // Overwrite position 3 of every sequence in both runners' host arenas, as a restored shared prefix would.
    const overwrite = (pair: Pair, blocks: SequenceBlocks[], note: boolean) => {
      for (const runner of [pair.plain, pair.resident]) {
        const a = runner.arenas;
        for (const seqBlocks of blocks) {
          for (let layer = 0; layer < a.k.length; layer++) {
            const row = a.rowOf(seqBlocks.kBlockIds, 3);
            a.k[layer].fill(0.25, row * a.headDim, (row + 1) * a.headDim);
          }
        }
      }
      if (note) for (const seqBlocks of blocks) pair.resident.noteCachedRowsWritten(seqBlocks, variant, 3, 4);
    };
    const noted = runners();
    await generateOnBoth(noted, attention, 6, (blocks) => overwrite(noted, blocks, true));
    const unnoted = runners();
    await assert.rejects(generateOnBoth(unnoted, attention, 6, (blocks) => overwrite(unnoted, blocks, false)), /step 1/);
    for (const pair of [noted, unnoted]) {
      await pair.plain.release();
      await pair.resident.release();
    }
  });

  it('a model with more slice tables than one WebGPU Split may output (20 layers, full attention: 40) decodes what scoring the whole text gives', async () => {
    const config = { ...syntheticModelConfig('tiny'), numLayers: 20 };
    const weights = createRandomModelWeights(config, 3);
    const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 4 << 20, hostCapacityBytes: 4 << 20 });
    const runner = new ModelRunner(weights, { blockSize: 16, arenaCapacity: kv.arenaCapacity(), numThreads: 1, residentDeviceTier: true });
    const variant = graphVariantOf(FULL_ATTENTION, config.numLayers);
    const tokens = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % config.vocabSize);
    const expected = await runner.score(tokens, variant, 0, tokens.length);
    const seq = { blocks: emptySequenceBlocks(), attention: FULL_ATTENTION };
    kv.allocate(seq, tokens.length);
    await runner.prefill({ tokenIds: tokens.slice(0, 20), startPosition: 0, numPromptTokens: 20, blocks: seq.blocks }, variant, 0);
    for (let position = 20; position < tokens.length; position++) {
      const logits = await runner.decode([{ tokenId: tokens[position], position, blocks: seq.blocks }], variant, 0);
      const row = expected.subarray(position * config.vocabSize, (position + 1) * config.vocabSize);
      let maxDiff = 0;
      for (let i = 0; i < row.length; i++) maxDiff = Math.max(maxDiff, Math.abs(logits[i] - row[i]));
      assert.ok(maxDiff < 1e-4, `position ${position}: decode and score differ by ${maxDiff}`);
    }
    await runner.release();
  });

  it('float32FromHalves rebuilds every fp32 bit pattern class exactly', async () => {
    const values = Float32Array.of(0, -0, 1, -1, 0.1, -2.5, 3.4028234663852886e38, -1.1754943508222875e-38, 1.401298464324817e-45, 5.877471754111438e-39, 65504, Math.PI, -1e-20, 123456.789, Infinity, -Infinity);
    const width = values.length;
    const g = new GraphBuilder('halves');
    const input = g.input('halves', 'uint16', [1, 2 * width]);
    g.output(float32FromHalves(g, input, width, 2), 'values', 'float32', [1, width]);
    const session = await ort.InferenceSession.create(g.toBytes());
    const out = (await session.run({ halves: new ort.Tensor('uint16', new Uint16Array(values.buffer), [1, 2 * width]) })).values.data as Float32Array;
    for (let i = 0; i < width; i++) assert.ok(Object.is(out[i], values[i]), `value ${i}: ${out[i]} !== ${values[i]}`);
    await session.release();
  });
});
