import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Llama2cTokenizer } from './llama2c-tokenizer';
import { createSyntheticTokenizer } from './synthetic-tokenizer';
import { TokenizerFormatError } from './tokenizer-errors';

const TEXTS = ['', 'hello world', '  two  spaces\n', 'tab\t', 'é ï 😀 中文 — “”', 'the quick brown fox jumps over the lazy dog'];

describe('createSyntheticTokenizer', () => {
  it('lays out specials, byte tokens, ASCII, then fillers', () => {
    const tokenizer = createSyntheticTokenizer(512);
    assert.equal(tokenizer.vocabSize, 512);
    assert.deepEqual(tokenizer.pieces.slice(0, 3), ['<unk>', '\n<s>\n', '\n</s>\n']);
    assert.equal(tokenizer.pieces[3 + 0x41], '<0x41>');
    assert.equal(tokenizer.pieces[259], ' ');
    assert.equal(tokenizer.pieces[259 + 94], '~');
    assert.equal(tokenizer.pieces[354], '  ');
    assert.equal(new Set(tokenizer.pieces).size, 512);
    assert.equal(tokenizer.scores[300], -41);
  });

  it('round-trips every text for small and large vocabularies', () => {
    for (const vocabSize of [260, 512, 32000]) {
      const tokenizer = createSyntheticTokenizer(vocabSize);
      for (const text of TEXTS) {
        const tokens = tokenizer.encode(text);
        assert.ok(tokens.every((token) => token >= 0 && token < vocabSize));
        assert.equal(tokenizer.decode(tokens), text, `${vocabSize}: ${JSON.stringify(text)}`);
      }
    }
  });

  it('merges into filler pieces and survives a file round trip', () => {
    const tokenizer = createSyntheticTokenizer(32000);
    assert.ok(tokenizer.encode('the thin').length < 'the thin'.length);
    const reread = Llama2cTokenizer.fromBytes(tokenizer.toBytes(), 32000);
    assert.deepEqual(reread.pieces, tokenizer.pieces);
    assert.deepEqual(reread.encode(TEXTS[5]), tokenizer.encode(TEXTS[5]));
  });

  it('is deterministic and rejects a vocabulary without room for " "', () => {
    assert.deepEqual(createSyntheticTokenizer(600).toBytes(), createSyntheticTokenizer(600).toBytes());
    assert.throws(() => createSyntheticTokenizer(259), TokenizerFormatError);
  });
});
