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
}

export function headDimOf(config: ModelConfig): number {
  return config.dim / config.numHeads;
}

export function kvDimOf(config: ModelConfig): number {
  return headDimOf(config) * config.numKvHeads;
}
