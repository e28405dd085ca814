import { ModelConfig, headDimOf } from './model-config';

/**
 * The cos/sin tables llama2.c's legacy export stores (run.c skips them):
 * each [maxSeqLen, headDim / 2], angle = pos * theta^(-2j / headDim).
 * Computed in float32 steps like PyTorch's precompute_freqs_cis, so they match the file closely.
 */
export function legacyRopeTables(config: ModelConfig): { cos: Float32Array; sin: Float32Array } {
  const halfHeadDim = headDimOf(config) / 2;
  const headDim = headDimOf(config);
  const f32 = Math.fround;
  const frequencies = new Float32Array(halfHeadDim);
  for (let j = 0; j < halfHeadDim; j++) {
    frequencies[j] = f32(1 / f32(Math.pow(config.ropeTheta, f32(f32(2 * j) / headDim))));
  }
  const cos = new Float32Array(config.maxSeqLen * halfHeadDim);
  const sin = new Float32Array(config.maxSeqLen * halfHeadDim);
  for (let pos = 0; pos < config.maxSeqLen; pos++) {
    for (let j = 0; j < halfHeadDim; j++) {
      const angle = f32(pos * frequencies[j]);
      cos[pos * halfHeadDim + j] = Math.cos(angle);
      sin[pos * halfHeadDim + j] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
