import { Tokenizer } from './tokenizer';

/**
 * Turns tokens into text deltas one token at a time. A multi-byte character split over byte
 * tokens is held back until complete; the deltas concatenate to tokenizer.decode(tokens).
 */
export class StreamingDetokenizer {
  private readonly utf8 = new TextDecoder();
  private previousToken: number | null;

  /** `previousToken`: the token before the first pushed one (e.g. the last prompt token). */
  constructor(
    private readonly tokenizer: Tokenizer,
    previousToken: number | null = null,
  ) {
    this.previousToken = previousToken;
  }

  /** The text this token completes (possibly empty). */
  push(token: number): string {
    const bytes = this.tokenizer.decodeTokenBytes(this.previousToken, token);
    this.previousToken = token;
    if (this.tokenizer.isControlToken(token)) return '';
    return this.utf8.decode(bytes, { stream: true });
  }

  /** Ends the stream: any incomplete sequence becomes U+FFFD. */
  flush(): string {
    return this.utf8.decode();
  }
}
