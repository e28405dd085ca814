import { interleavedToRotateHalf } from '../hf/rope-layout';
import { BYTE_LEVEL_SPLIT_PATTERNS, SPM_SPACE, TokenizerJson, TokenType } from '../hf/tokenizer-json';
import { headDimOf, kvDimOf } from '../model/model-config';
import { ModelFormatError } from '../model/model-errors';
import { ModelWeights } from '../model/model-weights';
import { TokenizerFormatError } from '../tokenizer/tokenizer-errors';
import { GgufMetadataValue, GgufTensorToWrite, serializeGguf } from './gguf-writer';

/** The tokenizer.ggml.* metadata of a vocabulary. */
export type GgufVocabulary =
  | {
      readonly model: 'llama';
      readonly tokens: readonly string[];
      readonly scores: ArrayLike<number>;
      readonly types: ArrayLike<number>;
      readonly addSpacePrefix: boolean;
      readonly specials: GgufSpecials;
    }
  | {
      readonly model: 'gpt2';
      readonly tokens: readonly string[];
      readonly types: ArrayLike<number>;
      readonly merges: readonly string[];
      readonly pre: string;
      readonly specials: GgufSpecials;
    };

export interface GgufSpecials {
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly unkId: number | null;
  readonly addBos: boolean;
}

/**
 * A GGUF v3 checkpoint of F32 tensors in llama.cpp's layout: architecture "llama" (q/k rows
 * interleaved, as llama.cpp's converter stores them) or "qwen2" when the model has q/k/v biases
 * (rotate-half rows, llama.cpp's NEOX RoPE).
 */
export function serializeGgufModel(weights: ModelWeights, vocabulary: GgufVocabulary, name: string): Uint8Array {
  const c = weights.config;
  const arch = weights.qkvBiases ? 'qwen2' : 'llama';
  const d = headDimOf(c);
  const kvDim = kvDimOf(c);
  if (c.ropeScaling?.type === 'llama3') throw new ModelFormatError(`convert: ${name}: llama3 rope scaling is not written to GGUF (llama.cpp stores it as rope_freqs factors)`);
  const qk = (m: Float32Array, heads: number) => (arch === 'qwen2' ? interleavedToRotateHalf(m, heads, d) : m);
  const metadata = new Map<string, GgufMetadataValue>([
    ['general.architecture', { type: 'string', value: arch }],
    ['general.name', { type: 'string', value: name }],
    ['general.file_type', { type: 'u32', value: 0 }],
    [`${arch}.context_length`, { type: 'u32', value: c.maxSeqLen }],
    [`${arch}.embedding_length`, { type: 'u32', value: c.dim }],
    [`${arch}.feed_forward_length`, { type: 'u32', value: c.hiddenDim }],
    [`${arch}.block_count`, { type: 'u32', value: c.numLayers }],
    [`${arch}.attention.head_count`, { type: 'u32', value: c.numHeads }],
    [`${arch}.attention.head_count_kv`, { type: 'u32', value: c.numKvHeads }],
    [`${arch}.attention.layer_norm_rms_epsilon`, { type: 'f32', value: c.normEps }],
    [`${arch}.rope.freq_base`, { type: 'f32', value: c.ropeTheta }],
    [`${arch}.rope.dimension_count`, { type: 'u32', value: d }],
    [`${arch}.vocab_size`, { type: 'u32', value: c.vocabSize }],
  ]);
  if (c.ropeScaling?.type === 'linear') {
    metadata.set(`${arch}.rope.scaling.type`, { type: 'string', value: 'linear' });
    metadata.set(`${arch}.rope.scaling.factor`, { type: 'f32', value: c.ropeScaling.factor });
  }
  for (const [key, value] of vocabularyMetadata(vocabulary)) metadata.set(key, value);

  const matrix = (tensorName: string, data: Float32Array, out: number, inFeatures: number): GgufTensorToWrite => ({ name: tensorName, dims: [inFeatures, out], data });
  const tensors: GgufTensorToWrite[] = [matrix('token_embd.weight', weights.tokenEmbedding, c.vocabSize, c.dim)];
  weights.layers.forEach((layer, l) => {
    const p = `blk.${l}.`;
    tensors.push(
      { name: `${p}attn_norm.weight`, dims: [c.dim], data: layer.attentionNorm },
      matrix(`${p}attn_q.weight`, qk(layer.wq, c.numHeads), c.dim, c.dim),
      matrix(`${p}attn_k.weight`, qk(layer.wk, c.numKvHeads), kvDim, c.dim),
      matrix(`${p}attn_v.weight`, layer.wv, kvDim, c.dim),
      matrix(`${p}attn_output.weight`, layer.wo, c.dim, c.dim),
      { name: `${p}ffn_norm.weight`, dims: [c.dim], data: layer.ffnNorm },
      matrix(`${p}ffn_gate.weight`, layer.w1, c.hiddenDim, c.dim),
      matrix(`${p}ffn_up.weight`, layer.w3, c.hiddenDim, c.dim),
      matrix(`${p}ffn_down.weight`, layer.w2, c.dim, c.hiddenDim),
    );
    const biases = weights.qkvBiases?.[l];
    if (biases) {
      tensors.push(
        { name: `${p}attn_q.bias`, dims: [c.dim], data: qk(biases.bq, c.numHeads) },
        { name: `${p}attn_k.bias`, dims: [kvDim], data: qk(biases.bk, c.numKvHeads) },
        { name: `${p}attn_v.bias`, dims: [kvDim], data: biases.bv },
      );
    }
  });
  tensors.push({ name: 'output_norm.weight', dims: [c.dim], data: weights.finalNorm });
  if (!c.sharedClassifier) tensors.push(matrix('output.weight', weights.classifier, c.vocabSize, c.dim));
  return serializeGguf(metadata, tensors);
}

