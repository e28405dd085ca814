import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FULL_ATTENTION } from '../attention/attention-config';
import { createEngine } from '../engine/create-engine';
import { generate } from '../engine/generate';
import { convertModel } from '../formats/convert-model';
import { ModelFormatError } from '../model/model-errors';
import { LoadedModel, loadModel } from '../formats/model-source';
import { graphVariantOf } from '../runtime/graph-variant';
import { ModelRunner } from '../runtime/model-runner';
import { GREEDY } from '../sampling/sampling-params';
import { loadGreedyOracle, repoRoot, sharedDir, stories260kDir } from '../testing/reference-data';
import { GgmlType } from './gguf-file';

const fixtures = join(repoRoot(), 'libs', 'kcache', 'fixtures', 'hf');
const oracle = loadGreedyOracle();

/** Overwrites the ggml type field of a tensor's info in a GGUF file. */
function setTensorType(path: string, tensor: string, type: number): void {
  const bytes = readFileSync(path);
  const at = bytes.indexOf(Buffer.from(tensor)) + tensor.length;
  const numDims = bytes.readUInt32LE(at);
  bytes.writeUInt32LE(type, at + 4 + 8 * numDims);
  writeFileSync(path, bytes);
}

async function firstStepError(model: LoadedModel, prompt: number[], expectedBase64: string): Promise<number> {
  const expected = new Float32Array(new Uint8Array(Buffer.from(expectedBase64, 'base64')).buffer);
  const c = model.weights.config;
  const runner = new ModelRunner(model.weights, { blockSize: 16, arenaCapacity: { kIds: 1, deviceVIds: 1, hostVIds: 1 }, numThreads: 1 });
  const logits = await runner.score(prompt, graphVariantOf(FULL_ATTENTION, c.numLayers), 0, prompt.length);
  await runner.release();
  const last = logits.subarray((prompt.length - 1) * c.vocabSize);
  let maxDiff = 0;
  let maxRef = 0;
  expected.forEach((value, i) => {
    maxDiff = Math.max(maxDiff, Math.abs(last[i] - value));
    maxRef = Math.max(maxRef, Math.abs(value));
  });
  return maxDiff / maxRef;
}

describe('GGUF checkpoints', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'kcache-gguf-'));
  const storiesGguf = join(scratch, 'stories260K.gguf');
  before(() => convertModel(stories260kDir(), storiesGguf));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('stories260K as GGUF ("llama", interleaved q/k) loads with the same weights and gives the oracle tokens', async () => {
    const model = loadModel(storiesGguf);
    const reference = loadModel(stories260kDir());
    assert.equal(model.name, 'stories260K');
    assert.deepEqual(model.weights.config, { ...reference.weights.config, normEps: Math.fround(1e-5) });
    assert.deepEqual(model.weights.layers[3].wq, reference.weights.layers[3].wq);
    for (const record of oracle) assert.deepEqual(model.tokenizer.encode(record.prompt), record.prompt_token_ids, record.id);
    const engine = await createEngine({ model: storiesGguf, numThreads: 1 }, model);
    const records = oracle.slice(0, 4);
    const results = await Promise.all(
      records.map((record) =>
        generate(engine, { requestId: record.id, promptTokenIds: record.prompt_token_ids, maxNewTokens: 512, sampling: GREEDY, stopTokenIds: [], stopStrings: [], attention: FULL_ATTENTION, priority: 0, logprobs: false }),
      ),
    );
    // Compared as a prefix: a GGUF names EOS (2) as its stop token, while this model ends a story with BOS.
    results.forEach((result, i) => assert.deepEqual(result.tokenIds.slice(0, records[i].generated_token_ids.length), records[i].generated_token_ids, records[i].id));
    await engine.close();
  });

  for (const name of ['qwen2-bias-tied-f16', 'mistral-sharded-bf16']) {
    it(`${name} as GGUF matches transformers' logits and tokenizer`, async () => {
      const path = join(scratch, `${name}.gguf`);
      convertModel(join(fixtures, name), path);
      const model = loadModel(path);
      const reference = JSON.parse(readFileSync(join(fixtures, name, 'reference.json'), 'utf8'));
      for (const prompt of reference.prompts) {
        const error = await firstStepError(model, prompt.prompt_token_ids, prompt.first_step_logits_f32);
        assert.ok(error < 1e-4, `relative error ${error}`);
      }
      for (const testCase of reference.tokenizer_cases) {
        assert.deepEqual(model.tokenizer.encode(testCase.text, { bos: false }), testCase.ids, JSON.stringify(testCase.text));
        assert.deepEqual(model.tokenizer.encode(testCase.text), testCase.ids_with_special, JSON.stringify(testCase.text));
      }
    });
  }

  it('fails at load on quantized tensors, truncation and unknown architectures', () => {
    const quantized = join(scratch, 'quantized.gguf');
    writeFileSync(quantized, readFileSync(storiesGguf));
    setTensorType(quantized, 'blk.2.ffn_up.weight', 2 /* Q4_0 */);
    assert.throws(() => loadModel(quantized), /tensor blk\.2\.ffn_up\.weight has ggml type 2; only F32 \(0\), F16 \(1\) and BF16 \(30\) are supported/);
    setTensorType(quantized, 'blk.2.ffn_up.weight', GgmlType.F32);
    assert.equal(loadModel(quantized).weights.config.numLayers, 5);

    const truncated = join(scratch, 'truncated.gguf');
    writeFileSync(truncated, readFileSync(storiesGguf));
    truncateSync(truncated, readFileSync(storiesGguf).length - 100);
    assert.throws(() => loadModel(truncated), (error: unknown) => error instanceof ModelFormatError && /truncated file: tensor output_norm\.weight/.test(error.message));
    truncateSync(truncated, 1000);
    assert.throws(() => loadModel(truncated), (error: unknown) => error instanceof ModelFormatError && /truncated GGUF header/.test(error.message));

    const gpt2 = join(sharedTokenizers(), 'ggml-vocab-gpt-2.gguf');
    assert.throws(() => loadModel(gpt2), /general\.architecture "gpt2" is not supported \(supported: llama, qwen2\)/);
    const vocabOnly = join(sharedTokenizers(), 'ggml-vocab-llama-spm.gguf');
    assert.throws(() => loadModel(vocabOnly), /token_embd\.weight tensor is missing/);
  });

  it('refuses to write llama3 rope scaling, which llama.cpp keeps as per-frequency factors', () => {
    assert.throws(() => convertModel(join(fixtures, 'llama-gqa-llama3rope-tied-f32'), join(scratch, 'llama3.gguf')), /llama3 rope scaling is not written to GGUF/);
  });
});

function sharedTokenizers(): string {
  return join(sharedDir(), 'tokenizers');
}
