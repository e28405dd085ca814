/** Shape of a Llama-architecture decoder (llama2.c header plus derived sizes). */
export interface ModelConfig {
  readonly dim: number;
  readonly hiddenDim: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly vocabSize: number;
  /** Maximum context, prompt included. */
  readonly maxSeqLen: number;
  /** true when the classifier is the token embedding table (llama2.c: positive vocab_size). */
  readonly sharedClassifier: boolean;
  readonly normEps: number;
  readonly ropeTheta: number;
  /** RoPE frequency scaling; absent or null: none (every llama2.c model). */
  readonly ropeScaling?: RopeScaling | null;
}

/**
 * RoPE frequency scaling as Hugging Face's rope_scaling defines it.
 * linear: every inverse frequency divided by factor. llama3: wavelengths above
 * originalMaxPositions / lowFreqFactor divided by factor, below originalMaxPositions / highFreqFactor
 * kept, and interpolated between.
 */
export type RopeScaling =
  | { readonly type: 'linear'; readonly factor: number }
  | {
      readonly type: 'llama3';
      readonly factor: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
      readonly originalMaxPositions: number;
    };

export function headDimOf(config: ModelConfig): number {
  return config.dim / config.numHeads;
}

export function kvDimOf(config: ModelConfig): number {
  return headDimOf(config) * config.numKvHeads;
}
