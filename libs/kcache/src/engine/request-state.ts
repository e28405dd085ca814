import { StopChecker, StopDecision } from '../sampling/stop-checker';
import { Sequence } from '../scheduler/sequence';
import { Tokenizer } from '../tokenizer/tokenizer';
import { StreamingDetokenizer } from '../tokenizer/streaming-detokenizer';
import { RankedLogprob } from '../sampling/top-logprobs';
import { FinishReason, GenerationListener, GenerationRequest, TopTokenLogprob } from './generation-request';

/** Everything the engine keeps for one request beside its scheduler Sequence. */
export class RequestState {
  private readonly detokenizer: StreamingDetokenizer;
  private readonly stopChecker: StopChecker;
  /** Output text so far (resumed tokens included), for stop strings. */
  private text = '';
  /** text.slice(0, numReleasedChars) has gone out in token events; the rest may still start a stop string. */
  private numReleasedChars: number;
  private isFinished = false;
  /** The token before the next one to accept (the text of an alternative depends on it). */
  private previousTokenId: number;

  constructor(
    readonly request: GenerationRequest,
    readonly sequence: Sequence,
    private readonly listener: GenerationListener,
    private readonly tokenizer: Tokenizer,
    eosTokenIds: readonly number[],
    maxTotalTokens: number,
  ) {
    const prompt = request.promptTokenIds;
    this.detokenizer = new StreamingDetokenizer(tokenizer, prompt[prompt.length - 1]);
    for (const token of request.resumeTokenIds ?? []) this.text += this.detokenizer.push(token);
    this.previousTokenId = request.resumeTokenIds?.at(-1) ?? prompt[prompt.length - 1];
    this.stopChecker = new StopChecker({
      stopTokenIds: request.stopTokenIds,
      eosTokenIds,
      stopStrings: request.stopStrings,
      maxNewTokens: request.maxNewTokens,
      maxTotalTokens,
    });
    // Resumed tokens' text went out before exactly up to here (the release point depends only on the text).
    this.numReleasedChars = this.text.length - this.stopChecker.numHeldChars(this.text);
  }

  get finished(): boolean {
    return this.isFinished;
  }

  /**
   * Emits a sampled token (already appended to the sequence) unless it ends the request silently
   * (EOS and stop tokens are not part of the output). Returns the stop decision, if any.
   * The event's text is what this token releases: text that could still begin a stop string is held
   * back (the event carries '') until a later token rules the stop string out, or the request ends by
   * length; a stop string and what follows it are never released. Text still held when an EOS or stop
   * token ends the request is dropped (a finish event carries no text).
   */
  accept(tokenId: number, logprob: number | undefined, alternatives?: readonly RankedLogprob[]): StopDecision | null {
    const seq = this.sequence;
    const topLogprobs = alternatives?.map((a): TopTokenLogprob => ({ ...a, text: this.tokenizer.decode([a.tokenId], this.previousTokenId) }));
    this.previousTokenId = tokenId;
    const index = seq.numOutputTokens - 1;
    this.text += this.detokenizer.push(tokenId);
    const decision = this.stopChecker.check(tokenId, seq.numOutputTokens, seq.numTokens, this.text);
    if (decision?.reason === 'eos' || (decision?.reason === 'stop' && decision.truncateTextAt === undefined)) return decision;
    const releaseTo =
      decision?.truncateTextAt !== undefined
        ? Math.max(this.numReleasedChars, decision.truncateTextAt)
        : decision?.reason === 'length'
          ? this.text.length
          : this.text.length - this.stopChecker.numHeldChars(this.text);
    const text = this.text.slice(this.numReleasedChars, releaseTo);
    this.numReleasedChars = releaseTo;
    this.listener({ type: 'token', requestId: this.request.requestId, index, tokenId, text, ...(logprob !== undefined ? { logprob } : {}), ...(topLogprobs ? { topLogprobs } : {}) });
    return decision;
  }

  finish(reason: FinishReason, error?: string): void {
    if (this.isFinished) return;
    this.isFinished = true;
    const seq = this.sequence;
    const completionTokens = seq.numOutputTokens - (reason === 'eos' || (reason === 'stop' && this.endedOnStopToken()) ? 1 : 0);
    this.listener({
      type: 'finish',
      requestId: this.request.requestId,
      reason,
      promptTokens: seq.numPromptTokens,
      completionTokens: Math.max(0, completionTokens),
      ...(error ? { error } : {}),
    });
  }

  private endedOnStopToken(): boolean {
    return this.request.stopTokenIds.includes(this.sequence.lastTokenId) && this.sequence.numOutputTokens > 0;
  }
}
