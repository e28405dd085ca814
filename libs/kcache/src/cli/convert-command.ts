import { parseArgs } from 'node:util';
import { convertModel } from '../formats/convert-model';
import { UsageError } from './cli-errors';

export const CONVERT_USAGE = `usage: kcache convert --from <llama2.c dir|.bin|HF folder|.gguf> --to <folder|file.gguf> [--format hf|llama2c|gguf] [--dtype F32|BF16] [--overwrite]`;

/** `kcache convert`: between the llama2.c format, Hugging Face folders and GGUF. */
export async function convertCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      format: { type: 'string' },
      dtype: { type: 'string' },
      overwrite: { type: 'boolean', default: false },
    },
  });
  if (!values.from || !values.to) throw new UsageError('--from and --to are required');
  if (values.format !== undefined && !['hf', 'llama2c', 'gguf'].includes(values.format)) {
    throw new UsageError(`--format must be hf, llama2c or gguf, got '${values.format}'`);
  }
  if (values.dtype !== undefined && !['F32', 'BF16'].includes(values.dtype)) throw new UsageError(`--dtype must be F32 or BF16, got '${values.dtype}'`);
  const result = convertModel(values.from, values.to, {
    format: values.format as 'hf' | 'llama2c' | 'gguf' | undefined,
    dtype: values.dtype as 'F32' | 'BF16' | undefined,
    overwrite: values.overwrite,
  });
  process.stderr.write(`wrote ${result.format} model to ${result.dir}: ${result.files.join(', ')}\n`);
  return 0;
}
