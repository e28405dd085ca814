import { InvalidRequestError } from '../request/invalid-request-error';

export interface StopCheckerOptions {
  /** Tokens that end generation with reason 'stop'. */
  readonly stopTokenIds: readonly number[];
  /** End-of-sequence tokens of the model/tokenizer; reason 'eos'. */
  readonly eosTokenIds: readonly number[];
  /** Texts that end generation with reason 'stop'; the match and what follows are cut from the output. */
  readonly stopStrings: readonly string[];
  /** Generated tokens allowed (resumed ones count); reason 'length'. */
  readonly maxNewTokens: number;
  /** Prompt plus generated tokens allowed (the model context); reason 'length'. */
  readonly maxTotalTokens: number;
}

export interface StopDecision {
  readonly reason: 'stop' | 'eos' | 'length';
  /** For a stop string: the output text keeps only textSoFar.slice(0, truncateTextAt). */
  readonly truncateTextAt?: number;
}

/**
 * Per-request stop conditions, checked after each generated token, in this order: eos token,
 * stop token, stop string, length. Stateful: remembers how much text it has searched, so each
 * check searches only the tail where a new match can end.
 */
export class StopChecker {
  private readonly stopTokenIds: ReadonlySet<number>;
  private readonly eosTokenIds: ReadonlySet<number>;
  private readonly stopStrings: readonly string[];
  private readonly maxStopStringLength: number;
  private readonly maxNewTokens: number;
  private readonly maxTotalTokens: number;
  private numTextCharsSearched = 0;

  constructor(opts: StopCheckerOptions) {
    for (const field of ['maxNewTokens', 'maxTotalTokens'] as const) {
      if (!Number.isSafeInteger(opts[field]) || opts[field] < 0) {
        throw new InvalidRequestError(field, `must be a non-negative integer, got ${opts[field]}`);
      }
    }
    this.stopTokenIds = new Set(opts.stopTokenIds);
    this.eosTokenIds = new Set(opts.eosTokenIds);
    this.stopStrings = opts.stopStrings.filter((s) => s.length > 0);
    this.maxStopStringLength = Math.max(0, ...this.stopStrings.map((s) => s.length));
    this.maxNewTokens = opts.maxNewTokens;
    this.maxTotalTokens = opts.maxTotalTokens;
  }

  /**
   * tokenId has just been appended: numOutputTokens and numTotalTokens count it, and textSoFar is
   * the whole output text including its text. null: keep generating.
   */
  check(tokenId: number, numOutputTokens: number, numTotalTokens: number, textSoFar: string): StopDecision | null {
    if (this.eosTokenIds.has(tokenId)) return { reason: 'eos' };
    if (this.stopTokenIds.has(tokenId)) return { reason: 'stop' };
    const truncateTextAt = this.findStopString(textSoFar);
    if (truncateTextAt !== null) return { reason: 'stop', truncateTextAt };
    if (numOutputTokens >= this.maxNewTokens || numTotalTokens >= this.maxTotalTokens) return { reason: 'length' };
    return null;
  }

  /**
   * How many chars at the end of text could still begin a stop string (the longest suffix that is a proper
   * prefix of one): output must hold them back until the next token settles it. 0 without stop strings.
   * Invariant: text.length minus this never decreases as text grows (a longer held suffix would contain
   * an earlier one), so what was released stays released.
   */
  numHeldChars(text: string): number {
    let held = 0;
    for (const stop of this.stopStrings) {
      for (let n = Math.min(stop.length - 1, text.length); n > held; n--) {
        if (text.endsWith(stop.slice(0, n))) {
          held = n;
          break;
        }
      }
    }
    return held;
  }

  /** Start of the earliest stop-string match that ends in the text added since the last check. */
  private findStopString(text: string): number | null {
    if (this.maxStopStringLength === 0) return null;
    if (text.length < this.numTextCharsSearched) this.numTextCharsSearched = 0; // text was replaced: search all
    // A match wholly inside the searched text would have been found before.
    const searchFrom = Math.max(0, this.numTextCharsSearched - this.maxStopStringLength + 1);
    this.numTextCharsSearched = text.length;
    let earliest: number | null = null;
    for (const stop of this.stopStrings) {
      const at = text.indexOf(stop, searchFrom);
      if (at >= 0 && (earliest === null || at < earliest)) earliest = at;
    }
    return earliest;
  }
}
