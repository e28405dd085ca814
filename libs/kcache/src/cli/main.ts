import { UsageError } from './cli-errors';
import { CONVERT_USAGE, convertCommand } from './convert-command';
import { EXPORT_MODEL_USAGE, exportModelCommand } from './export-model-command';
import { generateCommand, GENERATE_USAGE } from './generate-command';

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  generate: generateCommand,
  'export-model': exportModelCommand,
  convert: convertCommand,
};

const USAGE = `usage: kcache <command> [flags]\ncommands: ${Object.keys(COMMANDS).join(', ')}\n\n${GENERATE_USAGE}\n${EXPORT_MODEL_USAGE}\n${CONVERT_USAGE}`;

/** Entry point of the `kcache` command. Errors become one line on stderr and a non-zero exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(USAGE + '\n');
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`kcache: unknown command '${name}'\n${USAGE}\n`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`kcache ${name}: ${message}\n`);
    return error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1;
  }
}

export function registerCommand(name: string, command: Command): void {
  COMMANDS[name] = command;
}
