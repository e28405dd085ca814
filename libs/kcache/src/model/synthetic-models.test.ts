import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kvDimOf } from './model-config';
import { parseLlama2cCheckpoint, serializeLlama2cCheckpoint } from './llama2c-checkpoint';
import { ModelFormatError } from './model-errors';
import { ModelWeights } from './model-weights';
import { SYNTHETIC_MODELS, createSyntheticModel } from './synthetic-models';

describe('createSyntheticModel', () => {
  it('is byte-identical for one seed and differs for another', () => {
    const a = serializeLlama2cCheckpoint(createSyntheticModel('stories260k-shape', 5));
    const b = serializeLlama2cCheckpoint(createSyntheticModel('stories260k-shape', 5));
    const c = serializeLlama2cCheckpoint(createSyntheticModel('stories260k-shape', 6));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it('has the shapes of its config for every named model', () => {
    for (const name of ['tiny', 'stories260k-shape']) {
      const weights = createSyntheticModel(name);
      const { dim, hiddenDim, vocabSize, numLayers } = weights.config;
      const kvDim = kvDimOf(weights.config);
      assert.equal(weights.tokenEmbedding.length, vocabSize * dim);
      assert.equal(weights.classifier, weights.tokenEmbedding);
      assert.equal(weights.layers.length, numLayers);
      for (const layer of weights.layers) {
        assert.equal(layer.wq.length, dim * dim);
        assert.equal(layer.wk.length, kvDim * dim);
        assert.equal(layer.wv.length, kvDim * dim);
        assert.equal(layer.w1.length, hiddenDim * dim);
        assert.equal(layer.w2.length, dim * hiddenDim);
        assert.deepEqual(layer.attentionNorm, new Float32Array(dim).fill(1));
      }
    }
  });

  it('stories260k-shape has exactly the stories260K header', () => {
    const { dim, hiddenDim, numLayers, numHeads, numKvHeads, vocabSize, maxSeqLen, sharedClassifier } =
      SYNTHETIC_MODELS['stories260k-shape'];
    assert.deepEqual(
      { dim, hiddenDim, numLayers, numHeads, numKvHeads, vocabSize, maxSeqLen, sharedClassifier },
      { dim: 64, hiddenDim: 172, numLayers: 5, numHeads: 8, numKvHeads: 4, vocabSize: 512, maxSeqLen: 512, sharedClassifier: true },
    );
  });

  it('builds llama-110m with ~110M parameters', () => {
    const weights = createSyntheticModel('llama-110m');
    const layerFloats = Object.values(weights.layers[0]).reduce((sum, tensor) => sum + tensor.length, 0);
    const parameters = weights.tokenEmbedding.length + weights.finalNorm.length + 12 * layerFloats;
    assert.equal(parameters, 109_529_856);
    assert.equal(weights.config.vocabSize, 32000);
    assert.equal(weights.config.maxSeqLen, 4096);
  });

  it('round-trips through the llama2.c writer and reader', () => {
    const weights = createSyntheticModel('tiny', 11);
    const parsed = parseLlama2cCheckpoint(serializeLlama2cCheckpoint(weights));
    assert.deepEqual(parsed.config, weights.config);
    assert.deepEqual(parsed.tokenEmbedding, weights.tokenEmbedding);
    parsed.layers.forEach((layer, l) => assert.deepEqual(layer, weights.layers[l]));
  });

  it('keeps the residual stream and logits well scaled through all layers', () => {
    for (const name of ['tiny', 'stories260k-shape']) {
      const { residualRms, logitStd } = firstPositionForward(createSyntheticModel(name, 1), 5);
      for (const rms of residualRms) assert.ok(rms > 0.1 && rms < 10, `${name}: residual rms ${rms}`);
      assert.ok(logitStd > 2 && logitStd < 8, `${name}: logit std ${logitStd}`);
    }
  });

  it('rejects an unknown name, listing the known ones', () => {
    assert.throws(
      () => createSyntheticModel('llama-7b'),
      (error: unknown) => error instanceof ModelFormatError && /llama-7b.*stories260k-shape, tiny, llama-110m/.test(error.message),
    );
  });
});

/** float64 forward pass at position 0, where attention returns V itself. */
function firstPositionForward(weights: ModelWeights, token: number): { residualRms: number[]; logitStd: number } {
  const { dim, numHeads, numKvHeads } = weights.config;
  const headDim = dim / numHeads;
  const matVec = (w: Float32Array, x: Float64Array): Float64Array => {
    const out = new Float64Array(w.length / x.length);
    for (let i = 0; i < out.length; i++) for (let j = 0; j < x.length; j++) out[i] += w[i * x.length + j] * x[j];
    return out;
  };
  const rms = (x: Float64Array): number => Math.sqrt(x.reduce((sum, v) => sum + v * v, 0) / x.length);
  const rmsNorm = (x: Float64Array, w: Float32Array): Float64Array => x.map((v, i) => (v / Math.sqrt(rms(x) ** 2 + 1e-5)) * w[i]);

  let x = Float64Array.from(weights.tokenEmbedding.subarray(token * dim, (token + 1) * dim));
  const residualRms = [rms(x)];
  for (const layer of weights.layers) {
    const v = matVec(layer.wv, rmsNorm(x, layer.attentionNorm));
    const attention = new Float64Array(dim).map((_, i) => v[Math.floor(Math.floor(i / headDim) / (numHeads / numKvHeads)) * headDim + (i % headDim)]);
    const attentionOut = matVec(layer.wo, attention);
    x = x.map((value, i) => value + attentionOut[i]);
    const m = rmsNorm(x, layer.ffnNorm);
    const gate = matVec(layer.w1, m);
    const up = matVec(layer.w3, m);
    const down = matVec(layer.w2, gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]));
    x = x.map((value, i) => value + down[i]);
    residualRms.push(rms(x));
  }
  const logits = matVec(weights.classifier, rmsNorm(x, weights.finalNorm));
  return { residualRms, logitStd: rms(logits) };
}
