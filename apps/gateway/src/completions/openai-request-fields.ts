import { AttentionMode, GenerateRequest, MAX_JOB_TOP_LOGPROBS } from '@kcache-serve/proto';
import { z } from 'zod';
import { InvalidArgumentError, UnsupportedParameterError } from '../errors/gateway-errors';

/**
 * Body fields POST /v1/completions and POST /v1/chat/completions share: OpenAI's sampling, stop and
 * streaming fields, plus `top_k`, `stop_token_ids`, `priority`, `request_id` and `kcache`.
 */
export const openAiRequestFields = {
  model: z.string().optional(),
  max_tokens: z.number().int().optional(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().optional(),
  top_k: z.number().int().optional(),
  seed: z.number().int().min(0).max(0xffffffff).optional(),
  stop: z.union([z.string(), z.array(z.string())]).optional(),
  stop_token_ids: z.array(z.number().int()).optional(),
  stream: z.boolean().default(false),
  stream_options: z.object({ include_usage: z.boolean().nullable().optional() }).nullable().optional(),
  // OpenAI fields this server cannot honour: accepted only at their defaults (refuseUnsupported).
  n: z.unknown().optional(),
  logit_bias: z.unknown().optional(),
  presence_penalty: z.unknown().optional(),
  frequency_penalty: z.unknown().optional(),
  /**
   * Completions: a count k in [0, 20]: the chosen tokens' logprobs and, k > 0, the k most likely tokens
   * at each position (`top_logprobs`). Chat: true or false (the count is `top_logprobs`).
   */
  logprobs: z.union([z.boolean(), z.number().int().min(0).max(MAX_JOB_TOP_LOGPROBS)]).nullable().optional(),
  priority: z.number().int().optional(),
  request_id: z.string().optional(),
  kcache: z
    .object({
      mode: z.enum(['full', 'kcache']).optional(),
      top_n: z.number().int().optional(),
      dense_layers: z.number().int().optional(),
      renormalize: z.boolean().optional(),
    })
    .optional(),
};

type SharedBody = z.infer<z.ZodObject<typeof openAiRequestFields>>;

/** The GenerateRequest fields that do not say what to continue (prompt, token ids or messages). */
export type GenerationSettings = Omit<GenerateRequest, 'prompt' | 'promptTokenIds' | 'messages' | 'addGenerationPrompt'>;

export function toGenerationSettings(body: SharedBody): GenerationSettings {
  const mode = body.kcache?.mode;
  return {
    requestId: body.request_id,
    maxNewTokens: body.max_tokens,
    sampling: { temperature: body.temperature, topK: body.top_k, topP: body.top_p, seed: body.seed },
    stop: body.stop === undefined ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop,
    stopTokenIds: body.stop_token_ids ?? [],
    attention: {
      mode:
        mode === 'kcache' ? AttentionMode.ATTENTION_MODE_KCACHE : mode === 'full' ? AttentionMode.ATTENTION_MODE_FULL : AttentionMode.ATTENTION_MODE_UNSPECIFIED,
      topN: body.kcache?.top_n,
      denseLayers: body.kcache?.dense_layers,
      renormalize: body.kcache?.renormalize,
    },
    priority: body.priority ?? 0,
    logprobs: body.logprobs === true || typeof body.logprobs === 'number',
    topLogprobs: typeof body.logprobs === 'number' ? body.logprobs : undefined,
  };
}

/** What each unsupported field may hold without changing the answer (what OpenAI does by default). */
const UNSUPPORTED_AT_DEFAULT: Readonly<Record<string, (value: unknown) => boolean>> = {
  n: (v) => v === 1,
  best_of: (v) => v === 1,
  echo: (v) => v === false,
  suffix: (v) => v === '',
  logit_bias: (v) => typeof v === 'object' && v !== null && Object.keys(v).length === 0,
  presence_penalty: (v) => v === 0,
  frequency_penalty: (v) => v === 0,
};

/** Refuses, naming the field, a value that this server would otherwise silently ignore. */
export function refuseUnsupported(body: Readonly<Record<string, unknown>>): void {
  for (const [field, isDefault] of Object.entries(UNSUPPORTED_AT_DEFAULT)) {
    const value = body[field];
    if (value === undefined || value === null || isDefault(value)) continue;
    // the value is not quoted: suffix and logit_bias may carry request content
    throw new UnsupportedParameterError(field, 'is not supported by this server; leave it unset or at its default');
  }
}

/** The body parsed by `schema`; the first problem as InvalidArgumentError naming its field (`fieldOf` formats the path). */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown, fieldOf: (path: readonly PropertyKey[]) => string = (p) => p.join('.')): T {
  const parsed = schema.safeParse(body ?? {});
  if (parsed.success) {
    refuseUnsupported(parsed.data as Record<string, unknown>);
    return parsed.data;
  }
  const issue = parsed.error.issues[0];
  throw new InvalidArgumentError(fieldOf(issue.path) || 'body', issue.message, { cause: parsed.error });
}

/** Proto field → the HTTP body field a client of these endpoints knows. */
const PROTO_TO_HTTP_FIELD: Readonly<Record<string, string>> = {
  prompt_token_ids: 'prompt',
  max_new_tokens: 'max_tokens',
  'sampling.temperature': 'temperature',
  'sampling.top_p': 'top_p',
  'sampling.top_k': 'top_k',
  'sampling.seed': 'seed',
  'attention.mode': 'kcache.mode',
  'attention.top_n': 'kcache.top_n',
  'attention.dense_layers': 'kcache.dense_layers',
};

/** Renames a proto field in a validation error to the HTTP body's name. */
export function toHttpFieldError(error: unknown): unknown {
  if (!(error instanceof InvalidArgumentError)) return error;
  const field = PROTO_TO_HTTP_FIELD[error.field];
  if (field === undefined) return error;
  return new InvalidArgumentError(field, error.reason, { cause: error });
}
