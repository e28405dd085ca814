import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { repoRoot, stories260kDir } from '../testing/reference-data';
import { Llama2cTokenizer } from '../tokenizer/llama2c-tokenizer';
import { serializeLlama2cCheckpoint } from '../model/llama2c-checkpoint';
import { ModelFormatError, ModelNotFoundError } from '../model/model-errors';
import { loadDefaultModel, loadModel, parseModelSpec } from './model-source';
import { createSyntheticModel } from '../model/synthetic-models';

describe('loadModel', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'kcache-model-source-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('parses synthetic specs with and without a seed', () => {
    assert.deepEqual(parseModelSpec('synthetic:tiny'), { kind: 'synthetic', name: 'tiny', seed: 0 });
    assert.deepEqual(parseModelSpec('synthetic:tiny@42'), { kind: 'synthetic', name: 'tiny', seed: 42 });
    assert.deepEqual(parseModelSpec('models/x.bin'), { kind: 'path', path: 'models/x.bin' });
    assert.throws(() => parseModelSpec('synthetic:tiny@-1'), ModelFormatError);
    assert.throws(() => parseModelSpec('synthetic:tiny@'), ModelFormatError);
    assert.throws(() => parseModelSpec('synthetic:huge'), /known: stories260k-shape, tiny, llama-110m/);
  });

  it('builds a synthetic model with a synthetic tokenizer', () => {
    const model = loadModel('synthetic:tiny@3');
    assert.equal(model.name, 'synthetic:tiny@3');
    assert.deepEqual(model.weights.tokenEmbedding, createSyntheticModel('tiny', 3).tokenEmbedding);
    assert.equal(model.tokenizer.vocabSize, 512);
    assert.equal(model.tokenizer.decode(model.tokenizer.encode('hi there')), 'hi there');
  });

  it('loads a folder and a .bin path', () => {
    for (const spec of [stories260kDir(), join(stories260kDir(), 'stories260K.bin')]) {
      const model = loadModel(spec);
      assert.equal(model.name, 'stories260K');
      assert.equal(model.weights.config.dim, 64);
      assert.deepEqual(model.tokenizer.encode('Once'), [1, 403]);
    }
  });

  it('resolves relative paths against cwd and finds tokenizer.bin', () => {
    const dir = join(scratch, 'written');
    mkdirSync(dir);
    writeFileSync(join(dir, 'tiny.bin'), serializeLlama2cCheckpoint(createSyntheticModel('tiny')));
    writeFileSync(join(dir, 'tokenizer.bin'), (loadModel('synthetic:tiny').tokenizer as Llama2cTokenizer).toBytes());
    const model = loadModel('written', { cwd: scratch });
    assert.equal(model.name, 'tiny');
    assert.deepEqual(model.weights.layers[1].w2, createSyntheticModel('tiny').layers[1].w2);
  });

  it('names what it looked for when something is missing', () => {
    const missing = join(scratch, 'nothing-here');
    assert.throws(() => loadModel(missing), (error: unknown) => error instanceof ModelNotFoundError && error.message.includes(missing));
    const noTokenizer = join(scratch, 'no-tokenizer');
    mkdirSync(noTokenizer);
    copyFileSync(join(stories260kDir(), 'stories260K.bin'), join(noTokenizer, 'stories260K.bin'));
    assert.throws(() => loadModel(noTokenizer), /expected one tokenizer tok\*\.bin or tokenizer\.bin in .*no-tokenizer, found none/);
    const twoCheckpoints = join(scratch, 'two');
    mkdirSync(twoCheckpoints);
    writeFileSync(join(twoCheckpoints, 'a.bin'), '');
    writeFileSync(join(twoCheckpoints, 'b.bin'), '');
    assert.throws(() => loadModel(twoCheckpoints), /exactly one checkpoint .* found a\.bin, b\.bin/);
  });

  it('loads the default model from the shared folder', async () => {
    const model = await loadDefaultModel({ repoRoot: repoRoot() });
    assert.equal(model.name, 'stories260K');
    assert.equal(model.tokenizer.vocabSize, 512);
  });
});
