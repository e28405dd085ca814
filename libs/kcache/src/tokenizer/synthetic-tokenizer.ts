import { Llama2cTokenizer, MIN_LLAMA2C_VOCAB_SIZE } from './llama2c-tokenizer';
import { TokenizerFormatError } from './tokenizer-errors';

const SPECIAL_PIECES = ['<unk>', '\n<s>\n', '\n</s>\n'];
/** Filler pieces are all strings over this alphabet, length 2 first, then 3, and so on. */
const FILLER_ALPHABET = ' etaoinshrdlucmfwypvbgkjqxz';

/**
 * A llama2.c-format vocabulary for synthetic models, laid out like tok512.bin:
 * 0..2 specials, 3..258 byte tokens `<0xHH>`, then the printable ASCII characters (space first),
 * then deterministic filler pieces. Ids from 259 on score -(id - 259). Byte fallback lets every
 * text encode and decode back unchanged. Needs vocabSize >= 260 (the dummy prefix needs " ").
 */
export function createSyntheticTokenizer(vocabSize: number): Llama2cTokenizer {
  if (!Number.isSafeInteger(vocabSize) || vocabSize < MIN_LLAMA2C_VOCAB_SIZE + 1) {
    throw new TokenizerFormatError(`synthetic tokenizer needs vocabSize >= ${MIN_LLAMA2C_VOCAB_SIZE + 1}, got ${vocabSize}`);
  }
  const texts = [...SPECIAL_PIECES];
  for (let byte = 0; byte < 256; byte++) texts.push(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`);
  for (let code = 0x20; code <= 0x7e && texts.length < vocabSize; code++) texts.push(String.fromCharCode(code));
  for (let length = 2; texts.length < vocabSize; length++) appendFillers(texts, length, vocabSize);

  const encoder = new TextEncoder();
  const pieces = texts.map((text) => encoder.encode(text));
  const scores = Float32Array.from(texts, (_, id) => (id < MIN_LLAMA2C_VOCAB_SIZE ? 0 : -(id - MIN_LLAMA2C_VOCAB_SIZE)));
  const maxTokenLength = Math.max(...pieces.map((piece) => piece.length));
  return new Llama2cTokenizer({ maxTokenLength, pieces, scores });
}

function appendFillers(texts: string[], length: number, vocabSize: number): void {
  const digits = new Array<number>(length).fill(0);
  while (texts.length < vocabSize) {
    texts.push(digits.map((digit) => FILLER_ALPHABET[digit]).join(''));
    let position = length - 1;
    while (position >= 0 && ++digits[position] === FILLER_ALPHABET.length) digits[position--] = 0;
    if (position < 0) return;
  }
}
