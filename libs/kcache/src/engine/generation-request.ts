import { AttentionConfig } from '../attention/attention-config';
import { SamplingParams } from '../sampling/sampling-params';

/** One generation, as the engine takes it. Token ids are already validated against the model. */
export interface GenerationRequest {
  readonly requestId: string;
  readonly promptTokenIds: readonly number[];
  /**
   * Tokens already delivered to the client by an earlier attempt (crash recovery). They are
   * recomputed, not re-emitted; generation continues at index resumeTokenIds.length.
   */
  readonly resumeTokenIds?: readonly number[];
  readonly maxNewTokens: number;
  readonly sampling: SamplingParams;
  readonly stopTokenIds: readonly number[];
  readonly stopStrings: readonly string[];
  readonly attention: AttentionConfig;
  /** Higher runs first; equal priorities are first come, first served. */
  readonly priority: number;
  readonly logprobs: boolean;
  /** With logprobs: also this many most likely tokens per position, in [0, MAX_TOP_LOGPROBS] (unset: 0). */
  readonly topLogprobs?: number;
}

export type FinishReason = 'length' | 'stop' | 'eos' | 'cancelled';

export interface TokenEvent {
  readonly type: 'token';
  readonly requestId: string;
  /** 0-based index among generated tokens (resumed tokens included). */
  readonly index: number;
  readonly tokenId: number;
  /** UTF-8 text delta this token completes (may be empty while a multi-byte character is pending). */
  readonly text: string;
  /** Natural log-probability of the chosen token under the model's raw distribution (when requested). */
  readonly logprob?: number;
  /** The request's topLogprobs most likely tokens at this position, most likely first (when requested). */
  readonly topLogprobs?: readonly TopTokenLogprob[];
}

/** One of the most likely tokens at a position, with its text after the tokens before it. */
export interface TopTokenLogprob {
  readonly tokenId: number;
  readonly text: string;
  readonly logprob: number;
}

export interface FinishEvent {
  readonly type: 'finish';
  readonly requestId: string;
  readonly reason: FinishReason;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Set when the engine itself failed this request (reason is then 'cancelled'). */
  readonly error?: string;
}

export type GenerationEvent = TokenEvent | FinishEvent;

export type GenerationListener = (event: GenerationEvent) => void;
