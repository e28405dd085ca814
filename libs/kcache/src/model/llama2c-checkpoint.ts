import { readFileSync } from 'node:fs';
import { kvDimOf } from './model-config';
import { ModelFormatError, ModelNotFoundError } from './model-errors';
import { LayerWeights, ModelWeights } from './model-weights';
import {
  LLAMA2C_HEADER_BYTES,
  llama2cFileBytes,
  readLlama2cHeader,
  validateLlama2cConfig,
  writeLlama2cHeader,
} from './llama2c-header';
import { legacyRopeTables } from './legacy-rope-tables';

const IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Parses a llama2.c legacy v0 checkpoint (see ../shared/models/stories260K/README.md).
 * The weights are Float32Array views over one 4-byte-aligned copy of `bytes`.
 */
export function parseLlama2cCheckpoint(bytes: Uint8Array, source = 'llama2.c checkpoint'): ModelWeights {
  if (!IS_LITTLE_ENDIAN) throw new ModelFormatError(`${source}: big-endian hosts are not supported`);
  const config = readLlama2cHeader(bytes, source);
  const expectedBytes = llama2cFileBytes(config);
  if (bytes.byteLength !== expectedBytes) {
    const problem = bytes.byteLength < expectedBytes ? 'truncated file' : 'trailing bytes';
    throw new ModelFormatError(
      `${source}: ${problem}: header (dim ${config.dim}, hidden_dim ${config.hiddenDim}, n_layers ${config.numLayers}, ` +
        `vocab_size ${config.vocabSize}, seq_len ${config.maxSeqLen}) needs exactly ${expectedBytes} bytes, got ${bytes.byteLength}`,
    );
  }
  // new Uint8Array(...) copies (Buffer#slice would not), giving a 4-byte-aligned buffer at offset 0.
  const floats = new Float32Array(new Uint8Array(bytes).buffer, 0, expectedBytes / 4);
  let cursor = LLAMA2C_HEADER_BYTES / 4;
  const take = (count: number): Float32Array => floats.subarray(cursor, (cursor += count));
  const perLayer = (floatsPerLayer: number): Float32Array[] =>
    Array.from({ length: config.numLayers }, () => take(floatsPerLayer));

  const { dim, hiddenDim, vocabSize, maxSeqLen } = config;
  const kvDim = kvDimOf(config);
  const tokenEmbedding = take(vocabSize * dim);
  const attentionNorm = perLayer(dim);
  const wq = perLayer(dim * dim);
  const wk = perLayer(kvDim * dim);
  const wv = perLayer(kvDim * dim);
  const wo = perLayer(dim * dim);
  const ffnNorm = perLayer(dim);
  const w1 = perLayer(hiddenDim * dim);
  const w2 = perLayer(dim * hiddenDim);
  const w3 = perLayer(hiddenDim * dim);
  const finalNorm = take(dim);
  take(maxSeqLen * (dim / config.numHeads)); // legacy RoPE cos + sin tables: recomputed on the fly
  const classifier = config.sharedClassifier ? tokenEmbedding : take(vocabSize * dim);

  const layers: LayerWeights[] = attentionNorm.map((_, l) => ({
    attentionNorm: attentionNorm[l],
    wq: wq[l],
    wk: wk[l],
    wv: wv[l],
    wo: wo[l],
    ffnNorm: ffnNorm[l],
    w1: w1[l],
    w2: w2[l],
    w3: w3[l],
  }));
  return { config, tokenEmbedding, layers, finalNorm, classifier };
}

export function loadLlama2cCheckpoint(path: string): ModelWeights {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new ModelNotFoundError(`cannot read llama2.c checkpoint ${path}`, { cause: error });
  }
  return parseLlama2cCheckpoint(bytes, path);
}

/** Writes the legacy v0 format llama2.c's run.c reads, RoPE tables included. */
export function serializeLlama2cCheckpoint(weights: ModelWeights): Uint8Array {
  const { config } = weights;
  validateLlama2cConfig(config, 'serializeLlama2cCheckpoint');
  const bytes = new Uint8Array(llama2cFileBytes(config));
  writeLlama2cHeader(config, bytes);
  const floats = new Float32Array(bytes.buffer, LLAMA2C_HEADER_BYTES);
  let cursor = 0;
  const put = (tensor: Float32Array, name: string, expectedFloats: number): void => {
    if (tensor.length !== expectedFloats) {
      throw new ModelFormatError(`serializeLlama2cCheckpoint: ${name} has ${tensor.length} floats, expected ${expectedFloats}`);
    }
    floats.set(tensor, cursor);
    cursor += tensor.length;
  };
  const putLayers = (key: keyof LayerWeights, floatsPerLayer: number): void =>
    weights.layers.forEach((layer, l) => put(layer[key], `layers[${l}].${key}`, floatsPerLayer));

  if (weights.layers.length !== config.numLayers) {
    throw new ModelFormatError(
      `serializeLlama2cCheckpoint: ${weights.layers.length} layers, config says ${config.numLayers}`,
    );
  }
  const { dim, hiddenDim, vocabSize } = config;
  const kvDim = kvDimOf(config);
  put(weights.tokenEmbedding, 'tokenEmbedding', vocabSize * dim);
  putLayers('attentionNorm', dim);
  putLayers('wq', dim * dim);
  putLayers('wk', kvDim * dim);
  putLayers('wv', kvDim * dim);
  putLayers('wo', dim * dim);
  putLayers('ffnNorm', dim);
  putLayers('w1', hiddenDim * dim);
  putLayers('w2', dim * hiddenDim);
  putLayers('w3', hiddenDim * dim);
  put(weights.finalNorm, 'finalNorm', dim);
  const rope = legacyRopeTables(config);
  put(rope.cos, 'ropeCos', rope.cos.length);
  put(rope.sin, 'ropeSin', rope.sin.length);
  if (!config.sharedClassifier) put(weights.classifier, 'classifier', vocabSize * dim);
  return bytes;
}
