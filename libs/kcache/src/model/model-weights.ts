import { ModelConfig } from './model-config';

/**
 * fp32 weights of one layer. Every matrix is row-major [outFeatures, inFeatures]
 * (PyTorch Linear.weight layout): y[i] = sum_j W[i][j] * x[j].
 */
export interface LayerWeights {
  readonly attentionNorm: Float32Array; // [dim]
  readonly wq: Float32Array; // [dim, dim]
  readonly wk: Float32Array; // [kvDim, dim]
  readonly wv: Float32Array; // [kvDim, dim]
  readonly wo: Float32Array; // [dim, dim]
  readonly ffnNorm: Float32Array; // [dim]
  readonly w1: Float32Array; // [hiddenDim, dim] gate
  readonly w2: Float32Array; // [dim, hiddenDim] down
  readonly w3: Float32Array; // [hiddenDim, dim] up
}

/** RoPE is the interleaved-pairs (Meta / GPT-J) convention, computed on the fly. */
export interface ModelWeights {
  readonly config: ModelConfig;
  readonly tokenEmbedding: Float32Array; // [vocab, dim]
  readonly layers: readonly LayerWeights[];
  readonly finalNorm: Float32Array; // [dim]
  /** Same array as tokenEmbedding when config.sharedClassifier. */
  readonly classifier: Float32Array; // [vocab, dim]
  /** Per layer, biases of the q/k/v projections (Qwen2); absent: no biases (llama2.c, Llama, Mistral). */
  readonly qkvBiases?: readonly QkvBiases[];
}

/** Rows ordered as the rows of the layer's wq, wk and wv. */
export interface QkvBiases {
  readonly bq: Float32Array; // [dim]
  readonly bk: Float32Array; // [kvDim]
  readonly bv: Float32Array; // [kvDim]
}
