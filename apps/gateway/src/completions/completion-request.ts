import { GenerateRequest } from '@kcache-serve/proto';
import { z } from 'zod';
import { openAiRequestFields, parseBody, toGenerationSettings } from './openai-request-fields';

const { model, ...settingFields } = openAiRequestFields;

/** Prompts one request may batch (each is a generation of its own, counted by the per-key limits). */
export const MAX_BATCH_PROMPTS = 64;

const tokenIds = z.array(z.number().int());
const batchOf = <T extends z.ZodType>(item: T) =>
  z.array(item).min(1, 'must hold at least one prompt').max(MAX_BATCH_PROMPTS, `may batch at most ${MAX_BATCH_PROMPTS} prompts`);

/**
 * POST /v1/completions body: OpenAI's completions fields, plus `priority`, `request_id` and `kcache`.
 * `prompt` is a text, a list of token ids, or a batch: a list of texts or of token-id lists.
 */
const completionBodySchema = z.object({
  model,
  prompt: z.union([z.string(), tokenIds, batchOf(z.string()), batchOf(tokenIds)]),
  best_of: z.unknown().optional(),
  echo: z.unknown().optional(),
  suffix: z.unknown().optional(),
  ...settingFields,
});

export type CompletionBody = z.infer<typeof completionBodySchema>;

export function parseCompletionBody(body: unknown): CompletionBody {
  return parseBody(completionBodySchema, body);
}

/** One GenerateRequest per prompt; a batch's request ids are request_id-0, -1, … when request_id is set. */
export function toGenerateRequests(body: CompletionBody): GenerateRequest[] {
  const settings = toGenerationSettings(body);
  const prompts: Array<string | number[]> = isBatch(body.prompt) ? body.prompt : [body.prompt];
  return prompts.map((prompt, i) => ({
    ...settings,
    requestId: settings.requestId !== undefined && isBatch(body.prompt) ? `${settings.requestId}-${i}` : settings.requestId,
    prompt: typeof prompt === 'string' ? prompt : '',
    promptTokenIds: typeof prompt === 'string' ? [] : prompt,
    messages: [],
    addGenerationPrompt: undefined,
  }));
}

function isBatch(prompt: CompletionBody['prompt']): prompt is string[] | number[][] {
  return Array.isArray(prompt) && prompt.length > 0 && typeof prompt[0] !== 'number';
}
