import { TokenEvent } from '@kcache-serve/proto';
import { OpenAiResponseFormat } from './openai-response-format';

/**
 * POST /v1/chat/completions: an assistant `message`, or streamed `delta`s (the first names the role);
 * logprobs as OpenAI's `content` list (token, logprob, UTF-8 `bytes`, `top_logprobs` of the most likely tokens
 * with `top_logprobs: k`), with the token id added.
 */
export const chatCompletionFormat: OpenAiResponseFormat = {
  idPrefix: 'chatcmpl-',
  object: 'chat.completion',
  chunkObject: 'chat.completion.chunk',
  tokenChoice: (token, isLogprobs) => ({
    index: 0,
    delta: token.index === 0 ? { role: 'assistant', content: token.text } : { content: token.text },
    finish_reason: null,
    logprobs: isLogprobs ? logprobsOf([token]) : null,
  }),
  finishChoice: (finishReason) => ({ index: 0, delta: {}, finish_reason: finishReason, logprobs: null }),
  choice: (tokens, finishReason, isLogprobs) => ({
    index: 0,
    message: { role: 'assistant', content: tokens.map((t) => t.text).join('') },
    finish_reason: finishReason,
    logprobs: isLogprobs ? logprobsOf(tokens) : null,
  }),
};

function logprobsOf(tokens: readonly TokenEvent[]) {
  return {
    content: tokens.map((t) => ({
      token: t.text,
      token_id: t.tokenId,
      logprob: t.logprob ?? null,
      bytes: bytesOf(t.text),
      top_logprobs: t.topLogprobs.map((top) => ({ token: top.text, token_id: top.tokenId, logprob: top.logprob, bytes: bytesOf(top.text) })),
    })),
  };
}

/** The UTF-8 bytes of a token's text, as OpenAI's `bytes`. */
function bytesOf(text: string): number[] {
  return [...Buffer.from(text, 'utf8')];
}
