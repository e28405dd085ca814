import { TokenEvent } from '@kcache-serve/proto';

/** How one OpenAI-style endpoint shapes its answers; the envelope (id, object, created, model) is shared. */
export interface OpenAiResponseFormat {
  /** Prefix of the response id, before the request id: `cmpl-`, `chatcmpl-`. */
  readonly idPrefix: string;
  /** `object` of a whole (non-streamed) response. */
  readonly object: string;
  /** `object` of each server-sent event. */
  readonly chunkObject: string;
  /** The choice of the event streaming one token; textOffset: characters of this choice's text before it. */
  tokenChoice(token: TokenEvent, isLogprobs: boolean, textOffset: number): object;
  /** The choice of the last streamed event, which carries the finish reason (and the usage beside it). */
  finishChoice(finishReason: string): object;
  /** The one choice of a whole response. */
  choice(tokens: readonly TokenEvent[], finishReason: string, isLogprobs: boolean): object;
}
