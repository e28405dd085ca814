import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { GgufFile } from '../gguf/gguf-file';
import { loadGgufModel } from '../gguf/gguf-model';
import { ggufTokenizerJson } from '../gguf/gguf-tokenizer';
import { ggufVocabularyFromTokenizerJson, serializeGgufModel } from '../gguf/gguf-export';
import { loadLlama2cCheckpoint, serializeLlama2cCheckpoint } from '../model/llama2c-checkpoint';
import { LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA } from '../model/llama2c-header';
import { ModelFormatError, ModelNotFoundError } from '../model/model-errors';
import { findCheckpointFile, findTokenizerFile } from '../model/model-files';
import { ModelWeights } from '../model/model-weights';
import { Llama2cTokenizer } from '../tokenizer/llama2c-tokenizer';
import { Tokenizer } from '../tokenizer/tokenizer';
import { serializeLlama2cVocabulary } from '../tokenizer/llama2c-vocabulary';
import { isHfModelDir, readJsonFile } from '../hf/hf-checkpoint';
import { writeHfModel } from '../hf/hf-export';
import { loadHfModel } from '../hf/hf-model';
import { HF_TOKENIZER_CONFIG_FILE, HF_TOKENIZER_FILE } from '../hf/hf-tokenizer';
import { llama2cTokenizerJson, llama2cVocabularyFromTokenizerJson } from '../hf/llama2c-tokenizer-json';
import { TokenizerJson } from '../hf/tokenizer-json';

export type ModelFormat = 'llama2c' | 'hf' | 'gguf';

export interface ConvertOptions {
  /** Target format. Default: 'gguf' when `to` ends in .gguf, else 'llama2c' for a Hugging Face source, else 'hf'. */
  readonly format?: ModelFormat;
  /** Weight type of a Hugging Face target. Default F32 (lossless). */
  readonly dtype?: 'F32' | 'BF16';
  /** Write into a folder that already has files, or replace a .gguf file. Default false. */
  readonly overwrite?: boolean;
}

export interface ConvertResult {
  readonly format: ModelFormat;
  /** The output folder (the .gguf file for 'gguf'). */
  readonly dir: string;
  /** Paths written. */
  readonly files: readonly string[];
}

/** A model in the format-neutral form the writers take. */
interface ModelToConvert {
  readonly name: string;
  readonly weights: ModelWeights;
  readonly tokenizerJson: TokenizerJson;
  readonly tokenizerConfig: Record<string, unknown>;
  readonly bosId: number;
  readonly eosId: number;
  readonly stopTokenIds: readonly number[];
  /** The tokenizer puts BOS before every text. */
  readonly addsBos: boolean;
}

/**
 * Converts `from` (a llama2.c folder or .bin, a Hugging Face folder, or a .gguf file) into `to`:
 * a Hugging Face folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
 * generation_config.json), a llama2.c folder (NAME.bin, tokN.bin) or a .gguf file (F32).
 * Weights are copied exactly (unless dtype BF16), q/k rows permuted between RoPE layouts.
 */
export function convertModel(from: string, to: string, options: ConvertOptions = {}): ConvertResult {
  const source = resolve(from);
  const dir = resolve(to);
  const isHfSource = existsSync(source) && statSync(source).isDirectory() && isHfModelDir(source);
  const format = options.format ?? (dir.toLowerCase().endsWith('.gguf') ? 'gguf' : isHfSource ? 'llama2c' : 'hf');
  if (format === 'gguf' ? existsSync(dir) && options.overwrite !== true : existsSync(dir) && (!statSync(dir).isDirectory() || (readdirSync(dir).length > 0 && options.overwrite !== true))) {
    throw new ModelFormatError(`convert: ${dir} exists and is not an empty folder (pass overwrite to write into it)`);
  }
  const model = readModel(source, isHfSource);
  if (format === 'gguf') {
    const specials = { bosId: model.bosId, eosId: model.eosId, addBos: model.addsBos };
    mkdirSync(dirname(dir), { recursive: true });
    writeFileSync(dir, serializeGgufModel(model.weights, ggufVocabularyFromTokenizerJson(model.tokenizerJson, specials), model.name));
    return { format, dir, files: [dir] };
  }
  if (format === 'hf') {
    const names = writeHfModel(model.weights, dir, {
      tokenizerJson: model.tokenizerJson,
      tokenizerConfig: model.tokenizerConfig,
      bosTokenId: model.bosId,
      eosTokenId: model.eosId,
      stopTokenIds: model.stopTokenIds,
      dtype: options.dtype,
    });
    return { format, dir, files: names.map((name) => join(dir, name)) };
  }
  return { format, dir, files: writeLlama2cModel(model, dir) };
}

