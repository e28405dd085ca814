import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { GGUF_MAGIC } from '../gguf/gguf-file';
import { loadGgufModel } from '../gguf/gguf-model';
import { isHfModelDir } from '../hf/hf-checkpoint';
import { loadHfModel } from '../hf/hf-model';
import { Llama2cTokenizer } from '../tokenizer/llama2c-tokenizer';
import { Tokenizer } from '../tokenizer/tokenizer';
import { createSyntheticTokenizer } from '../tokenizer/synthetic-tokenizer';
import { DefaultModelResolverOptions, resolveDefaultModelDir } from '../model/default-model-resolver';
import { loadLlama2cCheckpoint } from '../model/llama2c-checkpoint';
import { ModelFormatError, ModelNotFoundError } from '../model/model-errors';
import { findCheckpointFile, findTokenizerFile } from '../model/model-files';
import { ModelWeights } from '../model/model-weights';
import { createSyntheticModel, syntheticModelConfig } from '../model/synthetic-models';

export interface LoadedModel {
  readonly name: string;
  readonly weights: ModelWeights;
  readonly tokenizer: Tokenizer;
  /**
   * Tokens that end a generation (Hugging Face: generation_config.json's eos_token_id). Absent: the
   * tokenizer's BOS, as llama2.c's generator stops (its models end a story with BOS).
   */
  readonly stopTokenIds?: readonly number[];
}

export type ModelSpec =
  | { readonly kind: 'synthetic'; readonly name: string; readonly seed: number }
  | { readonly kind: 'path'; readonly path: string };

const SYNTHETIC_PREFIX = 'synthetic:';

/**
 * `synthetic:NAME`, `synthetic:NAME@SEED` (uint32 seed, default 0), or a path: a llama2.c folder or
 * .bin checkpoint, a Hugging Face folder (with config.json) or a .gguf file.
 */
export function parseModelSpec(spec: string): ModelSpec {
  if (!spec.startsWith(SYNTHETIC_PREFIX)) return { kind: 'path', path: spec };
  const [name, seedText, ...rest] = spec.slice(SYNTHETIC_PREFIX.length).split('@');
  const seed = seedText === undefined ? 0 : Number(seedText);
  if (rest.length > 0 || !/^\d+$/.test(seedText ?? '0') || seed > 0xffffffff) {
    throw new ModelFormatError(`model spec "${spec}": expected synthetic:NAME or synthetic:NAME@SEED with SEED in 0..4294967295`);
  }
  syntheticModelConfig(name); // unknown names fail here, listing the known ones
  return { kind: 'synthetic', name, seed };
}

/** Loads weights and tokenizer for a spec (see parseModelSpec). Relative paths resolve against `cwd`. */
export function loadModel(spec: string, options: { readonly cwd?: string } = {}): LoadedModel {
  const parsed = parseModelSpec(spec);
  if (parsed.kind === 'synthetic') {
    const weights = createSyntheticModel(parsed.name, parsed.seed);
    return {
      name: `${SYNTHETIC_PREFIX}${parsed.name}@${parsed.seed}`,
      weights,
      tokenizer: createSyntheticTokenizer(weights.config.vocabSize),
    };
  }
  const path = resolve(options.cwd ?? '.', parsed.path);
  let isDirectory: boolean;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch (error) {
    throw new ModelNotFoundError(
      `model "${spec}" is neither synthetic:NAME nor an existing model folder, .bin or .gguf file (looked for ${path})`,
      { cause: error },
    );
  }
  if (isDirectory && isHfModelDir(path)) return loadHfModel(path);
  if (!isDirectory && isGgufFile(path)) return loadGgufModel(path);
  const checkpointPath = isDirectory ? findCheckpointFile(path) : path;
  const weights = loadLlama2cCheckpoint(checkpointPath);
  const tokenizerPath = findTokenizerFile(dirname(checkpointPath), weights.config.vocabSize);
  const tokenizer = Llama2cTokenizer.fromFile(tokenizerPath, weights.config.vocabSize);
  return { name: basename(checkpointPath).replace(/\.bin$/i, ''), weights, tokenizer };
}

function isGgufFile(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const magic = new Uint8Array(4);
    return readSync(fd, magic, 0, 4, 0) === 4 && new DataView(magic.buffer).getUint32(0, true) === GGUF_MAGIC;
  } finally {
    closeSync(fd);
  }
}

/** The default stories260K model, resolved (and downloaded if need be) as resolveDefaultModelDir does. */
export async function loadDefaultModel(options: DefaultModelResolverOptions = {}): Promise<LoadedModel> {
  const resolved = await resolveDefaultModelDir(options);
  return loadModel(resolved.path);
}
