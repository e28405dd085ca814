import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Shell commands printed in a Markdown file's ```sh blocks, so tests can run them as a reader would.
 * A command starts on a line whose first word is `program` and runs on while a line ends with `\` or a
 * single-quoted string is still open (a JSON body over several lines).
 */
export function markdownCommands(markdownPath: string, program: string): string[] {
  const blocks = [...readFileSync(markdownPath, 'utf8').matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  const commands: string[] = [];
  for (const lines of blocks.map((block) => block.split('\n'))) {
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].split(/\s+/)[0] !== program) continue;
      let command = lines[i];
      while (command.endsWith('\\') || isQuoteOpen(command)) command += `\n${lines[++i]}`;
      commands.push(command);
    }
  }
  return commands;
}

function isQuoteOpen(text: string): boolean {
  return (text.match(/'/g)?.length ?? 0) % 2 === 1;
}

/** The argument vector bash gives `program` for a command (quotes, `$VARS` and continuations as a shell reads them). */
export function shellArgv(command: string, program: string, env: NodeJS.ProcessEnv): string[] {
  const script = `${program}() { printf '%s\\0' "$@"; }\n${command}`;
  const out = execFileSync('bash', ['-c', script], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

/** grpcurl's flags that the README uses: `-plaintext`, `-H 'name: value'`, `-d JSON`, then address and method. */
export interface GrpcurlCall {
  readonly isPlaintext: boolean;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly data: string;
  readonly address: string;
  readonly method: string;
}

export function parseGrpcurlArgv(argv: readonly string[]): GrpcurlCall {
  const headers: Array<[string, string]> = [];
  const positional: string[] = [];
  let data = '{}';
  let isPlaintext = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-plaintext') isPlaintext = true;
    else if (arg === '-H') {
      const header = argv[++i];
      const colon = header.indexOf(':');
      headers.push([header.slice(0, colon).trim(), header.slice(colon + 1).trim()]);
    } else if (arg === '-d') data = argv[++i];
    else if (arg.startsWith('-')) throw new Error(`grpcurl flag ${arg} is not understood by this test kit`);
    else positional.push(arg);
  }
  if (positional.length !== 2) throw new Error(`grpcurl needs an address and a method, got: ${positional.join(' ')}`);
  return { isPlaintext, headers, data, address: positional[0], method: positional[1] };
}