function readModel(source: string, isHfSource: boolean): ModelToConvert {
  if (!existsSync(source)) throw new ModelNotFoundError(`convert: ${source} does not exist`);
  if (isHfSource) {
    const loaded = loadHfModel(source);
    return {
      name: loaded.name,
      weights: loaded.weights,
      tokenizerJson: readJsonFile(join(source, HF_TOKENIZER_FILE), 'tokenizer') as TokenizerJson,
      tokenizerConfig: existsSync(join(source, HF_TOKENIZER_CONFIG_FILE)) ? (readJsonFile(join(source, HF_TOKENIZER_CONFIG_FILE), 'tokenizer config') as Record<string, unknown>) : {},
      bosId: loaded.tokenizer.bosId,
      eosId: loaded.tokenizer.eosId,
      stopTokenIds: loaded.stopTokenIds,
      addsBos: addsBos(loaded.tokenizer),
    };
  }
  if (statSync(source).isFile() && source.toLowerCase().endsWith('.gguf')) {
    const loaded = loadGgufModel(source);
    const { tokenizerJson, tokenizerConfig } = ggufTokenizerJson(GgufFile.read(source));
    const { bosId, eosId } = loaded.tokenizer;
    return { name: loaded.name, weights: loaded.weights, tokenizerJson, tokenizerConfig, bosId, eosId, stopTokenIds: loaded.stopTokenIds, addsBos: addsBos(loaded.tokenizer) };
  }
  const checkpoint = statSync(source).isDirectory() ? findCheckpointFile(source) : source;
  const weights = loadLlama2cCheckpoint(checkpoint);
  const tokenizer = Llama2cTokenizer.fromFile(findTokenizerFile(dirname(checkpoint), weights.config.vocabSize), weights.config.vocabSize);
  const { tokenizerJson, tokenizerConfig } = llama2cTokenizerJson(tokenizer, weights.config.maxSeqLen);
  return {
    name: basename(checkpoint).replace(/\.bin$/i, ''),
    weights,
    tokenizerJson,
    tokenizerConfig,
    bosId: tokenizer.bosId,
    eosId: tokenizer.eosId,
    // llama2.c's generator ends a story when the model emits BOS.
    stopTokenIds: [tokenizer.bosId],
    addsBos: true,
  };
}

function addsBos(tokenizer: Tokenizer): boolean {
  return tokenizer.encode('', { bos: true })[0] === tokenizer.bosId;
}

/** llama2.c hard-codes RMSNorm epsilon, RoPE theta, no biases and no RoPE scaling: anything else fails. */
function writeLlama2cModel(model: ModelToConvert, dir: string): string[] {
  const c = model.weights.config;
  const fail = (problem: string): never => {
    throw new ModelFormatError(`convert: ${model.name} cannot be written in llama2.c's format: ${problem}`);
  };
  if (model.weights.qkvBiases) fail('it has q/k/v biases');
  if (c.ropeScaling) fail(`it uses rope_scaling ${c.ropeScaling.type}`);
  if (c.ropeTheta !== LLAMA2C_ROPE_THETA) fail(`rope_theta is ${c.ropeTheta}, llama2.c uses ${LLAMA2C_ROPE_THETA}`);
  if (Math.fround(c.normEps) !== Math.fround(LLAMA2C_NORM_EPS)) fail(`rms_norm_eps is ${c.normEps}, llama2.c uses ${LLAMA2C_NORM_EPS}`);
  const vocabulary = llama2cVocabularyFromTokenizerJson(model.tokenizerJson);
  if (vocabulary.pieces.length !== c.vocabSize) fail(`the tokenizer has ${vocabulary.pieces.length} tokens, the model ${c.vocabSize} (llama2.c needs them equal)`);
  mkdirSync(dir, { recursive: true });
  const checkpoint = join(dir, `${model.name}.bin`);
  const tokenizer = join(dir, `tok${c.vocabSize}.bin`);
  writeFileSync(checkpoint, serializeLlama2cCheckpoint(model.weights));
  writeFileSync(tokenizer, serializeLlama2cVocabulary(vocabulary));
  return [checkpoint, tokenizer];
}
