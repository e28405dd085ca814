import { GenerateRequest } from '@kcache-serve/proto';
import { z } from 'zod';
import { openAiRequestFields, parseBody, toGenerationSettings } from './openai-request-fields';

const { model, ...settingFields } = openAiRequestFields;

/** POST /v1/completions body: OpenAI's completions fields, plus `priority`, `request_id` and `kcache`. */
const completionBodySchema = z.object({
  model,
  prompt: z.union([z.string(), z.array(z.number().int())]),
  best_of: z.unknown().optional(),
  echo: z.unknown().optional(),
  suffix: z.unknown().optional(),
  ...settingFields,
});

export type CompletionBody = z.infer<typeof completionBodySchema>;

export function parseCompletionBody(body: unknown): CompletionBody {
  return parseBody(completionBodySchema, body);
}

export function toGenerateRequest(body: CompletionBody): GenerateRequest {
  return {
    ...toGenerationSettings(body),
    prompt: typeof body.prompt === 'string' ? body.prompt : '',
    promptTokenIds: typeof body.prompt === 'string' ? [] : body.prompt,
    messages: [],
    addGenerationPrompt: undefined,
  };
}
