import { readFileSync } from 'node:fs';
import { encodeLlama2c } from './llama2c-encoder';
import { Llama2cVocabulary, parseLlama2cVocabulary, serializeLlama2cVocabulary } from './llama2c-vocabulary';
import { PieceLookup } from './piece-lookup';
import { concatBytes, referenceDecodePiece, referencePrintedBytes } from './reference-decoding';
import { TokenizerFormatError } from './tokenizer-errors';
import { EncodeOptions, Tokenizer } from './tokenizer';

/** Specials (0..2) plus the 256 byte-fallback tokens (3..258) every llama2.c vocabulary starts with. */
export const MIN_LLAMA2C_VOCAB_SIZE = 259;

export { EncodeOptions };

/** SentencePiece-style BPE vocabulary in llama2.c's tokenizer.bin format, with its exact encoder. */
export class Llama2cTokenizer implements Tokenizer {
  readonly unkId = 0;
  readonly bosId = 1;
  readonly eosId = 2;
  readonly vocabSize: number;
  readonly maxTokenLength: number;
  /** Pieces as text (UTF-8 decoded; byte tokens read `<0xHH>`). */
  readonly pieces: readonly string[];
  readonly scores: Float32Array;
  private readonly pieceBytes: readonly Uint8Array[];
  private readonly lookup: PieceLookup;
  // Per token: decode() bytes after any token but BOS, and after BOS.
  private readonly decoded: readonly Uint8Array[];
  private readonly decodedAfterBos: readonly Uint8Array[];

  constructor(vocabulary: Llama2cVocabulary) {
    if (vocabulary.pieces.length < MIN_LLAMA2C_VOCAB_SIZE || vocabulary.scores.length !== vocabulary.pieces.length) {
      throw new TokenizerFormatError(
        `tokenizer needs at least ${MIN_LLAMA2C_VOCAB_SIZE} pieces with one score each, got ${vocabulary.pieces.length} pieces and ${vocabulary.scores.length} scores`,
      );
    }
    this.vocabSize = vocabulary.pieces.length;
    this.maxTokenLength = vocabulary.maxTokenLength;
    this.pieceBytes = vocabulary.pieces;
    this.scores = vocabulary.scores;
    const utf8 = new TextDecoder();
    this.pieces = vocabulary.pieces.map((piece) => utf8.decode(piece));
    this.lookup = new PieceLookup(vocabulary);
    this.decoded = vocabulary.pieces.map((piece) => referenceDecodePiece(piece, false));
    this.decodedAfterBos = vocabulary.pieces.map((piece) => referenceDecodePiece(piece, true));
  }

  /** `vocabSize` comes from the model header: the file does not store it. */
  static fromBytes(bytes: Uint8Array, vocabSize: number, source = 'llama2.c tokenizer'): Llama2cTokenizer {
    return new Llama2cTokenizer(parseLlama2cVocabulary(bytes, vocabSize, source));
  }

  static fromFile(path: string, vocabSize: number): Llama2cTokenizer {
    return Llama2cTokenizer.fromBytes(readFileSync(path), vocabSize, path);
  }

  toBytes(): Uint8Array {
    return serializeLlama2cVocabulary({
      maxTokenLength: this.maxTokenLength,
      pieces: this.pieceBytes,
      scores: this.scores,
    });
  }

  pieceBytesOf(token: number): Uint8Array {
    this.checkToken(token);
    return this.pieceBytes[token];
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.encodeUtf8(new TextEncoder().encode(text), options);
  }

  /** Like encode, on raw bytes (invalid UTF-8 is split as the reference splits it). */
  encodeUtf8(bytes: Uint8Array, options: EncodeOptions = {}): number[] {
    const tokens = encodeLlama2c(bytes, this.lookup, options.bos === false ? null : this.bosId);
    if (options.eos === true) tokens.push(this.eosId);
    return tokens;
  }

  /** llama2.c decode(prev, token): strip one leading space after BOS, `<0xHH>` becomes that byte. */
  decodeTokenBytes(prevToken: number | null, token: number): Uint8Array {
    this.checkToken(token);
    return prevToken === this.bosId ? this.decodedAfterBos[token] : this.decoded[token];
  }

  /** BOS and EOS mark sequence boundaries and add no text to decode(). */
  isControlToken(token: number): boolean {
    return token === this.bosId || token === this.eosId;
  }

  /**
   * Text of `tokens` as UTF-8 (U+FFFD for invalid sequences), control tokens skipped.
   * `previousToken` is the token before tokens[0] (e.g. the last prompt token), if any.
   */
  decode(tokens: readonly number[], previousToken: number | null = null): string {
    const parts: Uint8Array[] = [];
    let prev = previousToken;
    for (const token of tokens) {
      if (!this.isControlToken(token)) parts.push(this.decodeTokenBytes(prev, token));
      prev = token;
    }
    return new TextDecoder().decode(concatBytes(parts));
  }

  /**
   * What llama2.c's generate loop prints for `tokens` (decode + safe_printf), read as UTF-8:
   * lone bytes that are neither printable ASCII nor whitespace disappear, specials print their piece.
   */
  referenceText(tokens: readonly number[], previousToken: number | null = null): string {
    const parts: Uint8Array[] = [];
    let prev = previousToken;
    for (const token of tokens) {
      parts.push(referencePrintedBytes(this.decodeTokenBytes(prev, token)));
      prev = token;
    }
    return new TextDecoder().decode(concatBytes(parts));
  }

  private checkToken(token: number): void {
    if (!Number.isInteger(token) || token < 0 || token >= this.vocabSize) {
      throw new RangeError(`token id ${token} is outside the vocabulary [0, ${this.vocabSize})`);
    }
  }
}
