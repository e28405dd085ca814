import { ModelConfig, kvDimOf } from './model-config';
import { ModelFormatError } from './model-errors';
import { LayerWeights, ModelWeights } from './model-weights';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, validateLlama2cConfig } from './llama2c-header';
import { Xoshiro128Random } from './xoshiro128-random';

const LLAMA2C_DEFAULTS = { normEps: LLAMA2C_NORM_EPS, ropeTheta: LLAMA2C_ROPE_THETA } as const;

/**
 * Llama-shaped configs for tests and benchmarks; weights come from createSyntheticModel.
 * All share the classifier with the embedding, as llama2.c's stories models do
 * (so llama-110m has ~110M parameters, like stories110M).
 */
export const SYNTHETIC_MODELS: Readonly<Record<string, ModelConfig>> = Object.freeze({
  'stories260k-shape': {
    dim: 64,
    hiddenDim: 172,
    numLayers: 5,
    numHeads: 8,
    numKvHeads: 4,
    vocabSize: 512,
    maxSeqLen: 512,
    sharedClassifier: true,
    ...LLAMA2C_DEFAULTS,
  },
  tiny: {
    dim: 32,
    hiddenDim: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    vocabSize: 512,
    maxSeqLen: 256,
    sharedClassifier: true,
    ...LLAMA2C_DEFAULTS,
  },
  'llama-110m': {
    dim: 768,
    hiddenDim: 2048,
    numLayers: 12,
    numHeads: 12,
    numKvHeads: 12,
    vocabSize: 32000,
    maxSeqLen: 4096,
    sharedClassifier: true,
    ...LLAMA2C_DEFAULTS,
  },
});

export function syntheticModelConfig(name: string): ModelConfig {
  const config = Object.prototype.hasOwnProperty.call(SYNTHETIC_MODELS, name) ? SYNTHETIC_MODELS[name] : undefined;
  if (config === undefined) {
    const known = Object.keys(SYNTHETIC_MODELS).join(', ');
    throw new ModelFormatError(`unknown synthetic model "${name}"; known: ${known}`);
  }
  return config;
}

export function createSyntheticModel(name: string, seed = 0): ModelWeights {
  return createRandomModelWeights(syntheticModelConfig(name), seed);
}

/**
 * Seeded random weights that keep activations well-conditioned through every layer:
 * matrices have std 1/sqrt(fanIn), norm weights are 1, and the embedding (and a separate
 * classifier) has std 4/sqrt(dim) so the logits of an RMS-normalised state have std ~4.
 * Tensors are drawn from one stream in a fixed order (embedding, layer by layer, classifier),
 * so (config, seed) fixes every byte.
 */
export function createRandomModelWeights(config: ModelConfig, seed = 0): ModelWeights {
  validateLlama2cConfig(config, 'createRandomModelWeights');
  const random = new Xoshiro128Random(seed);
  const { dim, hiddenDim, vocabSize } = config;
  const kvDim = kvDimOf(config);
  const randomTensor = (floats: number, std: number): Float32Array => {
    const tensor = new Float32Array(floats);
    random.fillTriangular(tensor, std);
    return tensor;
  };
  const linear = (outFeatures: number, inFeatures: number): Float32Array =>
    randomTensor(outFeatures * inFeatures, 1 / Math.sqrt(inFeatures));
  const ones = (): Float32Array => new Float32Array(dim).fill(1);

  const embeddingStd = 4 / Math.sqrt(dim);
  const tokenEmbedding = randomTensor(vocabSize * dim, embeddingStd);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    layers.push({
      attentionNorm: ones(),
      wq: linear(dim, dim),
      wk: linear(kvDim, dim),
      wv: linear(kvDim, dim),
      wo: linear(dim, dim),
      ffnNorm: ones(),
      w1: linear(hiddenDim, dim),
      w2: linear(dim, hiddenDim),
      w3: linear(hiddenDim, dim),
    });
  }
  const finalNorm = ones();
  const classifier = config.sharedClassifier ? tokenEmbedding : randomTensor(vocabSize * dim, embeddingStd);
  return { config, tokenEmbedding, layers, finalNorm, classifier };
}
