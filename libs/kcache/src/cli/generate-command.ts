import { parseArgs } from 'node:util';
import { AttentionConfig, FULL_ATTENTION } from '../attention/attention-config';
import { createEngine } from '../engine/create-engine';
import { GenerationRequest } from '../engine/generation-request';
import { loadModel } from '../formats/model-source';
import { UsageError } from './cli-errors';
import { parseFloatFlag, parseIntegerFlag } from './parse-number';
import { resolveModelSpec } from '../model/resolve-model-spec';
import { EXECUTION_PROVIDERS, ExecutionProviderName, isExecutionProvider } from '../runtime/execution-provider';

export const GENERATE_USAGE = `usage: kcache generate [--model <dir|file|synthetic:NAME>] --prompt <text> --max-new-tokens N
       [--temperature T --top-k K --top-p P --seed S]
       [--attention full|kcache --top-n N --dense-layers K --renormalize] [--threads N] [--ep cpu|webgpu|cuda] [--native-backend] [--json]`;

/** `kcache generate`: one request through the engine, streamed to stdout (or one JSON object). */
export async function generateCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      model: { type: 'string' },
      prompt: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
      attention: { type: 'string' },
      'top-n': { type: 'string' },
      'dense-layers': { type: 'string' },
      renormalize: { type: 'boolean', default: false },
      threads: { type: 'string' },
      ep: { type: 'string' },
      'native-backend': { type: 'boolean' },
      logprobs: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.prompt === undefined) throw new UsageError('--prompt is required');
  const attention = parseAttention(values);
  const executionProvider = parseExecutionProviderFlag(values.ep);
  const model = loadModel(await resolveModelSpec(values.model));
  const engine = await createEngine(
    { model: model.name, numThreads: parseIntegerFlag('threads', values.threads, 0), defaultAttention: attention, executionProvider, ...(values['native-backend'] ? { nativeBackend: true } : {}) },
    model,
  );
  const request: GenerationRequest = {
    requestId: 'cli',
    promptTokenIds: model.tokenizer.encode(values.prompt, { bos: true }),
    maxNewTokens: parseIntegerFlag('max-new-tokens', values['max-new-tokens'], 256),
    sampling: {
      temperature: parseFloatFlag('temperature', values.temperature, 0),
      topK: parseIntegerFlag('top-k', values['top-k'], 0),
      topP: parseFloatFlag('top-p', values['top-p'], 1),
      seed: parseIntegerFlag('seed', values.seed, 0),
    },
    stopTokenIds: [],
    stopStrings: [],
    attention,
    priority: 0,
    logprobs: values.logprobs,
  };
  const startMs = performance.now();
  let firstTokenMs: number | null = null;
  const tokenIds: number[] = [];
  const logprobs: number[] = [];
  let text = '';
  const finish = await new Promise<{ reason: string; completionTokens: number; error?: string }>((resolve, reject) => {
    try {
      engine.submit(request, (event) => {
        if (event.type === 'token') {
          firstTokenMs ??= performance.now() - startMs;
          tokenIds.push(event.tokenId);
          if (event.logprob !== undefined) logprobs.push(event.logprob);
          text += event.text;
          if (!values.json) process.stdout.write(event.text);
        } else resolve(event);
      });
    } catch (error) {
      reject(error);
    }
  });
  await engine.close();
  if (finish.error) throw new Error(finish.error);
  const totalMs = performance.now() - startMs;
  if (values.json) {
    const result = {
      promptTokenIds: request.promptTokenIds,
      tokenIds,
      text,
      finishReason: finish.reason,
      ...(values.logprobs ? { logprobs } : {}),
      usage: { promptTokens: request.promptTokenIds.length, completionTokens: finish.completionTokens },
      timings: { ttftMs: firstTokenMs, totalMs },
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    const decodeMs = totalMs - (firstTokenMs ?? totalMs);
    const tokensPerSecond = tokenIds.length > 1 ? ((tokenIds.length - 1) / decodeMs) * 1000 : 0;
    process.stdout.write('\n');
    process.stderr.write(
      `[${tokenIds.length} tokens, finish ${finish.reason}, ttft ${(firstTokenMs ?? 0).toFixed(1)} ms, ${tokensPerSecond.toFixed(0)} tokens/s]\n`,
    );
  }
  return 0;
}

function parseAttention(values: Record<string, string | boolean | undefined>): AttentionConfig {
  const mode = (values.attention as string | undefined) ?? 'full';
  if (mode === 'full') return FULL_ATTENTION;
  if (mode !== 'kcache') throw new UsageError(`--attention must be full or kcache, got '${mode}'`);
  return {
    mode: 'kcache',
    topN: parseIntegerFlag('top-n', values['top-n'] as string | undefined, 64),
    denseLayers: parseIntegerFlag('dense-layers', values['dense-layers'] as string | undefined, 0),
    renormalize: values.renormalize === true,
  };
}

function parseExecutionProviderFlag(value: string | undefined): ExecutionProviderName {
  if (value === undefined) return 'cpu';
  if (!isExecutionProvider(value)) throw new UsageError(`--ep must be one of ${EXECUTION_PROVIDERS.join(', ')}, got '${value}'`);
  return value;
}
