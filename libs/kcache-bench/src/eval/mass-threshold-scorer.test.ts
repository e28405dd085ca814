import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadModel, LoadedModel } from '@kcache-serve/kcache/dist/formats/model-source';
import { graphVariantOf } from '@kcache-serve/kcache/dist/runtime/graph-variant';
import { ModelRunner } from '@kcache-serve/kcache/dist/runtime/model-runner';
import { loadGreedyOracle, stories260kDir } from '@kcache-serve/kcache/testing';
import { oracleTokens } from './eval-texts';
import { MassThresholdScorer, meanKeptPerRow } from './mass-threshold-scorer';

describe('mass-threshold scoring graph (stories260K)', () => {
  let model: LoadedModel;
  let scorer: MassThresholdScorer;
  let runner: ModelRunner;
  const tokens = oracleTokens(loadGreedyOracle()[0]).slice(0, 200);
  const T = tokens.length;

  before(() => {
    model = loadModel(stories260kDir());
    scorer = new MassThresholdScorer(model.weights, 1);
    runner = new ModelRunner(model.weights, { blockSize: 16, arenaCapacity: { kIds: 1, deviceVIds: 1, hostVIds: 1 }, numThreads: 1 });
  });
  after(async () => {
    await scorer.release();
    await runner.release();
  });

  for (const [denseLayers, renormalize] of [[0, false], [1, true]] as const) {
    it(`tau = ∞ is fixed TopN: the runner's scores exactly (dense ${denseLayers}, renormalise ${renormalize})`, async () => {
      const variant = graphVariantOf({ mode: 'kcache', topN: 16, denseLayers, renormalize }, model.weights.config.numLayers);
      const expected = await runner.score(tokens, variant, 16, 0);
      const got = await scorer.score(tokens, variant, 16, Infinity);
      assert.deepEqual(got.logits, expected);
      // Row t keeps min(16, t + 1) positions per query head.
      const numTopNLayers = model.weights.config.numLayers - denseLayers;
      const expectedMean = Array.from({ length: T }, (_, t) => Math.min(16, t + 1)).reduce((a, b) => a + b, 0) / T;
      assert.equal(got.keptPerHead.length, numTopNLayers * model.weights.config.numHeads * T);
      assert.ok(Math.abs(meanKeptPerRow(got.keptPerHead, T, T) - expectedMean) < 1e-9);
    });
  }

  it('keeps the fewest positions reaching tau: one for a tiny tau, more as tau grows, never above the cap', async () => {
    const variant = graphVariantOf({ mode: 'kcache', topN: 32, denseLayers: 0, renormalize: false }, model.weights.config.numLayers);
    const tiny = await scorer.score(tokens, variant, 32, 1e-6);
    assert.ok(tiny.keptPerHead.every((n) => n === 1));
    let previous = 0;
    for (const tau of [0.5, 0.9, 0.99]) {
      const s = await scorer.score(tokens, variant, 32, tau);
      const mean = meanKeptPerRow(s.keptPerHead, T, T);
      assert.ok(mean > previous, `tau ${tau}: mean kept ${mean} after ${previous}`);
      assert.ok(s.keptPerHead.every((n) => n >= 1 && n <= 32));
      const group = model.weights.config.numHeads / model.weights.config.numKvHeads;
      // The union over a KV head's query heads is at least the largest of them and at most their sum.
      for (let i = 0; i < s.keptPerKvHead.length; i++) {
        const layerHead = Math.floor(i / T);
        const t = i % T;
        const perHead = Array.from({ length: group }, (_, q) => s.keptPerHead[(layerHead * group + q) * T + t]);
        assert.ok(s.keptPerKvHead[i] >= Math.max(...perHead) && s.keptPerKvHead[i] <= perHead.reduce((a, b) => a + b, 0));
      }
      previous = mean;
    }
  });
});
