import { HfTokenizer } from '../hf/hf-tokenizer';
import { BYTE_LEVEL_SPLIT_PATTERNS, TokenizerJson, TokenType, byteLevelTokenizerJson, sentencePieceTokenizerJson } from '../hf/tokenizer-json';
import { TokenizerFormatError } from '../tokenizer/tokenizer-errors';
import { GgufFile } from './gguf-file';

/**
 * The vocabulary in a GGUF's tokenizer.ggml.* metadata as a tokenizer.json document:
 * model "llama" (SentencePiece: tokens, scores, token_type) or "gpt2" (byte-level BPE: tokens,
 * merges, token_type, with tokenizer.ggml.pre naming the pre-tokenizer).
 */
export function ggufTokenizerJson(gguf: GgufFile): { tokenizerJson: TokenizerJson; tokenizerConfig: Record<string, unknown> } {
  const fail = (key: string, problem: string): never => {
    throw new TokenizerFormatError(`${gguf.path}: ${key} ${problem}`);
  };
  const model = gguf.string('tokenizer.ggml.model') ?? fail('tokenizer.ggml.model', 'is missing');
  const tokens = gguf.metadata.get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string')) fail('tokenizer.ggml.tokens', 'must be an array of strings');
  const pieces = tokens as string[];
  const types = arrayOf(gguf, 'tokenizer.ggml.token_type', pieces.length) ?? new Int32Array(pieces.length).fill(TokenType.NORMAL);
  const tokenId = (key: string): number | null => {
    const id = gguf.number(key);
    if (id !== null && !(Number.isInteger(id) && id >= 0 && id < pieces.length)) fail(key, `${id} is outside the vocabulary`);
    return id;
  };
  const bosId = tokenId('tokenizer.ggml.bos_token_id');
  const eosId = tokenId('tokenizer.ggml.eos_token_id');
  const addBos = gguf.boolean('tokenizer.ggml.add_bos_token') ?? model === 'llama';
  const special = { bosId, eosId, addBos, addEos: gguf.boolean('tokenizer.ggml.add_eos_token') ?? false };

  let tokenizerJson: TokenizerJson;
  if (model === 'llama') {
    const scores = arrayOf(gguf, 'tokenizer.ggml.scores', pieces.length) ?? fail('tokenizer.ggml.scores', 'is missing');
    const addSpacePrefix = gguf.boolean('tokenizer.ggml.add_space_prefix') ?? true;
    tokenizerJson = sentencePieceTokenizerJson({ pieces, scores, types, unkId: tokenId('tokenizer.ggml.unknown_token_id'), addSpacePrefix }, special);
  } else if (model === 'gpt2') {
    const pre = gguf.string('tokenizer.ggml.pre') ?? 'default';
    if (!(pre in BYTE_LEVEL_SPLIT_PATTERNS)) fail('tokenizer.ggml.pre', `${JSON.stringify(pre)} is not supported (supported: ${Object.keys(BYTE_LEVEL_SPLIT_PATTERNS).join(', ')})`);
    const merges = gguf.metadata.get('tokenizer.ggml.merges');
    if (!Array.isArray(merges) || !merges.every((m) => typeof m === 'string' && m.indexOf(' ', 1) > 0)) fail('tokenizer.ggml.merges', 'must be an array of "left right" strings');
    tokenizerJson = byteLevelTokenizerJson({ tokens: pieces, types, merges: merges as string[], pre }, special);
  } else {
    return fail('tokenizer.ggml.model', `${JSON.stringify(model)} is not supported (supported: "llama", "gpt2")`);
  }
  const tokenizerConfig: Record<string, unknown> = {
    ...(bosId !== null ? { bos_token: pieces[bosId] } : {}),
    ...(eosId !== null ? { eos_token: pieces[eosId] } : {}),
    clean_up_tokenization_spaces: false,
  };
  const template = gguf.string('tokenizer.chat_template');
  if (template !== null) tokenizerConfig.chat_template = template;
  return { tokenizerJson, tokenizerConfig };
}

export function loadGgufTokenizer(gguf: GgufFile): HfTokenizer {
  const { tokenizerJson, tokenizerConfig } = ggufTokenizerJson(gguf);
  return new HfTokenizer(tokenizerJson, tokenizerConfig);
}

function arrayOf(gguf: GgufFile, key: string, length: number): ArrayLike<number> | null {
  const value = gguf.metadata.get(key);
  if (value === undefined) return null;
  const isNumeric = ArrayBuffer.isView(value) || (Array.isArray(value) && value.every((v) => typeof v === 'number'));
  if (!isNumeric || (value as ArrayLike<number>).length !== length) {
    throw new TokenizerFormatError(`${gguf.path}: ${key} must be ${length} numbers, one per token`);
  }
  return value as ArrayLike<number>;
}
