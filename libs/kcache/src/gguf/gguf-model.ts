import { basename } from 'node:path';
import { bf16ToFloat32, float16ToFloat32 } from '../hf/float-formats';
import { HfTokenizer } from '../hf/hf-tokenizer';
import { rotateHalfToInterleaved } from '../hf/rope-layout';
import { validateLlama2cConfig } from '../model/llama2c-header';
import { ModelConfig, RopeScaling, headDimOf, kvDimOf } from '../model/model-config';
import { ModelFormatError } from '../model/model-errors';
import { LayerWeights, ModelWeights, QkvBiases } from '../model/model-weights';
import { GgmlType, GgufFile, GgufTensorInfo } from './gguf-file';
import { loadGgufTokenizer } from './gguf-tokenizer';

/**
 * general.architecture values the engine runs. llama.cpp's converter stores "llama" q/k rows in
 * the interleaved RoPE layout the engine uses (Mistral converts to "llama" too); "qwen2" keeps
 * Hugging Face's rotate-half layout, so its q/k rows are permuted here.
 */
const ARCHITECTURES = { llama: { rotateHalf: false, qkvBias: false }, qwen2: { rotateHalf: true, qkvBias: true } } as const;

const BYTES_PER_ELEMENT: Record<number, number> = { [GgmlType.F32]: 4, [GgmlType.F16]: 2, [GgmlType.BF16]: 2 };

export interface LoadedGgufModel {
  readonly name: string;
  readonly weights: ModelWeights;
  readonly tokenizer: HfTokenizer;
  readonly stopTokenIds: readonly number[];
}

/** A GGUF checkpoint of F32, F16 or BF16 tensors (quantized types fail at load), with its vocabulary. */
export function loadGgufModel(path: string): LoadedGgufModel {
  const gguf = GgufFile.read(path);
  const arch = gguf.string('general.architecture');
  if (arch === null || !(arch in ARCHITECTURES)) {
    throw new ModelFormatError(`${path}: general.architecture ${JSON.stringify(arch)} is not supported (supported: ${Object.keys(ARCHITECTURES).join(', ')})`);
  }
  const traits = ARCHITECTURES[arch as keyof typeof ARCHITECTURES];
  const config = ggufModelConfig(gguf, arch);
  const tensor = tensorReader(gguf);
  const c = config;
  const d = headDimOf(c);
  const kvDim = kvDimOf(c);
  const qk = (m: Float32Array, heads: number) => (traits.rotateHalf ? rotateHalfToInterleaved(m, heads, d) : m);
  // Check every name and shape before reading data, so a bad file fails before the slow part.
  const wanted: Array<[string, number[]]> = [['token_embd.weight', [c.dim, c.vocabSize]], ['output_norm.weight', [c.dim]]];
  if (!c.sharedClassifier) wanted.push(['output.weight', [c.dim, c.vocabSize]]);
  for (let l = 0; l < c.numLayers; l++) {
    wanted.push(
      [`blk.${l}.attn_norm.weight`, [c.dim]],
      [`blk.${l}.attn_q.weight`, [c.dim, c.dim]],
      [`blk.${l}.attn_k.weight`, [c.dim, kvDim]],
      [`blk.${l}.attn_v.weight`, [c.dim, kvDim]],
      [`blk.${l}.attn_output.weight`, [c.dim, c.dim]],
      [`blk.${l}.ffn_norm.weight`, [c.dim]],
      [`blk.${l}.ffn_gate.weight`, [c.dim, c.hiddenDim]],
      [`blk.${l}.ffn_up.weight`, [c.dim, c.hiddenDim]],
      [`blk.${l}.ffn_down.weight`, [c.hiddenDim, c.dim]],
    );
    if (traits.qkvBias) wanted.push([`blk.${l}.attn_q.bias`, [c.dim]], [`blk.${l}.attn_k.bias`, [kvDim]], [`blk.${l}.attn_v.bias`, [kvDim]]);
  }
  for (const [name, dims] of wanted) tensor.check(name, dims);

  const layers: LayerWeights[] = [];
  const qkvBiases: QkvBiases[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `blk.${l}.`;
    layers.push({
      attentionNorm: tensor.read(`${p}attn_norm.weight`),
      wq: qk(tensor.read(`${p}attn_q.weight`), c.numHeads),
      wk: qk(tensor.read(`${p}attn_k.weight`), c.numKvHeads),
      wv: tensor.read(`${p}attn_v.weight`),
      wo: tensor.read(`${p}attn_output.weight`),
      ffnNorm: tensor.read(`${p}ffn_norm.weight`),
      w1: tensor.read(`${p}ffn_gate.weight`),
      w2: tensor.read(`${p}ffn_down.weight`),
      w3: tensor.read(`${p}ffn_up.weight`),
    });
    if (traits.qkvBias) {
      qkvBiases.push({ bq: qk(tensor.read(`${p}attn_q.bias`), c.numHeads), bk: qk(tensor.read(`${p}attn_k.bias`), c.numKvHeads), bv: tensor.read(`${p}attn_v.bias`) });
    }
  }
  const tokenEmbedding = tensor.read('token_embd.weight');
  const weights: ModelWeights = {
    config,
    tokenEmbedding,
    layers,
    finalNorm: tensor.read('output_norm.weight'),
    classifier: c.sharedClassifier ? tokenEmbedding : tensor.read('output.weight'),
    ...(traits.qkvBias ? { qkvBiases } : {}),
  };
  const tokenizer = loadGgufTokenizer(gguf);
  return { name: basename(path).replace(/\.gguf$/i, ''), weights, tokenizer, stopTokenIds: [tokenizer.eosId] };
}

