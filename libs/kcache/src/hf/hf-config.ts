import { ModelConfig, RopeScaling } from '../model/model-config';
import { ModelFormatError } from '../model/model-errors';
import { validateLlama2cConfig } from '../model/llama2c-header';

export const SUPPORTED_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM'] as const;
export type HfArchitecture = (typeof SUPPORTED_ARCHITECTURES)[number];

const ARCHITECTURE_OF_MODEL_TYPE: Record<string, HfArchitecture> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
};

/** What config.json says about a supported checkpoint, beside the engine's ModelConfig. */
export interface HfModelConfig {
  readonly architecture: HfArchitecture;
  readonly config: ModelConfig;
  /** q_proj, k_proj and v_proj carry biases (Qwen2). */
  readonly hasQkvBias: boolean;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  /** torch_dtype / dtype as stored (informational: every dtype is converted to fp32). */
  readonly storedDtype: string | null;
}

/**
 * Reads a Hugging Face config.json (transformers 4.x `rope_theta` + `rope_scaling`, or 5.x
 * `rope_parameters`). Anything the engine would compute differently fails here, naming the field.
 * A sliding window only limits the context: with at most `sliding_window` positions, windowed and
 * full attention are the same computation.
 */
export function parseHfConfig(json: unknown, source = 'config.json'): HfModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ModelFormatError(`${source}: not a JSON object`);
  const raw = json as Record<string, unknown>;
  const fail = (field: string, problem: string): never => {
    throw new ModelFormatError(`${source}: ${field} ${problem}`);
  };
  const architecture = architectureOf(raw, fail);
  const int = (field: string, fallback?: number): number => {
    const value = raw[field] ?? fallback;
    if (!Number.isSafeInteger(value) || (value as number) <= 0) fail(field, `must be a positive integer, got ${JSON.stringify(raw[field])}`);
    return value as number;
  };
  const num = (field: string, fallback: number): number => {
    const value = raw[field] ?? fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail(field, `must be a positive number, got ${JSON.stringify(raw[field])}`);
    return value as number;
  };
  const requireValue = (field: string, allowed: readonly unknown[], fallback: unknown): void => {
    const value = raw[field] ?? fallback;
    if (!allowed.includes(value)) fail(field, `${JSON.stringify(value)} is not supported (supported: ${allowed.map((v) => JSON.stringify(v)).join(', ')})`);
  };

  const dim = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  if (raw.head_dim !== undefined && raw.head_dim !== null && raw.head_dim !== dim / numHeads) {
    fail('head_dim', `${JSON.stringify(raw.head_dim)} is not supported: the engine needs hidden_size / num_attention_heads = ${dim / numHeads}`);
  }
  requireValue('hidden_act', ['silu'], 'silu');
  requireValue('mlp_bias', [false], false);
  if (architecture === 'LlamaForCausalLM') requireValue('attention_bias', [false], false);
  requireValue('partial_rotary_factor', [1, 1.0], 1);
  if (raw.quantization_config !== undefined) fail('quantization_config', 'is set: quantized checkpoints are not supported');

  const rope = ropeOf(raw, fail);
  let maxSeqLen = int('max_position_embeddings');
  const window = slidingWindowOf(raw, architecture, fail);
  if (window !== null) maxSeqLen = Math.min(maxSeqLen, window);

  const config: ModelConfig = {
    dim,
    hiddenDim: int('intermediate_size'),
    numLayers: int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    vocabSize: int('vocab_size'),
    maxSeqLen,
    sharedClassifier: raw.tie_word_embeddings === true,
    normEps: num('rms_norm_eps', 1e-6),
    ropeTheta: rope.theta,
    ...(rope.scaling ? { ropeScaling: rope.scaling } : {}),
  };
  validateLlama2cConfig(config, source);
  const eos = raw.eos_token_id;
  const eosTokenIds = eos === undefined || eos === null ? [] : Array.isArray(eos) ? (eos as number[]) : [eos as number];
  if (!eosTokenIds.every((id) => Number.isSafeInteger(id) && id >= 0)) fail('eos_token_id', `must be token ids, got ${JSON.stringify(eos)}`);
  const dtype = raw.torch_dtype ?? raw.dtype;
  return {
    architecture,
    config,
    hasQkvBias: architecture === 'Qwen2ForCausalLM',
    bosTokenId: Number.isSafeInteger(raw.bos_token_id) ? (raw.bos_token_id as number) : null,
    eosTokenIds,
    storedDtype: typeof dtype === 'string' ? dtype : null,
  };
}

