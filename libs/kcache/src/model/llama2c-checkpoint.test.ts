import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stories260kDir } from '../testing/reference-data';
import { loadLlama2cCheckpoint, parseLlama2cCheckpoint, serializeLlama2cCheckpoint } from './llama2c-checkpoint';
import { ModelFormatError, ModelNotFoundError } from './model-errors';
import { ModelWeights } from './model-weights';
import { createSyntheticModel } from './synthetic-models';

const checkpointPath = join(stories260kDir(), 'stories260K.bin');
const fileBytes = readFileSync(checkpointPath);
const ROPE_TABLES_START = 1_040_156;
const ROPE_TABLES_END = 1_056_540;

function floatAt(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getFloat32(offset, true);
}

function assertSameWeights(actual: ModelWeights, expected: ModelWeights): void {
  assert.deepEqual(actual.config, expected.config);
  assert.deepEqual(actual.tokenEmbedding, expected.tokenEmbedding);
  assert.deepEqual(actual.finalNorm, expected.finalNorm);
  assert.deepEqual(actual.classifier, expected.classifier);
  assert.equal(actual.layers.length, expected.layers.length);
  actual.layers.forEach((layer, l) => assert.deepEqual(layer, expected.layers[l]));
}

describe('parseLlama2cCheckpoint on stories260K.bin', () => {
  const weights = loadLlama2cCheckpoint(checkpointPath);

  it('reads the header the README documents', () => {
    assert.deepEqual(weights.config, {
      dim: 64,
      hiddenDim: 172,
      numLayers: 5,
      numHeads: 8,
      numKvHeads: 4,
      vocabSize: 512,
      maxSeqLen: 512,
      sharedClassifier: true,
      normEps: 1e-5,
      ropeTheta: 10000,
    });
    assert.equal(weights.classifier, weights.tokenEmbedding);
  });

  it('finds each tensor at the README byte offset', () => {
    const layer = (l: number) => weights.layers[l];
    const expectations: Array<[string, Float32Array, number]> = [
      ['tokenEmbedding', weights.tokenEmbedding, 28],
      ['layer 0 attentionNorm', layer(0).attentionNorm, 131_100],
      ['layer 0 wq', layer(0).wq, 132_380],
      ['layer 1 wq', layer(1).wq, 132_380 + 64 * 64 * 4],
      ['layer 0 wk', layer(0).wk, 214_300],
      ['layer 0 wv', layer(0).wv, 255_260],
      ['layer 0 wo', layer(0).wo, 296_220],
      ['layer 0 ffnNorm', layer(0).ffnNorm, 378_140],
      ['layer 0 w1', layer(0).w1, 379_420],
      ['layer 0 w2', layer(0).w2, 599_580],
      ['layer 4 w3', layer(4).w3, 819_740 + 4 * 172 * 64 * 4],
      ['finalNorm', weights.finalNorm, 1_039_900],
    ];
    for (const [name, tensor, offset] of expectations) {
      assert.equal(tensor[0], floatAt(fileBytes, offset), name);
      assert.equal(tensor[tensor.length - 1], floatAt(fileBytes, offset + 4 * (tensor.length - 1)), name);
    }
    assert.equal(weights.layers[4].w3.length, 172 * 64);
    assert.equal(weights.layers[0].wk.length, 32 * 64);
  });

  it('serializes back to the original bytes outside the recomputed RoPE tables', () => {
    const written = serializeLlama2cCheckpoint(weights);
    assert.equal(written.length, fileBytes.length);
    assert.deepEqual(written.subarray(0, ROPE_TABLES_START), new Uint8Array(fileBytes.subarray(0, ROPE_TABLES_START)));
    assert.deepEqual(written.subarray(ROPE_TABLES_END), new Uint8Array(fileBytes.subarray(ROPE_TABLES_END)));
    for (let offset = ROPE_TABLES_START; offset < ROPE_TABLES_END; offset += 4) {
      const difference = Math.abs(floatAt(written, offset) - floatAt(fileBytes, offset));
      assert.ok(difference <= 1e-5, `RoPE table float at byte ${offset} differs by ${difference}`);
    }
  });

  it('round-trips serialize -> parse to identical weights', () => {
    assertSameWeights(parseLlama2cCheckpoint(serializeLlama2cCheckpoint(weights)), weights);
  });
});

describe('llama2.c checkpoint writer and reader', () => {
  it('round-trips a separate classifier (negative vocab_size in the header)', () => {
    const shared = createSyntheticModel('tiny', 3);
    const classifier = shared.tokenEmbedding.map((value) => -value);
    const separate: ModelWeights = { ...shared, config: { ...shared.config, sharedClassifier: false }, classifier };
    const bytes = serializeLlama2cCheckpoint(separate);
    assert.equal(new DataView(bytes.buffer).getInt32(20, true), -512);
    const parsed = parseLlama2cCheckpoint(bytes);
    assertSameWeights(parsed, separate);
    assert.notEqual(parsed.classifier, parsed.tokenEmbedding);
  });

  it('accepts a Buffer view at an unaligned offset', () => {
    const padded = new Uint8Array(fileBytes.length + 1);
    padded.set(fileBytes, 1);
    const weights = parseLlama2cCheckpoint(padded.subarray(1));
    assert.equal(weights.layers[0].wq[0], floatAt(fileBytes, 132_380));
  });
});

describe('llama2.c checkpoint validation', () => {
  const withHeaderField = (index: number, value: number): Uint8Array => {
    const bytes = new Uint8Array(fileBytes);
    new DataView(bytes.buffer).setInt32(index * 4, value, true);
    return bytes;
  };

  it('rejects a truncated file, naming the file and both sizes', () => {
    assert.throws(
      () => parseLlama2cCheckpoint(fileBytes.subarray(0, 1_000_000), 'stories260K.bin'),
      (error: unknown) =>
        error instanceof ModelFormatError &&
        error.name === 'ModelFormatError' &&
        /stories260K\.bin: truncated file: .*exactly 1056540 bytes, got 1000000/.test(error.message),
    );
  });

  it('rejects trailing bytes and a file shorter than the header', () => {
    assert.throws(() => parseLlama2cCheckpoint(new Uint8Array([...fileBytes, 0])), /trailing bytes/);
    assert.throws(() => parseLlama2cCheckpoint(fileBytes.subarray(0, 10), 'x.bin'), /x\.bin: truncated file: expected at least 28/);
  });

  it('rejects non-positive dims and indivisible head counts', () => {
    assert.throws(() => parseLlama2cCheckpoint(withHeaderField(0, 0)), /dim must be a positive int32, got 0/);
    assert.throws(() => parseLlama2cCheckpoint(withHeaderField(2, -1)), /n_layers must be a positive int32/);
    assert.throws(() => parseLlama2cCheckpoint(withHeaderField(5, 0)), /vocab_size must be a positive int32/);
    assert.throws(() => parseLlama2cCheckpoint(withHeaderField(3, 7)), /dim 64 is not divisible by n_heads 7/);
    assert.throws(() => parseLlama2cCheckpoint(withHeaderField(4, 3)), /n_heads 8 is not divisible by n_kv_heads 3/);
    assert.throws(() => parseLlama2cCheckpoint(withHeaderField(1, 100)), ModelFormatError);
  });

  it('reports a missing file as ModelNotFoundError with the cause', () => {
    assert.throws(
      () => loadLlama2cCheckpoint('/nonexistent/model.bin'),
      (error: unknown) => error instanceof ModelNotFoundError && /\/nonexistent\/model\.bin/.test(error.message) && error.cause !== undefined,
    );
  });
});