function ggufModelConfig(gguf: GgufFile, arch: string): ModelConfig {
  const fail = (key: string, problem: string): never => {
    throw new ModelFormatError(`${gguf.path}: ${key} ${problem}`);
  };
  const int = (key: string, fallback?: number): number => {
    const value = gguf.number(`${arch}.${key}`) ?? fallback;
    if (value === undefined || !Number.isSafeInteger(value) || value <= 0) fail(`${arch}.${key}`, `must be a positive integer, got ${value}`);
    return value as number;
  };
  const embedding = gguf.tensors.get('token_embd.weight') ?? fail('token_embd.weight', 'tensor is missing');
  const numHeads = int('attention.head_count');
  const dim = int('embedding_length');
  const ropeDims = gguf.number(`${arch}.rope.dimension_count`);
  if (ropeDims !== null && ropeDims !== dim / numHeads) fail(`${arch}.rope.dimension_count`, `${ropeDims} is not supported: the engine rotates whole heads of ${dim / numHeads}`);
  if (gguf.tensors.has('rope_freqs.weight')) fail('rope_freqs.weight', 'is present: per-frequency RoPE factors (Llama 3.1 scaling in GGUF) are not supported');
  const config: ModelConfig = {
    dim,
    hiddenDim: int('feed_forward_length'),
    numLayers: int('block_count'),
    numHeads,
    numKvHeads: int('attention.head_count_kv', numHeads),
    vocabSize: embedding.dims[1] ?? 0,
    maxSeqLen: int('context_length'),
    sharedClassifier: !gguf.tensors.has('output.weight'),
    normEps: gguf.number(`${arch}.attention.layer_norm_rms_epsilon`) ?? fail(`${arch}.attention.layer_norm_rms_epsilon`, 'is missing'),
    ropeTheta: gguf.number(`${arch}.rope.freq_base`) ?? 10000,
    ...ropeScalingOf(gguf, arch, fail),
  };
  validateLlama2cConfig(config, gguf.path);
  return config;
}

function ropeScalingOf(gguf: GgufFile, arch: string, fail: (key: string, problem: string) => never): { ropeScaling?: RopeScaling } {
  const type = gguf.string(`${arch}.rope.scaling.type`) ?? 'none';
  if (type === 'none') return {};
  if (type !== 'linear') return fail(`${arch}.rope.scaling.type`, `${JSON.stringify(type)} is not supported (supported: none, linear)`);
  const factor = gguf.number(`${arch}.rope.scaling.factor`) ?? fail(`${arch}.rope.scaling.factor`, 'is missing');
  return factor === 1 ? {} : { ropeScaling: { type: 'linear', factor } };
}

/** GGUF dims are innermost first: a [out, in] matrix is stored as dims [in, out] with the same bytes. */
function tensorReader(gguf: GgufFile): { check(name: string, dims: number[]): GgufTensorInfo; read(name: string): Float32Array } {
  const check = (name: string, dims: number[]): GgufTensorInfo => {
    const info = gguf.tensors.get(name);
    if (!info) throw new ModelFormatError(`${gguf.path}: tensor ${name} is missing`);
    if (info.dims.join(',') !== dims.join(',')) throw new ModelFormatError(`${gguf.path}: tensor ${name} has dims [${info.dims}], expected [${dims}]`);
    if (!(info.type in BYTES_PER_ELEMENT)) {
      throw new ModelFormatError(`${gguf.path}: tensor ${name} has ggml type ${info.type}; only F32 (0), F16 (1) and BF16 (30) are supported, not quantized types`);
    }
    const byteLength = dims.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[info.type];
    if (info.byteOffset + byteLength > gguf.fileBytes) throw new ModelFormatError(`${gguf.path}: truncated file: tensor ${name} ends past the end of the file`);
    return info;
  };
  const read = (name: string): Float32Array => {
    const info = gguf.tensors.get(name)!;
    const numel = info.dims.reduce((a, b) => a * b, 1);
    const bytes = gguf.readBytes(info.byteOffset, numel * BYTES_PER_ELEMENT[info.type], `tensor ${name}`);
    if (info.type === GgmlType.F32) return new Float32Array(bytes.buffer, 0, numel);
    const halves = new Uint16Array(bytes.buffer, 0, numel);
    return info.type === GgmlType.BF16 ? bf16ToFloat32(halves) : float16ToFloat32(halves);
  };
  return { check, read };
}
