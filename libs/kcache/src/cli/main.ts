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

const USAGES: string[] = [GENERATE_USAGE, EXPORT_MODEL_USAGE, CONVERT_USAGE];

function usage(): string {
  return `usage: kcache <command> [flags]\ncommands: ${Object.keys(COMMANDS).join(', ')}\n\n${USAGES.join('\n')}`;
}

/** Entry point of the `kcache` command. Errors become one line on stderr and a non-zero exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`kcache: unknown command '${name}'\n${usage()}\n`);
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

/** Adds a command from another package (e.g. `load`); its usage line, when given, joins --help. */
export function registerCommand(name: string, command: Command, usageLine?: string): void {
  COMMANDS[name] = command;
  if (usageLine) USAGES.push(usageLine);
}
