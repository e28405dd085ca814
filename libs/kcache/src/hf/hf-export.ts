import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { headDimOf, kvDimOf } from '../model/model-config';
import { ModelWeights } from '../model/model-weights';
import { HF_CONFIG_FILE, HF_WEIGHTS_FILE } from './hf-checkpoint';
import { HfArchitecture } from './hf-config';
import { HF_GENERATION_CONFIG_FILE } from './hf-model';
import { HF_TOKENIZER_CONFIG_FILE, HF_TOKENIZER_FILE } from './hf-tokenizer';
import { interleavedToRotateHalf } from './rope-layout';
import { TensorToWrite, serializeSafetensors } from './safetensors';
import { TokenizerJson } from './tokenizer-json';

export interface HfExportOptions {
  readonly tokenizerJson: TokenizerJson;
  readonly tokenizerConfig: Record<string, unknown>;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  /** Tokens that end a generation (generation_config.json eos_token_id). Default: [eosTokenId]. */
  readonly stopTokenIds?: readonly number[];
  /** Stored weight type. Default F32. */
  readonly dtype?: 'F32' | 'BF16';
}

/**
 * Writes a transformers-loadable folder: config.json (LlamaForCausalLM, or Qwen2ForCausalLM when
 * the model has q/k/v biases), model.safetensors with q/k rows in HF's rotate-half layout,
 * tokenizer.json, tokenizer_config.json and generation_config.json. Returns the file names.
 */
export function writeHfModel(weights: ModelWeights, dir: string, options: HfExportOptions): string[] {
  const c = weights.config;
  const d = headDimOf(c);
  const architecture: HfArchitecture = weights.qkvBiases ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM';
  const dtype = options.dtype ?? 'F32';
  const config: Record<string, unknown> = {
    architectures: [architecture],
    model_type: architecture === 'Qwen2ForCausalLM' ? 'qwen2' : 'llama',
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: d,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.maxSeqLen,
    rms_norm_eps: c.normEps,
    rope_theta: c.ropeTheta,
    rope_scaling: ropeScalingJson(weights),
    tie_word_embeddings: c.sharedClassifier,
    hidden_act: 'silu',
    ...(architecture === 'LlamaForCausalLM' ? { attention_bias: false, mlp_bias: false } : { use_sliding_window: false }),
    bos_token_id: options.bosTokenId,
    eos_token_id: options.eosTokenId,
    torch_dtype: dtype === 'F32' ? 'float32' : 'bfloat16',
  };
  const tensors: TensorToWrite[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, c.dim], data: weights.tokenEmbedding }];
  const kvDim = kvDimOf(c);
  weights.layers.forEach((layer, l) => {
    const p = `model.layers.${l}.`;
    tensors.push(
      { name: `${p}input_layernorm.weight`, shape: [c.dim], data: layer.attentionNorm },
      { name: `${p}self_attn.q_proj.weight`, shape: [c.dim, c.dim], data: interleavedToRotateHalf(layer.wq, c.numHeads, d) },
      { name: `${p}self_attn.k_proj.weight`, shape: [kvDim, c.dim], data: interleavedToRotateHalf(layer.wk, c.numKvHeads, d) },
      { name: `${p}self_attn.v_proj.weight`, shape: [kvDim, c.dim], data: layer.wv },
      { name: `${p}self_attn.o_proj.weight`, shape: [c.dim, c.dim], data: layer.wo },
      { name: `${p}post_attention_layernorm.weight`, shape: [c.dim], data: layer.ffnNorm },
      { name: `${p}mlp.gate_proj.weight`, shape: [c.hiddenDim, c.dim], data: layer.w1 },
      { name: `${p}mlp.up_proj.weight`, shape: [c.hiddenDim, c.dim], data: layer.w3 },
      { name: `${p}mlp.down_proj.weight`, shape: [c.dim, c.hiddenDim], data: layer.w2 },
    );
    const biases = weights.qkvBiases?.[l];
    if (biases) {
      tensors.push(
        { name: `${p}self_attn.q_proj.bias`, shape: [c.dim], data: interleavedToRotateHalf(biases.bq, c.numHeads, d) },
        { name: `${p}self_attn.k_proj.bias`, shape: [kvDim], data: interleavedToRotateHalf(biases.bk, c.numKvHeads, d) },
        { name: `${p}self_attn.v_proj.bias`, shape: [kvDim], data: biases.bv },
      );
    }
  });
  tensors.push({ name: 'model.norm.weight', shape: [c.dim], data: weights.finalNorm });
  if (!c.sharedClassifier) tensors.push({ name: 'lm_head.weight', shape: [c.vocabSize, c.dim], data: weights.classifier });

  const generationConfig = {
    bos_token_id: options.bosTokenId,
    eos_token_id: options.stopTokenIds ? [...options.stopTokenIds] : options.eosTokenId,
  };
  mkdirSync(dir, { recursive: true });
  const files: Array<[string, string | Uint8Array]> = [
    [HF_CONFIG_FILE, json(config)],
    [HF_GENERATION_CONFIG_FILE, json(generationConfig)],
    [HF_WEIGHTS_FILE, serializeSafetensors(tensors, { dtype })],
    [HF_TOKENIZER_FILE, JSON.stringify(options.tokenizerJson)],
    [HF_TOKENIZER_CONFIG_FILE, json(options.tokenizerConfig)],
  ];
  for (const [name, content] of files) writeFileSync(join(dir, name), content);
  return files.map(([name]) => name);
}

function ropeScalingJson(weights: ModelWeights): object | null {
  const scaling = weights.config.ropeScaling ?? null;
  if (scaling === null) return null;
  if (scaling.type === 'linear') return { rope_type: 'linear', factor: scaling.factor };
  return {
    rope_type: 'llama3',
    factor: scaling.factor,
    low_freq_factor: scaling.lowFreqFactor,
    high_freq_factor: scaling.highFreqFactor,
    original_max_position_embeddings: scaling.originalMaxPositions,
  };
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}
