import { TokenEvent } from '@kcache-serve/proto';
import { OpenAiResponseFormat } from './openai-response-format';

/** POST /v1/completions: `text` choices, logprobs as parallel arrays. */
export const completionFormat: OpenAiResponseFormat = {
  idPrefix: 'cmpl-',
  object: 'text_completion',
  chunkObject: 'text_completion',
  tokenChoice: (token, isLogprobs) => textChoice(token.text, null, [token], isLogprobs),
  finishChoice: (finishReason) => textChoice('', finishReason, [], false),
  choice: (tokens, finishReason, isLogprobs) => textChoice(tokens.map((t) => t.text).join(''), finishReason, tokens, isLogprobs),
};

function textChoice(text: string, finishReason: string | null, tokens: readonly TokenEvent[], isLogprobs: boolean) {
  return {
    index: 0,
    text,
    finish_reason: finishReason,
    logprobs: isLogprobs ? { tokens: tokens.map((t) => t.text), token_ids: tokens.map((t) => t.tokenId), token_logprobs: tokens.map((t) => t.logprob ?? null) } : null,
  };
}
