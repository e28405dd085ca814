import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { logSoftmaxAt } from './sampler';
import { topLogprobs } from './top-logprobs';

describe('topLogprobs', () => {
  it('the k most likely tokens, most likely first, each with exactly logSoftmaxAt', () => {
    const logits = Float32Array.from([0.5, 3, -1, 3, 2, NaN, 7]);
    const top = topLogprobs(logits, 4);
    assert.deepEqual(top.map((t) => t.tokenId), [6, 1, 3, 4]);
    for (const { tokenId, logprob } of top) assert.equal(logprob, logSoftmaxAt(logits, tokenId));
    const total = Array.from(logits, (_, id) => Math.exp(logSoftmaxAt(logits, id))).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - 1) < 1e-12);
  });

  it('ties go to the lower id; NaN ranks last; k larger than the vocabulary returns all of it', () => {
    const logits = Float32Array.from([NaN, 1, 1, 1]);
    assert.deepEqual(topLogprobs(logits, 2).map((t) => t.tokenId), [1, 2]);
    const all = topLogprobs(logits, 10);
    assert.deepEqual(all.map((t) => t.tokenId), [1, 2, 3, 0]);
    assert.equal(all[3].logprob, -Infinity);
  });

  it('k = 0 is none; a row of -Infinity gives -Infinity, +Infinity logits share the mass', () => {
    assert.deepEqual(topLogprobs(Float32Array.from([1, 2]), 0), []);
    assert.deepEqual(topLogprobs(Float32Array.from([-Infinity, -Infinity]), 1), [{ tokenId: 0, logprob: -Infinity }]);
    const infinite = topLogprobs(Float32Array.from([Infinity, 0, Infinity]), 3);
    assert.deepEqual(infinite, [
      { tokenId: 0, logprob: -Math.log(2) },
      { tokenId: 2, logprob: -Math.log(2) },
      { tokenId: 1, logprob: -Infinity },
    ]);
  });

  it('matches a full sort on a random 512-token row', () => {
    let state = 7;
    const logits = Float32Array.from({ length: 512 }, () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 20 - 10);
    const sorted = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
    assert.deepEqual(topLogprobs(logits, 20).map((t) => t.tokenId), sorted.slice(0, 20));
  });
});