function architectureOf(raw: Record<string, unknown>, fail: (field: string, problem: string) => never): HfArchitecture {
  const architectures = raw.architectures;
  if (architectures === undefined || architectures === null) {
    const byType = ARCHITECTURE_OF_MODEL_TYPE[String(raw.model_type)];
    if (!byType) fail('model_type', `${JSON.stringify(raw.model_type)} is not supported (supported: ${Object.keys(ARCHITECTURE_OF_MODEL_TYPE).join(', ')})`);
    return byType;
  }
  if (!Array.isArray(architectures) || architectures.length !== 1 || !SUPPORTED_ARCHITECTURES.includes(architectures[0])) {
    fail('architectures', `${JSON.stringify(architectures)} is not supported (supported: ${SUPPORTED_ARCHITECTURES.join(', ')})`);
  }
  return (architectures as HfArchitecture[])[0];
}

/** rope_parameters (transformers 5) or rope_theta + rope_scaling (4.x). */
function ropeOf(raw: Record<string, unknown>, fail: (field: string, problem: string) => never): { theta: number; scaling: RopeScaling | null } {
  const parameters = raw.rope_parameters;
  const fieldName = parameters !== undefined && parameters !== null ? 'rope_parameters' : 'rope_scaling';
  const params = (fieldName === 'rope_parameters' ? parameters : raw.rope_scaling) ?? null;
  if (params !== null && (typeof params !== 'object' || Array.isArray(params))) fail(fieldName, `must be an object, got ${JSON.stringify(params)}`);
  const p = (params ?? {}) as Record<string, unknown>;
  const theta = (fieldName === 'rope_parameters' ? p.rope_theta : undefined) ?? raw.rope_theta ?? 10000;
  if (typeof theta !== 'number' || !(theta > 0)) fail('rope_theta', `must be a positive number, got ${JSON.stringify(theta)}`);
  const type = p.rope_type ?? p.type ?? 'default';
  const positive = (key: string): number => {
    const value = p[key];
    if (typeof value !== 'number' || !(value > 0)) fail(`${fieldName}.${key}`, `must be a positive number for rope_type ${JSON.stringify(type)}, got ${JSON.stringify(value)}`);
    return value as number;
  };
  if (type === 'default') return { theta: theta as number, scaling: null };
  if (type === 'linear') return { theta: theta as number, scaling: { type: 'linear', factor: positive('factor') } };
  if (type === 'llama3') {
    const scaling: RopeScaling = {
      type: 'llama3',
      factor: positive('factor'),
      lowFreqFactor: positive('low_freq_factor'),
      highFreqFactor: positive('high_freq_factor'),
      originalMaxPositions: positive('original_max_position_embeddings'),
    };
    if (scaling.highFreqFactor <= scaling.lowFreqFactor) fail(`${fieldName}.high_freq_factor`, 'must be above low_freq_factor');
    return { theta: theta as number, scaling };
  }
  return fail(`${fieldName}.rope_type`, `${JSON.stringify(type)} is not supported (supported: "default", "linear", "llama3")`);
}

/** The attention window, or null for full attention. */
function slidingWindowOf(raw: Record<string, unknown>, architecture: HfArchitecture, fail: (field: string, problem: string) => never): number | null {
  const usesWindow =
    architecture === 'MistralForCausalLM' ||
    (architecture === 'Qwen2ForCausalLM' && raw.use_sliding_window === true) ||
    (Array.isArray(raw.layer_types) && raw.layer_types.includes('sliding_attention'));
  const window = raw.sliding_window;
  if (!usesWindow || window === undefined || window === null) return null;
  if (!Number.isSafeInteger(window) || (window as number) <= 0) fail('sliding_window', `must be a positive integer or null, got ${JSON.stringify(window)}`);
  return window as number;
}
