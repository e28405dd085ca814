import { parseArgs } from 'node:util';
import { CONNECTION_FLAGS, CONNECTION_USAGE, GatewayConnection } from '../cli/gateway-client';
import { parseConnection, parseIntFlag, parseNumberFlag } from '../cli/parse-flags';
import { UsageError } from '../cli/usage-error';

export const LOAD_USAGE = `usage: kcache load ${CONNECTION_USAGE}
       [--concurrency C] [--duration S] [--prompt-len L] [--max-new-tokens M] [--vocab-size V] [--seed N]
       [--temperature T] [--attention full|kcache] [--top-n N] [--request-timeout S] [--json] [--quiet]`;

/** One closed-loop run of `kcache load`. Defaults are the ones documented here. */
export interface LoadOptions extends GatewayConnection {
  /** Streams kept open at once; each sends its next request when the last one ends. Default 8. */
  readonly concurrency: number;
  /** No request starts after this; the ones in flight then run to their end. Default 10. */
  readonly durationS: number;
  /** prompt_token_ids per request, uniform in [0, vocabSize), from (seed, request index). Default 32. */
  readonly promptLen: number;
  /** Default 64. */
  readonly maxNewTokens: number;
  /** The served model's vocabulary size. Default 512 (stories260K). */
  readonly vocabSize: number;
  /** Seeds the prompts and each request's sampling seed. Default 1. */
  readonly seed: number;
  /** Default 1. */
  readonly temperature: number;
  /** null: the server's default. */
  readonly attention: 'full' | 'kcache' | null;
  /** KCache positions per head; null: the server's default. */
  readonly topN: number | null;
  /** gRPC deadline of each request. Default 120. */
  readonly requestTimeoutS: number;
}

export interface LoadCommandOptions extends LoadOptions {
  readonly isJson: boolean;
  readonly isQuiet: boolean;
}

export function parseLoadArgs(argv: string[]): LoadCommandOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...CONNECTION_FLAGS,
      concurrency: { type: 'string' },
      duration: { type: 'string' },
      'prompt-len': { type: 'string' },
      'max-new-tokens': { type: 'string' },
      'vocab-size': { type: 'string' },
      seed: { type: 'string' },
      temperature: { type: 'string' },
      attention: { type: 'string' },
      'top-n': { type: 'string' },
      'request-timeout': { type: 'string' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
    },
  });
  const attention = values.attention ?? null;
  if (attention !== null && attention !== 'full' && attention !== 'kcache') {
    throw new UsageError(`--attention expects full or kcache, got '${attention}'`);
  }
  return {
    ...parseConnection(values),
    concurrency: parseIntFlag('concurrency', values.concurrency, 8, 1),
    durationS: parseNumberFlag('duration', values.duration, 10, 0),
    promptLen: parseIntFlag('prompt-len', values['prompt-len'], 32, 1),
    maxNewTokens: parseIntFlag('max-new-tokens', values['max-new-tokens'], 64, 1),
    vocabSize: parseIntFlag('vocab-size', values['vocab-size'], 512, 1),
    seed: parseIntFlag('seed', values.seed, 1, 0),
    temperature: parseNumberFlag('temperature', values.temperature, 1, 0),
    attention,
    topN: values['top-n'] === undefined ? null : parseIntFlag('top-n', values['top-n'], 0, 1),
    requestTimeoutS: parseNumberFlag('request-timeout', values['request-timeout'], 120, 0.001),
    isJson: values.json,
    isQuiet: values.quiet,
  };
}