function vocabularyMetadata(vocabulary: GgufVocabulary): Array<[string, GgufMetadataValue]> {
  const { specials } = vocabulary;
  const entries: Array<[string, GgufMetadataValue]> = [
    ['tokenizer.ggml.model', { type: 'string', value: vocabulary.model }],
    ['tokenizer.ggml.pre', { type: 'string', value: vocabulary.model === 'gpt2' ? vocabulary.pre : 'default' }],
    ['tokenizer.ggml.tokens', { type: 'strings', value: vocabulary.tokens }],
    ['tokenizer.ggml.token_type', { type: 'i32s', value: vocabulary.types }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: specials.addBos }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
  ];
  if (vocabulary.model === 'llama') {
    entries.push(['tokenizer.ggml.scores', { type: 'f32s', value: vocabulary.scores }]);
    entries.push(['tokenizer.ggml.add_space_prefix', { type: 'bool', value: vocabulary.addSpacePrefix }]);
  } else {
    entries.push(['tokenizer.ggml.merges', { type: 'strings', value: vocabulary.merges }]);
  }
  for (const [key, id] of [
    ['tokenizer.ggml.bos_token_id', specials.bosId],
    ['tokenizer.ggml.eos_token_id', specials.eosId],
    ['tokenizer.ggml.unknown_token_id', specials.unkId],
  ] as const) {
    if (id !== null) entries.push([key, { type: 'u32', value: id }]);
  }
  return entries;
}

/**
 * The GGUF vocabulary of a tokenizer.json: SentencePiece-style (byte_fallback) becomes model
 * "llama" with each piece scored by the first merge that makes it (so the merges GGUF readers
 * derive from scores keep the original order); byte-level becomes "gpt2" with its merges, when
 * its pre-tokenizer is one llama.cpp names.
 */
export function ggufVocabularyFromTokenizerJson(json: TokenizerJson, specials: Omit<GgufSpecials, 'unkId'>): GgufVocabulary {
  const tokens: string[] = [];
  for (const [token, id] of Object.entries(json.model.vocab)) tokens[id] = token;
  for (const added of json.added_tokens ?? []) tokens[added.id] = added.content;
  for (let id = 0; id < tokens.length; id++) {
    if (tokens[id] === undefined) throw new TokenizerFormatError(`tokenizer.json: no token has id ${id}; GGUF needs dense ids`);
  }
  const added = new Map((json.added_tokens ?? []).map((t) => [t.id, t]));
  const unkToken = typeof json.model.unk_token === 'string' ? json.model.unk_token : null;
  const unkId = unkToken === null ? null : (json.model.vocab[unkToken] ?? null);
  const merges = (json.model.merges as Array<[string, string] | string>).map((m) => (typeof m === 'string' ? m : `${m[0]} ${m[1]}`));
  const types = Int32Array.from(tokens, (token, id) => {
    if (id === unkId) return TokenType.UNKNOWN;
    const addedToken = added.get(id);
    if (addedToken) return addedToken.special ? TokenType.CONTROL : TokenType.USER_DEFINED;
    return json.model.byte_fallback === true && /^<0x[0-9A-F]{2}>$/.test(token) ? TokenType.BYTE : TokenType.NORMAL;
  });
  if (json.model.byte_fallback === true) {
    const firstMerge = new Map<string, number>();
    merges.forEach((merge, rank) => {
      const joined = merge.replace(' ', '');
      if (!firstMerge.has(joined)) firstMerge.set(joined, rank);
    });
    const scores = Float32Array.from(tokens, (token, id) => (types[id] === TokenType.NORMAL ? -(firstMerge.get(token) ?? merges.length + id) : 0));
    const normalizers = JSON.stringify(json.normalizer ?? '');
    return { model: 'llama', tokens, scores, types, addSpacePrefix: normalizers.includes(`"prepend":"${SPM_SPACE}"`), specials: { ...specials, unkId } };
  }
  return { model: 'gpt2', tokens, types, merges, pre: byteLevelPreName(json.pre_tokenizer), specials: { ...specials, unkId } };
}

function byteLevelPreName(preTokenizer: unknown): string {
  const pre = preTokenizer as { type?: string; use_regex?: boolean; pretokenizers?: Array<{ type?: string; pattern?: { Regex?: string } }> } | null;
  if (pre?.type === 'ByteLevel' && pre.use_regex !== false) return 'gpt-2';
  const split = pre?.type === 'Sequence' ? pre.pretokenizers?.find((p) => p.type === 'Split') : undefined;
  const name = Object.entries(BYTE_LEVEL_SPLIT_PATTERNS).find(([, pattern]) => pattern !== null && pattern === split?.pattern?.Regex)?.[0];
  if (name === undefined) throw new TokenizerFormatError(`tokenizer.json: pre_tokenizer ${JSON.stringify(preTokenizer)?.slice(0, 120)} has no llama.cpp name (known: ${Object.keys(BYTE_LEVEL_SPLIT_PATTERNS).join(', ')})`);
  return name;
}
