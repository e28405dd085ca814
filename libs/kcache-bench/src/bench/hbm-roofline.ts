import { AttentionConfig, numDenseLayers, topNOf } from '@kcache-serve/kcache/dist/attention/attention-config';
import { headDimOf, kvDimOf, ModelConfig } from '@kcache-serve/kcache/dist/model/model-config';
import { describeGpu } from './machine-info';

/** What one decode step must read: the weights, the device tier's K/V (GPU memory) and the TopN V rows (host tier). */
export interface DecodeStepBytes {
  readonly weightBytes: number;
  /** K of every layer and V of the exact layers over the context, for the whole batch: read from GPU memory. */
  readonly deviceKvBytes: number;
  /** TopN layers' V rows, at most min(N, context) per query head and sequence: read from host memory. */
  readonly hostVBytes: number;
}

/** fp32 bytes of every weight a decode step reads: the layers, the final norm and the classifier (of the embedding table only the batch's rows, left out). */
export function decodeWeightBytes(config: ModelConfig): number {
  const kvDim = kvDimOf(config);
  const perLayer = config.dim * (config.dim + 2 * kvDim) + config.dim * config.dim + config.dim * 2 * config.hiddenDim + config.hiddenDim * config.dim + 2 * config.dim;
  const classifier = config.vocabSize * config.dim;
  return 4 * (config.numLayers * perLayer + config.dim + classifier);
}

export function decodeStepBytes(config: ModelConfig, attention: AttentionConfig, context: number, batchSize: number): DecodeStepBytes {
  const rowBytes = 4 * kvDimOf(config) * context * batchSize; // one layer's K (or V) over the context, whole batch
  let deviceKvBytes = 0;
  let hostVBytes = 0;
  const numDense = numDenseLayers(attention, config.numLayers);
  for (let layer = 0; layer < config.numLayers; layer++) {
    deviceKvBytes += rowBytes;
    if (layer < numDense) deviceKvBytes += rowBytes;
    else hostVBytes += 4 * headDimOf(config) * config.numHeads * Math.min(topNOf(attention), context + 1) * batchSize;
  }
  return { weightBytes: decodeWeightBytes(config), deviceKvBytes, hostVBytes };
}

/**
 * The GPU's memory bandwidth in bytes/s: `override` (TB/s, a --hbm-tb-per-s flag), else by the name
 * nvidia-smi reports (H200 4.8 TB/s, H100 SXM 3.35 TB/s, H100 PCIe 2.0 TB/s), else null (unknown).
 */
export function gpuMemoryBytesPerSecond(override?: string): number | null {
  if (override !== undefined) {
    const tbps = Number(override);
    if (!(tbps > 0)) throw new RangeError(`--hbm-tb-per-s must be a positive number of TB/s, got '${override}'`);
    return tbps * 1e12;
  }
  const name = describeGpu();
  if (name === null) return null;
  if (/H200/.test(name)) return 4.8e12;
  if (/H100.*PCIe/i.test(name)) return 2.0e12;
  if (/H100/.test(name)) return 3.35e12;
  return null;
}

/** Fraction of the roofline a measured step reaches: (weights + device K/V bytes) / bandwidth ÷ the step's time. */
export function rooflineFraction(bytes: DecodeStepBytes, bytesPerSecond: number, msPerStep: number): number {
  return (bytes.weightBytes + bytes.deviceKvBytes) / bytesPerSecond / (msPerStep / 1000);
}
