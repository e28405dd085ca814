import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { headDimOf, kvDimOf, ModelConfig } from '../model/model-config';
import { ModelFormatError, ModelNotFoundError } from '../model/model-errors';
import { LayerWeights, ModelWeights, QkvBiases } from '../model/model-weights';
import { HfModelConfig, parseHfConfig } from './hf-config';
import { rotateHalfToInterleaved } from './rope-layout';
import { SafetensorsFile, SafetensorsTensorInfo } from './safetensors';

export const HF_CONFIG_FILE = 'config.json';
export const HF_WEIGHTS_FILE = 'model.safetensors';
export const HF_WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';

/** Buffers transformers may save that the forward pass does not use. */
const IGNORED_TENSOR = /\.rotary_emb\.inv_freq$/;

export interface HfCheckpoint {
  readonly weights: ModelWeights;
  readonly hfConfig: HfModelConfig;
}

/** True when `dir` looks like a Hugging Face model folder (it has config.json). */
export function isHfModelDir(dir: string): boolean {
  return existsSync(join(dir, HF_CONFIG_FILE));
}

export function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ModelNotFoundError(`cannot read ${what} ${path}`, { cause: error });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ModelFormatError(`${path}: invalid JSON`, { cause: error });
  }
}

/**
 * Loads a Llama-family Hugging Face folder: config.json plus model.safetensors, or the shards a
 * model.safetensors.index.json names. Every header, name and shape is checked before any tensor
 * is read; tensors are converted to fp32 and q/k rows moved to the engine's interleaved RoPE layout.
 */
export function loadHfCheckpoint(dir: string): HfCheckpoint {
  const hfConfig = parseHfConfig(readJsonFile(join(dir, HF_CONFIG_FILE), 'model config'), join(dir, HF_CONFIG_FILE));
  const shards = openShards(dir);
  try {
    const tensors = locateTensors(dir, shards);
    const expected = expectedTensors(hfConfig);
    checkTensors(tensors, expected, dir);
    return { weights: readWeights(hfConfig, tensors), hfConfig };
  } finally {
    for (const shard of shards.values()) shard.close();
  }
}

interface LocatedTensor {
  readonly file: SafetensorsFile;
  readonly info: SafetensorsTensorInfo;
}

function openShards(dir: string): Map<string, SafetensorsFile> {
  const indexPath = join(dir, HF_WEIGHTS_INDEX_FILE);
  const shardNames = existsSync(indexPath) ? shardNamesOf(indexPath) : [HF_WEIGHTS_FILE];
  const shards = new Map<string, SafetensorsFile>();
  try {
    for (const name of shardNames) {
      const path = join(dir, name);
      if (!existsSync(path)) {
        const hint = name === HF_WEIGHTS_FILE && existsSync(join(dir, 'pytorch_model.bin')) ? ' (only safetensors weights are supported, not pytorch_model.bin)' : '';
        throw new ModelNotFoundError(`${dir}: missing weights file ${name}${hint}`);
      }
      shards.set(name, SafetensorsFile.open(path));
    }
  } catch (error) {
    for (const shard of shards.values()) shard.close();
    throw error;
  }
  return shards;
}

function shardNamesOf(indexPath: string): string[] {
  const map = weightMapOf(indexPath);
  return [...new Set(Object.values(map))].sort();
}

function weightMapOf(indexPath: string): Record<string, string> {
  const index = readJsonFile(indexPath, 'safetensors index') as { weight_map?: unknown };
  const map = index?.weight_map;
  if (typeof map !== 'object' || map === null || !Object.values(map).every((v) => typeof v === 'string' && !/[\\/]/.test(v))) {
    throw new ModelFormatError(`${indexPath}: weight_map must map tensor names to shard file names in the same folder`);
  }
  return map as Record<string, string>;
}

/** Tensor name → shard. With an index, every tensor it maps must be in that shard's header. */
function locateTensors(dir: string, shards: Map<string, SafetensorsFile>): Map<string, LocatedTensor> {
  const located = new Map<string, LocatedTensor>();
  for (const file of shards.values()) {
    for (const info of file.tensors.values()) {
      const previous = located.get(info.name);
      if (previous) throw new ModelFormatError(`${dir}: tensor ${info.name} is in both ${previous.file.path} and ${file.path}`);
      located.set(info.name, { file, info });
    }
  }
  const indexPath = join(dir, HF_WEIGHTS_INDEX_FILE);
  if (existsSync(indexPath)) {
    for (const [name, shard] of Object.entries(weightMapOf(indexPath))) {
      if (located.get(name)?.file !== shards.get(shard)) {
        throw new ModelFormatError(`${dir}: ${HF_WEIGHTS_INDEX_FILE} puts ${name} in ${shard}, but that shard's header does not have it`);
      }
    }
  }
  return located;
}

