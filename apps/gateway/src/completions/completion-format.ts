import { TokenEvent } from '@kcache-serve/proto';
import { OpenAiResponseFormat } from './openai-response-format';

/**
 * POST /v1/completions: `text` choices, logprobs as OpenAI's parallel arrays: `tokens`, `token_logprobs`,
 * `top_logprobs` (per token a map of text → logprob of the k most likely tokens, with `logprobs: k > 0`;
 * else null), `text_offset` (where each token's text starts in the choice's text, in characters), plus
 * `token_ids`.
 */
export const completionFormat: OpenAiResponseFormat = {
  idPrefix: 'cmpl-',
  object: 'text_completion',
  chunkObject: 'text_completion',
  tokenChoice: (token, isLogprobs, textOffset) => textChoice(token.text, null, [token], isLogprobs, textOffset),
  finishChoice: (finishReason) => textChoice('', finishReason, [], false, 0),
  choice: (tokens, finishReason, isLogprobs) => textChoice(tokens.map((t) => t.text).join(''), finishReason, tokens, isLogprobs, 0),
};

function textChoice(text: string, finishReason: string | null, tokens: readonly TokenEvent[], isLogprobs: boolean, textOffset: number) {
  return { index: 0, text, finish_reason: finishReason, logprobs: isLogprobs ? logprobsOf(tokens, textOffset) : null };
}

function logprobsOf(tokens: readonly TokenEvent[], firstOffset: number) {
  const textOffset: number[] = [];
  let offset = firstOffset;
  for (const token of tokens) {
    textOffset.push(offset);
    offset += numChars(token.text);
  }
  const isTop = tokens.some((t) => t.topLogprobs.length > 0);
  return {
    tokens: tokens.map((t) => t.text),
    token_ids: tokens.map((t) => t.tokenId),
    token_logprobs: tokens.map((t) => t.logprob ?? null),
    top_logprobs: isTop ? tokens.map((t) => Object.fromEntries(t.topLogprobs.map((top) => [top.text, top.logprob]))) : null,
    text_offset: textOffset,
  };
}

/** Characters as Python and vLLM count them (code points, not UTF-16 units). */
export function numChars(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}
