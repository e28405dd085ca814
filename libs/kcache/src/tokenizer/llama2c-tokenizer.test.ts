import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { OracleRecord, loadGreedyOracle, stories260kDir } from '../testing/reference-data';
import { Llama2cTokenizer } from './llama2c-tokenizer';
import { TokenizerFormatError } from './tokenizer-errors';

const tokenizerPath = join(stories260kDir(), 'tok512.bin');
const tokenizer = Llama2cTokenizer.fromFile(tokenizerPath, 512);
// run_c_stdout is in the oracle JSON (see ../shared/oracle/README.md) but not in OracleRecord.
const oracle = loadGreedyOracle() as ReadonlyArray<OracleRecord & { readonly run_c_stdout: string }>;

const TRICKY_STRINGS = [
  '',
  ' ',
  'a',
  'Once upon a time',
  '  Mia  saw\na  big  tree.',
  'two  spaces',
  'line\nbreak\n',
  'tab\there',
  '\n\n',
  ' leading space',
  'café',
  'naïve',
  'emoji 😀🎉 end',
  '中文字符 and 日本語',
  'em — dash',
  '“curly” ‘quotes’',
  '<0x41> literal',
  'ALL CAPS!!! 123,456.7?',
];

describe('Llama2cTokenizer on tok512.bin', () => {
  it('reads the documented pieces', () => {
    assert.equal(tokenizer.vocabSize, 512);
    assert.equal(tokenizer.maxTokenLength, 7);
    assert.equal(tokenizer.bosId, 1);
    assert.equal(tokenizer.eosId, 2);
    assert.deepEqual(tokenizer.pieces.slice(0, 4), ['<unk>', '\n<s>\n', '\n</s>\n', '<0x00>']);
    assert.equal(tokenizer.pieces[403], ' Once');
    assert.equal(tokenizer.pieces[410], ' ');
    assert.equal(tokenizer.scores[260], -1);
  });

  it('encodes every oracle prompt exactly as the reference', () => {
    for (const record of oracle) {
      assert.deepEqual(tokenizer.encode(record.prompt), record.prompt_token_ids, record.id);
    }
  });

  it('follows the README examples', () => {
    assert.deepEqual(tokenizer.encode(''), [1]);
    assert.deepEqual(tokenizer.encode('ï', { bos: false }), [410, 198, 178]);
    assert.deepEqual(tokenizer.encode('é', { bos: false }), [410, 485]);
    assert.deepEqual(tokenizer.encode('\n', { bos: false }), [410, 13]);
    assert.deepEqual(tokenizer.encode('Once', { eos: true }), [1, 403, 2]);
  });

  it('prints the generated text of every oracle record as the reference does', () => {
    for (const record of oracle) {
      const prompt = record.prompt_token_ids;
      const generated = tokenizer.referenceText(record.generated_token_ids, prompt[prompt.length - 1]);
      assert.equal(generated, record.generated_text, record.id);
      const echoedPrompt = tokenizer.referenceText(prompt.slice(1), prompt[0]);
      assert.equal(echoedPrompt + generated, record.run_c_stdout, record.id);
    }
  });

  it('decodes encode(s) back to s', () => {
    for (const text of TRICKY_STRINGS) {
      assert.equal(tokenizer.decode(tokenizer.encode(text)), text, JSON.stringify(text));
      assert.equal(tokenizer.decode(tokenizer.encode(text, { bos: false })), text === '' ? '' : ` ${text}`);
    }
  });

  it('applies the reference decode rules', () => {
    assert.deepEqual(tokenizer.decodeTokenBytes(1, 403), new TextEncoder().encode('Once'));
    assert.deepEqual(tokenizer.decodeTokenBytes(5, 403), new TextEncoder().encode(' Once'));
    assert.deepEqual(tokenizer.decodeTokenBytes(null, 13), new Uint8Array([0x0a]));
    assert.deepEqual(tokenizer.decodeTokenBytes(null, 3 + 0xc3), new Uint8Array([0xc3]));
    assert.throws(() => tokenizer.decodeTokenBytes(null, 512), RangeError);
  });

  it('drops lone non-printable bytes only in referenceText', () => {
    const naive = tokenizer.encode('naïve', { bos: false });
    assert.equal(tokenizer.decode(naive), ' naïve');
    assert.equal(tokenizer.referenceText(naive), ' nave');
    assert.equal(tokenizer.decode([3 + 0xc3]), '\ufffd');
    assert.equal(tokenizer.referenceText([3 + 0x00, 3 + 0x07, 3 + 0x09]), '\t');
    assert.equal(tokenizer.referenceText([2]), '\n</s>\n');
    assert.equal(tokenizer.decode([1, 403, 2]), 'Once');
  });

  it('round-trips its bytes', () => {
    const bytes = readFileSync(tokenizerPath);
    assert.deepEqual(tokenizer.toBytes(), new Uint8Array(bytes));
  });

  it('rejects truncated files, trailing bytes and tiny vocabularies', () => {
    const bytes = readFileSync(tokenizerPath);
    assert.throws(() => Llama2cTokenizer.fromBytes(bytes.subarray(0, 6000), 512, 'tok512.bin'), (error: unknown) =>
      error instanceof TokenizerFormatError && /tok512\.bin: truncated file: record \d+ /.test(error.message),
    );
    assert.throws(() => Llama2cTokenizer.fromBytes(bytes, 511), /trailing bytes after 511 records/);
    const tooSmall = { maxTokenLength: 1, pieces: Array.from({ length: 100 }, () => new Uint8Array([0x61])), scores: new Float32Array(100) };
    assert.throws(() => new Llama2cTokenizer(tooSmall), /at least 259 pieces/);
  });
});
