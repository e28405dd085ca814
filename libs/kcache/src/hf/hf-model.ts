import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ModelFormatError } from '../model/model-errors';
import { ModelWeights } from '../model/model-weights';
import { loadHfCheckpoint, readJsonFile } from './hf-checkpoint';
import { HfModelConfig } from './hf-config';
import { HfTokenizer } from './hf-tokenizer';

export const HF_GENERATION_CONFIG_FILE = 'generation_config.json';

export interface LoadedHfModel {
  readonly name: string;
  readonly weights: ModelWeights;
  readonly tokenizer: HfTokenizer;
  /** generation_config.json's eos_token_id, else config.json's, else the tokenizer's EOS. */
  readonly stopTokenIds: readonly number[];
  readonly hfConfig: HfModelConfig;
}

/** A Hugging Face folder: weights (see loadHfCheckpoint), tokenizer files and generation_config.json. */
export function loadHfModel(dir: string): LoadedHfModel {
  const { weights, hfConfig } = loadHfCheckpoint(dir);
  const generationEos = generationEosIds(dir);
  const tokenizer = HfTokenizer.fromFolder(dir, {
    bosTokenId: hfConfig.bosTokenId,
    eosTokenIds: [...generationEos, ...hfConfig.eosTokenIds],
  });
  if (tokenizer.vocabSize > weights.config.vocabSize) {
    throw new ModelFormatError(`${dir}: the tokenizer has ${tokenizer.vocabSize} tokens, more than config.json's vocab_size ${weights.config.vocabSize}`);
  }
  const stopTokenIds = generationEos.length > 0 ? generationEos : hfConfig.eosTokenIds.length > 0 ? hfConfig.eosTokenIds : [tokenizer.eosId];
  return { name: basename(dir), weights, tokenizer, stopTokenIds, hfConfig };
}

function generationEosIds(dir: string): number[] {
  const path = join(dir, HF_GENERATION_CONFIG_FILE);
  if (!existsSync(path)) return [];
  const eos = (readJsonFile(path, 'generation config') as { eos_token_id?: unknown })?.eos_token_id;
  const ids = eos === undefined || eos === null ? [] : Array.isArray(eos) ? eos : [eos];
  if (!ids.every((id) => Number.isSafeInteger(id) && id >= 0)) throw new ModelFormatError(`${path}: eos_token_id must be token ids, got ${JSON.stringify(eos)}`);
  return ids as number[];
}
