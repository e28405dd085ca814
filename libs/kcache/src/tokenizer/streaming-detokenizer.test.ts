import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadGreedyOracle, stories260kDir } from '../testing/reference-data';
import { Llama2cTokenizer } from './llama2c-tokenizer';
import { StreamingDetokenizer } from './streaming-detokenizer';

const tokenizer = Llama2cTokenizer.fromFile(join(stories260kDir(), 'tok512.bin'), 512);

function streamedDeltas(tokens: readonly number[], previousToken: number | null = null): string[] {
  const detokenizer = new StreamingDetokenizer(tokenizer, previousToken);
  return [...tokens.map((token) => detokenizer.push(token)), detokenizer.flush()];
}

describe('StreamingDetokenizer', () => {
  it('holds back a multi-byte character until its last byte arrives', () => {
    const tokens = tokenizer.encode('ï😀', { bos: false }); // " " then byte tokens
    const deltas = streamedDeltas(tokens);
    assert.deepEqual(deltas, [' ', '', 'ï', '', '', '', '😀', '']);
  });

  it('concatenates to decode() for encoded texts and oracle generations', () => {
    for (const text of ['Once upon a time', 'naïve — “quotes” 😀 中文', 'a\n\tb  c', '']) {
      const tokens = tokenizer.encode(text);
      assert.equal(streamedDeltas(tokens).join(''), tokenizer.decode(tokens));
      assert.equal(streamedDeltas(tokens).join(''), text);
    }
    for (const record of loadGreedyOracle()) {
      const last = record.prompt_token_ids[record.prompt_token_ids.length - 1];
      const streamed = streamedDeltas(record.generated_token_ids, last).join('');
      assert.equal(streamed, tokenizer.decode(record.generated_token_ids, last), record.id);
    }
  });

  it('strips the space of the first piece after a BOS prompt and flushes an incomplete tail', () => {
    assert.deepEqual(streamedDeltas([403], 1), ['Once', '']);
    assert.deepEqual(streamedDeltas([3 + 0xe2, 3 + 0x80]), ['', '', '\ufffd']);
  });
});
