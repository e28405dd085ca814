import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Xoshiro128Random } from '../model/xoshiro128-random';
import { stories260kDir } from '../testing/reference-data';
import { Llama2cTokenizer } from './llama2c-tokenizer';
import { createSyntheticTokenizer } from './synthetic-tokenizer';

const tokenizer = Llama2cTokenizer.fromFile(join(stories260kDir(), 'tok512.bin'), 512);

/** Line-by-line port of llama2.c run.c encode() (O(n^2) merging), for cross-checking. */
function referenceEncode(t: Llama2cTokenizer, text: string): number[] {
  const key = (id: number): string => Buffer.from(t.pieceBytesOf(id)).toString('latin1');
  const lookup = new Map<string, number>();
  for (let id = t.vocabSize - 1; id >= 0; id--) lookup.set(key(id), id);
  const bytes = new TextEncoder().encode(text);
  const tokens = [1];
  if (bytes.length > 0) tokens.push(lookup.get(' ')!);
  let buffer: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    if ((bytes[i] & 0xc0) !== 0x80) buffer = [];
    buffer.push(bytes[i]);
    if (((bytes[i + 1] ?? 0) & 0xc0) === 0x80 && buffer.length < 4) continue;
    const id = lookup.get(Buffer.from(buffer).toString('latin1'));
    if (id !== undefined) tokens.push(id);
    else tokens.push(...buffer.map((byte) => byte + 3));
    buffer = [];
  }
  for (;;) {
    let bestScore = -1e10;
    let bestId = -1;
    let bestIndex = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = lookup.get(key(tokens[i]) + key(tokens[i + 1]));
      if (id !== undefined && t.scores[id] > bestScore) {
        bestScore = t.scores[id];
        bestId = id;
        bestIndex = i;
      }
    }
    if (bestIndex === -1) return tokens;
    tokens.splice(bestIndex, 2, bestId);
  }
}

function randomText(random: Xoshiro128Random, length: number): string {
  const alphabet = ['a', 'b', 'e', 'h', 't', ' ', '  ', 'he', 'the', 'é', 'ï', '\n', '—', '“', '😀', 'L', '.', ',', '<', '0x', '>'];
  let text = '';
  for (let i = 0; i < length; i++) text += alphabet[random.nextUint32() % alphabet.length];
  return text;
}

describe('llama2.c encoder', () => {
  it('matches a direct port of the reference encoder on random texts', () => {
    const random = new Xoshiro128Random(42);
    const synthetic = createSyntheticTokenizer(700);
    for (let trial = 0; trial < 300; trial++) {
      const text = randomText(random, 1 + (random.nextUint32() % 40));
      assert.deepEqual(tokenizer.encode(text), referenceEncode(tokenizer, text), JSON.stringify(text));
      assert.deepEqual(synthetic.encode(text), referenceEncode(synthetic, text), JSON.stringify(text));
    }
  });

  it('encodes a 1 MB text correctly', () => {
    const random = new Xoshiro128Random(7);
    const sentences = ['Once upon a time, there was a little girl named Lily. ', 'She saw a naïve bird — “hello”!\n', '日本語 😀 '];
    let text = '';
    while (text.length < 1_000_000) text += sentences[random.nextUint32() % sentences.length];
    const tokens = tokenizer.encode(text);
    assert.ok(tokens.length < text.length);
    assert.equal(tokenizer.decode(tokens), text);
  });

  it('splits invalid UTF-8 like the reference (lone continuation bytes fall back to bytes)', () => {
    assert.deepEqual(tokenizer.encodeUtf8(new Uint8Array([0x80, 0x80]), { bos: false }), [410, 0x83, 0x83]);
  });
});
