/**
 * Builders for Hugging Face tokenizer.json documents (the subset the engine writes or derives from
 * other vocabularies: llama2.c tokenizer.bin, GGUF metadata), laid out as transformers' own
 * converters lay them out, so the same tokenizer library encodes them all.
 */

/** GGUF token types (llama.cpp's llama_token_type). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export const SPM_SPACE = '\u2581'; // "▁", SentencePiece's word-boundary marker

export interface TokenizerJson {
  readonly version: string;
  readonly added_tokens: AddedTokenJson[];
  readonly normalizer: object | null;
  readonly pre_tokenizer: object | null;
  readonly post_processor: object | null;
  readonly decoder: object | null;
  readonly model: {
    readonly type: 'BPE';
    readonly vocab: Record<string, number>;
    readonly merges: [string, string][];
    readonly [key: string]: unknown;
  };
  readonly [key: string]: unknown;
}

export interface AddedTokenJson {
  readonly id: number;
  readonly content: string;
  readonly single_word: boolean;
  readonly lstrip: boolean;
  readonly rstrip: boolean;
  readonly normalized: boolean;
  readonly special: boolean;
}

export interface SpecialIds {
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly addBos: boolean;
  readonly addEos: boolean;
}

/** A SentencePiece BPE vocabulary: pieces use "▁" for spaces, byte pieces read `<0xHH>`. */
export interface SentencePieceVocab {
  readonly pieces: readonly string[];
  readonly scores: ArrayLike<number>;
  readonly types: ArrayLike<number>;
  readonly unkId: number | null;
  /** Prepend "▁" to the text (SentencePiece's add_dummy_prefix). Default true. */
  readonly addSpacePrefix?: boolean;
}

/**
 * The Llama 2 / Mistral tokenizer.json layout: normalizer Prepend("▁") + Replace(" " → "▁"), no
 * pre-tokenizer, BPE with byte fallback, decoder Replace("▁" → " "), ByteFallback, Fuse, Strip(1).
 * Merges come from the scores as transformers' SentencePieceExtractor derives them: for each
 * piece, best score first, every split into two pieces of the vocabulary.
 */
export function sentencePieceTokenizerJson(vocab: SentencePieceVocab, special: SpecialIds): TokenizerJson {
  const mergeable = (id: number) => vocab.types[id] === TokenType.NORMAL || vocab.types[id] === TokenType.USER_DEFINED;
  const idOf = new Map<string, number>();
  vocab.pieces.forEach((piece, id) => {
    if (!idOf.has(piece)) idOf.set(piece, id);
  });
  const byScore = vocab.pieces.map((_, id) => id).filter(mergeable);
  byScore.sort((a, b) => vocab.scores[b] - vocab.scores[a] || a - b);
  const merges: [string, string][] = [];
  for (const id of byScore) {
    const chars = Array.from(vocab.pieces[id]);
    const local: Array<[number, number]> = [];
    for (let split = 1; split < chars.length; split++) {
      const left = idOf.get(chars.slice(0, split).join(''));
      const right = idOf.get(chars.slice(split).join(''));
      if (left !== undefined && right !== undefined && mergeable(left) && mergeable(right)) local.push([left, right]);
    }
    local.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (const [left, right] of local) merges.push([vocab.pieces[left], vocab.pieces[right]]);
  }
  const unk = vocab.unkId === null ? null : vocab.pieces[vocab.unkId];
  const addSpacePrefix = vocab.addSpacePrefix ?? true;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(vocab.pieces, vocab.types),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        ...(addSpacePrefix ? [{ type: 'Prepend', prepend: SPM_SPACE }] : []),
        { type: 'Replace', pattern: { String: ' ' }, content: SPM_SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: templateProcessing(vocab.pieces, special),
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPM_SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: vocabObject(vocab.pieces),
      merges,
    },
  };
}

/** Pre-tokenizer split patterns of the byte-level BPE families (llama.cpp's tokenizer.ggml.pre). */
export const BYTE_LEVEL_SPLIT_PATTERNS: Readonly<Record<string, string | null>> = {
  // null: ByteLevel's own GPT-2 regex.
  'gpt-2': null,
  default: null,
  'llama-bpe': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  qwen2: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

export interface ByteLevelVocab {
  /** Tokens in GPT-2's byte-to-character alphabet (control and user-defined tokens as plain text). */
  readonly tokens: readonly string[];
  readonly types: ArrayLike<number>;
  /** "left right" pairs, highest priority first. */
  readonly merges: readonly string[];
  /** A key of BYTE_LEVEL_SPLIT_PATTERNS. */
  readonly pre: string;
}

/** The GPT-2 / Llama 3 / Qwen2 layout: optional Split regex, ByteLevel, BPE, ByteLevel decoder. */
export function byteLevelTokenizerJson(vocab: ByteLevelVocab, special: SpecialIds): TokenizerJson {
  const pattern = BYTE_LEVEL_SPLIT_PATTERNS[vocab.pre];
  if (pattern === undefined) throw new Error(`unknown byte-level pre-tokenizer ${vocab.pre}`);
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: pattern === null };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(vocab.tokens, vocab.types),
    normalizer: vocab.pre === 'qwen2' ? { type: 'NFC' } : null,
    pre_tokenizer:
      pattern === null
        ? byteLevel
        : { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false }, byteLevel] },
    post_processor: templateProcessing(vocab.tokens, special),
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: vocab.pre === 'llama-bpe',
      vocab: vocabObject(vocab.tokens),
      merges: vocab.merges.map((merge) => {
        const space = merge.indexOf(' ', 1);
        return [merge.slice(0, space), merge.slice(space + 1)];
      }),
    },
  };
}

function vocabObject(pieces: readonly string[]): Record<string, number> {
  const vocab: Record<string, number> = {};
  pieces.forEach((piece, id) => {
    if (!Object.prototype.hasOwnProperty.call(vocab, piece)) vocab[piece] = id;
  });
  return vocab;
}

/** Control and unknown tokens are special added tokens; user-defined ones are added, not special. */
function addedTokens(pieces: readonly string[], types: ArrayLike<number>): AddedTokenJson[] {
  const added: AddedTokenJson[] = [];
  pieces.forEach((content, id) => {
    const type = types[id];
    if (type !== TokenType.CONTROL && type !== TokenType.UNKNOWN && type !== TokenType.USER_DEFINED) return;
    const special = type !== TokenType.USER_DEFINED;
    added.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special });
  });
  return added;
}

function templateProcessing(pieces: readonly string[], special: SpecialIds): object | null {
  const bos = special.addBos && special.bosId !== null ? pieces[special.bosId] : null;
  const eos = special.addEos && special.eosId !== null ? pieces[special.eosId] : null;
  if (bos === null && eos === null) return null;
  const token = (content: string, typeId: number) => ({ SpecialToken: { id: content, type_id: typeId } });
  const sequence = (id: 'A' | 'B', typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const wrap = (id: 'A' | 'B', typeId: number) => [
    ...(bos !== null ? [token(bos, typeId)] : []),
    sequence(id, typeId),
    ...(eos !== null ? [token(eos, typeId)] : []),
  ];
  const specialTokens: Record<string, object> = {};
  for (const [content, id] of [
    [bos, special.bosId],
    [eos, special.eosId],
  ] as const) {
    if (content !== null) specialTokens[content] = { id: content, ids: [id], tokens: [content] };
  }
  return { type: 'TemplateProcessing', single: wrap('A', 0), pair: [...wrap('A', 0), ...wrap('B', 1)], special_tokens: specialTokens };
}
