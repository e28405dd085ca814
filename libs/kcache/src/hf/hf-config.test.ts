import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ModelFormatError } from '../model/model-errors';
import { parseHfConfig } from './hf-config';

/** A transformers 4.x style Llama config (rope_theta + rope_scaling, torch_dtype). */
const LLAMA_V4 = {
  architectures: ['LlamaForCausalLM'],
  hidden_size: 64,
  intermediate_size: 172,
  num_hidden_layers: 2,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  vocab_size: 512,
  max_position_embeddings: 1024,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  tie_word_embeddings: false,
  hidden_act: 'silu',
  eos_token_id: [128001, 128009],
  bos_token_id: 128000,
  torch_dtype: 'bfloat16',
};

describe('parseHfConfig', () => {
  it('reads a transformers 4.x config with llama3 rope_scaling', () => {
    const parsed = parseHfConfig(LLAMA_V4);
    assert.equal(parsed.architecture, 'LlamaForCausalLM');
    assert.deepEqual(parsed.config, {
      dim: 64,
      hiddenDim: 172,
      numLayers: 2,
      numHeads: 8,
      numKvHeads: 4,
      vocabSize: 512,
      maxSeqLen: 1024,
      sharedClassifier: false,
      normEps: 1e-5,
      ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    });
    assert.deepEqual(parsed.eosTokenIds, [128001, 128009]);
    assert.equal(parsed.bosTokenId, 128000);
    assert.equal(parsed.storedDtype, 'bfloat16');
    assert.equal(parsed.hasQkvBias, false);
  });

  it('reads transformers 5 rope_parameters and the legacy "type" key, with defaults', () => {
    const { rope_theta: _theta, rope_scaling: _scaling, ...rest } = LLAMA_V4;
    const v5 = parseHfConfig({ ...rest, rope_parameters: { rope_type: 'linear', rope_theta: 1e6, factor: 2 } });
    assert.equal(v5.config.ropeTheta, 1e6);
    assert.deepEqual(v5.config.ropeScaling, { type: 'linear', factor: 2 });
    const legacy = parseHfConfig({ ...LLAMA_V4, rope_scaling: { type: 'linear', factor: 4 } });
    assert.deepEqual(legacy.config.ropeScaling, { type: 'linear', factor: 4 });
    const plain = parseHfConfig({ ...rest, num_key_value_heads: undefined, rms_norm_eps: undefined });
    assert.equal(plain.config.ropeTheta, 10000);
    assert.equal(plain.config.ropeScaling, undefined);
    assert.equal(plain.config.numKvHeads, 8);
    assert.equal(plain.config.normEps, 1e-6);
  });

  it('falls back to model_type, gives Qwen2 biases and caps the context at a sliding window', () => {
    const { architectures: _a, ...rest } = LLAMA_V4;
    assert.equal(parseHfConfig({ ...rest, model_type: 'qwen2' }).hasQkvBias, true);
    const mistral = parseHfConfig({ ...LLAMA_V4, architectures: ['MistralForCausalLM'], sliding_window: 256 });
    assert.equal(mistral.config.maxSeqLen, 256);
    const qwenWithoutWindow = parseHfConfig({ ...LLAMA_V4, architectures: ['Qwen2ForCausalLM'], sliding_window: 256, use_sliding_window: false });
    assert.equal(qwenWithoutWindow.config.maxSeqLen, 1024);
  });

  it('fails on anything the engine would compute differently, naming the field and value', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ architectures: ['GemmaForCausalLM'] }, /architectures \["GemmaForCausalLM"\] is not supported \(supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM\)/],
      [{ architectures: undefined, model_type: 'phi3' }, /model_type "phi3" is not supported/],
      [{ hidden_size: 0 }, /hidden_size must be a positive integer, got 0/],
      [{ intermediate_size: '172' }, /intermediate_size must be a positive integer, got "172"/],
      [{ head_dim: 16 }, /head_dim 16 is not supported: the engine needs hidden_size \/ num_attention_heads = 8/],
      [{ hidden_act: 'gelu_pytorch_tanh' }, /hidden_act "gelu_pytorch_tanh" is not supported/],
      [{ attention_bias: true }, /attention_bias true is not supported/],
      [{ mlp_bias: true }, /mlp_bias true is not supported/],
      [{ partial_rotary_factor: 0.5 }, /partial_rotary_factor 0.5 is not supported/],
      [{ rope_scaling: { rope_type: 'dynamic', factor: 2 } }, /rope_scaling\.rope_type "dynamic" is not supported \(supported: "default", "linear", "llama3"\)/],
      [{ rope_scaling: { rope_type: 'llama3', factor: 8 } }, /rope_scaling\.low_freq_factor must be a positive number for rope_type "llama3", got undefined/],
      [{ rope_theta: -1 }, /rope_theta must be a positive number, got -1/],
      [{ num_key_value_heads: 3 }, /not divisible/],
      [{ rms_norm_eps: 0 }, /rms_norm_eps must be a positive number, got 0/],
      [{ eos_token_id: 'x' }, /eos_token_id must be token ids/],
      [{ quantization_config: {} }, /quantization_config is set/],
    ];
    for (const [patch, pattern] of cases) {
      assert.throws(
        () => parseHfConfig({ ...LLAMA_V4, ...patch }, 'config.json'),
        (error: unknown) => error instanceof ModelFormatError && pattern.test(error.message),
        JSON.stringify(patch),
      );
    }
  });
});