/** Every tensor the architecture needs, with its shape ([out, in] for linear weights). */
function expectedTensors(hf: HfModelConfig): Map<string, readonly number[]> {
  const c = hf.config;
  const kvDim = kvDimOf(c);
  const shapes = new Map<string, readonly number[]>([
    ['model.embed_tokens.weight', [c.vocabSize, c.dim]],
    ['model.norm.weight', [c.dim]],
  ]);
  if (!c.sharedClassifier) shapes.set('lm_head.weight', [c.vocabSize, c.dim]);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    shapes.set(`${p}input_layernorm.weight`, [c.dim]);
    shapes.set(`${p}self_attn.q_proj.weight`, [c.dim, c.dim]);
    shapes.set(`${p}self_attn.k_proj.weight`, [kvDim, c.dim]);
    shapes.set(`${p}self_attn.v_proj.weight`, [kvDim, c.dim]);
    shapes.set(`${p}self_attn.o_proj.weight`, [c.dim, c.dim]);
    if (hf.hasQkvBias) {
      shapes.set(`${p}self_attn.q_proj.bias`, [c.dim]);
      shapes.set(`${p}self_attn.k_proj.bias`, [kvDim]);
      shapes.set(`${p}self_attn.v_proj.bias`, [kvDim]);
    }
    shapes.set(`${p}post_attention_layernorm.weight`, [c.dim]);
    shapes.set(`${p}mlp.gate_proj.weight`, [c.hiddenDim, c.dim]);
    shapes.set(`${p}mlp.up_proj.weight`, [c.hiddenDim, c.dim]);
    shapes.set(`${p}mlp.down_proj.weight`, [c.dim, c.hiddenDim]);
  }
  return shapes;
}

function checkTensors(tensors: Map<string, LocatedTensor>, expected: Map<string, readonly number[]>, dir: string): void {
  for (const [name, shape] of expected) {
    const found = tensors.get(name);
    if (!found) throw new ModelFormatError(`${dir}: tensor ${name} [${shape}] is missing from the checkpoint`);
    if (found.info.shape.join(',') !== shape.join(',')) {
      throw new ModelFormatError(`${dir}: tensor ${name} has shape [${found.info.shape}], config.json implies [${shape}] (${found.file.path})`);
    }
  }
  const unexpected = [...tensors.keys()].filter((name) => !expected.has(name) && !IGNORED_TENSOR.test(name) && name !== 'lm_head.weight');
  if (unexpected.length > 0) {
    const list = unexpected.slice(0, 5).join(', ') + (unexpected.length > 5 ? `, … (${unexpected.length} in all)` : '');
    throw new ModelFormatError(`${dir}: unexpected tensors for this architecture: ${list}`);
  }
}

function readWeights(hf: HfModelConfig, tensors: Map<string, LocatedTensor>): ModelWeights {
  const c: ModelConfig = hf.config;
  const d = headDimOf(c);
  const read = (name: string): Float32Array => {
    const { file, info } = tensors.get(name)!;
    return file.readFloat32(info.name);
  };
  const layers: LayerWeights[] = [];
  const qkvBiases: QkvBiases[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    layers.push({
      attentionNorm: read(`${p}input_layernorm.weight`),
      wq: rotateHalfToInterleaved(read(`${p}self_attn.q_proj.weight`), c.numHeads, d),
      wk: rotateHalfToInterleaved(read(`${p}self_attn.k_proj.weight`), c.numKvHeads, d),
      wv: read(`${p}self_attn.v_proj.weight`),
      wo: read(`${p}self_attn.o_proj.weight`),
      ffnNorm: read(`${p}post_attention_layernorm.weight`),
      w1: read(`${p}mlp.gate_proj.weight`),
      w2: read(`${p}mlp.down_proj.weight`),
      w3: read(`${p}mlp.up_proj.weight`),
    });
    if (hf.hasQkvBias) {
      qkvBiases.push({
        bq: rotateHalfToInterleaved(read(`${p}self_attn.q_proj.bias`), c.numHeads, d),
        bk: rotateHalfToInterleaved(read(`${p}self_attn.k_proj.bias`), c.numKvHeads, d),
        bv: read(`${p}self_attn.v_proj.bias`),
      });
    }
  }
  const tokenEmbedding = read('model.embed_tokens.weight');
  return {
    config: c,
    tokenEmbedding,
    layers,
    finalNorm: read('model.norm.weight'),
    classifier: c.sharedClassifier ? tokenEmbedding : read('lm_head.weight'),
    ...(hf.hasQkvBias ? { qkvBiases } : {}),
  };
}
