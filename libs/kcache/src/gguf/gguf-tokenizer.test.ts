import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sharedDir } from '../testing/reference-data';
import { StreamingDetokenizer } from '../tokenizer/streaming-detokenizer';
import { GgufFile } from './gguf-file';
import { loadGgufTokenizer } from './gguf-tokenizer';

const SEPARATOR = '\n__ggml_vocab_test__\n';
const vectorsDir = join(sharedDir(), 'tokenizers');

/** llama.cpp's test vectors (see ../shared/tokenizers/README.md): `.inp` cases, `.out` ids without special tokens. */
function readVectors(base: string): Array<{ text: string; ids: number[] }> {
  const cases = readFileSync(`${base}.inp`, 'utf8').split(SEPARATOR).slice(0, -1);
  const lines = readFileSync(`${base}.out`, 'utf8').split('\n');
  assert.ok(lines.length >= cases.length, `${base}.out has a line per case`);
  return cases.map((text, i) => ({ text, ids: lines[i].trim() === '' ? [] : lines[i].trim().split(/\s+/).map(Number) }));
}

describe("GGUF vocabularies against llama.cpp's tokenizer test vectors", () => {
  const bases = readdirSync(vectorsDir)
    .filter((name) => name.endsWith('.gguf.inp'))
    .map((name) => join(vectorsDir, name.slice(0, -'.inp'.length)))
    .sort();

  it('finds the vectors', () => assert.ok(bases.length >= 2, `vectors in ${vectorsDir}`));

  for (const base of bases) {
    const name = base.slice(vectorsDir.length + 1);
    if (!existsSync(base)) {
      it.skip(`${name}: the vocabulary file is not in ../shared/tokenizers (only its vectors are)`);
      continue;
    }
    it(`${name}: every case encodes to exactly the recorded ids and decodes back`, () => {
      const tokenizer = loadGgufTokenizer(GgufFile.read(base));
      const vectors = readVectors(base);
      assert.equal(vectors.length, 46);
      for (const { text, ids } of vectors) {
        assert.deepEqual(tokenizer.encode(text, { bos: false }), ids, JSON.stringify(text));
        assert.equal(tokenizer.decode(ids), text, JSON.stringify(text));
        const detokenizer = new StreamingDetokenizer(tokenizer);
        assert.equal(ids.map((id) => detokenizer.push(id)).join('') + detokenizer.flush(), text, `streamed ${JSON.stringify(text)}`);
      }
    });
  }

  it('llama-spm: special ids and the documented examples', () => {
    const tokenizer = loadGgufTokenizer(GgufFile.read(join(vectorsDir, 'ggml-vocab-llama-spm.gguf')));
    assert.deepEqual([tokenizer.vocabSize, tokenizer.bosId, tokenizer.eosId], [32000, 1, 2]);
    assert.deepEqual(tokenizer.encode('Hello', { bos: false }), [15043]);
    assert.deepEqual(tokenizer.encode(' Hello', { bos: false }), [29871, 15043]);
    assert.deepEqual(tokenizer.encode('Hello'), [1, 15043], 'add_bos_token');
    assert.ok(tokenizer.isControlToken(1) && tokenizer.isControlToken(2) && !tokenizer.isControlToken(15043));
  });

  it('gpt-2: BOS = EOS = <|endoftext|>, nothing added by default', () => {
    const tokenizer = loadGgufTokenizer(GgufFile.read(join(vectorsDir, 'ggml-vocab-gpt-2.gguf')));
    assert.deepEqual([tokenizer.vocabSize, tokenizer.bosId, tokenizer.eosId], [50257, 50256, 50256]);
    assert.deepEqual(tokenizer.encode('Hello world'), tokenizer.encode('Hello world', { bos: false }));
    assert.equal(tokenizer.decode([50256, ...tokenizer.encode(' ïé😀')]), ' ïé😀');
  });
});
