import { ModelConfig, headDimOf, kvDimOf } from './model-config';
import { ModelFormatError } from './model-errors';

/** llama2.c legacy v0 header: 7 little-endian int32. */
export const LLAMA2C_HEADER_BYTES = 28;

/** llama2.c hard-codes these; the v0 header does not store them. */
export const LLAMA2C_NORM_EPS = 1e-5;
export const LLAMA2C_ROPE_THETA = 10000;

/** Reads and validates the header. A negative vocab_size means a separate classifier. */
export function readLlama2cHeader(bytes: Uint8Array, source: string): ModelConfig {
  if (bytes.byteLength < LLAMA2C_HEADER_BYTES) {
    throw new ModelFormatError(
      `${source}: truncated file: expected at least ${LLAMA2C_HEADER_BYTES} header bytes, got ${bytes.byteLength}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, LLAMA2C_HEADER_BYTES);
  const field = (index: number): number => view.getInt32(index * 4, true);
  const rawVocabSize = field(5);
  const config: ModelConfig = {
    dim: field(0),
    hiddenDim: field(1),
    numLayers: field(2),
    numHeads: field(3),
    numKvHeads: field(4),
    vocabSize: Math.abs(rawVocabSize),
    maxSeqLen: field(6),
    sharedClassifier: rawVocabSize > 0,
    normEps: LLAMA2C_NORM_EPS,
    ropeTheta: LLAMA2C_ROPE_THETA,
  };
  validateLlama2cConfig(config, source);
  return config;
}

export function writeLlama2cHeader(config: ModelConfig, target: Uint8Array): void {
  const view = new DataView(target.buffer, target.byteOffset, LLAMA2C_HEADER_BYTES);
  const fields = [
    config.dim,
    config.hiddenDim,
    config.numLayers,
    config.numHeads,
    config.numKvHeads,
    config.sharedClassifier ? config.vocabSize : -config.vocabSize,
    config.maxSeqLen,
  ];
  fields.forEach((value, index) => view.setInt32(index * 4, value, true));
}

export function validateLlama2cConfig(config: ModelConfig, source: string): void {
  const positiveFields: Array<[string, number]> = [
    ['dim', config.dim],
    ['hidden_dim', config.hiddenDim],
    ['n_layers', config.numLayers],
    ['n_heads', config.numHeads],
    ['n_kv_heads', config.numKvHeads],
    ['vocab_size', config.vocabSize],
    ['seq_len', config.maxSeqLen],
  ];
  for (const [name, value] of positiveFields) {
    if (!Number.isSafeInteger(value) || value <= 0 || value > 0x7fffffff) {
      throw new ModelFormatError(`${source}: header field ${name} must be a positive int32, got ${value}`);
    }
  }
  if (config.dim % config.numHeads !== 0) {
    throw new ModelFormatError(`${source}: dim ${config.dim} is not divisible by n_heads ${config.numHeads}`);
  }
  if (config.numHeads % config.numKvHeads !== 0) {
    throw new ModelFormatError(
      `${source}: n_heads ${config.numHeads} is not divisible by n_kv_heads ${config.numKvHeads}`,
    );
  }
  if (headDimOf(config) % 2 !== 0) {
    throw new ModelFormatError(`${source}: head size ${headDimOf(config)} must be even for rotary embeddings`);
  }
}

/** Float counts of every tensor group, in file order. Stacked groups hold all layers. */
export function llama2cTensorFloatCounts(config: ModelConfig): {
  readonly name: string;
  readonly floats: number;
}[] {
  const { dim, hiddenDim, numLayers: layers, vocabSize, maxSeqLen } = config;
  const kvDim = kvDimOf(config);
  const ropeTableFloats = (maxSeqLen * headDimOf(config)) / 2;
  const groups = [
    { name: 'token_embedding', floats: vocabSize * dim },
    { name: 'rms_att_weight', floats: layers * dim },
    { name: 'wq', floats: layers * dim * dim },
    { name: 'wk', floats: layers * kvDim * dim },
    { name: 'wv', floats: layers * kvDim * dim },
    { name: 'wo', floats: layers * dim * dim },
    { name: 'rms_ffn_weight', floats: layers * dim },
    { name: 'w1', floats: layers * hiddenDim * dim },
    { name: 'w2', floats: layers * dim * hiddenDim },
    { name: 'w3', floats: layers * hiddenDim * dim },
    { name: 'rms_final_weight', floats: dim },
    { name: 'freq_cis_real', floats: ropeTableFloats },
    { name: 'freq_cis_imag', floats: ropeTableFloats },
  ];
  if (!config.sharedClassifier) groups.push({ name: 'wcls', floats: vocabSize * dim });
  return groups;
}

export function llama2cFileBytes(config: ModelConfig): number {
  const floats = llama2cTensorFloatCounts(config).reduce((sum, group) => sum + group.floats, 0);
  return LLAMA2C_HEADER_BYTES + 4 * floats;
}
