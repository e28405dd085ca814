import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FULL_ATTENTION } from '../attention/attention-config';
import { createEngine } from '../engine/create-engine';
import { generate } from '../engine/generate';
import { ModelFormatError } from '../model/model-errors';
import { LoadedModel, loadModel } from './model-source';
import { GREEDY } from '../sampling/sampling-params';
import { loadGreedyOracle, stories260kDir } from '../testing/reference-data';
import { convertModel } from './convert-model';
import { HfTokenizer } from '../hf/hf-tokenizer';

const oracle = loadGreedyOracle();

describe('convertModel: stories260K to a Hugging Face folder and back', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'kcache-convert-'));
  const hfDir = join(scratch, 'stories260K-hf');
  const backDir = join(scratch, 'stories260K-back');
  let hf: LoadedModel;
  let reference: LoadedModel;
  before(() => {
    convertModel(stories260kDir(), hfDir);
    hf = loadModel(hfDir);
    reference = loadModel(stories260kDir());
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('writes the folder transformers reads', () => {
    const config = JSON.parse(readFileSync(join(hfDir, 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['LlamaForCausalLM']);
    assert.equal(config.tie_word_embeddings, true);
    assert.ok(hf.tokenizer instanceof HfTokenizer);
    assert.deepEqual(hf.stopTokenIds, [1], 'llama2.c models end a story with BOS');
  });

  it('loads through the Hugging Face path and gives the oracle tokens in the engine', async () => {
    const engine = await createEngine({ model: hfDir, numThreads: 1 }, hf);
    const results = await Promise.all(
      oracle.map((record) =>
        generate(engine, {
          requestId: record.id,
          promptTokenIds: record.prompt_token_ids,
          maxNewTokens: 512,
          sampling: GREEDY,
          stopTokenIds: [],
          stopStrings: [],
          attention: FULL_ATTENTION,
          priority: 0,
          logprobs: false,
        }),
      ),
    );
    results.forEach((result, i) => {
      const record = oracle[i];
      const firstTie = Math.min(...record.near_ties.map((pos) => pos - record.prompt_token_ids.length + 1), Infinity);
      const compared = Number.isFinite(firstTie) ? firstTie : undefined;
      assert.deepEqual(result.tokenIds.slice(0, compared), record.generated_token_ids.slice(0, compared), record.id);
      assert.equal(result.finish.reason, record.stop_reason === 'bos' ? 'eos' : 'length', record.id);
    });
    await engine.close();
  });

  it('the tokenizer.json encodes and decodes as tok512.bin does', () => {
    for (const record of oracle) {
      assert.deepEqual(hf.tokenizer.encode(record.prompt), record.prompt_token_ids, record.id);
      const previous = record.prompt_token_ids[record.prompt_token_ids.length - 1];
      assert.equal(hf.tokenizer.decode(record.generated_token_ids, previous), reference.tokenizer.decode(record.generated_token_ids, previous), record.id);
    }
  });

  it('converts back to the same weights and a byte-identical tok512.bin', () => {
    const result = convertModel(hfDir, backDir);
    assert.equal(result.format, 'llama2c');
    const original = readFileSync(join(stories260kDir(), 'stories260K.bin'));
    const back = readFileSync(join(backDir, 'stories260K-hf.bin'));
    assert.equal(back.length, original.length);
    // Weights are exact; the legacy RoPE tables after them are recomputed by the writer (to ~2e-6).
    const ropeTablesOffset = 1_040_156; // ../shared/models/stories260K/README.md, tensor 12
    assert.ok(back.subarray(0, ropeTablesOffset).equals(original.subarray(0, ropeTablesOffset)));
    assert.ok(readFileSync(join(backDir, 'tok512.bin')).equals(readFileSync(join(stories260kDir(), 'tok512.bin'))));
  });

  it('refuses a non-empty target folder and models llama2.c cannot express', () => {
    assert.throws(() => convertModel(stories260kDir(), hfDir), /exists and is not an empty folder/);
    const qwen = join(scratch, 'qwen-back');
    assert.throws(
      () => convertModel(join(__dirname, '..', '..', 'fixtures', 'hf', 'qwen2-bias-tied-f16'), qwen),
      (error: unknown) => error instanceof ModelFormatError && /cannot be written in llama2.c's format: it has q\/k\/v biases/.test(error.message),
    );
  });
});
