import { Tokenizer } from './tokenizer';

/**
 * Turns tokens into text deltas one token at a time. A multi-byte character split over byte
 * tokens is held back until complete; the deltas concatenate to tokenizer.decode(tokens).
 */
export class StreamingDetokenizer {
  private readonly utf8 = new TextDecoder();
  private previousToken: number | null;
  /**
   * ASCII bytes skip the decoder when that leaves its state as decoding them would: it has read
   * bytes (so a later byte-order mark is not at the stream's start) and holds none of an incomplete
   * character (true once a chunk ends in ASCII).
   */
  private decoderIdle = false;

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
    if (this.decoderIdle && isAscii(bytes)) return String.fromCharCode.apply(null, bytes as unknown as number[]);
    if (bytes.length > 0) this.decoderIdle = bytes[bytes.length - 1] < 0x80;
    return this.utf8.decode(bytes, { stream: true });
  }

  /** Ends the stream: any incomplete sequence becomes U+FFFD. */
  flush(): string {
    return this.utf8.decode();
  }
}

function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] >= 0x80) return false;
  return true;
}
