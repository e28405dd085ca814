import { GenerateRequest, MAX_JOB_TOP_LOGPROBS } from '@kcache-serve/proto';
import { InvalidArgumentError } from '../errors/gateway-errors';
import { z } from 'zod';
import { openAiRequestFields, parseBody, toGenerationSettings } from './openai-request-fields';

const { model, ...settingFields } = openAiRequestFields;

/** A content part; only text parts exist for a text model (`image_url` and the rest are refused). */
const textPart = z.object({ type: z.literal('text', { error: "only text parts ({type: 'text', text}) are supported" }), text: z.string() });

/**
 * POST /v1/chat/completions body: OpenAI's chat fields (`messages` of role and content, a string or a list of text parts,
 * `max_completion_tokens` or `max_tokens`), `add_generation_prompt` (default true) and the fields
 * /v1/completions takes. Roles and sizes are checked with the gRPC request's rules (RequestValidator).
 */
const chatCompletionBodySchema = z.object({
  model,
  messages: z.array(z.object({ role: z.string(), content: z.union([z.string(), z.array(textPart)]) })).min(1, 'must hold at least one message'),
  max_completion_tokens: z.number().int().optional(),
  add_generation_prompt: z.boolean().optional(),
  ...settingFields,
  logprobs: z.boolean().nullable().optional(),
  /** The most likely tokens per position, in [0, 20]; needs `logprobs: true`. */
  top_logprobs: z.number().int().min(0).max(MAX_JOB_TOP_LOGPROBS).nullable().optional(),
});

export type ChatCompletionBody = z.infer<typeof chatCompletionBodySchema>;

/** `messages[2].content` rather than `messages.2.content`, as the gRPC validation names fields. */
function fieldOf(path: readonly PropertyKey[]): string {
  return path.map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`)).join('');
}

export function parseChatCompletionBody(body: unknown): ChatCompletionBody {
  const parsed = parseBody(chatCompletionBodySchema, body, fieldOf);
  if (parsed.top_logprobs != null && parsed.logprobs !== true) throw new InvalidArgumentError('top_logprobs', 'needs logprobs: true');
  return parsed;
}

export function toChatGenerateRequest(body: ChatCompletionBody): GenerateRequest {
  const settings = toGenerationSettings(body);
  return {
    ...settings,
    maxNewTokens: body.max_completion_tokens ?? settings.maxNewTokens,
    logprobs: body.logprobs === true,
    topLogprobs: body.top_logprobs ?? undefined,
    prompt: '',
    promptTokenIds: [],
    // OpenAI's list of text parts is one text: the parts joined as they are
    messages: body.messages.map(({ role, content }) => ({ role, content: typeof content === 'string' ? content : content.map((p) => p.text).join('') })),
    addGenerationPrompt: body.add_generation_prompt,
  };
}
