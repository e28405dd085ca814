import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { serializeLlama2cCheckpoint } from '../model/llama2c-checkpoint';
import { loadModel } from '../formats/model-source';
import { Llama2cTokenizer } from '../tokenizer/llama2c-tokenizer';
import { UsageError } from './cli-errors';

export const EXPORT_MODEL_USAGE = `usage: kcache export-model --model <synthetic:NAME[@SEED]|dir|file> --out <file.bin> [--tokenizer-out <tok.bin>]`;

/** `kcache export-model`: writes a model (e.g. a synthetic one) in the llama2.c format, so other implementations run the same weights. */
export async function exportModelCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { model: { type: 'string' }, out: { type: 'string' }, 'tokenizer-out': { type: 'string' } },
  });
  if (!values.model) throw new UsageError('--model is required');
  if (!values.out) throw new UsageError('--out is required');
  const model = loadModel(values.model);
  writeFileSync(values.out, serializeLlama2cCheckpoint(model.weights));
  if (values['tokenizer-out']) {
    if (!(model.tokenizer instanceof Llama2cTokenizer)) throw new UsageError('--tokenizer-out needs a model with a llama2.c tokenizer (see convertModel for Hugging Face and GGUF models)');
    writeFileSync(values['tokenizer-out'], model.tokenizer.toBytes());
  }
  const c = model.weights.config;
  process.stderr.write(`wrote ${values.out}: dim ${c.dim}, ${c.numLayers} layers, ${c.numHeads} heads (${c.numKvHeads} KV), vocab ${c.vocabSize}, context ${c.maxSeqLen}\n`);
  return 0;
}
