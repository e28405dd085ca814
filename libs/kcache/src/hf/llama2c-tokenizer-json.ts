import { Llama2cTokenizer, MIN_LLAMA2C_VOCAB_SIZE } from '../tokenizer/llama2c-tokenizer';
import { Llama2cVocabulary } from '../tokenizer/llama2c-vocabulary';
import { TokenizerFormatError } from '../tokenizer/tokenizer-errors';
import { SPM_SPACE, TokenizerJson, TokenType, sentencePieceTokenizerJson } from './tokenizer-json';

/** llama2.c's fixed specials, by id, as Hugging Face names them and as llama2.c's export writes them. */
const SPECIALS = [
  { hf: '<unk>', llama2c: '<unk>', type: TokenType.UNKNOWN },
  { hf: '<s>', llama2c: '\n<s>\n', type: TokenType.CONTROL },
  { hf: '</s>', llama2c: '\n</s>\n', type: TokenType.CONTROL },
] as const;
const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;

/**
 * tokenizer.json + tokenizer_config.json for a llama2.c vocabulary (ids 0..2 specials, 3..258
 * bytes, then pieces with " " for SentencePiece's "▁"), in the Llama 2 layout.
 */
export function llama2cTokenizerJson(tokenizer: Llama2cTokenizer, maxSeqLen: number): { tokenizerJson: TokenizerJson; tokenizerConfig: Record<string, unknown> } {
  const pieces = tokenizer.pieces.map((piece, id) => (id < SPECIALS.length ? SPECIALS[id].hf : piece.replaceAll(' ', SPM_SPACE)));
  const types = pieces.map((piece, id) => (id < SPECIALS.length ? SPECIALS[id].type : id < MIN_LLAMA2C_VOCAB_SIZE && BYTE_PIECE.test(piece) ? TokenType.BYTE : TokenType.NORMAL));
  const tokenizerJson = sentencePieceTokenizerJson(
    { pieces, scores: tokenizer.scores, types, unkId: tokenizer.unkId },
    { bosId: tokenizer.bosId, eosId: tokenizer.eosId, addBos: true, addEos: false },
  );
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: maxSeqLen,
  };
  return { tokenizerJson, tokenizerConfig };
}

/**
 * The inverse for SentencePiece-style tokenizer.json files laid out as llama2.c needs (<unk>, <s>,
 * </s> at 0..2, byte pieces at 3..258). tokenizer.json keeps no scores: piece id >= 259 gets
 * -(id - 259), SentencePiece BPE's rank order (tok512.bin round-trips byte for byte).
 */
export function llama2cVocabularyFromTokenizerJson(json: TokenizerJson, source = 'tokenizer.json'): Llama2cVocabulary {
  if (json.model?.type !== 'BPE' || json.model.byte_fallback !== true) {
    throw new TokenizerFormatError(`${source}: llama2.c's tokenizer format needs a SentencePiece-style BPE with byte_fallback`);
  }
  const tokens: string[] = [];
  for (const [token, id] of Object.entries(json.model.vocab)) tokens[id] = token;
  for (const added of json.added_tokens ?? []) tokens[added.id] = added.content;
  const fail = (problem: string): never => {
    throw new TokenizerFormatError(`${source}: cannot be written in llama2.c's format: ${problem}`);
  };
  if (tokens.length < MIN_LLAMA2C_VOCAB_SIZE) fail(`${tokens.length} tokens, fewer than ${MIN_LLAMA2C_VOCAB_SIZE}`);
  SPECIALS.forEach((special, id) => {
    if (tokens[id] !== special.hf) fail(`id ${id} is ${JSON.stringify(tokens[id])}, expected ${JSON.stringify(special.hf)}`);
  });
  for (let byte = 0; byte < 256; byte++) {
    const expected = `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
    if (tokens[byte + SPECIALS.length] !== expected) fail(`id ${byte + SPECIALS.length} is ${JSON.stringify(tokens[byte + SPECIALS.length])}, expected ${expected}`);
  }
  const utf8 = new TextEncoder();
  const scores = new Float32Array(tokens.length);
  const pieces = tokens.map((token, id) => {
    if (token === undefined) return fail(`no token has id ${id}`);
    if (id < SPECIALS.length) return utf8.encode(SPECIALS[id].llama2c);
    if (id >= MIN_LLAMA2C_VOCAB_SIZE) scores[id] = -(id - MIN_LLAMA2C_VOCAB_SIZE);
    return utf8.encode(token.replaceAll(SPM_SPACE, ' '));
  });
  const maxTokenLength = Math.max(...pieces.map((piece) => piece.length));
  return { maxTokenLength, pieces, scores };
}
