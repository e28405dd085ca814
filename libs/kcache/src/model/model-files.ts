import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ModelNotFoundError } from './model-errors';

const TOKENIZER_FILE = /^(tok.*|tokenizer)\.bin$/i;

/** The single llama2.c checkpoint in `dir`: the one *.bin that is not a tokenizer file. */
export function findCheckpointFile(dir: string): string {
  const checkpoints = binFiles(dir).filter((name) => !TOKENIZER_FILE.test(name));
  if (checkpoints.length !== 1) {
    const found = checkpoints.length === 0 ? 'none' : checkpoints.join(', ');
    throw new ModelNotFoundError(`expected exactly one checkpoint *.bin (not tok*.bin / tokenizer.bin) in ${dir}, found ${found}`);
  }
  return join(dir, checkpoints[0]);
}

/** The tokenizer in `dir`: the only tok*.bin / tokenizer.bin, or tok<vocabSize>.bin among several. */
export function findTokenizerFile(dir: string, vocabSize: number): string {
  const tokenizers = binFiles(dir).filter((name) => TOKENIZER_FILE.test(name));
  if (tokenizers.length === 1) return join(dir, tokenizers[0]);
  const preferred = tokenizers.find((name) => name.toLowerCase() === `tok${vocabSize}.bin`);
  if (preferred !== undefined) return join(dir, preferred);
  const found = tokenizers.length === 0 ? 'none' : `several: ${tokenizers.join(', ')}`;
  throw new ModelNotFoundError(`expected one tokenizer tok*.bin or tokenizer.bin in ${dir}, found ${found}`);
}

function binFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isFile() && entry.name.toLowerCase().endsWith('.bin'))
      .map((entry) => entry.name);
  } catch (error) {
    throw new ModelNotFoundError(`cannot list model folder ${dir}`, { cause: error });
  }
  return names.sort();
}
