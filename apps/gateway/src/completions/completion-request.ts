import { AttentionMode, GenerateRequest } from '@kcache-serve/proto';
import { z } from 'zod';
import { InvalidArgumentError } from '../generation/gateway-errors';

/** POST /v1/completions body: OpenAI's completions fields, plus `priority`, `request_id` and `kcache`. */
const completionBodySchema = z.object({
  model: z.string().optional(),
  prompt: z.union([z.string(), z.array(z.number().int())]),
  max_tokens: z.number().int().optional(),
  temperature: z.number().optional(),
  top_p: z.number().optional(),
  top_k: z.number().int().optional(),
  seed: z.number().int().min(0).max(0xffffffff).optional(),
  stop: z.union([z.string(), z.array(z.string())]).optional(),
  stop_token_ids: z.array(z.number().int()).optional(),
  stream: z.boolean().default(false),
  /** OpenAI takes a count of alternatives; any value > 0 (or true) returns the chosen tokens' logprobs. */
  logprobs: z.union([z.boolean(), z.number().int().min(0)]).nullable().optional(),
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
});

export type CompletionBody = z.infer<typeof completionBodySchema>;

/** Proto field → the HTTP body field a client of this endpoint knows. */
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

export function parseCompletionBody(body: unknown): CompletionBody {
  const parsed = completionBodySchema.safeParse(body ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new InvalidArgumentError(issue.path.join('.') || 'body', issue.message, { cause: parsed.error });
}

export function toGenerateRequest(body: CompletionBody): GenerateRequest {
  const mode = body.kcache?.mode;
  return {
    requestId: body.request_id,
    prompt: typeof body.prompt === 'string' ? body.prompt : '',
    promptTokenIds: typeof body.prompt === 'string' ? [] : body.prompt,
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
    logprobs: body.logprobs === true || (typeof body.logprobs === 'number' && body.logprobs > 0),
  };
}

/** Renames a proto field in a validation error to the HTTP body's name. */
export function toHttpFieldError(error: unknown): unknown {
  if (!(error instanceof InvalidArgumentError)) return error;
  const field = PROTO_TO_HTTP_FIELD[error.field];
  if (field === undefined) return error;
  return new InvalidArgumentError(field, error.message.slice(error.field.length + 2), { cause: error });
}
