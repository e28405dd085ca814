import { parseArgs } from 'node:util';
import { FinishReason, GenerateRequest } from '@kcache-serve/proto';
import { callMetadata, CONNECTION_FLAGS, CONNECTION_USAGE, createGenerationClient } from '../cli/gateway-client';
import { parseConnection, parseIntFlag, parseNumberFlag, withUsage } from '../cli/parse-flags';
import { timedStream } from '../load/timed-stream';

export const DEMO_USAGE = `usage: node apps/loadgen/dist/demo.js ${CONNECTION_USAGE}
       [--prompt TEXT] [--max-new-tokens N] [--temperature T] [--seed N] [--timeout S]`;

/**
 * The quick-start demo: one Generate over gRPC, its text written to stdout token by token as it arrives,
 * then one summary line: `demo: N tokens in S s (finish R), TTFT X ms, Y tokens/s`.
 *   exit: 0 when the stream completed, 1 when it failed, 2 on a usage error.
 */
export function demoCommand(argv: string[]): Promise<number> {
  return withUsage('demo', DEMO_USAGE, async () => {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        ...CONNECTION_FLAGS,
        prompt: { type: 'string', default: 'Once upon a time' },
        'max-new-tokens': { type: 'string' },
        temperature: { type: 'string' },
        seed: { type: 'string' },
        timeout: { type: 'string' },
      },
    });
    const connection = parseConnection(values);
    const client = createGenerationClient(connection);
    const request = GenerateRequest.fromPartial({
      prompt: values.prompt,
      maxNewTokens: parseIntFlag('max-new-tokens', values['max-new-tokens'], 200, 1),
      sampling: { temperature: parseNumberFlag('temperature', values.temperature, 0.8, 0), seed: parseIntFlag('seed', values.seed, 42, 0) },
    });
    const out = process.stdout;
    out.write(out.isTTY ? `\x1b[1m${values.prompt}\x1b[0m` : values.prompt);
    try {
      const timeoutMs = parseNumberFlag('timeout', values.timeout, 60, 0.001) * 1000;
      const result = await timedStream(client, request, timeoutMs, callMetadata(connection), (text) => out.write(text));
      out.write('\n');
      if (result.status !== 'OK') {
        process.stderr.write(`demo: the stream failed after ${result.numTokens} tokens: ${result.status}: ${result.detail}\n`);
        return 1;
      }
      const finish = FinishReason[result.final?.finishReason ?? FinishReason.FINISH_REASON_UNSPECIFIED].replace('FINISH_REASON_', '');
      const seconds = result.totalMs / 1000;
      out.write(
        `demo: ${result.numTokens} tokens in ${seconds.toFixed(2)} s (finish ${finish}), ` +
          `TTFT ${(result.ttftMs ?? 0).toFixed(1)} ms, ${(result.numTokens / seconds).toFixed(1)} tokens/s\n`,
      );
      return 0;
    } finally {
      client.close();
    }
  });
}
